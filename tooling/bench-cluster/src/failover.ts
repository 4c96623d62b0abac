import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalCluster, TargetOptions } from './cluster.js';
import { median } from './latency.js';
import { killServer, type ServerProcess } from './processes.js';
import type { FailoverKill, FailoverResult } from './report.js';
import { keyOf, makeValue, XorShift32 } from './workload.js';

/** Parameters of the failover figure (see `BenchOptions` for the defaults). */
export interface FailoverSpec {
  readonly concurrency: number;
  /** Unmeasured time before the baseline. */
  readonly warmupMs: number;
  readonly baselineMs: number;
  readonly watchMs: number;
  /** How long the load is watched after the first write (the throughput curve). Default 3,000 ms. */
  readonly afterFirstWriteMs?: number;
  readonly bucketMs: number;
  readonly keySpace: number;
  readonly valueBytes: number;
  readonly target: TargetOptions;
}

/** Buckets averaged when deciding that throughput is back: 3 (300 ms with the default buckets). */
export const RECOVERY_WINDOW_BUCKETS = 3;
/** Interval between the probe writes issued after the kill: 10 ms. */
export const PROBE_INTERVAL_MS = 10;
/** Interval of the status polls that find the new leader after the kill: 10 ms. */
export const LEADER_POLL_MS = 10;
/** Fraction of the baseline throughput that counts as recovered: 0.9. */
export const RECOVERY_FRACTION = 0.9;

/**
 * The first time (ms after the kill) by which throughput is back: the END of the first window of
 * {@link RECOVERY_WINDOW_BUCKETS} consecutive buckets whose average is at least
 * {@link RECOVERY_FRACTION} of the baseline. `null` when no such window exists.
 */
export function recoveryTime(buckets: readonly number[], baseline: number, bucketMs: number): number | null {
  const need = baseline * RECOVERY_FRACTION;
  for (let i = 0; i + RECOVERY_WINDOW_BUCKETS <= buckets.length; i++) {
    let sum = 0;
    for (let j = i; j < i + RECOVERY_WINDOW_BUCKETS; j++) sum += buckets[j] ?? 0;
    if (sum / RECOVERY_WINDOW_BUCKETS >= need) return (i + RECOVERY_WINDOW_BUCKETS) * bucketMs;
  }
  return null;
}

/**
 * The failover figure: a steady closed-loop put load on the keys of ONE replication group (the group
 * of `k0000000`); after a warm-up and a baseline window, SIGKILL that group's leader. From the kill on,
 * a fresh probe write to the group is issued every {@link PROBE_INTERVAL_MS}; the first one
 * acknowledged gives `firstWriteMs`; the load's completions,
 * bucketed, give the throughput curve and `recovered90Ms` (see {@link recoveryTime}). The killed
 * server stays down: call this last on a cluster.
 */
export async function measureFailover(cluster: LocalCluster, spec: FailoverSpec): Promise<FailoverResult> {
  const probeKey = keyOf(0);
  const keys: string[] = [];
  for (let i = 0; i < spec.keySpace && keys.length < 10_000; i++) {
    const k = keyOf(i);
    if (cluster.sameGroup(k, probeKey)) keys.push(k);
  }
  const target = await cluster.createTarget(spec.target);
  const probeTarget = await cluster.createTarget(spec.target);
  const value = makeValue('failover:', spec.valueBytes);
  const completions: number[] = [];
  let errors = 0;
  let stopped = false;
  let killAt = Number.POSITIVE_INFINITY;
  const worker = async (index: number): Promise<void> => {
    const rng = new XorShift32(index * 7_919 + 17);
    while (!stopped) {
      try {
        await target.put(keys[rng.int(keys.length)] ?? probeKey, value);
        completions.push(performance.now());
      } catch {
        if (performance.now() >= killAt) errors += 1;
        await sleep(1);
      }
    }
  };
  const workers = Array.from({ length: spec.concurrency }, (_, i) => worker(i));
  try {
    await sleep(spec.warmupMs);
    const baselineStart = performance.now();
    await sleep(spec.baselineMs);
    const victim = await awaitLeader(cluster, probeKey, spec.watchMs);
    killAt = performance.now();
    const baselineOps = completions.filter((t) => t >= baselineStart && t < killAt).length;
    const baselineOpsPerSec = (baselineOps / (killAt - baselineStart)) * 1_000;
    const killed = killServer(victim);
    // Fresh probe writes, one every PROBE_INTERVAL_MS from the kill on, each retried by the client
    // library as any application's write would be: the first acknowledgement of one of them is the
    // moment the group accepts writes again (a write caught in flight by the kill may take longer,
    // until its own timeout: that shows in the max latency, not here).
    const probe = new Promise<number | null>((resolve) => {
      let done = false;
      const finish = (v: number | null) => {
        if (done) return;
        done = true;
        clearInterval(timer);
        clearTimeout(giveUp);
        resolve(v);
      };
      const fire = () => {
        probeTarget.put(probeKey, value).then(
          () => finish(Math.round(performance.now() - killAt)),
          () => {},
        );
      };
      const timer = setInterval(fire, PROBE_INTERVAL_MS);
      const giveUp = setTimeout(() => finish(null), spec.watchMs);
      fire();
    });
    // When the cluster itself reports a new leader for the group (election time, without the client).
    const elected = (async (): Promise<number | null> => {
      const deadline = killAt + spec.watchMs;
      while (performance.now() < deadline) {
        try {
          const leader = await cluster.leaderOf(probeKey);
          if (leader !== victim && leader.isAlive()) return Math.round(performance.now() - killAt);
        } catch {
          // no leader yet
        }
        await sleep(LEADER_POLL_MS);
      }
      return null;
    })();
    await killed;
    const firstWriteMs = await probe;
    const leaderElectedMs = await elected;
    // Watch long enough to see the recovery, and at least 3 s (by default) after the first write.
    const watchUntil = Math.min(
      killAt + spec.watchMs,
      killAt + (firstWriteMs ?? spec.watchMs) + (spec.afterFirstWriteMs ?? 3_000),
    );
    await sleep(Math.max(0, watchUntil - performance.now()));
    stopped = true;
    const watchEnd = performance.now();
    const nBuckets = Math.floor((watchEnd - killAt) / spec.bucketMs);
    const counts = new Array<number>(nBuckets).fill(0);
    for (const t of completions) {
      if (t < killAt) continue;
      const b = Math.floor((t - killAt) / spec.bucketMs);
      if (b < nBuckets) counts[b] = (counts[b] ?? 0) + 1;
    }
    const bucketsOpsPerSec = counts.map((c) => Math.round((c * 1_000) / spec.bucketMs));
    return {
      kills: [{ killed: victim.name, firstWriteMs, leaderElectedMs }],
      firstWriteMedianMs: firstWriteMs,
      firstWriteMaxMs: firstWriteMs,
      killed: victim.name,
      concurrency: spec.concurrency,
      baselineOpsPerSec: Math.round(baselineOpsPerSec),
      firstWriteMs,
      leaderElectedMs,
      recovered90Ms: recoveryTime(bucketsOpsPerSec, baselineOpsPerSec, spec.bucketMs),
      bucketsOpsPerSec,
      bucketMs: spec.bucketMs,
      errors,
    };
  } finally {
    stopped = true;
    await Promise.race([Promise.allSettled(workers), sleep(spec.target.requestTimeoutMs + 1_000)]);
    await Promise.allSettled([target.close(), probeTarget.close()]);
  }
}

/** Options of {@link measureFailovers} beyond the single kill's. */
export interface FailoverSeriesSpec extends FailoverSpec {
  /** Leader kills; the killed server is restarted after each one except the last. */
  readonly kills: number;
  /** Longest wait for the cluster to be ready again after a restart. */
  readonly readyTimeoutMs: number;
  /** Progress of each kill. */
  readonly onKill?: (index: number, kill: FailoverKill) => void;
}

/**
 * The failover figure over several kills: the first kill as {@link measureFailover} (warm-up,
 * baseline, full throughput curve); the dead server is restarted on its data and the cluster let
 * settle, then the next kill (shorter warm-up and watch), and so on. The result is the first kill's
 * curve with every kill's figures and the median and largest first-write times. The last killed
 * server stays down: call this last on a cluster (or restart it).
 */
export async function measureFailovers(
  cluster: LocalCluster,
  spec: FailoverSeriesSpec,
): Promise<FailoverResult> {
  let first: FailoverResult | undefined;
  const kills: FailoverKill[] = [];
  for (let i = 0; i < spec.kills; i++) {
    if (i > 0) {
      for (const s of cluster.servers) if (!s.isAlive()) await cluster.restart(s);
      await cluster.waitReady(spec.readyTimeoutMs);
    }
    const r = await measureFailover(
      cluster,
      i === 0
        ? spec
        : {
            ...spec,
            warmupMs: Math.min(spec.warmupMs, 500),
            baselineMs: Math.min(spec.baselineMs, 1_000),
            afterFirstWriteMs: 500,
          },
    );
    first ??= r;
    for (const k of r.kills) {
      kills.push(k);
      spec.onKill?.(i, k);
    }
  }
  if (first === undefined) throw new Error('measureFailovers: kills must be at least 1');
  const writes = kills.map((k) => k.firstWriteMs);
  const ok = writes.every((w) => w !== null);
  return {
    ...first,
    kills,
    firstWriteMedianMs: ok ? median(writes as number[]) : null,
    firstWriteMaxMs: ok ? Math.max(...(writes as number[])) : null,
  };
}

/**
 * The server leading `key`'s group, polled every {@link LEADER_POLL_MS} until one reports itself leader:
 * right after a restart every server can agree on a leader (ready) a moment before that leader's own
 * status says `role: 'leader'`, more so on a busy machine. Throws the last error after `timeoutMs`.
 */
export async function awaitLeader(
  cluster: LocalCluster,
  key: string,
  timeoutMs: number,
): Promise<ServerProcess> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await cluster.leaderOf(key);
    } catch (err) {
      if (performance.now() >= deadline) throw err;
    }
    await sleep(LEADER_POLL_MS);
  }
}
