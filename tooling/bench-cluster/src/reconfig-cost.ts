/**
 * `pnpm bench:cluster --reconfig-cost`: the CPU time the servers spend on replica moves alone, with no
 * client load. The `--reconfig` figure measures a move as lost put throughput on a machine whose cores
 * the load keeps busy, so a move's own work cannot be told from a put path that got dearer; here the
 * same cluster (4 servers, replication 3, 16 partitions; see reconfig-bench.ts) is loaded with
 * `--key-space` keys, left to settle, measured idle, then drained of node 4 (`member remove 4`: one
 * stop-sign reconfiguration per group it holds, state transfer to the server outside the group). The
 * figure is the servers' CPU time (every process, and their main threads) above their idle rate from
 * the removal to the last group moved, divided by the number of moves.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterUnavailableError } from './cluster.js';
import { loadKeys } from './load-generator.js';
import type { BenchOptions } from './options.js';
import type { PaxkvLocalCluster } from './paxkv.js';
import { type MachineInfo, machineInfo, mainThreadCpuSeconds, processCpuSeconds } from './proc-stats.js';
import {
  awaitMetadata,
  metadataOf,
  RECONFIG_SERVERS,
  RECONFIG_VICTIM,
  ReconfigTimeoutError,
  removeMember,
  startReconfigCluster,
} from './reconfig-bench.js';
import type { BenchIo } from './run.js';
import { probeStatus } from './status-probe.js';
import { keyOf, preloadValue } from './workload.js';

/**
 * The idle rate is measured over two consecutive windows of this length once the cluster settled: 2 s
 * (the groups' snapshots and checkpoints that the key load started go on for a while after it).
 */
export const IDLE_STEP_MS = 2_000;
/** The two windows' CPU rates must agree within this share of the larger one for the cluster to count as settled: 10 %. */
export const IDLE_TOLERANCE = 0.1;
/** Longest wait for the cluster to settle; past it the last two windows are taken as they are: 30 s. */
export const SETTLE_MAX_MS = 30_000;
/** Interval between reads of the cluster metadata while the groups move: 250 ms. */
const POLL_MS = 250;
/** Concurrency of the key load before the measurement. */
const LOAD_CONCURRENCY = 256;

/** CPU milliseconds used so far by each server (by node id): the whole process and its main thread. */
export type CpuReading = ReadonlyMap<number, { readonly cpuMs: number; readonly mainMs: number }>;

/** One server's share of the moves' CPU. */
export interface MoveCostServer {
  readonly node: number;
  /** CPU ms of the process from the removal to the last move, and of its main thread. */
  readonly cpuMs: number;
  readonly mainMs: number;
  /** Its idle rate before the removal (ms per second), the process and its main thread. */
  readonly idleMsPerS: number;
  readonly idleMainMsPerS: number;
}

/** The figures of one drain, computed from four readings ({@link moveCostFigures}). */
export interface MoveCostFigures {
  readonly movesMs: number;
  readonly idleMsPerS: number;
  readonly idleMainMsPerS: number;
  /** The servers' CPU above their idle rate during the moves (ms), all threads and main threads. */
  readonly aboveIdleMs: number;
  readonly aboveIdleMainMs: number;
  /** {@link aboveIdleMs} per move. */
  readonly perMoveMs: number;
  readonly perMoveMainMs: number;
  readonly servers: readonly MoveCostServer[];
}

/** One `--reconfig-cost` run. */
export interface MoveCostResult extends MoveCostFigures {
  readonly round: number;
  readonly keys: number;
  readonly valueBytes: number;
  readonly loadMs: number;
  readonly groupsMoved: number;
}

/** The JSON report of `--reconfig-cost --json FILE`. */
export interface MoveCostReport {
  readonly format: 'paxkv-bench-cluster-reconfig-cost/1';
  readonly machine: MachineInfo;
  readonly results: readonly MoveCostResult[];
  readonly errors: readonly { readonly round: number; readonly error: string }[];
}

function diff(a: CpuReading, b: CpuReading, node: number): { cpuMs: number; mainMs: number } {
  const x = a.get(node);
  const y = b.get(node);
  if (x === undefined || y === undefined) return { cpuMs: 0, mainMs: 0 };
  return { cpuMs: y.cpuMs - x.cpuMs, mainMs: y.mainMs - x.mainMs };
}

/**
 * The figures of a drain from the CPU readings at the idle window's start and end (`idleMs` apart)
 * and at the removal and after the last move (`movesMs` apart). A server missing from a reading (it
 * exited) counts nothing for that interval; the caller keeps a departed server's last reading.
 */
export function moveCostFigures(
  idle: readonly [CpuReading, CpuReading],
  idleMs: number,
  moves: readonly [CpuReading, CpuReading],
  movesMs: number,
  groupsMoved: number,
): MoveCostFigures {
  const nodes = [...moves[0].keys()].sort((a, b) => a - b);
  const servers = nodes.map((node) => {
    const i = diff(idle[0], idle[1], node);
    const m = diff(moves[0], moves[1], node);
    return {
      node,
      cpuMs: Math.round(m.cpuMs),
      mainMs: Math.round(m.mainMs),
      idleMsPerS: Math.round((i.cpuMs * 1000) / idleMs),
      idleMainMsPerS: Math.round((i.mainMs * 1000) / idleMs),
    };
  });
  const sum = (f: (s: MoveCostServer) => number): number => servers.reduce((t, s) => t + f(s), 0);
  const idleMsPerS = sum((s) => s.idleMsPerS);
  const idleMainMsPerS = sum((s) => s.idleMainMsPerS);
  const aboveIdleMs = Math.round(sum((s) => s.cpuMs) - (idleMsPerS * movesMs) / 1000);
  const aboveIdleMainMs = Math.round(sum((s) => s.mainMs) - (idleMainMsPerS * movesMs) / 1000);
  const moveCount = Math.max(1, groupsMoved);
  return {
    movesMs: Math.round(movesMs),
    idleMsPerS,
    idleMainMsPerS,
    aboveIdleMs,
    aboveIdleMainMs,
    perMoveMs: Math.round(aboveIdleMs / moveCount),
    perMoveMainMs: Math.round(aboveIdleMainMs / moveCount),
    servers,
  };
}

/** The servers' CPU ms per second between two readings `ms` apart. */
function cpuRate(a: CpuReading, b: CpuReading, ms: number): number {
  let total = 0;
  for (const node of b.keys()) total += diff(a, b, node).cpuMs;
  return (total * 1000) / ms;
}

/** Whether two consecutive idle rates agree within {@link IDLE_TOLERANCE} (the cluster settled). */
export function settled(first: number, second: number): boolean {
  return Math.abs(first - second) <= IDLE_TOLERANCE * Math.max(first, second);
}

/** Reads every server's CPU time; a server that exited keeps its `last` reading. */
function readCpu(
  byNode: ReadonlyMap<number, number>,
  last: Map<number, { cpuMs: number; mainMs: number }>,
): CpuReading {
  for (const [node, pid] of byNode) {
    const cpu = processCpuSeconds(pid);
    const main = mainThreadCpuSeconds(pid);
    if (cpu !== undefined && main !== undefined) last.set(node, { cpuMs: cpu * 1000, mainMs: main * 1000 });
  }
  return new Map(last);
}

/** Loads the keys, measures the idle rate, drains node {@link RECONFIG_VICTIM} and measures its moves. */
export async function measureMoveCost(
  cluster: PaxkvLocalCluster,
  spec: {
    readonly keys: number;
    readonly valueBytes: number;
    readonly timeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly round: number;
  },
  log: (line: string) => void = () => {},
): Promise<MoveCostResult> {
  const pidOf = new Map<number, number>();
  for (const m of cluster.members()) {
    const s = await probeStatus(m.address, 5_000, cluster.clientTls());
    if (typeof s.node === 'number') pidOf.set(s.node, m.process.pid);
  }
  if (!pidOf.has(RECONFIG_VICTIM)) {
    throw new Error(
      `no server of the cluster reports node id ${RECONFIG_VICTIM} (nodes: ${[...pidOf.keys()].join(', ')})`,
    );
  }
  const target = await cluster.createTarget({ requestTimeoutMs: spec.requestTimeoutMs });
  const loadStart = performance.now();
  try {
    await loadKeys(target, spec.keys, () => preloadValue(spec.valueBytes), {
      concurrency: LOAD_CONCURRENCY,
      keyOf,
    });
  } finally {
    await target.close();
  }
  const loadMs = Math.round(performance.now() - loadStart);
  log(`reconfig cost: loaded ${spec.keys} keys in ${loadMs} ms; waiting for the servers' CPU rate to settle`);
  const before = await awaitMetadata(cluster);
  const groupsMoved = before.table.groups.filter((g) => g.replicas.includes(RECONFIG_VICTIM)).length;
  const last = new Map<number, { cpuMs: number; mainMs: number }>();
  const settleDeadline = performance.now() + SETTLE_MAX_MS;
  let idle0 = readCpu(pidOf, last);
  let idleStart = performance.now();
  let idle1: CpuReading;
  let idleMs: number;
  for (;;) {
    await sleep(IDLE_STEP_MS);
    const mid = readCpu(pidOf, last);
    const midAt = performance.now();
    await sleep(IDLE_STEP_MS);
    idle1 = readCpu(pidOf, last);
    idleMs = performance.now() - idleStart;
    const first = cpuRate(idle0, mid, midAt - idleStart);
    const second = cpuRate(mid, idle1, performance.now() - midAt);
    if (settled(first, second)) break;
    if (performance.now() > settleDeadline) {
      log(
        `reconfig cost: the idle rate did not settle in ${SETTLE_MAX_MS / 1000} s (${Math.round(first)} then ${Math.round(second)} ms/s): taken as it is`,
      );
      break;
    }
    idle0 = mid;
    idleStart = midAt;
  }
  const moves0 = readCpu(pidOf, last);
  const movesStart = performance.now();
  // On the clock of V8's profiles (monotonic µs), to cut `--cpu-prof` profiles at the same moments.
  const idleUs = monotonicUs() - BigInt(Math.round(idleMs * 1000));
  log(`reconfig cost: idle window from monotonic ${idleUs} µs; member remove at ${monotonicUs()} µs`);
  await removeMember(cluster, RECONFIG_VICTIM, spec.timeoutMs);
  const deadline = movesStart + spec.timeoutMs;
  for (;;) {
    readCpu(pidOf, last); // the victim exits once drained: keep its last reading
    const seen = await metadataOf(cluster, 2_000);
    if (seen) {
      const left = seen.table.groups.filter((g) => g.replicas.includes(RECONFIG_VICTIM)).length;
      if (left === 0 && seen.moving.length === 0) break;
    }
    if (performance.now() > deadline) {
      throw new ReconfigTimeoutError(
        `reconfig cost: node ${RECONFIG_VICTIM} still holds replicas ${spec.timeoutMs} ms after member remove`,
      );
    }
    await sleep(POLL_MS);
  }
  const moves1 = readCpu(pidOf, last);
  const movesMs = performance.now() - movesStart;
  log(`reconfig cost: every group off node ${RECONFIG_VICTIM} at monotonic ${monotonicUs()} µs`);
  const figures = moveCostFigures([idle0, idle1], idleMs, [moves0, moves1], movesMs, groupsMoved);
  return { ...figures, round: spec.round, keys: spec.keys, valueBytes: spec.valueBytes, loadMs, groupsMoved };
}

function monotonicUs(): bigint {
  return process.hrtime.bigint() / 1_000n;
}

const fmt = (n: number): string => n.toLocaleString('en-US');

/** The lines of one result. */
export function formatMoveCost(r: MoveCostResult): string[] {
  const perServer = r.servers
    .map(
      (s) =>
        `node ${s.node}${s.node === RECONFIG_VICTIM ? ' (removed)' : ''} ${fmt(s.cpuMs)} ms (main ${fmt(s.mainMs)}; idle ${s.idleMsPerS} ms/s)`,
    )
    .join(', ');
  return [
    `reconfig cost: ${r.groupsMoved} groups moved off node ${RECONFIG_VICTIM} in ${(r.movesMs / 1000).toFixed(1)} s (${fmt(r.keys)} keys of ${r.valueBytes} bytes loaded); servers' CPU above idle ${fmt(r.aboveIdleMs)} ms (main threads ${fmt(r.aboveIdleMainMs)} ms) = ${fmt(r.perMoveMs)} ms per move (main threads ${fmt(r.perMoveMainMs)} ms)`,
    `reconfig cost: per server during the moves: ${perServer}; idle rate of all servers ${r.idleMsPerS} ms/s (main threads ${r.idleMainMsPerS})`,
  ];
}

/** Runs `--reconfig-cost` (`--reconfig-rounds` times, each on a fresh cluster) and prints the figures. */
export async function runReconfigCostBench(options: BenchOptions, io: BenchIo): Promise<MoveCostReport> {
  const machine = machineInfo();
  io.log(
    `machine: ${machine.cores} cores (${machine.cpuModel}), node ${machine.node}, load average ${machine.loadavg1m}`,
  );
  const results: MoveCostResult[] = [];
  const errors: Array<{ round: number; error: string }> = [];
  const rounds = options.reconfigRounds;
  for (let round = 1; round <= rounds; round++) {
    const which = rounds > 1 ? ` (round ${round} of ${rounds})` : '';
    io.log(`reconfig cost${which}: starting a ${RECONFIG_SERVERS}-server paxkv cluster (replication 3)`);
    let cluster: PaxkvLocalCluster | undefined;
    try {
      cluster = await startReconfigCluster(options, rounds > 1 ? `cost-${round}` : 'cost');
      const spec = {
        keys: options.keySpace,
        valueBytes: options.valueBytes,
        timeoutMs: options.reconfigTimeoutMs,
        requestTimeoutMs: options.requestTimeoutMs,
        round,
      };
      const r = await measureMoveCost(cluster, spec, io.log);
      results.push(r);
      for (const line of formatMoveCost(r)) io.out(line);
    } catch (e) {
      if (e instanceof ClusterUnavailableError) throw e;
      const error = e instanceof Error ? e.message : String(e);
      errors.push({ round, error });
      io.out(`reconfig cost${which}: FAILED: ${error.split('\n')[0]}`);
    } finally {
      await cluster?.stop();
    }
  }
  if (results.length > 1) {
    const perMove = results.map((r) => r.perMoveMs).sort((a, b) => a - b);
    const mid = perMove.length / 2;
    const median = Number.isInteger(mid)
      ? Math.round(((perMove[mid - 1] as number) + (perMove[mid] as number)) / 2)
      : (perMove[Math.floor(mid)] as number);
    io.out(
      `reconfig cost: per move over ${results.length} rounds: ${perMove.join(' ')} ms (median ${median})`,
    );
  }
  io.out(
    `note: cluster as --reconfig (${RECONFIG_SERVERS} servers, replication 3, 16 partitions, fsync ${options.paxkvFsync}, --move-interval-ms ${options.reconfigMoveIntervalMs ?? '1000 (default)'}); no client load: the keys are loaded, the idle rate is taken over the first two consecutive ${IDLE_STEP_MS / 1000} s windows that agree within ${IDLE_TOLERANCE * 100} % (at most ${SETTLE_MAX_MS / 1000} s of waiting), then \`member remove ${RECONFIG_VICTIM}\``,
  );
  const report: MoveCostReport = { format: 'paxkv-bench-cluster-reconfig-cost/1', machine, results, errors };
  if (options.jsonFile !== undefined) writeFileSync(options.jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}
