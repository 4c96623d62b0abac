/**
 * A small order statistic for the leader's decide step (internal: not exported by the package).
 * @module
 */
/**
 * The `k`-th largest of the first `n` numbers of `values` (1-based `k`, at most `n`), found by sorting
 * those `n` in place (descending, by insertion: a handful of replicas). The caller's array is scratch
 * space it reuses, so the leader's decide step allocates nothing.
 */
export function kthLargestInPlace(values: number[], n: number, k: number): number {
  for (let i = 1; i < n; i++) {
    const v = values[i] as number;
    let j = i - 1;
    while (j >= 0 && (values[j] as number) < v) {
      values[j + 1] = values[j] as number;
      j--;
    }
    values[j + 1] = v;
  }
  return values[k - 1] as number;
}
