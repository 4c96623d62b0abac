import { parseArgs } from 'node:util';

/** The systems the benchmark can drive. */
export const SYSTEM_NAMES = ['paxkv', 'etcd'] as const;
/** One of {@link SYSTEM_NAMES}. */
export type SystemName = (typeof SYSTEM_NAMES)[number];

/** The workloads of the side-by-side table. */
export const WORKLOAD_NAMES = ['put', 'get', 'mixed', 'cas', 'txn', 'range'] as const;
/**
 * One of {@link WORKLOAD_NAMES}: `put` writes random keys, `get` reads preloaded keys linearizably,
 * `mixed` is 50% `get` / 50% `put`, `cas` compare-and-sets preloaded keys against the value this load
 * generator last wrote there, `txn` is a transaction of 2 compares and 2 puts on two keys of one hash
 * tag, `range` a linearizable read of 100 keys of one hash tag.
 */
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

/** How the etcd client spreads its requests over the members. */
export type EtcdEndpoints = 'all' | 'leader';

/**
 * Every knob of the benchmark, each with a documented default ({@link DEFAULT_BENCH_OPTIONS}).
 * Durations are milliseconds.
 */
export interface BenchOptions {
  /** Systems to run, one after the other, never both at once. Default `['paxkv', 'etcd']`. */
  readonly systems: readonly SystemName[];
  /** Workloads of the table. Default: all six. */
  readonly workloads: readonly WorkloadName[];
  /** Closed-loop client concurrencies (requests in flight). Default `[1, 16, 64, 256]`. */
  readonly concurrency: readonly number[];
  /** Measured time of one (system, workload, concurrency) cell. Default 5,000 ms. */
  readonly durationMs: number;
  /** Unmeasured time before each cell, to warm up JIT, connections and caches. Default 1,000 ms. */
  readonly warmupMs: number;
  /** Size of the key space written by `put`/`mixed`: keys `k0000000`..`k{n-1}` (8 bytes). Default 100,000. */
  readonly keySpace: number;
  /** Bytes of each value written by the table's workloads. Default 256. */
  readonly valueBytes: number;
  /** Keys written before the cells start, read by `get`/`mixed` and compare-and-set by `cas`. Default 10,000. */
  readonly preloadKeys: number;
  /** Where to write the JSON report; when set, the last stdout line is `put@64 ratio X.XX`. Default none. */
  readonly jsonFile: string | undefined;
  /** Run the failover figure (SIGKILL a group leader under steady put load). Default true. */
  readonly failover: boolean;
  /** Concurrency of the failover put load. Default 64. */
  readonly failoverConcurrency: number;
  /** Steady-state time measured before the kill. Default 3,000 ms. */
  readonly failoverBaselineMs: number;
  /** Longest time watched after the kill before giving up on recovery. Default 15,000 ms. */
  readonly failoverWatchMs: number;
  /** Width of the throughput buckets of the failover figure. Default 100 ms. */
  readonly failoverBucketMs: number;
  /**
   * Leader kills of the failover figure: after each one the killed server is restarted and the cluster
   * is let settle before the next; the figure reports the median and the largest. Default 10.
   */
  readonly failoverKills: number;
  /** Kill-all-and-restart rounds of the restart-all figure (0 skips it). Default 3. */
  readonly restartAllRounds: number;
  /** Length of the stability figure's fault-free window under CPU hogs (0 skips it). Default 10,000 ms. */
  readonly stabilityMs: number;
  /** CPU hogs (`yes` processes) during the stability window. Default 4 (two per core here). */
  readonly cpuHogs: number;
  /** Length of the watch figure's window (puts under a watched prefix; 0 skips it). Default 5,000 ms. */
  readonly watchMs: number;
  /** Watchers of the watch figure (all on the one prefix the writers write under). Default 100. */
  readonly watchers: number;
  /** paxkv `--tick-ms` (BLE round = 5 ticks, election timeout = 15). Default: the server's default. */
  readonly paxkvTickMs: number | undefined;
  /** paxkv `--warm-up` (`on`/`off`; the start-up warm-up of the replica-move code). Default: the server's (on). */
  readonly paxkvWarmUp: 'on' | 'off' | undefined;
  /**
   * A git ref (e.g. `e4ba261`, milestone 1) whose own `bench:cluster` is run for paxkv in a worktree
   * of that commit, before this tree's systems, with the same options it understands: the "before"
   * figures of the same run. Default none.
   */
  readonly baseline: string | undefined;
  /** Run the memory figure (server RSS after loading `memoryKeys` keys). Default true. */
  readonly memory: boolean;
  /** Keys loaded for the memory figure (`--keys`). Default 100,000; the full figure uses 1,000,000. */
  readonly memoryKeys: number;
  /** Value size of the memory figure. Default 100 bytes. */
  readonly memoryValueBytes: number;
  /** Concurrency of the preload and memory loads. Default 256. */
  readonly loadConcurrency: number;
  /** `all`: the etcd client balances over the three members (as etcdctl does); `leader`: leader only. Default `all`. */
  readonly etcdEndpoints: EtcdEndpoints;
  /** Longest wait for a cluster to start and elect leaders. Default 60,000 ms. */
  readonly startTimeoutMs: number;
  /** Per-request deadline given to both clients. Default 10,000 ms. */
  readonly requestTimeoutMs: number;
  /** Longest wait for in-flight requests after a cell's end. Default 15,000 ms. */
  readonly drainTimeoutMs: number;
  /** When set, paxkv servers run under `node --cpu-prof` and write their profiles into this directory. */
  readonly cpuProfDir: string | undefined;
  /**
   * Extra `node` flags for every paxkv server process, e.g. `--trace-deopt` or `--max-semi-space-size=64`
   * (the servers' V8 behaviour, measured without patching the bench). Default none.
   */
  readonly serverNodeArgs: readonly string[];
  /** Keep the clusters' data directories after the run (they are printed). Default false. */
  readonly keepData: boolean;
  /** paxkv server durability mode. Default `batch` (fsync before acknowledging, one fsync per batch). */
  readonly paxkvFsync: 'always' | 'batch' | 'never';
  /**
   * `--tls`: instead of the table and figures, measure the cost of TLS: each system's cells plain and
   * then with TLS on client and peer traffic, fresh clusters each (tls-bench.ts). The workloads then
   * default to `put,get`. Default false.
   */
  readonly tls: boolean;
  /**
   * `--cluster-token`: the paxkv servers run with a cluster token (peer links authenticated, as a
   * production cluster must be) instead of `--insecure`. Default false (like etcd's side: no peer auth).
   */
  readonly clusterToken: boolean;
  /**
   * `--reconfig`: instead of the table and figures, put throughput while one server of a 3-replica
   * cluster is replaced (reconfig-bench.ts). Default false.
   */
  readonly reconfig: boolean;
  /**
   * `--reconfig-cost`: instead of the table and figures, the servers' CPU time per replica move with no
   * client load (the same 4-server cluster as `--reconfig`, `--key-space` keys loaded first;
   * reconfig-cost.ts). Default false.
   */
  readonly reconfigCost: boolean;
  /** How the server is replaced, each on a fresh cluster: `remove` (drain), `kill` (SIGKILL + wipe). Default both. */
  readonly reconfigFaults: readonly ReconfigFaultName[];
  /** Steady window before the replacement (whole seconds). Default 10,000 ms. */
  readonly reconfigSteadyMs: number;
  /** Load kept running after the last group moved. Default 10,000 ms. */
  readonly reconfigTailMs: number;
  /** Longest wait for the replacement to finish. Default 180,000 ms. */
  readonly reconfigTimeoutMs: number;
  /** `--replace-after` of the reconfiguration figure's servers, in seconds. Default 5. */
  readonly reconfigReplaceAfterS: number;
  /** `--move-interval-ms` of the reconfiguration figure's servers; undefined: the server's default (1000). */
  readonly reconfigMoveIntervalMs: number | undefined;
  /**
   * Times each fault of `--reconfig` is run, each on a fresh cluster, with a summary over the rounds
   * (median worst second, goal met in k of N, and the steady windows judged by the same rule). Default 1.
   */
  readonly reconfigRounds: number;
}

/** The faults of `--reconfig` (see reconfig-bench.ts). */
export const RECONFIG_FAULT_NAMES = ['remove', 'kill'] as const;
/** One of {@link RECONFIG_FAULT_NAMES}. */
export type ReconfigFaultName = (typeof RECONFIG_FAULT_NAMES)[number];

/** The defaults of {@link BenchOptions}. */
export const DEFAULT_BENCH_OPTIONS: BenchOptions = {
  systems: ['paxkv', 'etcd'],
  workloads: ['put', 'get', 'mixed', 'cas', 'txn', 'range'],
  concurrency: [1, 16, 64, 256],
  durationMs: 5_000,
  warmupMs: 1_000,
  keySpace: 100_000,
  valueBytes: 256,
  preloadKeys: 10_000,
  jsonFile: undefined,
  failover: true,
  failoverConcurrency: 64,
  failoverBaselineMs: 3_000,
  failoverWatchMs: 15_000,
  failoverBucketMs: 100,
  failoverKills: 10,
  restartAllRounds: 3,
  stabilityMs: 10_000,
  cpuHogs: 4,
  watchMs: 5_000,
  watchers: 100,
  paxkvTickMs: undefined,
  paxkvWarmUp: undefined,
  baseline: undefined,
  memory: true,
  memoryKeys: 100_000,
  memoryValueBytes: 100,
  loadConcurrency: 256,
  etcdEndpoints: 'all',
  startTimeoutMs: 60_000,
  requestTimeoutMs: 10_000,
  drainTimeoutMs: 15_000,
  cpuProfDir: undefined,
  serverNodeArgs: [],
  keepData: false,
  paxkvFsync: 'batch',
  tls: false,
  clusterToken: false,
  reconfig: false,
  reconfigCost: false,
  reconfigFaults: ['remove', 'kill'],
  reconfigSteadyMs: 10_000,
  reconfigTailMs: 10_000,
  reconfigTimeoutMs: 180_000,
  reconfigReplaceAfterS: 5,
  reconfigMoveIntervalMs: undefined,
  reconfigRounds: 1,
};

/** Bad command-line input; the message names the flag and the accepted form. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The text of `--help`. */
export const USAGE = `Usage: pnpm bench:cluster [flags]

Starts a local 3-server paxkv cluster and (when \`etcd\` is on the PATH) a local 3-member etcd
cluster, one after the other, and drives each with the same Node load generator.

  --systems LIST          paxkv,etcd (default both)
  --workloads LIST        put,get,mixed,cas,txn,range (default all)
  --concurrency LIST      requests in flight, e.g. 1,16,64,256 (default)
  --duration TIME         measured time per cell: 5s (default), 500ms, 2m
  --warmup TIME           unmeasured warm-up per cell (default 1s)
  --key-space N           keys written by put (default 100000)
  --value-bytes N         value size of the table's workloads (default 256)
  --preload N             keys written before the cells, read by get/cas (default 10000)
  --json FILE             write the report as JSON; last stdout line becomes "put@64 ratio X.XX"
  --no-failover           skip the failover figure
  --failover-concurrency N  put load during the failover figure (default 64)
  --failover-kills N      leader kills (each followed by a restart) in the failover figure (default 10)
  --restart-all N         kill-all-servers-and-restart rounds (default 3; 0 skips)
  --stability TIME        fault-free window under CPU hogs counting leader changes (default 10s; 0 skips)
  --watch TIME            watch figure: puts under a prefix watched by --watchers watchers (default 5s; 0 skips)
  --watchers N            watchers of the watch figure (default 100)
  --cpu-hogs N            \`yes\` processes saturating the CPU during that window (default 4)
  --paxkv-tick-ms N       paxkv --tick-ms (default: the server's)
  --paxkv-warm-up on|off  paxkv --warm-up: the start-up run of the replica-move code (default: the server's, on)
  --baseline REF          also run REF's own bench:cluster for paxkv (git worktree of REF, built
                          with scripts/prepare-baseline.sh) as the "before" figures, e.g. e4ba261
  --no-memory             skip the memory figure
  --keys N                keys loaded for the memory figure (default 100000; full figure: 1000000)
  --etcd-endpoints MODE   all (default: client balances over members, as etcdctl) | leader
  --paxkv-fsync MODE      batch (default) | always | never
  --cpu-prof DIR          run the paxkv servers under node --cpu-prof, profiles into DIR
  --server-node-args=ARGS extra node flags for every paxkv server, space-separated (with =, as they
                          start with a dash), e.g. --server-node-args="--trace-deopt --trace-opt"
                          (their output goes to the server logs: add --keep)
  --cluster-token         paxkv servers with a cluster token (authenticated peer links, as in
                          production) instead of --insecure
  --tls                   the cost of TLS instead of the table and figures: each system plain, then
                          with TLS on client and peer traffic (throwaway CA); workloads default put,get
  --reconfig              put throughput while one server of a 3-replica cluster (4 servers) is
                          replaced, instead of the table and figures: share of the steady rate,
                          how long it was lower, per-second series (paxkv only; warm-up >= 10s)
  --reconfig-cost         the servers' CPU per replica move with no client load, instead of the
                          table and figures: the --reconfig cluster, --key-space keys loaded, then
                          member remove 4; CPU above the idle rate, per move and per server
                          (--reconfig-rounds N repeats it on fresh clusters)
  --reconfig-faults LIST  remove (member remove: drain), kill (SIGKILL + data dir deleted, self-
                          healing); default remove,kill, each on a fresh cluster
  --reconfig-steady TIME  steady window before the replacement (default 10s)
  --reconfig-tail TIME    load kept after the last group moved (default 10s)
  --reconfig-rounds N     run each fault N times, each on a fresh cluster, and summarise (median
                          worst second, goal met in k of N, the steady windows as a control); default 1
  --replace-after N       the servers' --replace-after in the --reconfig figure (default 5 s)
  --move-interval-ms N    the servers' --move-interval-ms in the --reconfig figure (default: the server's, 1000)
  --keep                  keep the clusters' data directories
  --help                  this text
`;

/**
 * Splits `--server-node-args` into node flags: each must start with `-` (a script or a value on its own
 * would change what the server runs, not how V8 runs it).
 * @throws UsageError on an empty list or a word that is not a flag.
 */
export function parseNodeArgs(text: string): string[] {
  const args = text.split(/\s+/).filter((a) => a.length > 0);
  if (args.length === 0)
    throw new UsageError('--server-node-args needs at least one node flag, e.g. "--trace-deopt"');
  for (const a of args) {
    if (!a.startsWith('-'))
      throw new UsageError(
        `--server-node-args takes node flags only (each starting with -), got '${a}'; join a value with =`,
      );
  }
  return args;
}

/**
 * Parses a duration: a bare number is seconds; suffixes `ms`, `s`, `m` are accepted.
 * @throws UsageError on anything else.
 */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (m === null) throw new UsageError(`${flag}: expected a duration such as 5s, 500ms or 2m, got "${text}"`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = unit === 'ms' ? n : unit === 's' ? n * 1_000 : n * 60_000;
  return Math.round(ms);
}

function parseCount(text: string, flag: string, min: number): number {
  const t = text.trim().replaceAll('_', '');
  if (!/^\d+$/.test(t)) throw new UsageError(`${flag}: expected a whole number >= ${min}, got "${text}"`);
  const n = Number(t);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${flag}: expected a whole number >= ${min}, got "${text}"`);
  }
  return n;
}

function parseList<T extends string>(text: string, flag: string, allowed: readonly T[]): T[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0)
    throw new UsageError(`${flag}: expected a comma-separated subset of ${allowed.join(',')}`);
  const out: T[] = [];
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new UsageError(`${flag}: unknown "${item}"; choose from ${allowed.join(',')}`);
    }
    if (!out.includes(item as T)) out.push(item as T);
  }
  return out;
}

function parseChoice<T extends string>(text: string, flag: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) {
    throw new UsageError(`${flag}: expected one of ${allowed.join('|')}, got "${text}"`);
  }
  return text as T;
}

/** The result of {@link parseBenchArgs}: options, or a request for the usage text. */
export type ParsedArgs = { readonly help: true } | { readonly help: false; readonly options: BenchOptions };

/**
 * Parses the command line (without `node` and the script path).
 * @throws UsageError naming the offending flag.
 */
export function parseBenchArgs(argv: readonly string[]): ParsedArgs {
  let parsed: ReturnType<typeof parseWithNode>;
  try {
    parsed = parseWithNode(argv);
  } catch (e) {
    throw new UsageError(`${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
  }
  const v = parsed.values;
  if (v.help === true) return { help: true };
  const d = DEFAULT_BENCH_OPTIONS;
  const options: BenchOptions = {
    systems: v.systems === undefined ? d.systems : parseList(v.systems, '--systems', SYSTEM_NAMES),
    workloads:
      v.workloads !== undefined
        ? parseList(v.workloads, '--workloads', WORKLOAD_NAMES)
        : v.tls === true
          ? (['put', 'get'] as const)
          : d.workloads,
    concurrency:
      v.concurrency === undefined
        ? d.concurrency
        : v.concurrency
            .split(',')
            .filter((s) => s.trim().length > 0)
            .map((s) => parseCount(s, '--concurrency', 1)),
    durationMs: v.duration === undefined ? d.durationMs : parseDuration(v.duration, '--duration'),
    warmupMs: v.warmup === undefined ? d.warmupMs : parseDuration(v.warmup, '--warmup'),
    keySpace: v['key-space'] === undefined ? d.keySpace : parseCount(v['key-space'], '--key-space', 1),
    valueBytes:
      v['value-bytes'] === undefined ? d.valueBytes : parseCount(v['value-bytes'], '--value-bytes', 16),
    preloadKeys: v.preload === undefined ? d.preloadKeys : parseCount(v.preload, '--preload', 1),
    jsonFile: v.json ?? d.jsonFile,
    failover: v['no-failover'] === true ? false : d.failover,
    failoverConcurrency:
      v['failover-concurrency'] === undefined
        ? d.failoverConcurrency
        : parseCount(v['failover-concurrency'], '--failover-concurrency', 1),
    failoverBaselineMs: d.failoverBaselineMs,
    failoverWatchMs: d.failoverWatchMs,
    failoverBucketMs: d.failoverBucketMs,
    failoverKills:
      v['failover-kills'] === undefined
        ? d.failoverKills
        : parseCount(v['failover-kills'], '--failover-kills', 1),
    restartAllRounds:
      v['restart-all'] === undefined ? d.restartAllRounds : parseCount(v['restart-all'], '--restart-all', 0),
    stabilityMs: v.stability === undefined ? d.stabilityMs : parseDuration(v.stability, '--stability'),
    cpuHogs: v['cpu-hogs'] === undefined ? d.cpuHogs : parseCount(v['cpu-hogs'], '--cpu-hogs', 0),
    watchMs: v.watch === undefined ? d.watchMs : parseDuration(v.watch, '--watch'),
    watchers: v.watchers === undefined ? d.watchers : parseCount(v.watchers, '--watchers', 1),
    paxkvTickMs:
      v['paxkv-tick-ms'] === undefined ? d.paxkvTickMs : parseCount(v['paxkv-tick-ms'], '--paxkv-tick-ms', 1),
    paxkvWarmUp:
      v['paxkv-warm-up'] === undefined
        ? d.paxkvWarmUp
        : parseChoice(v['paxkv-warm-up'], '--paxkv-warm-up', ['on', 'off'] as const),
    baseline: v.baseline ?? d.baseline,
    memory: v['no-memory'] === true ? false : d.memory,
    memoryKeys: v.keys === undefined ? d.memoryKeys : parseCount(v.keys, '--keys', 1),
    memoryValueBytes: d.memoryValueBytes,
    loadConcurrency: d.loadConcurrency,
    etcdEndpoints:
      v['etcd-endpoints'] === undefined
        ? d.etcdEndpoints
        : parseChoice(v['etcd-endpoints'], '--etcd-endpoints', ['all', 'leader'] as const),
    startTimeoutMs: d.startTimeoutMs,
    requestTimeoutMs: d.requestTimeoutMs,
    drainTimeoutMs: d.drainTimeoutMs,
    cpuProfDir: v['cpu-prof'] ?? d.cpuProfDir,
    serverNodeArgs:
      v['server-node-args'] === undefined ? d.serverNodeArgs : parseNodeArgs(v['server-node-args']),
    keepData: v.keep === true,
    paxkvFsync:
      v['paxkv-fsync'] === undefined
        ? d.paxkvFsync
        : parseChoice(v['paxkv-fsync'], '--paxkv-fsync', ['always', 'batch', 'never'] as const),
    tls: v.tls === true,
    clusterToken: v['cluster-token'] === true,
    reconfig: v.reconfig === true,
    reconfigCost: v['reconfig-cost'] === true,
    reconfigFaults:
      v['reconfig-faults'] === undefined
        ? d.reconfigFaults
        : parseList(v['reconfig-faults'], '--reconfig-faults', RECONFIG_FAULT_NAMES),
    reconfigSteadyMs:
      v['reconfig-steady'] === undefined
        ? d.reconfigSteadyMs
        : parseDuration(v['reconfig-steady'], '--reconfig-steady'),
    reconfigTailMs:
      v['reconfig-tail'] === undefined
        ? d.reconfigTailMs
        : parseDuration(v['reconfig-tail'], '--reconfig-tail'),
    reconfigTimeoutMs: d.reconfigTimeoutMs,
    reconfigReplaceAfterS:
      v['replace-after'] === undefined
        ? d.reconfigReplaceAfterS
        : parseCount(v['replace-after'], '--replace-after', 1),
    reconfigMoveIntervalMs:
      v['move-interval-ms'] === undefined
        ? d.reconfigMoveIntervalMs
        : parseCount(v['move-interval-ms'], '--move-interval-ms', 0),
    reconfigRounds:
      v['reconfig-rounds'] === undefined
        ? d.reconfigRounds
        : parseCount(v['reconfig-rounds'], '--reconfig-rounds', 1),
  };
  if (options.reconfigSteadyMs < 1_000) throw new UsageError('--reconfig-steady: must be at least 1s');
  if (options.concurrency.length === 0) throw new UsageError('--concurrency: expected at least one number');
  if (options.durationMs < 100) throw new UsageError('--duration: must be at least 100ms');
  if (options.preloadKeys > options.keySpace) {
    throw new UsageError(
      `--preload (${options.preloadKeys}) must not exceed --key-space (${options.keySpace})`,
    );
  }
  if (options.keySpace > 10_000_000) throw new UsageError('--key-space: at most 10000000 (8-byte keys)');
  if (options.tls && options.reconfig) {
    throw new UsageError('--tls and --reconfig are separate runs: give one of them');
  }
  if (options.reconfigCost && (options.tls || options.reconfig)) {
    throw new UsageError(
      '--reconfig-cost is a run of its own (no client load): give it without --tls and --reconfig',
    );
  }
  return { help: false, options };
}

function parseWithNode(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      systems: { type: 'string' },
      workloads: { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'key-space': { type: 'string' },
      'value-bytes': { type: 'string' },
      preload: { type: 'string' },
      json: { type: 'string' },
      'no-failover': { type: 'boolean' },
      'failover-concurrency': { type: 'string' },
      'failover-kills': { type: 'string' },
      'restart-all': { type: 'string' },
      stability: { type: 'string' },
      'cpu-hogs': { type: 'string' },
      watch: { type: 'string' },
      watchers: { type: 'string' },
      'paxkv-tick-ms': { type: 'string' },
      'paxkv-warm-up': { type: 'string' },
      baseline: { type: 'string' },
      'no-memory': { type: 'boolean' },
      keys: { type: 'string' },
      'etcd-endpoints': { type: 'string' },
      'paxkv-fsync': { type: 'string' },
      'cpu-prof': { type: 'string' },
      'server-node-args': { type: 'string' },
      keep: { type: 'boolean' },
      tls: { type: 'boolean' },
      'cluster-token': { type: 'boolean' },
      reconfig: { type: 'boolean' },
      'reconfig-cost': { type: 'boolean' },
      'reconfig-faults': { type: 'string' },
      'reconfig-steady': { type: 'string' },
      'reconfig-rounds': { type: 'string' },
      'reconfig-tail': { type: 'string' },
      'replace-after': { type: 'string' },
      'move-interval-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
