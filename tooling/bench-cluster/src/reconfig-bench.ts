/**
 * `pnpm bench:cluster --reconfig`: put throughput while one server of a 3-replica paxkv cluster is
 * replaced, as a share of the steady rate and for how long (the issue's goal, after OmniPaxos' paper:
 * at most 20% lower for at most 15 s).
 *
 * The cluster: 4 servers, replication 3, 16 partitions (each partition on 3 of the 4 servers, so each
 * group has exactly one server outside it to move to). A closed-loop put load runs throughout; after a
 * warm-up and a steady window, one server (node id 4: not a replica of the metadata group, so the
 * figure is the data groups' reconfigurations alone) is replaced in every group it holds, one group at a time (the server's
 * default `--max-moves-in-flight 1`), by a stop-sign reconfiguration of each group onto the server
 * outside it (state transfer: snapshot + suffix):
 * - `remove`: `paxkv member remove 4` (drain: a planned replacement, the server stays up until its last
 *   replica has moved);
 * - `kill`: SIGKILL of the server and its data dir deleted; the cluster heals itself after
 *   `--replace-after` (the figure includes the detection time, and the failover of the groups it led).
 * The load keeps running until every group is off the server and a tail window has passed. Reported:
 * the per-second put throughput from the steady window on, its share of the steady rate, the worst
 * second, the mean share while the groups moved, and how long the throughput stayed below 90%.
 * @module
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ClusterMetadata, partitionOf } from '@paxkv/common';
import { ClusterUnavailableError } from './cluster.js';
import type { BenchOptions, ReconfigFaultName } from './options.js';
import { type PaxkvLocalCluster, type PaxkvMember, startPaxkvCluster } from './paxkv.js';
import { type MachineInfo, machineInfo, mainThreadCpuSeconds, processCpuSeconds } from './proc-stats.js';
import { killServer } from './processes.js';
import {
  analyzeTrace,
  formatTrace,
  movesDoneBetween,
  type PolledGroup,
  PutLog,
  type ReconfigTrace,
  type SeenMove,
} from './reconfig-trace.js';
import type { BenchIo } from './run.js';
import { probeRequest, probeStatus } from './status-probe.js';
import { keyOf, makeValue, XorShift32 } from './workload.js';

/** How the server is replaced: drained by `member remove`, or lost (SIGKILL + data dir deleted). */
export type ReconfigFault = ReconfigFaultName;
/** Every fault, in the order a run measures them. */
export const RECONFIG_FAULTS: readonly ReconfigFault[] = ['remove', 'kill'];

/** Servers of the figure's cluster. */
export const RECONFIG_SERVERS = 4;
/** The node id replaced (not a metadata replica: the metadata group's first replicas are nodes 1-3). */
export const RECONFIG_VICTIM = 4;
/** Longest wait for the cluster metadata after the cluster is ready: 60 s. */
export const METADATA_WAIT_MS = 60_000;
/** Resolution of the load generator's event-loop delay monitor (ms): 10. */
const LOOP_DELAY_RESOLUTION_MS = 10;
/** How long before the steady window a first, discarded sample of the servers' counters is taken: 1 s. */
const PRIME_SAMPLE_MS = 1_000;
/** The least warm-up before the steady window (`--warmup` raises it): 10 s. */
export const RECONFIG_MIN_WARMUP_MS = 10_000;
/** A second below this share of the steady rate counts as "lower" for the dip's length: 0.9. */
export const DIP_FRACTION = 0.9;
/** The goal: no second below this share of the steady rate (at most 20% lower)... */
export const GOAL_MIN_SHARE = 0.8;
/** ...and the throughput back above {@link DIP_FRACTION} for good within this long: 15 s. */
export const GOAL_MAX_DIP_MS = 15_000;

/** Parameters of one replacement measured under load. */
export interface ReconfigSpec {
  readonly fault: ReconfigFault;
  /** Puts in flight (closed loop). */
  readonly concurrency: number;
  /** Unmeasured time before the steady window. */
  readonly warmupMs: number;
  /** The steady window (whole seconds) whose mean is the reference rate. */
  readonly steadyMs: number;
  /** Longest wait for every group to be off the replaced server. */
  readonly healTimeoutMs: number;
  /** Load kept running after the last group moved (whole seconds). */
  readonly tailMs: number;
  /** `--replace-after` of the cluster, in seconds (the `kill` fault waits for it). */
  readonly replaceAfterS: number;
  readonly keySpace: number;
  readonly valueBytes: number;
  readonly requestTimeoutMs: number;
}

/** The figures of one replacement (see {@link analyzeReconfig}). */
export interface ReconfigResult {
  readonly fault: ReconfigFault;
  /** Which round of `--reconfig-rounds` (1-based; 1 when there is one). */
  readonly round?: number;
  readonly concurrency: number;
  /** Mean put ops/s over the steady window. */
  readonly steadyOpsPerSec: number;
  /** Groups that held the replaced server (each reconfigured once). */
  readonly groupsMoved: number;
  /** From the fault to the first move the metadata records (ms; null if none was seen). */
  readonly firstMoveMs: number | null;
  /** From the fault to every group off the replaced server, no move in flight (ms). */
  readonly reconfigMs: number;
  /** The lowest second from the fault on, as a share of the steady rate. */
  readonly worstShare: number;
  /** Mean throughput from the fault to the end of the reconfiguration, as a share of the steady rate. */
  readonly meanShareDuring: number;
  /**
   * From the fault to the end of the last second below {@link DIP_FRACTION} of the steady rate (ms; 0
   * when none was): how long the throughput was lower.
   */
  readonly dipMs: number;
  /** Seconds below {@link GOAL_MIN_SHARE} of the steady rate. */
  readonly secondsBelowGoal: number;
  /** worstShare >= 0.8 and dipMs <= 15 s. */
  readonly goalMet: boolean;
  /** Failed puts from the fault on (each after the client's own retries). */
  readonly errors: number;
  /** Put ops/s per second, from the start of the steady window. */
  readonly seriesOpsPerSec: readonly number[];
  /** Index in {@link seriesOpsPerSec} of the second the fault happened in. */
  readonly faultSecond: number;
  /** Why the rate fell: stalled partitions, errors by kind, client counters, the moves seen. */
  readonly trace?: ReconfigTrace;
}

/** What {@link analyzeReconfig} derives from a per-second series. */
export type ReconfigFigures = Pick<
  ReconfigResult,
  'steadyOpsPerSec' | 'worstShare' | 'meanShareDuring' | 'dipMs' | 'secondsBelowGoal' | 'goalMet'
>;

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/**
 * The figures of a per-second put series: `series[0..faultSecond)` is the steady window (its mean is
 * the steady rate), the fault happened at the start of second `faultSecond`, and the groups were all
 * moved `reconfigMs` later. Pure, for tests.
 */
export function analyzeReconfig(
  series: readonly number[],
  faultSecond: number,
  reconfigMs: number,
): ReconfigFigures {
  const steadyWindow = series.slice(0, faultSecond);
  const steady = steadyWindow.reduce((a, b) => a + b, 0) / Math.max(1, steadyWindow.length);
  const after = series.slice(faultSecond);
  const share = (n: number) => (steady > 0 ? n / steady : 0);
  const worstShare = after.length > 0 ? Math.min(...after.map(share)) : 1;
  const during = after.slice(0, Math.max(1, Math.ceil(reconfigMs / 1000)));
  const meanShareDuring = during.length > 0 ? share(during.reduce((a, b) => a + b, 0) / during.length) : 1;
  let lastLow = -1;
  after.forEach((n, i) => {
    if (share(n) < DIP_FRACTION) lastLow = i;
  });
  const dipMs = (lastLow + 1) * 1000;
  const secondsBelowGoal = after.filter((n) => share(n) < GOAL_MIN_SHARE).length;
  return {
    steadyOpsPerSec: Math.round(steady),
    worstShare: round3(worstShare),
    meanShareDuring: round3(meanShareDuring),
    dipMs,
    secondsBelowGoal,
    goalMet: worstShare >= GOAL_MIN_SHARE && dipMs <= GOAL_MAX_DIP_MS,
  };
}

/** Thrown when the cluster does not finish the replacement in time; says what was seen. */
export class ReconfigTimeoutError extends Error {
  override readonly name = 'ReconfigTimeoutError';
}

/**
 * CPU milliseconds (user + system) used so far by every server process (or, with `read` =
 * {@link mainThreadCpuSeconds}, by their main threads): a process that is gone counts with the last
 * figure read from it (`lastMs`, by pid), so the sum never falls.
 */
function serverCpuMs(
  cluster: PaxkvLocalCluster,
  lastMs: Map<number, number>,
  read: (pid: number) => number | undefined = processCpuSeconds,
): number {
  for (const m of cluster.members()) {
    const s = read(m.process.pid);
    if (s !== undefined) lastMs.set(m.process.pid, s * 1000);
  }
  let ms = 0;
  for (const v of lastMs.values()) ms += v;
  return Math.round(ms);
}

/** The cluster metadata (member list) as the first live server answers it, or null if none does. */
export async function metadataOf(
  cluster: PaxkvLocalCluster,
  timeoutMs: number,
): Promise<ClusterMetadata | null> {
  for (const m of cluster.members()) {
    if (!m.process.isAlive()) continue;
    try {
      const r = await probeRequest(m.address, { type: 'member.list' }, timeoutMs, cluster.clientTls());
      if (r.type === 'member.list.ok' && r.metadata) return r.metadata;
    } catch {
      // ask the next server
    }
  }
  return null;
}

/**
 * The cluster metadata once a server answers with it (every partition has a leader a moment before the
 * metadata group holds its first version), polled for at most {@link METADATA_WAIT_MS}.
 * @throws Error if no server answered with it in that time.
 */
export async function awaitMetadata(cluster: PaxkvLocalCluster): Promise<ClusterMetadata> {
  const deadline = performance.now() + METADATA_WAIT_MS;
  let seen = await metadataOf(cluster, 5_000);
  while (!seen && performance.now() < deadline) {
    await sleep(250);
    seen = await metadataOf(cluster, 5_000);
  }
  if (!seen) {
    throw new Error(
      `the cluster metadata cannot be read (member list) ${METADATA_WAIT_MS} ms after start-up`,
    );
  }
  return seen;
}

/** The member whose node id is `id` (ids follow check-in order, not the start order). */
export async function memberWithId(cluster: PaxkvLocalCluster, id: number): Promise<PaxkvMember> {
  for (const m of cluster.members()) {
    const s = await probeStatus(m.address, 5_000, cluster.clientTls());
    if (s.node === id) return m;
  }
  throw new Error(`no server of the cluster reports node id ${id}`);
}

/** Sends `member.remove` until a server accepts it (elections and forwarding are retried). */
export async function removeMember(cluster: PaxkvLocalCluster, id: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < deadline) {
    for (const m of cluster.members()) {
      try {
        const r = await probeRequest(
          m.address,
          { type: 'member.remove', node: id },
          5_000,
          cluster.clientTls(),
        );
        if (r.type === 'member.ok') return;
        last = r.type === 'error' ? `${r.code} ${r.message}` : r.type;
        if (
          r.type === 'error' &&
          !['UNAVAILABLE', 'NOT_LEADER', 'NO_LEADER', 'TIMEOUT', 'NOT_READY'].includes(r.code)
        )
          throw new Error(`member remove ${id} refused: ${last}`);
      } catch (e) {
        if ((e as Error).message.startsWith('member remove')) throw e;
        last = (e as Error).message;
      }
    }
    await sleep(200);
  }
  throw new ReconfigTimeoutError(`member remove ${id}: no server accepted it in ${timeoutMs} ms (${last})`);
}

/**
 * The cluster of the `--reconfig` figures (and of `--reconfig-cost`): {@link RECONFIG_SERVERS} servers,
 * replication 3, the servers' `--replace-after` and `--move-interval-ms` from the options, profiled into
 * `<--cpu-prof>/<profileName>` when profiling.
 */
export function startReconfigCluster(options: BenchOptions, profileName: string): Promise<PaxkvLocalCluster> {
  return startPaxkvCluster({
    servers: RECONFIG_SERVERS,
    replication: 3,
    fsync: options.paxkvFsync,
    startTimeoutMs: options.startTimeoutMs,
    keepData: options.keepData,
    tickMs: options.paxkvTickMs,
    warmUp: options.paxkvWarmUp,
    extraFlags: [
      '--replace-after',
      String(options.reconfigReplaceAfterS),
      ...(options.reconfigMoveIntervalMs === undefined
        ? []
        : ['--move-interval-ms', String(options.reconfigMoveIntervalMs)]),
    ],
    cpuProfDir: options.cpuProfDir === undefined ? undefined : join(options.cpuProfDir, profileName),
    nodeArgs: options.serverNodeArgs,
  });
}

/**
 * One replacement under load on `cluster` (4 servers, replication 3; see the module comment). The
 * replaced server stays out: use a fresh cluster per fault.
 */
export async function measureReconfig(
  cluster: PaxkvLocalCluster,
  spec: ReconfigSpec,
  log: (line: string) => void = () => {},
): Promise<ReconfigResult> {
  const victim = await memberWithId(cluster, RECONFIG_VICTIM);
  const pids: string[] = [];
  for (const m of cluster.members()) {
    const s = await probeStatus(m.address, 5_000, cluster.clientTls());
    pids.push(`node ${s.node} pid ${m.process.pid}`);
  }
  log(`${spec.fault}: ${pids.join(', ')} (profiles are named by pid)`);
  // Every partition has a leader (ready) a moment before the metadata group holds its first version.
  const before = await awaitMetadata(cluster);
  const groupsMoved = before.table.groups.filter((g) => g.replicas.includes(RECONFIG_VICTIM)).length;
  const target = await cluster.createTarget({ requestTimeoutMs: spec.requestTimeoutMs });
  const value = makeValue('reconfig:', spec.valueBytes);
  const completions: number[] = [];
  const puts = new PutLog();
  const partitions = before.table.partitions;
  const clientSamples: Record<string, number>[] = [];
  // The load generator's own event-loop delay: a stall of this process shows as every put slow at once.
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  const loopDelayMaxMs: number[] = [];
  const cpuByPid = new Map<number, number>();
  const mainCpuByPid = new Map<number, number>();
  const seenMoves = new Map<string, SeenMove>();
  let errors = 0;
  let sampler: ReturnType<typeof setInterval> | undefined;
  let stopped = false;
  let faultAt = Number.POSITIVE_INFINITY;
  const worker = async (index: number): Promise<void> => {
    const rng = new XorShift32(index * 7_919 + 29);
    while (!stopped) {
      const key = keyOf(rng.int(spec.keySpace));
      const start = performance.now();
      try {
        await target.put(key, value);
        const end = performance.now();
        completions.push(end);
        puts.add(partitionOf(key, partitions), start, end);
      } catch (e) {
        if (performance.now() >= faultAt) {
          errors += 1;
          const err = e as { code?: unknown; name?: unknown };
          puts.fail(typeof err.code === 'string' ? err.code : String(err.name ?? 'Error'));
        }
        await sleep(1);
      }
    }
  };
  const workers = Array.from({ length: spec.concurrency }, (_, i) => worker(i));
  try {
    // The client's counters once a second from the steady window's start (index i: end of second i-1),
    // with the servers' CPU time (every process started, the victim's included), forwarded requests and
    // write-ahead-log syncs (count and total seconds, over the servers running; one read of each
    // server's metrics per sample).
    const takeSample = async (): Promise<Record<string, number>> => {
      const sample: Record<string, number> = target.clientStats ? { ...target.clientStats() } : {};
      sample.serverCpuMs = serverCpuMs(cluster, cpuByPid);
      sample.serverMainCpuMs = serverCpuMs(cluster, mainCpuByPid, mainThreadCpuSeconds);
      [sample.forwarded, sample.fsyncs, sample.fsyncSeconds] = await cluster
        .metricSums([
          'paxkv_forwarded_total',
          'paxkv_fsync_duration_seconds_count',
          'paxkv_fsync_duration_seconds_sum',
        ])
        .catch(() => [Number.NaN, Number.NaN, Number.NaN]);
      return sample;
    };
    const sampleStats = async (): Promise<void> => {
      clientSamples.push(await takeSample());
      loopDelayMaxMs.push(loopDelay.max / 1e6);
      loopDelay.reset();
    };
    // One sample (thrown away) a second before the steady window, so that the window's first read of
    // the servers' metrics is not a cold one (their renderer, this process's parsing and /proc reads).
    await sleep(Math.max(0, spec.warmupMs - PRIME_SAMPLE_MS));
    await takeSample();
    await sleep(Math.min(spec.warmupMs, PRIME_SAMPLE_MS));
    const steadySeconds = Math.max(1, Math.round(spec.steadyMs / 1000));
    const steadyStart = performance.now();
    loopDelay.enable();
    await sampleStats();
    sampler = setInterval(() => void sampleStats(), 1000);
    await sleep(steadySeconds * 1000);
    faultAt = performance.now();
    const faultMonotonicUs = process.hrtime.bigint() / 1_000n;
    if (spec.fault === 'remove') {
      await removeMember(cluster, RECONFIG_VICTIM, spec.healTimeoutMs);
    } else {
      await killServer(victim.process);
      rmSync(victim.dataDir, { recursive: true, force: true });
    }
    log(
      `${spec.fault}: node ${RECONFIG_VICTIM} (${groupsMoved} groups) at ${Math.round(faultAt - steadyStart)} ms (monotonic ${faultMonotonicUs} µs: profile-summary --from-us)`,
    );
    let firstMoveMs: number | null = null;
    let reconfigMs: number | null = null;
    const deadline = faultAt + spec.healTimeoutMs;
    let seen: ClusterMetadata | null = null;
    let polled: readonly PolledGroup[] = before.table.groups;
    while (performance.now() < deadline) {
      seen = await metadataOf(cluster, 2_000);
      if (seen) {
        const at = Math.round(performance.now() - faultAt);
        // A move is shorter than the poll interval: most are seen only in the table, once done.
        for (const mv of movesDoneBetween(polled, seen.table.groups, RECONFIG_VICTIM, at)) {
          if (!seenMoves.has(`${mv.partition}:${mv.from}:${mv.to}`))
            seenMoves.set(`${mv.partition}:${mv.from}:${mv.to}`, mv);
          firstMoveMs ??= at;
        }
        polled = seen.table.groups;
        for (const mv of seen.moving) {
          const id = `${mv.partition}:${mv.from}:${mv.to}`;
          const known = seenMoves.get(id);
          if (known) known.lastSeenMs = at;
          else
            seenMoves.set(id, {
              partition: mv.partition,
              from: mv.from,
              to: mv.to,
              firstSeenMs: at,
              lastSeenMs: at,
            });
        }
        if (firstMoveMs === null && seen.moving.some((mv) => mv.from === RECONFIG_VICTIM)) {
          firstMoveMs = Math.round(performance.now() - faultAt);
        }
        const left = seen.table.groups.filter((g) => g.replicas.includes(RECONFIG_VICTIM)).length;
        if (left === 0 && seen.moving.length === 0) {
          reconfigMs = Math.round(performance.now() - faultAt);
          break;
        }
      }
      await sleep(250);
    }
    if (reconfigMs === null) {
      throw new ReconfigTimeoutError(
        `${spec.fault}: node ${RECONFIG_VICTIM} still holds replicas ${spec.healTimeoutMs} ms after the fault (metadata: ${JSON.stringify(seen?.moving)}, groups ${JSON.stringify(seen?.table.groups)})`,
      );
    }
    log(`${spec.fault}: every group off node ${RECONFIG_VICTIM} ${reconfigMs} ms after the fault`);
    await sleep(Math.max(1000, spec.tailMs));
    stopped = true;
    clearInterval(sampler);
    const end = performance.now();
    const seconds = Math.floor((end - steadyStart) / 1000);
    const series = new Array<number>(seconds).fill(0);
    for (const t of completions) {
      const s = Math.floor((t - steadyStart) / 1000);
      if (s >= 0 && s < seconds) series[s] = (series[s] ?? 0) + 1;
    }
    // The fault is sent at the end of the steady window: the seconds from there on are "after".
    const faultSecond = steadySeconds;
    const figures = analyzeReconfig(series, faultSecond, reconfigMs);
    const trace = analyzeTrace(
      puts,
      faultAt,
      steadyStart,
      seconds,
      faultSecond,
      clientSamples,
      [...seenMoves.values()],
      loopDelayMaxMs.slice(1),
    );
    return {
      trace,
      fault: spec.fault,
      concurrency: spec.concurrency,
      groupsMoved,
      firstMoveMs,
      reconfigMs,
      errors,
      seriesOpsPerSec: series,
      faultSecond,
      ...figures,
    };
  } finally {
    loopDelay.disable();
    stopped = true;
    clearInterval(sampler);
    await Promise.race([Promise.allSettled(workers), sleep(spec.requestTimeoutMs + 1_000)]);
    await target.close().catch(() => {});
  }
}

/** The JSON report of `--reconfig --json FILE`. */
export interface ReconfigBenchReport {
  readonly format: 'paxkv-bench-cluster-reconfig/1';
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: MachineInfo;
  readonly settings: Readonly<Record<string, string | number>>;
  readonly results: readonly ReconfigResult[];
  readonly errors: ReadonlyArray<{ readonly fault: ReconfigFault; readonly error: string }>;
  readonly notes: readonly string[];
}

/**
 * The spread of the steady seconds themselves, as shares of their mean: the noise of 1-second buckets
 * on this machine, to read the shares after the fault against. Empty without a steady rate.
 */
function steadyRange(r: ReconfigResult, pct: (x: number) => string): string {
  const steady = r.seriesOpsPerSec.slice(0, r.faultSecond);
  if (r.steadyOpsPerSec <= 0 || steady.length === 0) return '';
  const lo = Math.min(...steady) / r.steadyOpsPerSec;
  const hi = Math.max(...steady) / r.steadyOpsPerSec;
  return ` (the steady seconds themselves: ${pct(lo)}-${pct(hi)})`;
}

/** The text lines of one result (the per-second series as shares of the steady rate). */
export function formatReconfigResult(r: ReconfigResult): string[] {
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const shares = r.seriesOpsPerSec
    .slice(r.faultSecond)
    .map((n) => (r.steadyOpsPerSec > 0 ? pct(n / r.steadyOpsPerSec) : '-'));
  return [
    `reconfig ${r.fault}: steady ${r.steadyOpsPerSec} put/s @${r.concurrency}; ${r.groupsMoved} groups moved in ${(r.reconfigMs / 1000).toFixed(1)} s (first move ${r.firstMoveMs === null ? '-' : `${(r.firstMoveMs / 1000).toFixed(1)} s`} after the fault)`,
    `reconfig ${r.fault}: worst second ${pct(r.worstShare)} of steady, mean ${pct(r.meanShareDuring)} while moving, below ${pct(DIP_FRACTION)} until ${(r.dipMs / 1000).toFixed(0)} s after the fault, ${r.secondsBelowGoal} s below ${pct(GOAL_MIN_SHARE)}; errors ${r.errors}; goal (>= ${pct(GOAL_MIN_SHARE)}, back within ${GOAL_MAX_DIP_MS / 1000} s) ${r.goalMet ? 'MET' : 'NOT met'}`,
    `reconfig ${r.fault}: put/s per second: steady ${r.seriesOpsPerSec.slice(0, r.faultSecond).join(' ')} | from the fault ${r.seriesOpsPerSec.slice(r.faultSecond).join(' ')}`,
    `reconfig ${r.fault}: share of steady per second from the fault: ${shares.join(' ')}${steadyRange(r, pct)}`,
  ];
}

/** The median of `xs` (the mean of the middle two for an even count); NaN when empty. */
function median(xs: readonly number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  if (v.length === 0) return Number.NaN;
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/**
 * The steady window judged by the goal's own rule: its lowest second as a share of its mean (the noise
 * floor of 1-second buckets on that machine, with no fault at all).
 */
export function steadyWorstShare(r: ReconfigResult): number {
  const steady = r.seriesOpsPerSec.slice(0, r.faultSecond);
  if (r.steadyOpsPerSec <= 0 || steady.length === 0) return Number.NaN;
  return Math.min(...steady) / r.steadyOpsPerSec;
}

/**
 * One line per fault over the rounds of `--reconfig-rounds`: every round's worst second and their
 * median, the rounds that met the goal, and the same rule applied to each round's steady window (a
 * control: how often a window without a fault would "fail" on this machine).
 */
export function summarizeRounds(
  results: readonly ReconfigResult[],
  faults: readonly ReconfigFault[],
): string[] {
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const lines: string[] = [];
  for (const fault of faults) {
    const rs = results.filter((r) => r.fault === fault);
    if (rs.length === 0) continue;
    const worst = rs.map((r) => r.worstShare);
    const control = rs.map(steadyWorstShare).filter((x) => !Number.isNaN(x));
    const met = rs.filter((r) => r.goalMet).length;
    const controlLow = control.filter((x) => x < GOAL_MIN_SHARE).length;
    lines.push(
      `reconfig ${fault} over ${rs.length} round${rs.length === 1 ? '' : 's'}: worst second median ${pct(median(worst))} (${worst.map(pct).join(' ')}), below ${pct(DIP_FRACTION)} until median ${(median(rs.map((r) => r.dipMs)) / 1000).toFixed(0)} s after the fault, goal met in ${met} of ${rs.length}; control, the steady windows by the same rule: worst second median ${pct(median(control))} (${control.map(pct).join(' ')}), below ${pct(GOAL_MIN_SHARE)} in ${controlLow} of ${control.length}`,
    );
  }
  return lines;
}

/** Runs every fault of `options.reconfigFaults` on a fresh cluster each and prints the figures. */
export async function runReconfigBench(options: BenchOptions, io: BenchIo): Promise<ReconfigBenchReport> {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const replaceAfterS = options.reconfigReplaceAfterS;
  const spec = (fault: ReconfigFault): ReconfigSpec => ({
    fault,
    concurrency: options.failoverConcurrency,
    // At least 10 s: the load and the servers' JIT ramp up for seconds, which a steady window must not see.
    warmupMs: Math.max(options.warmupMs, RECONFIG_MIN_WARMUP_MS),
    steadyMs: options.reconfigSteadyMs,
    healTimeoutMs: options.reconfigTimeoutMs,
    tailMs: options.reconfigTailMs,
    replaceAfterS,
    keySpace: options.keySpace,
    valueBytes: options.valueBytes,
    requestTimeoutMs: options.requestTimeoutMs,
  });
  const results: ReconfigResult[] = [];
  const errors: Array<{ fault: ReconfigFault; error: string }> = [];
  const rounds = options.reconfigRounds;
  const runOne = async (fault: ReconfigFault, round: number): Promise<void> => {
    const which = rounds > 1 ? ` (round ${round} of ${rounds})` : '';
    io.log(`reconfig ${fault}${which}: starting a ${RECONFIG_SERVERS}-server paxkv cluster (replication 3)`);
    let cluster: PaxkvLocalCluster | undefined;
    try {
      cluster = await startReconfigCluster(options, rounds > 1 ? `${fault}-${round}` : fault);
      const r = { ...(await measureReconfig(cluster, spec(fault), io.log)), round };
      results.push(r);
      for (const line of formatReconfigResult(r)) io.out(line);
      if (r.trace)
        for (const line of formatTrace(`reconfig ${fault}`, r.trace, r.faultSecond, r.seriesOpsPerSec))
          io.out(line);
    } catch (e) {
      if (e instanceof ClusterUnavailableError) throw e;
      const error = e instanceof Error ? e.message : String(e);
      errors.push({ fault, error });
      io.out(`reconfig ${fault}${which}: FAILED: ${error.split('\n')[0]}`);
    } finally {
      await cluster?.stop();
    }
  };
  for (let round = 1; round <= rounds; round++) {
    for (const fault of options.reconfigFaults) await runOne(fault, round);
  }
  if (rounds > 1) for (const line of summarizeRounds(results, options.reconfigFaults)) io.out(line);
  const notes = [
    `cluster: ${RECONFIG_SERVERS} paxkv servers, replication 3, 16 partitions (each on 3 of the 4), fsync ${options.paxkvFsync}, --replace-after ${replaceAfterS} s, --max-moves-in-flight 1 (default), --move-interval-ms ${options.reconfigMoveIntervalMs ?? '1000 (default)'}; node ${RECONFIG_VICTIM} replaced in every group it holds (one stop-sign reconfiguration per group onto the server outside it)`,
    'remove: `member remove 4` (drain: planned replacement, the server stays up until its last replica moved); kill: SIGKILL + data dir deleted, self-healing after --replace-after (includes detection and the failover of the groups it led)',
    `load: closed-loop puts, ${options.failoverConcurrency} in flight, ${options.keySpace} keys, ${options.valueBytes}-byte values; shares are of the mean of the ${Math.round(options.reconfigSteadyMs / 1000)} s steady window before the fault`,
    `figures measured on a shared, loaded machine are indicative only: 1-second buckets then vary with the other processes' load (compare the steady seconds' spread)`,
  ];
  for (const n of notes) io.out(`note: ${n}`);
  const report: ReconfigBenchReport = {
    format: 'paxkv-bench-cluster-reconfig/1',
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    settings: {
      servers: RECONFIG_SERVERS,
      replication: 3,
      partitions: 16,
      replaceAfterS,
      concurrency: options.failoverConcurrency,
      steadyMs: options.reconfigSteadyMs,
      tailMs: options.reconfigTailMs,
      rounds,
    },
    results,
    errors,
    notes,
  };
  if (options.jsonFile !== undefined) writeFileSync(options.jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  return report;
}
