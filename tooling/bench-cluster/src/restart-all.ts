import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalCluster, TargetOptions } from './cluster.js';
import { PROBE_INTERVAL_MS } from './failover.js';
import { median } from './latency.js';
import { killServer } from './processes.js';
import type { Target } from './target.js';
import { keyOf, makeValue } from './workload.js';

/** Parameters of the restart-all figure (see `BenchOptions` for the defaults). */
export interface RestartAllSpec {
  /** Times the whole cluster is killed and restarted. */
  readonly rounds: number;
  /** Longest wait for the first write of a round, from the last server up. */
  readonly watchMs: number;
  readonly valueBytes: number;
  readonly target: TargetOptions;
  /** Longest wait for the cluster to be ready again between rounds. */
  readonly readyTimeoutMs: number;
}

/** One kill-all-and-restart round. */
export interface RestartAllRound {
  /** ms from the SIGKILLs to the moment the last restarted server's client port accepted a connection. */
  readonly lastUpMs: number;
  /**
   * ms from the last server up to the first acknowledged write (probe writes to one key, a fresh one
   * every 10 ms, through the client library); `null` when none within the watch window.
   */
  readonly firstWriteMs: number | null;
  /**
   * ms from the last server up until a write to EVERY replication group was acknowledged (paxkv: one
   * key per partition; etcd: the one group); `null` when some group took longer than the watch window.
   */
  readonly allGroupsMs: number | null;
  /**
   * Wall-clock times (ms since the epoch) of the SIGKILLs, of the last server up and of the first
   * write (`null` if none): to line the round up with the servers' logs (the restart timeline).
   */
  readonly at: { readonly kill: number; readonly lastUp: number; readonly firstWrite: number | null };
}

/** The restart-all figure of one system. */
export interface RestartAllResult {
  readonly rounds: readonly RestartAllRound[];
  /** Median and largest `firstWriteMs` over the rounds (`null` when a round never wrote). */
  readonly firstWriteMedianMs: number | null;
  readonly firstWriteMaxMs: number | null;
}

/** One key per replication group, the first ones of the key sequence (at most `max` groups). */
export function groupKeys(cluster: LocalCluster, max = 1_024, scan = 100_000): string[] {
  const keys: string[] = [];
  for (let i = 0; i < scan && keys.length < max; i++) {
    const k = keyOf(i);
    if (!keys.some((x) => cluster.sameGroup(x, k))) keys.push(k);
  }
  return keys;
}

/**
 * Most probe writes in flight per key. A restarting cluster must not be flooded by the probe itself:
 * writes fired every 10 ms regardless, each retried by the client for seconds, pile up by the thousand
 * across the groups and keep CPU-starved servers too busy to converge (seen on a loaded machine).
 */
export const PROBE_MAX_IN_FLIGHT = 2;

/**
 * Writes `key` every {@link PROBE_INTERVAL_MS} (each write retried by the client library as any
 * application's), at most {@link PROBE_MAX_IN_FLIGHT} at once, until one is acknowledged; resolves with
 * that moment, or `null` at `deadline`.
 */
function firstAck(target: Target, key: string, value: string, deadline: number): Promise<number | null> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: number | null) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve(v);
    };
    let inFlight = 0;
    const fire = () => {
      if (done || inFlight >= PROBE_MAX_IN_FLIGHT) return;
      inFlight += 1;
      target.put(key, value).then(
        () => finish(performance.now()),
        () => {
          inFlight -= 1;
        },
      );
    };
    const timer = setInterval(fire, PROBE_INTERVAL_MS);
    const giveUp = setTimeout(() => finish(null), Math.max(0, deadline - performance.now()));
    fire();
  });
}

/**
 * The restart-all figure: SIGKILL every server at once, start them all again on their data, and time
 * the first acknowledged write from the moment the LAST server's client port accepts connections (the
 * clients are created at that moment, as an application reconnecting would). Repeated `rounds` times,
 * waiting for the cluster to be ready between rounds. Leaves the cluster running.
 */
export async function measureRestartAll(
  cluster: LocalCluster,
  spec: RestartAllSpec,
): Promise<RestartAllResult> {
  const keys = groupKeys(cluster);
  const probeKey = keys[0] ?? keyOf(0);
  const value = makeValue('restart:', spec.valueBytes);
  const rounds: RestartAllRound[] = [];
  for (let round = 0; round < spec.rounds; round++) {
    await cluster.waitReady(spec.readyTimeoutMs);
    const victims = [...cluster.servers];
    const killAt = performance.now();
    await Promise.all(victims.map((s) => killServer(s)));
    const ups = await Promise.all(victims.map((s) => cluster.restart(s)));
    const lastUp = Math.max(...ups.map((u) => u.upAt));
    const deadline = lastUp + spec.watchMs;
    const probe = await cluster.createTarget(spec.target);
    const others = await cluster.createTarget(spec.target);
    try {
      const first = firstAck(probe, probeKey, value, deadline);
      const all = Promise.all(keys.map((k) => firstAck(others, k, value, deadline)));
      const firstAt = await first;
      const allAt = await all;
      const allDone = allAt.every((t) => t !== null);
      rounds.push({
        lastUpMs: Math.round(lastUp - killAt),
        firstWriteMs: firstAt === null ? null : Math.round(firstAt - lastUp),
        allGroupsMs: allDone ? Math.round(Math.max(...(allAt as number[])) - lastUp) : null,
        at: {
          kill: Math.round(performance.timeOrigin + killAt),
          lastUp: Math.round(performance.timeOrigin + lastUp),
          firstWrite: firstAt === null ? null : Math.round(performance.timeOrigin + firstAt),
        },
      });
    } finally {
      await Promise.allSettled([probe.close(), others.close()]);
    }
    await sleep(200);
  }
  const writes = rounds.map((r) => r.firstWriteMs);
  const ok = writes.every((w) => w !== null);
  return {
    rounds,
    firstWriteMedianMs: ok ? median(writes as number[]) : null,
    firstWriteMaxMs: ok ? Math.max(...(writes as number[])) : null,
  };
}
