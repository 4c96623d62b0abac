// Tiny benchmark helpers. On a shared machine a single long run measures the neighbours as much as
// the code, so each benchmark runs several short rounds and reports the best and the median.

/** Result of {@link opsPerSecond}: best and median operations per second over the rounds. */
export interface Rate {
  readonly best: number;
  readonly median: number;
}

/**
 * Runs `fn(batch)` (which must do `batch` operations) in `rounds` rounds of at least `roundMs` each,
 * after a warm-up, and returns the best and the median rate.
 */
export function opsPerSecond(fn: (n: number) => void, batch = 10_000, rounds = 7, roundMs = 200): Rate {
  fn(batch); // warm-up
  fn(batch);
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let ops = 0;
    const start = process.hrtime.bigint();
    let elapsedMs = 0;
    while (elapsedMs < roundMs) {
      fn(batch);
      ops += batch;
      elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
    }
    rates.push((ops / elapsedMs) * 1000);
  }
  rates.sort((a, b) => a - b);
  return { best: rates[rates.length - 1]!, median: rates[Math.floor(rates.length / 2)]! };
}

/** Formats a number with thousands separators. */
export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Percentile of sorted values (0..100). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}
