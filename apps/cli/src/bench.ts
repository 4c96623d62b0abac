/**
 * `paxkv bench`: a closed-loop load generator. `clients` independent clients each run one operation at a
 * time for `durationMs` (at least one operation each); latencies go into an HDR histogram (microsecond
 * resolution, 3 significant digits); a progress line is printed every `progressMs` and once at the end; the
 * report has ops/s and p50/p90/p99/p99.9/max.
 */
import hdr from 'hdr-histogram-js';
import { errorCode, type KvClientPort } from './execute.js';

/** The workloads: all puts, all gets (keys are written first), 50/50 get/put, or read-then-cas. */
export const WORKLOADS = ['put', 'get', 'mixed', 'cas'] as const;
/** A workload name. */
export type Workload = (typeof WORKLOADS)[number];

/** Options of {@link runBench}; every field has a default. */
export interface BenchOptions {
  /** Concurrent clients (each with its own connection, one operation in flight). Default 16. */
  readonly clients?: number;
  /** How long to measure, in ms. Default 10 000. */
  readonly durationMs?: number;
  /** Operation mix. Default mixed. */
  readonly workload?: Workload;
  /** Number of distinct keys (`bench:0` .. `bench:N-1`). Default 1000. */
  readonly keys?: number;
  /** Bytes per written value. Default 100. */
  readonly valueSize?: number;
  /** Interval of the progress line, in ms; 0 disables it. Default 1000. */
  readonly progressMs?: number;
  /** Where progress lines go. Default: nowhere. */
  readonly progress?: (line: string) => void;
  /** Seed of the key chooser (deterministic key sequence per client). Default 1. */
  readonly seed?: number;
}

/** A client the bench can drive and close. */
export interface BenchClient extends KvClientPort {
  close(): Promise<void> | void;
}

/** What {@link runBench} measured. Latencies in milliseconds. */
export interface BenchReport {
  readonly workload: Workload;
  readonly clients: number;
  readonly keys: number;
  readonly valueSize: number;
  readonly durationMs: number;
  readonly ops: number;
  readonly errors: number;
  readonly errorsByCode: Readonly<Record<string, number>>;
  readonly opsPerSec: number;
  readonly latencyMs: {
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly p999: number;
    readonly max: number;
    readonly mean: number;
  };
  /** CAS workload only: how many CAS were applied vs lost to a concurrent writer. */
  readonly cas?: { readonly applied: number; readonly mismatch: number };
}

/** A small deterministic PRNG (mulberry32) so that runs are repeatable. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeValue(size: number, salt: number): string {
  const base = `v${salt.toString(36)}-`;
  return base.length >= size ? base.slice(0, size) : base + 'x'.repeat(size - base.length);
}

/** Validates bench options and fills in the defaults. @throws {RangeError} naming the bad option. */
export function benchDefaults(o: BenchOptions): Required<Omit<BenchOptions, 'progress'>> {
  const r = {
    clients: o.clients ?? 16,
    durationMs: o.durationMs ?? 10_000,
    workload: o.workload ?? 'mixed',
    keys: o.keys ?? 1000,
    valueSize: o.valueSize ?? 100,
    progressMs: o.progressMs ?? 1000,
    seed: o.seed ?? 1,
  };
  if (!Number.isInteger(r.clients) || r.clients < 1 || r.clients > 10_000)
    throw new RangeError('--clients must be 1..10000');
  if (!(r.durationMs > 0)) throw new RangeError('--duration must be positive');
  if (!WORKLOADS.includes(r.workload))
    throw new RangeError(`--workload must be one of ${WORKLOADS.join(', ')}`);
  if (!Number.isInteger(r.keys) || r.keys < 1) throw new RangeError('--keys must be a positive integer');
  if (!Number.isInteger(r.valueSize) || r.valueSize < 1 || r.valueSize > 1024 * 1024) {
    throw new RangeError('--value-size must be 1..1048576 bytes');
  }
  return r;
}

/**
 * Runs the load against clients made by `makeClient` (one per bench client) and closes them at the end.
 * For the `get` and `cas` workloads every key is written once first (not measured).
 */
export async function runBench(
  makeClient: () => BenchClient,
  options: BenchOptions = {},
): Promise<BenchReport> {
  const o = benchDefaults(options);
  const clients = Array.from({ length: o.clients }, () => makeClient());
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const errorsByCode: Record<string, number> = {};
  let ops = 0;
  let errors = 0;
  let casApplied = 0;
  let casMismatch = 0;
  const key = (i: number) => `bench:${i}`;
  try {
    if (o.workload === 'get' || o.workload === 'cas') {
      const writers = clients.length;
      await Promise.all(
        clients.map(async (c, w) => {
          for (let i = w; i < o.keys; i += writers) await c.put(key(i), makeValue(o.valueSize, i));
        }),
      );
    }
    const start = performance.now();
    const end = start + o.durationMs;
    let lastOps = 0;
    let lastTick = start;
    const progressLine = (now: number): string => {
      const rate = ((ops - lastOps) * 1000) / Math.max(1, now - lastTick);
      lastOps = ops;
      lastTick = now;
      return `[${((now - start) / 1000).toFixed(1)}s] ${ops} ops, ${Math.round(rate)} ops/s, ${errors} errors, p99 so far ${(histogram.getValueAtPercentile(99) / 1000).toFixed(2)} ms`;
    };
    const timer =
      o.progressMs > 0 && options.progress
        ? setInterval(() => options.progress?.(progressLine(performance.now())), o.progressMs)
        : undefined;
    await Promise.all(
      clients.map(async (c, w) => {
        const random = rng(o.seed * 7919 + w);
        let n = 0;
        // At least one operation per client, however late the event loop gets here on a loaded machine.
        do {
          const k = key(Math.floor(random() * o.keys));
          const t0 = performance.now();
          try {
            switch (o.workload) {
              case 'put':
                await c.put(k, makeValue(o.valueSize, w * 1_000_003 + n));
                break;
              case 'get':
                await c.get(k);
                break;
              case 'mixed':
                if (random() < 0.5) await c.get(k);
                else await c.put(k, makeValue(o.valueSize, w * 1_000_003 + n));
                break;
              case 'cas': {
                const current = await c.get(k);
                const r = await c.cas(k, current, makeValue(o.valueSize, w * 1_000_003 + n));
                if (r.outcome === 'applied') casApplied += 1;
                else casMismatch += 1;
                break;
              }
            }
            histogram.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
            ops += 1;
          } catch (e) {
            errors += 1;
            const code = errorCode(e);
            errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
          }
          n += 1;
        } while (performance.now() < end);
      }),
    );
    if (timer) clearInterval(timer);
    const elapsed = performance.now() - start;
    // A last progress line, so a run shorter than one interval still reports (and a caller can wait for it).
    if (options.progress && o.progressMs > 0) options.progress(progressLine(performance.now()));
    const ms = (us: number) => Math.round(us) / 1000;
    // HDR percentiles are bucket upper bounds; never report one above the exact maximum.
    const max = histogram.maxValue;
    const pct = (p: number) => ms(Math.min(histogram.getValueAtPercentile(p), max));
    return {
      workload: o.workload,
      clients: o.clients,
      keys: o.keys,
      valueSize: o.valueSize,
      durationMs: Math.round(elapsed),
      ops,
      errors,
      errorsByCode,
      opsPerSec: Math.round((ops * 1000) / elapsed),
      latencyMs: {
        p50: pct(50),
        p90: pct(90),
        p99: pct(99),
        p999: pct(99.9),
        max: ms(max),
        mean: ms(histogram.mean),
      },
      ...(o.workload === 'cas' ? { cas: { applied: casApplied, mismatch: casMismatch } } : {}),
    };
  } finally {
    await Promise.all(clients.map(async (c) => c.close()));
  }
}

/** The report as a few lines of text. */
export function formatBenchReport(r: BenchReport): string {
  const l = r.latencyMs;
  const lines = [
    `workload ${r.workload}, ${r.clients} clients, ${r.keys} keys, ${r.valueSize} B values, ${(r.durationMs / 1000).toFixed(1)} s`,
    `${r.ops} ops, ${r.opsPerSec} ops/s, ${r.errors} errors${
      r.errors > 0
        ? ` (${Object.entries(r.errorsByCode)
            .map(([c, n]) => `${c}: ${n}`)
            .join(', ')})`
        : ''
    }`,
    `latency ms: p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  p99.9 ${l.p999}  max ${l.max}  mean ${l.mean}`,
  ];
  if (r.cas) lines.push(`cas: ${r.cas.applied} applied, ${r.cas.mismatch} lost to a concurrent writer`);
  return lines.join('\n');
}
