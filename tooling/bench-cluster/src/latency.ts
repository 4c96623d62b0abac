import hdr from 'hdr-histogram-js';

/** Highest latency the histograms track: 60 s in microseconds (larger values are clamped to it). */
export const MAX_TRACKED_LATENCY_US = 60_000_000;

/** Latency percentiles of a cell, in microseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

/**
 * An HDR histogram of operation latencies in microseconds (3 significant digits, 1 µs .. 60 s), the
 * pure-JS build (the WebAssembly build is not faster for single records and needs an async init).
 */
export class LatencyRecorder {
  private readonly histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_TRACKED_LATENCY_US,
    numberOfSignificantValueDigits: 3,
    autoResize: false,
    useWebAssembly: false,
  });

  /** Records one latency given in milliseconds (as `performance.now()` differences are). */
  recordMs(ms: number): void {
    const us = Math.round(ms * 1_000);
    this.histogram.recordValue(Math.min(Math.max(us, 1), MAX_TRACKED_LATENCY_US));
  }

  /** Number of recorded values. */
  get count(): number {
    return this.histogram.totalCount;
  }

  /**
   * Percentiles, all 0 when nothing was recorded. A percentile is the top of its histogram bucket
   * (within 0.1%), so it is capped at the exact maximum: p99 never reads above max.
   */
  summary(): LatencySummary {
    const h = this.histogram;
    if (h.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
    const at = (p: number) => Math.min(h.getValueAtPercentile(p), h.maxValue);
    return {
      count: h.totalCount,
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
      max: h.maxValue,
      mean: Math.round(h.mean),
    };
  }
}

/** Median of a sample (the mean of the two middle values, rounded, for an even count); `null` for an empty one. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : Math.round(((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2);
}
