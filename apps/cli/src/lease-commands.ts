/**
 * Lease and lock commands (as etcdctl's): `paxkv lease grant|keep-alive|revoke|list|timetolive`,
 * `paxkv put <key> <value> --ttl <duration>`, and `paxkv lock <name> [-- <command...>]` (run a command
 * while holding a lock, with its fencing token in the environment).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { LeaseTimeToLive, PaxkvClient } from '@paxkv/client';
import { type LeaseInfo, MAX_LEASE_TTL_MS, MIN_LEASE_TTL_MS, type Value } from '@paxkv/common';
import { type Command, InvalidArgumentError } from 'commander';
import { EXIT, errorOutcome, type Outcome } from './execute.js';
import { renderTable } from './views.js';

/** What a command module needs from the program (see `runCli`). */
export interface CommandContext {
  readonly io: {
    readonly stdout: NodeJS.WritableStream;
    readonly stderr: NodeJS.WritableStream;
  };
  /** Runs a one-shot command with a client and prints its outcome; resolves to the exit code. */
  runData(name: string, run: (client: PaxkvClient) => Promise<Outcome>): Promise<number>;
  /** Opens a client for a long-running command (watch, keep-alive, lock), after the connect check. */
  openStream(): Promise<{ readonly client: PaxkvClient; readonly json: boolean }>;
  /** Sets the program's exit code. */
  setExitCode(code: number): void;
  /** Resolves when the user asks to stop (SIGINT, SIGTERM; tests: never unless they abort). */
  readonly interrupted: Promise<void>;
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration: a number with a unit `ms`, `s`, `m`, `h` or `d` (`10s`, `1.5m`, `500ms`); a bare
 * number is seconds (as `etcdctl lease grant 10`). Returns ms.
 * @throws InvalidArgumentError naming `what` when it is not a positive duration.
 */
export function parseDuration(raw: string, what = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(raw.trim());
  const ms = m ? Number(m[1]) * (UNITS[m[2] ?? 's'] as number) : Number.NaN;
  if (!Number.isFinite(ms) || ms <= 0)
    throw new InvalidArgumentError(
      `${what} must be a positive duration like 10s, 500ms, 2m or 1h, got "${raw}"`,
    );
  return Math.round(ms);
}

/** A lease TTL from the command line, within the server's bounds (1 s .. 1 year). */
export function parseTtl(raw: string): number {
  const ms = parseDuration(raw, 'the TTL');
  if (ms < MIN_LEASE_TTL_MS || ms > MAX_LEASE_TTL_MS)
    throw new InvalidArgumentError(`the TTL must be between 1s and 365d, got "${raw}"`);
  return ms;
}

/** A lease id from the command line: decimal, or hex with `0x` (etcdctl prints ids in hex). */
export function parseLeaseId(raw: string): number {
  const n = /^0x[0-9a-f]+$/i.test(raw)
    ? Number.parseInt(raw.slice(2), 16)
    : /^\d+$/.test(raw)
      ? Number(raw)
      : Number.NaN;
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(
      `a lease id is a positive integer (decimal, or hex with 0x), got "${raw}"`,
    );
  return n;
}

function ok(command: string, stdout: string, json: Record<string, unknown>): Outcome {
  return { exitCode: EXIT.ok, stdout, stderr: '', json: { ok: true, command, ...json } };
}

/** `put --ttl`: a lease of `ttlMs` for the key, then the put attached to it. */
export async function putWithTtl(
  client: PaxkvClient,
  key: string,
  value: Value,
  ttlMs: number,
): Promise<Outcome> {
  const r = await client.put(key, value, { ttlMs });
  return ok('put', `OK (lease ${r.lease}, TTL ${ttlMs / 1000}s)`, {
    lease: r.lease,
    ttlMs,
    revision: r.revision,
    partition: r.partition,
  });
}

/** A lease that is gone: exit 1, "not found" on stderr. */
function leaseGone(command: string, id: number): Outcome {
  return {
    exitCode: EXIT.notFound,
    stdout: '',
    stderr: `lease ${id} not found (expired or revoked)`,
    json: { ok: true, command, found: false, lease: id },
  };
}

function ttlOutcome(id: number, t: LeaseTimeToLive): Outcome {
  if (!t.found) return leaseGone('lease timetolive', id);
  const keys = t.keys ? `, attached keys [${t.keys.join(', ')}]${t.more ? ' ...' : ''}` : '';
  return ok(
    'lease timetolive',
    `lease ${t.lease} granted with TTL(${t.ttlMs / 1000}s), remaining(${Math.ceil(t.remainingMs / 1000)}s)${keys}`,
    {
      found: true,
      lease: t.lease,
      ttlMs: t.ttlMs,
      remainingMs: t.remainingMs,
      ...(t.keys ? { keys: t.keys } : {}),
    },
  );
}

function listOutcome(leases: readonly LeaseInfo[]): Outcome {
  return ok(
    'lease list',
    leases.length === 0
      ? '(no leases)'
      : renderTable(
          ['LEASE', 'TTL', 'KEYS'],
          leases.map((l) => [String(l.lease), `${l.ttlMs / 1000}s`, String(l.keys)]),
        ),
    { leases },
  );
}

/** Registers `paxkv lease ...` and `paxkv lock`. */
export function registerLeaseCommands(program: Command, ctx: CommandContext): void {
  const lease = program.command('lease').description('leases: keys that disappear when not kept alive');
  lease
    .command('grant')
    .description('grant a lease of <ttl> (10s, 1m, ...; a bare number is seconds) and print its id')
    .argument('<ttl>', 'time to live', parseTtl)
    .option('--key <key>', 'grant it in the partition of <key> (keys attached to it must live there)')
    .action(async (ttlMs: number, o: { key?: string }) => {
      ctx.setExitCode(
        await ctx.runData('lease grant', async (c) => {
          const g = await c.grant(ttlMs, o.key === undefined ? {} : { key: o.key });
          return ok('lease grant', `lease ${g.lease} granted with TTL(${g.ttlMs / 1000}s)`, { ...g });
        }),
      );
    });
  lease
    .command('revoke')
    .description('revoke a lease: it and every key attached to it are deleted (exit 1 if it was gone)')
    .argument('<id>', 'lease id', parseLeaseId)
    .action(async (id: number) => {
      ctx.setExitCode(
        await ctx.runData('lease revoke', async (c) => {
          const r = await c.revoke(id);
          if (!r.found) return leaseGone('lease revoke', id);
          return ok('lease revoke', `lease ${id} revoked (${r.deleted} keys deleted)`, { ...r });
        }),
      );
    });
  lease
    .command('timetolive')
    .alias('ttl')
    .description("how long a lease has left on its leader's clock (exit 1 if it is gone)")
    .argument('<id>', 'lease id', parseLeaseId)
    .option('--keys', 'also list the keys attached to it')
    .action(async (id: number, o: { keys?: boolean }) => {
      ctx.setExitCode(
        await ctx.runData('lease timetolive', async (c) =>
          ttlOutcome(id, await c.timeToLive(id, { keys: o.keys === true })),
        ),
      );
    });
  lease
    .command('list')
    .description('list the leases (of every partition, or of --partition)')
    .option('--partition <p>', 'only this partition', (raw) => {
      if (!/^\d+$/.test(raw)) throw new InvalidArgumentError('--partition must be a partition number');
      return Number(raw);
    })
    .action(async (o: { partition?: number }) => {
      ctx.setExitCode(
        await ctx.runData('lease list', async (c) =>
          listOutcome(await c.leases(o.partition === undefined ? {} : { partition: o.partition })),
        ),
      );
    });
  lease
    .command('keep-alive')
    .description(
      'keep a lease alive until interrupted (Ctrl-C) or it is gone (exit 1); --once: one keep-alive',
    )
    .argument('<id>', 'lease id', parseLeaseId)
    .option('--once', 'send one keep-alive and exit')
    .action(async (id: number, o: { once?: boolean }) => {
      if (o.once) {
        ctx.setExitCode(
          await ctx.runData('lease keep-alive', async (c) => {
            const r = await c.keepAlive(id);
            return ok('lease keep-alive', `lease ${id} keepalived with TTL(${r.ttlMs / 1000}s)`, {
              lease: id,
              ...r,
            });
          }),
        );
        return;
      }
      const { client, json } = await ctx.openStream();
      try {
        const { ttlMs } = await client.keepAlive(id);
        const out = (line: string, j: Record<string, unknown>) =>
          ctx.io.stdout.write(`${json ? JSON.stringify(j) : line}\n`);
        out(`lease ${id} keepalived with TTL(${ttlMs / 1000}s)`, { lease: id, ttlMs });
        const lost = new Promise<Error>((resolve) => {
          const loop = client.keepAliveLoop(id, ttlMs, { onLost: resolve });
          void ctx.interrupted.then(() => loop.stop());
        });
        const end = await Promise.race([lost, ctx.interrupted.then(() => null)]);
        if (end) {
          ctx.io.stderr.write(`lease ${id} expired or revoked\n`);
          ctx.setExitCode(EXIT.notFound);
        }
      } catch (e) {
        const o2 = errorOutcome('lease keep-alive', e);
        ctx.io.stderr.write(`${o2.stderr}\n`);
        ctx.setExitCode(o2.exitCode);
      } finally {
        await client.close();
      }
    });

  program
    .command('lock')
    .description(
      'take the lock <name>, then run <command...> holding it (its fencing token in $PAXKV_LOCK_TOKEN, key in $PAXKV_LOCK_KEY) and release it when the command exits; without a command: hold it until interrupted',
    )
    .argument('<name>')
    .argument('[command...]')
    .option(
      '--ttl <duration>',
      "the holder's lease TTL (default 10s): a dead holder is replaced after it",
      parseTtl,
    )
    .action(async (name: string, command: string[], o: { ttl?: number }) => {
      const { client, json } = await ctx.openStream();
      try {
        const lock = await client.lock(name, o.ttl === undefined ? {} : { ttlMs: o.ttl });
        const info = { name, key: lock.key, token: lock.token, lease: lock.lease };
        ctx.io.stderr.write(
          `${json ? JSON.stringify({ ok: true, command: 'lock', ...info }) : `locked ${name}: key ${lock.key}, token ${lock.token}`}\n`,
        );
        try {
          if (command.length === 0) {
            await Promise.race([
              ctx.interrupted,
              new Promise((r) => lock.signal.addEventListener('abort', r)),
            ]);
          } else {
            ctx.setExitCode(await runHolding(command, lock, info, ctx));
          }
          if (lock.signal.aborted) {
            // Lost before we released it (unlock comes below).
            ctx.io.stderr.write(`paxkv: ${(lock.signal.reason as Error).message}\n`);
            ctx.setExitCode(EXIT.error);
          }
        } finally {
          await lock.unlock().catch(() => {});
        }
      } catch (e) {
        const out = errorOutcome('lock', e);
        ctx.io.stderr.write(`paxkv: ${out.stderr}\n`);
        ctx.setExitCode(out.exitCode);
      } finally {
        await client.close();
      }
    });
}

/** Runs `command` while the lock is held; terminates it (SIGTERM) if the lock is lost. Resolves to its exit code. */
function runHolding(
  command: readonly string[],
  lock: { readonly signal: AbortSignal },
  info: { readonly key: string; readonly token: number; readonly lease: number },
  ctx: CommandContext,
): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command[0] as string, command.slice(1), {
      stdio: ['inherit', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PAXKV_LOCK_KEY: info.key,
        PAXKV_LOCK_TOKEN: String(info.token),
        PAXKV_LOCK_LEASE: String(info.lease),
      },
    });
    child.stdout?.on('data', (d: Buffer) => ctx.io.stdout.write(d));
    child.stderr?.on('data', (d: Buffer) => ctx.io.stderr.write(d));
    const onLost = () => child.kill('SIGTERM');
    lock.signal.addEventListener('abort', onLost, { once: true });
    void ctx.interrupted.then(() => child.kill('SIGTERM'));
    child.once('error', (e) => {
      ctx.io.stderr.write(`paxkv: cannot run ${command[0]}: ${e.message}\n`);
      resolve(EXIT.error);
    });
    child.once('close', (code, signal) => {
      lock.signal.removeEventListener('abort', onLost);
      resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 1) : EXIT.error));
    });
  });
}
