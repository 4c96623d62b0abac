/**
 * `pnpm nemesis -- --duration 60s --seed S [--servers 3|4|5] [--faults kill,pause,partition,membership] [--clients K]
 * [--keys N] [--workload kv|bank] [--watchers N] [--lessees N] [--lockers N]`: one nemesis run against real paxkv-server processes; prints progress, then the summary.
 * Exit code 0: no violation; 1: a violation (or an inconclusive run); 2: bad usage or the cluster did not start.
 * @module
 */
import { parseArgs } from 'node:util';
import { parseDuration } from './args.js';
import { randomSeed } from './rng.js';
import { formatSummary, RunSetupError, runNemesis } from './run.js';
import { DEFAULT_FAULTS, parseFaults } from './schedule.js';

const USAGE = `usage: pnpm nemesis -- [options]
  --duration <time>    how long faults and clients run, e.g. 60s, 2m, 500ms (default 60s)
  --seed <n>           seed of the schedule and workload (default: random, printed)
  --servers <n>        3, 4 or 5 servers (default 3; membership faults need 4 or 5)
  --faults <list>      comma-separated: kill,pause,partition,delay,flaky, all (those five), replace,add,remove
                       or membership (those three) (default ${DEFAULT_FAULTS.join(',')})
  --partitions <n>     partitions of the cluster (default 16)
  --replace-after <s>  with membership faults: the servers' --replace-after in seconds (default 2)
  --metadata-targets   with membership faults: replace/remove may hit the metadata group's replicas too
  --clients <n>        concurrent clients (default 4)
  --keys <n>           keys in the workload (default 6; with --workload bank: accounts)
  --workload <kind>    kv (get/put/cas/delete per key, default) or bank (transfers between the accounts
                       of one hash tag as transactions with modRevision compares; kv-txn model, balance
                       invariant on every read, acknowledged transfers checked in the final read)
  --watchers <n>       kv workload: n watch streams (half on one key, half on the key prefix, every
                       partition) through the faults, checked against the history (default 0)
  --lessees <n>        kv workload: n clients granting, keeping alive and letting expire leases through
                       the faults, every lease's history checked (default 0)
  --lockers <n>        kv workload: n clients taking one lock in turn and writing through it (fenced);
                       the applied writes' tokens must never go backwards (default 0)
  --check-timeout <t>  time budget of the linearizability check (default 60s); past it a key is "unknown"
  --op-timeout <t>     per-operation deadline of the clients; a timeout is indeterminate (default 2s)
  --dir <path>         run directory (default: a temp dir, removed after a passing run)
  --keep               keep the run directory after a passing run
  --tls                TLS everywhere: each server on its own 127.0.0.<10+slot> with its own certificate
                       (throwaway CA); the proxy tells peers apart by source address, relays TLS unread
  --cluster-token-file <path>  run the servers with this cluster token (peer authentication)
  --unsafe-env <K=V>   environment for the servers (test-only switches), repeatable
  --unsafe-mutation <m>  TESTING ONLY: run the servers with the kvstore's unsafeMutation m
                       (staleLeaderReads | releaseBeforeFlush | txnCompareAtSubmit): the run should then FAIL
  --help               this text`;

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0)
    throw new RangeError(`${name} must be a positive integer, got "${text}"`);
  return n;
}

async function main(argv: readonly string[]): Promise<number> {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    values = parseArgs({
      args: argv.filter((a) => a !== '--'),
      options: {
        duration: { type: 'string' },
        seed: { type: 'string' },
        servers: { type: 'string' },
        faults: { type: 'string' },
        'replace-after': { type: 'string' },
        'metadata-targets': { type: 'boolean' },
        partitions: { type: 'string' },
        clients: { type: 'string' },
        keys: { type: 'string' },
        workload: { type: 'string' },
        watchers: { type: 'string' },
        lessees: { type: 'string' },
        lockers: { type: 'string' },
        dir: { type: 'string' },
        'check-timeout': { type: 'string' },
        'op-timeout': { type: 'string' },
        keep: { type: 'boolean' },
        tls: { type: 'boolean' },
        'cluster-token-file': { type: 'string' },
        'unsafe-env': { type: 'string', multiple: true },
        'unsafe-mutation': { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let opts: Parameters<typeof runNemesis>[0];
  try {
    const servers = positiveInt('--servers', values.servers as string | undefined, 3);
    if (servers < 3 || servers > 5) throw new RangeError(`--servers must be 3, 4 or 5, got ${servers}`);
    const env: Record<string, string> = {};
    for (const kv of (values['unsafe-env'] as string[] | undefined) ?? []) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new RangeError(`--unsafe-env needs KEY=VALUE, got "${kv}"`);
      env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const seedText = values.seed as string | undefined;
    const seed = seedText === undefined ? randomSeed() : Number(seedText);
    if (!Number.isInteger(seed)) throw new RangeError(`--seed must be an integer, got "${seedText}"`);
    const dir = values.dir as string | undefined;
    const kind = (values.workload as string | undefined) ?? 'kv';
    if (kind !== 'kv' && kind !== 'bank')
      throw new RangeError(`--workload must be kv or bank, got "${kind}"`);
    opts = {
      workloadKind: kind,
      seed,
      durationMs: parseDuration((values.duration as string | undefined) ?? '60s'),
      servers,
      faults: values.faults === undefined ? DEFAULT_FAULTS : parseFaults(values.faults as string),
      clients: positiveInt('--clients', values.clients as string | undefined, 4),
      metadataTargets: values['metadata-targets'] === true,
      partitions: positiveInt('--partitions', values.partitions as string | undefined, 16),
      replaceAfterSeconds: positiveInt('--replace-after', values['replace-after'] as string | undefined, 2),
      keys: positiveInt('--keys', values.keys as string | undefined, 6),
      ...(values.lockers !== undefined
        ? { lockers: positiveInt('--lockers', values.lockers as string | undefined, 0) }
        : {}),
      ...(values.lessees !== undefined
        ? { lessees: positiveInt('--lessees', values.lessees as string | undefined, 0) }
        : {}),
      ...(values.watchers !== undefined
        ? { watchers: positiveInt('--watchers', values.watchers as string | undefined, 0) }
        : {}),
      keepDir: values.keep === true,
      checkTimeoutMs: parseDuration((values['check-timeout'] as string | undefined) ?? '60s'),
      operationTimeoutMs: parseDuration((values['op-timeout'] as string | undefined) ?? '2s'),
      serverEnv: env,
      tls: values.tls === true,
      ...(typeof values['cluster-token-file'] === 'string'
        ? { serverFlags: ['--cluster-token-file', values['cluster-token-file']] }
        : {}),
      log: (line) => process.stdout.write(`${line}\n`),
      ...(dir !== undefined ? { dir } : {}),
      ...(typeof values['unsafe-mutation'] === 'string' ? { unsafeMutation: values['unsafe-mutation'] } : {}),
    };
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  process.stdout.write(`seed ${opts.seed}\n`);
  try {
    const summary = await runNemesis(opts);
    process.stdout.write(`${formatSummary(summary)}\n`);
    return summary.passed ? 0 : 1;
  } catch (e) {
    if (e instanceof RunSetupError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    process.stderr.write(`nemesis failed (seed ${opts.seed}): ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

// Ctrl-C / SIGTERM: exit through process.exit so the cluster's exit hook SIGKILLs every server (paused ones
// included, which would otherwise stay stopped forever).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\n${signal}: killing the servers and exiting\n`);
    process.exit(130);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`${String(e)}\n`);
    process.exitCode = 1;
  },
);
