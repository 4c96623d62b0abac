/**
 * `paxkv watch <key> [--prefix] [--rev N] [--count N]`: print every change of a key (or of every key under
 * a prefix) as it happens, as etcdctl's watch: `PUT` / `DELETE`, the key, and the value (puts), one per
 * line; `-w json`: one JSON object per event with its revision and partition.
 */
import type { WatchEvent } from '@paxkv/client';
import { hashTagOf } from '@paxkv/common';
import { type Command, InvalidArgumentError } from 'commander';
import { displayValue, EXIT, errorOutcome, valueToJson } from './execute.js';
import type { CommandContext } from './lease-commands.js';

function positive(what: string) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw) || Number(raw) < 1)
      throw new InvalidArgumentError(`${what} must be a positive integer`);
    return Number(raw);
  };
}

/** One event as `watch` prints it. */
export function formatWatchEvent(e: WatchEvent, json: boolean): string {
  if (json)
    return JSON.stringify({
      type: e.type,
      key: e.key,
      ...(e.value !== undefined ? { value: valueToJson(e.value) } : {}),
      revision: e.revision,
      partition: e.partition,
    });
  return e.type === 'put'
    ? `PUT\n${e.key}\n${e.value === undefined ? '' : displayValue(e.value)}`
    : `DELETE\n${e.key}`;
}

/** Registers `paxkv watch`. */
export function registerWatchCommands(program: Command, ctx: CommandContext): void {
  program
    .command('watch')
    .description(
      'print every change of <key> (--prefix: of every key starting with it) until interrupted; --rev: from that revision (a key or a prefix inside one {hash tag})',
    )
    .argument('<key>')
    .option('--prefix', 'watch every key starting with <key>')
    .option(
      '--rev <revision>',
      'start from this revision of the partition (replays the history kept)',
      positive('--rev'),
    )
    .option('--count <n>', 'exit after <n> events', positive('--count'))
    .action(async (key: string, o: { prefix?: boolean; rev?: number; count?: number }) => {
      if (o.rev !== undefined && o.prefix && hashTagOf(key) === undefined) {
        ctx.io.stderr.write(
          'paxkv: --rev needs one partition: watch a key, or a prefix inside a {hash tag} (revisions are per partition)\n',
        );
        ctx.setExitCode(EXIT.error);
        return;
      }
      const { client, json } = await ctx.openStream();
      const w = client.watch(key, {
        ...(o.prefix ? { prefix: true } : {}),
        ...(o.rev !== undefined ? { fromRevision: o.rev } : {}),
      });
      void ctx.interrupted.then(() => w.cancel());
      let n = 0;
      try {
        await w.ready;
        if (!json) ctx.io.stderr.write(`watching ${o.prefix ? 'prefix ' : ''}${key}\n`);
        for await (const e of w) {
          ctx.io.stdout.write(`${formatWatchEvent(e, json)}\n`);
          if (o.count !== undefined && ++n >= o.count) break;
        }
        ctx.setExitCode(EXIT.ok);
      } catch (e) {
        const out = errorOutcome('watch', e);
        ctx.io.stderr.write(`paxkv: ${out.stderr}\n`);
        ctx.setExitCode(out.exitCode);
      } finally {
        w.cancel();
        await client.close();
      }
    });
}
