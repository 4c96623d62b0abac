import { setTimeout as sleep } from 'node:timers/promises';
import { LatencyRecorder, type LatencySummary } from './latency.js';
import type { WorkloadName } from './options.js';
import { type CpuShare, cpuShareSince, cpuSnapshot } from './proc-stats.js';
import type { Target } from './target.js';
import { makeOperation, type OpKind, type WorkloadParams, WorkloadState, XorShift32 } from './workload.js';

/** A worker yields to the event loop after this many operations: 1,000. */
export const YIELD_EVERY_OPS = 1_000;

/** One cell of the table: a workload at a concurrency against one system. */
export interface CellSpec {
  readonly workload: WorkloadName;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Longest wait for in-flight requests after the measured window. */
  readonly drainTimeoutMs: number;
  readonly params: WorkloadParams;
  /** Server process ids, for the CPU share. */
  readonly serverPids: readonly number[];
  /**
   * What this generator last wrote to each preloaded key (the expectations of `cas`); share one
   * across the cells of a system so that later cells start from correct expectations.
   */
  readonly state?: WorkloadState;
  /** Seed of the workers' key sequences; the same seed gives both systems the same keys. Default 1. */
  readonly seed?: number;
}

/** The measured outcome of a cell. */
export interface CellResult {
  readonly workload: WorkloadName;
  readonly concurrency: number;
  /** Operations completed successfully inside the measured window. */
  readonly ops: number;
  /** Operations that failed inside the measured window (not in the latency histogram). */
  readonly errors: number;
  /** Measured window length in ms. */
  readonly windowMs: number;
  readonly opsPerSec: number;
  /** Latency of successful operations, microseconds. */
  readonly latencyUs: LatencySummary;
  /** For `cas`: how many were applied vs mismatched. */
  readonly casApplied: number;
  readonly casMismatch: number;
  readonly cpu: CpuShare;
  /** First error message seen, to diagnose a cell with errors. */
  readonly firstError: string | undefined;
}

/**
 * Runs one cell as a closed loop: `concurrency` workers each issue an operation, await it, record its
 * latency and issue the next. Operations completing during the warm-up are not counted; the measured
 * window starts after it and ends `durationMs` later; operations that complete after the window are
 * awaited (up to `drainTimeoutMs`) but not counted. A closed loop under-reports latency when the
 * system stalls (coordinated omission): the max and ops/s still show such stalls.
 */
export async function runCell(target: Target, spec: CellSpec): Promise<CellResult> {
  const state = spec.state ?? new WorkloadState(spec.params);
  const seed = spec.seed ?? 1;
  const latency = new LatencyRecorder();
  let measuring = false;
  let stopped = false;
  let ops = 0;
  let errors = 0;
  let casApplied = 0;
  let casMismatch = 0;
  let firstError: string | undefined;

  const worker = async (index: number): Promise<void> => {
    const rng = new XorShift32(seed * 7919 + index * 104_729 + 1);
    const op = makeOperation(spec.workload, target, spec.params, state, rng);
    let sinceYield = 0;
    while (!stopped) {
      // A target that answers from memory would never let the timers run: yield now and then.
      if (++sinceYield >= YIELD_EVERY_OPS) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const t0 = performance.now();
      let kind: OpKind | undefined;
      try {
        kind = await op();
      } catch (e) {
        if (measuring && !stopped) {
          errors += 1;
          firstError ??= e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        }
        // Failing fast in a closed loop would spin: give a failing system a moment.
        await sleep(1);
        continue;
      }
      if (!measuring || stopped) continue;
      latency.recordMs(performance.now() - t0);
      ops += 1;
      if (kind === 'cas-applied') casApplied += 1;
      else if (kind === 'cas-mismatch') casMismatch += 1;
    }
  };

  const workers = Array.from({ length: spec.concurrency }, (_, i) => worker(i));
  await sleep(spec.warmupMs);
  const cpuStart = cpuSnapshot(spec.serverPids);
  const windowStart = performance.now();
  measuring = true;
  await sleep(spec.durationMs);
  stopped = true;
  const windowMs = performance.now() - windowStart;
  const cpu = cpuShareSince(cpuStart);
  await Promise.race([Promise.allSettled(workers), sleep(spec.drainTimeoutMs)]);
  return {
    workload: spec.workload,
    concurrency: spec.concurrency,
    ops,
    errors,
    windowMs: Math.round(windowMs),
    opsPerSec: Math.round((ops / windowMs) * 1_000),
    latencyUs: latency.summary(),
    casApplied,
    casMismatch,
    cpu,
    firstError,
  };
}

/** Progress of {@link loadKeys}. */
export interface LoadProgress {
  readonly done: number;
  readonly total: number;
}

/**
 * Writes keys `0..count-1` (as {@link keyOf} names them) with `valueFor(i)`, `concurrency` at a time.
 * Retries a failed write up to `retries` times, then rejects with the last error.
 */
export async function loadKeys(
  target: Target,
  count: number,
  valueFor: (i: number) => string,
  opts: {
    readonly concurrency: number;
    readonly keyOf: (i: number) => string;
    readonly retries?: number;
    readonly onProgress?: (p: LoadProgress) => void;
  },
): Promise<void> {
  let next = 0;
  let done = 0;
  const retries = opts.retries ?? 5;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next;
      next += 1;
      for (let attempt = 0; ; attempt++) {
        try {
          await target.put(opts.keyOf(i), valueFor(i));
          break;
        } catch (e) {
          if (attempt >= retries) throw e;
          await sleep(50 * (attempt + 1));
        }
      }
      done += 1;
      if (opts.onProgress !== undefined && done % 10_000 === 0) opts.onProgress({ done, total: count });
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, count) }, () => worker()));
}
