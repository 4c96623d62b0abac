/**
 * The watch figure: `watchers` watches on one key prefix (one client for all of them) while `writers`
 * closed-loop writers put keys under that prefix for `windowMs`. Each value carries the time it was sent
 * (`performance.now()` of this process), so every event delivered to every watcher gives one put-to-event
 * latency. Reported: puts/s, events delivered per second over all watchers, put-to-event p50/p99/max, and
 * events missing at the end (every watcher must see every acknowledged put: 0 expected).
 * The prefix is `{wb}/`: one partition for paxkv (a hash tag), like etcd's one raft group.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalCluster, TargetOptions } from './cluster.js';
import { LatencyRecorder, type LatencySummary } from './latency.js';
import { makeValue } from './workload.js';

/** Key prefix of the watch figure. */
export const WATCH_PREFIX = '{wb}/';

/** Parameters of the watch figure (see `BenchOptions` for the defaults). */
export interface WatchSpec {
  readonly watchers: number;
  readonly writers: number;
  readonly windowMs: number;
  readonly valueBytes: number;
  /** Keys the writers cycle through. */
  readonly keys: number;
  readonly target: TargetOptions;
  /** Longest wait for the last events after the window. Default 10,000 ms. */
  readonly drainMs?: number;
}

/** The watch figure of one system. */
export interface WatchResult {
  readonly watchers: number;
  readonly writers: number;
  readonly windowMs: number;
  readonly puts: number;
  readonly putsPerSec: number;
  /** Events delivered per second, summed over every watcher. */
  readonly eventsPerSec: number;
  /** Put (sent) to event (delivered) latency, µs. */
  readonly latencyUs: LatencySummary;
  /** Events that never arrived: watchers × acknowledged puts − events delivered. */
  readonly missing: number;
  readonly errors: number;
}

/** Measures the watch figure on `cluster` (see the module comment). */
export async function measureWatch(cluster: LocalCluster, spec: WatchSpec): Promise<WatchResult> {
  const watchTarget = await cluster.createTarget(spec.target);
  const writeTarget = await cluster.createTarget(spec.target);
  const recorder = new LatencyRecorder();
  let events = 0;
  let counting = false;
  const watches: { cancel(): Promise<void> }[] = [];
  try {
    if (watchTarget.watchPrefix === undefined) throw new Error(`${watchTarget.system}: no watch support`);
    for (let i = 0; i < spec.watchers; i++) {
      watches.push(
        await watchTarget.watchPrefix(WATCH_PREFIX, (_key, value) => {
          if (!counting) return;
          const sentAt = Number(value.slice(0, value.indexOf('|')));
          if (Number.isFinite(sentAt)) recorder.recordMs(performance.now() - sentAt);
          events++;
        }),
      );
    }
    let puts = 0;
    let errors = 0;
    let stop = false;
    counting = true;
    const started = performance.now();
    const writers = Array.from({ length: spec.writers }, async (_, w) => {
      let n = 0;
      while (!stop) {
        const key = `${WATCH_PREFIX}${(w * 7919 + n++) % spec.keys}`;
        try {
          await writeTarget.put(key, makeValue(`${performance.now()}|`, spec.valueBytes));
          puts++;
        } catch {
          errors++;
        }
      }
    });
    await sleep(spec.windowMs);
    stop = true;
    await Promise.all(writers);
    const elapsed = performance.now() - started;
    const expected = puts * spec.watchers;
    const deadline = performance.now() + (spec.drainMs ?? 10_000);
    while (events < expected && performance.now() < deadline) await sleep(20);
    const deliveredIn = Math.max(elapsed, performance.now() - started);
    counting = false;
    return {
      watchers: spec.watchers,
      writers: spec.writers,
      windowMs: Math.round(elapsed),
      puts,
      putsPerSec: Math.round((puts * 1000) / elapsed),
      eventsPerSec: Math.round((events * 1000) / deliveredIn),
      latencyUs: recorder.summary(),
      missing: Math.max(0, expected - events),
      errors,
    };
  } finally {
    for (const w of watches) await w.cancel().catch(() => {});
    await watchTarget.close();
    await writeTarget.close();
  }
}
