/**
 * Shrinking a violation to a small sub-history that is still not linearizable, by moves that keep
 * the explanation honest: each one keeps the property "if the whole history were linearizable,
 * this sub-history would be too", so the sub-history alone proves the violation.
 *
 * 1. Truncation at a time T: operations that returned by T stay, operations still running at T
 *    become indeterminate (those that cannot change the state are dropped), later ones go. In any
 *    linearization the operations done by T come before those called after T, so a linearization
 *    of the whole history restricts to one of the truncation. The earliest violating T is found
 *    by binary search (violation is monotone in T).
 * 2. Removing state-preserving operations (reads, failed cas...: `Model.readOnly`), in chunks
 *    that halve down to single operations: dropping such an operation from a linearization
 *    leaves a linearization.
 * @module
 */
import type { Model } from './model.js';
import { type PartitionOps, PartitionSearch } from './search.js';

/** Options of {@link shrinkPartition}. */
export interface ShrinkOptions {
  /** Time budget for the whole shrink, in ms. Default 2,000. */
  timeoutMs?: number;
}

/** Default of {@link ShrinkOptions.timeoutMs}. */
export const DEFAULT_SHRINK_TIMEOUT_MS = 2_000;

/** The result of {@link shrinkPartition}. */
export interface ShrinkResult {
  /** Positions (in the partition) of the operations kept, in call order. */
  readonly ops: number[];
  /** Positions of kept operations that the truncation made indeterminate. */
  readonly relaxed: number[];
  /** False when the time budget ended the shrink early (the result is still a violation). */
  readonly complete: boolean;
  /** Searches run. */
  readonly checks: number;
}

/**
 * Shrinks a partition that is not linearizable.
 * @returns the smaller violation, or `undefined` when even the whole partition could not be
 *   shown not linearizable within the budget.
 */
export function shrinkPartition(
  ops: PartitionOps,
  model: Model,
  options: ShrinkOptions = {},
): ShrinkResult | undefined {
  const deadline = performance.now() + (options.timeoutMs ?? DEFAULT_SHRINK_TIMEOUT_MS);
  const n = ops.call.length;
  let checks = 0;
  const valueAt = (id: number): unknown => (id < 0 ? undefined : ops.values[id]);
  const readOnly = (i: number, relaxed: boolean): boolean =>
    model.readOnly?.(
      valueAt(ops.input[i] as number),
      relaxed ? undefined : valueAt(ops.output[i] as number),
    ) === true;

  /** Whether the operations `keep` (with `relaxed` ones indeterminate) are not linearizable. */
  const violates = (keep: readonly number[], relaxed: ReadonlySet<number>): boolean => {
    if (performance.now() > deadline) return false;
    checks++;
    const m = keep.length;
    const sub: PartitionOps = {
      call: Float64Array.from(keep, (i) => ops.call[i] as number),
      ret: Float64Array.from(keep, (i) =>
        relaxed.has(i) ? Number.POSITIVE_INFINITY : (ops.ret[i] as number),
      ),
      input: Int32Array.from(keep, (i) => ops.input[i] as number),
      output: Int32Array.from(keep, (i) => (relaxed.has(i) ? -1 : (ops.output[i] as number))),
      values: ops.values,
    };
    if (m === 0) return false;
    const out = new PartitionSearch(sub, model, { deadline }).run();
    return out?.verdict === 'not-linearizable';
  };

  /** The truncation at time `t`: kept positions and the relaxed ones. */
  const truncate = (t: number): { keep: number[]; relaxed: Set<number> } => {
    const keep: number[] = [];
    const relaxed = new Set<number>();
    for (let i = 0; i < n; i++) {
      if ((ops.call[i] as number) > t) continue;
      if ((ops.ret[i] as number) <= t) {
        keep.push(i);
      } else if (!readOnly(i, true)) {
        keep.push(i);
        relaxed.add(i);
      }
    }
    return { keep, relaxed };
  };

  const all = Array.from({ length: n }, (_, i) => i);
  if (!violates(all, new Set())) return undefined;
  // 1. the earliest violating cut
  const cuts = [...new Set(Array.from(ops.ret).filter((t) => Number.isFinite(t)))].sort((a, b) => a - b);
  let best = { keep: all, relaxed: new Set<number>() };
  let lo = 0;
  let hi = cuts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const cand = truncate(cuts[mid] as number);
    if (violates(cand.keep, cand.relaxed)) {
      best = cand;
      hi = mid - 1;
    } else {
      lo = mid + 1;
    }
  }
  // 2. drop state-preserving operations, in halving chunks
  let keep = best.keep;
  const relaxed = best.relaxed;
  let candidates = keep.filter((i) => !relaxed.has(i) && readOnly(i, false));
  for (let size = Math.max(1, candidates.length >> 1); size >= 1; size >>= 1) {
    for (let start = 0; start < candidates.length; ) {
      const chunk = new Set(candidates.slice(start, start + size));
      const next = keep.filter((i) => !chunk.has(i));
      if (violates(next, relaxed)) {
        keep = next;
        candidates = candidates.filter((i) => !chunk.has(i));
      } else {
        start += size;
      }
    }
    if (size === 1) break;
  }
  return {
    ops: keep,
    relaxed: keep.filter((i) => relaxed.has(i)),
    complete: performance.now() <= deadline,
    checks,
  };
}
