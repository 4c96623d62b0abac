// Tiny benchmark helpers: warm up, then run `fn` in batches until `minMs` have passed.

/** Runs `fn(iterations)` repeatedly and returns operations per second (each call does `batch` ops). */
export function opsPerSecond(fn: (n: number) => void, batch = 10_000, minMs = 1_000): number {
  fn(batch); // warm-up
  fn(batch);
  let ops = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (elapsedMs < minMs) {
    fn(batch);
    ops += batch;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return (ops / elapsedMs) * 1000;
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
