/**
 * The polynomial fast path for register-like partitions whose writes are unique: the cluster and
 * zone characterisation of Gibbons and Korach ("Testing shared memories", SIAM J. Comput. 1997),
 * in O(n log n). Each written value forms a cluster (its write and the reads that returned it);
 * a cluster whose earliest return comes before its latest call must keep its value over that
 * "forward zone", otherwise all its operations can take effect at one instant of its "backward
 * zone". The partition is linearizable iff every read returns a written value (or the initial
 * one) and does not end before its write starts, no two forward zones overlap, and no backward
 * zone lies strictly inside a forward zone.
 *
 * A linearizable verdict comes with a linearization, which is replayed through the model and
 * checked against real time before it is returned; a violation comes with the few operations
 * (at most six) that already violate on their own.
 * @module
 */
import type { Model } from './model.js';
import type { PartitionOps } from './search.js';

/** How the fast path classifies one operation (see {@link Model.registerOp}). */
export interface RegisterOp {
  /** `write`: sets the value whatever the state; `read`: observes the value and changes nothing. */
  readonly kind: 'write' | 'read';
  /** The value written or read, as a string key (equal values, equal keys). */
  readonly value: string;
}

/** Result of {@link fastCheck}. */
export type FastOutcome =
  | { readonly verdict: 'linearizable'; readonly linearization: number[] }
  | {
      readonly verdict: 'not-linearizable';
      /** Positions (in the partition) of a sub-history that is not linearizable on its own. */
      readonly core: number[];
      /** What the core shows, in words. */
      readonly why: string;
    };

const NONE = -1;

/**
 * Checks a partition with the fast path when it applies: every operation is a read or a write
 * (per `model.registerOp`), and no two writes (nor a write and the initial state) share a value.
 * @returns the outcome, or `undefined` when the fast path does not apply (the caller then runs
 *   the general search).
 */
export function fastCheck(ops: PartitionOps, model: Model): FastOutcome | undefined {
  const classify = model.registerOp;
  const initial = model.initialRegisterValue;
  if (classify === undefined || initial === undefined) return undefined;
  const n = ops.call.length;
  const { call, ret } = ops;
  // cluster of each op; cluster 0 is the initial value (a virtual write at -Infinity)
  const clusterOf = new Int32Array(n);
  const isWrite = new Uint8Array(n);
  const clusterIds = new Map<string, number>([[initial, 0]]);
  const writer: number[] = [NONE];
  for (let i = 0; i < n; i++) {
    const inId = ops.input[i] as number;
    const outId = ops.output[i] as number;
    const input = ops.values[inId];
    const output = outId < 0 ? undefined : ops.values[outId];
    const c = classify(input, output);
    if (c === undefined) return undefined;
    let id = clusterIds.get(c.value);
    if (id === undefined) {
      id = writer.length;
      clusterIds.set(c.value, id);
      writer.push(NONE);
    }
    clusterOf[i] = id;
    if (c.kind === 'write') {
      if (id === 0 || writer[id] !== NONE) return undefined; // not unique: general search
      writer[id] = i;
      isWrite[i] = 1;
    }
  }
  const m = writer.length;
  // f: earliest return in the cluster (and which op); s: latest call (and which op)
  const f = new Float64Array(m).fill(Number.POSITIVE_INFINITY);
  const s = new Float64Array(m).fill(Number.NEGATIVE_INFINITY);
  const fOp = new Int32Array(m).fill(NONE);
  const sOp = new Int32Array(m).fill(NONE);
  f[0] = Number.NEGATIVE_INFINITY; // the initial value is "written" before everything
  for (let i = 0; i < n; i++) {
    const c = clusterOf[i] as number;
    if (isWrite[i] === 0) {
      const w = writer[c] as number;
      if (c !== 0 && w === NONE) {
        return {
          verdict: 'not-linearizable',
          core: [i],
          why: 'a read returned a value that no operation wrote',
        };
      }
      if (w !== NONE && (ret[i] as number) < (call[w] as number)) {
        return {
          verdict: 'not-linearizable',
          core: [w, i],
          why: 'a read returned a value before the write of that value was invoked',
        };
      }
    }
    if ((ret[i] as number) < (f[c] as number)) {
      f[c] = ret[i] as number;
      fOp[c] = i;
    }
    if ((call[i] as number) > (s[c] as number)) {
      s[c] = call[i] as number;
      sOp[c] = i;
    }
  }
  const coreOf = (c: number): number[] => {
    const xs = [writer[c] as number, fOp[c] as number, sOp[c] as number].filter((x) => x !== NONE);
    return [...new Set(xs)];
  };
  // forward zones (f < s), sorted by start
  const fwd: number[] = [];
  for (let c = 0; c < m; c++) if ((f[c] as number) < (s[c] as number)) fwd.push(c);
  fwd.sort((a, b) => (f[a] as number) - (f[b] as number) || a - b);
  for (let k = 1; k < fwd.length; k++) {
    const a = fwd[k - 1] as number;
    const b = fwd[k] as number;
    if ((f[b] as number) < (s[a] as number)) {
      return {
        verdict: 'not-linearizable',
        core: [...coreOf(a), ...coreOf(b)].sort((x, y) => x - y),
        why: 'two values were each observed over overlapping stretches of time',
      };
    }
  }
  // backward clusters: one instant t in [s, f] outside every forward zone
  const anchorStart = new Float64Array(m);
  const anchorEnd = new Float64Array(m);
  for (let c = 0; c < m; c++) {
    if ((f[c] as number) < (s[c] as number)) {
      anchorStart[c] = f[c] as number;
      anchorEnd[c] = s[c] as number;
      continue;
    }
    const lo = s[c] as number;
    // the forward zone with the largest start < lo
    let a = 0;
    let b = fwd.length;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if ((f[fwd[mid] as number] as number) < lo) a = mid + 1;
      else b = mid;
    }
    let t = lo;
    if (a > 0) {
      const z = fwd[a - 1] as number;
      if ((s[z] as number) > lo) {
        if ((s[z] as number) > (f[c] as number)) {
          return {
            verdict: 'not-linearizable',
            core: [...coreOf(z), ...coreOf(c)].sort((x, y) => x - y),
            why: 'a value was written and read entirely while another value had to stay in place',
          };
        }
        t = s[z] as number;
      }
    }
    anchorStart[c] = t;
    anchorEnd[c] = t;
  }
  // Linearization: clusters by anchor, each as its write then its reads by return time.
  const order = Array.from({ length: m }, (_, c) => c).sort(
    (a, b) =>
      (anchorStart[a] as number) - (anchorStart[b] as number) ||
      (anchorEnd[a] as number) - (anchorEnd[b] as number) ||
      a - b,
  );
  const members: number[][] = Array.from({ length: m }, () => []);
  for (let i = 0; i < n; i++) if (isWrite[i] === 0) (members[clusterOf[i] as number] as number[]).push(i);
  const lin: number[] = [];
  for (const c of order) {
    const w = writer[c] as number;
    if (w !== NONE) lin.push(w);
    const reads = members[c] as number[];
    reads.sort((x, y) => (ret[x] as number) - (ret[y] as number) || x - y);
    for (const r of reads) lin.push(r);
  }
  return verifyLinearization(ops, model, lin) ? { verdict: 'linearizable', linearization: lin } : undefined;
}

/**
 * True when `order` (positions in `ops`) is a linearization: it contains every operation once,
 * respects real time (no operation ends before an earlier-placed one starts), and the model
 * accepts each step in turn.
 */
export function verifyLinearization(ops: PartitionOps, model: Model, order: readonly number[]): boolean {
  const n = ops.call.length;
  if (order.length !== n) return false;
  const seen = new Uint8Array(n);
  let maxCall = Number.NEGATIVE_INFINITY;
  let state = model.init();
  for (const i of order) {
    if (seen[i] === 1) return false;
    seen[i] = 1;
    if ((ops.ret[i] as number) < maxCall) return false;
    if ((ops.call[i] as number) > maxCall) maxCall = ops.call[i] as number;
    const outId = ops.output[i] as number;
    const r = model.step(
      state,
      ops.values[ops.input[i] as number],
      outId < 0 ? undefined : ops.values[outId],
    );
    if (!r.ok) return false;
    state = r.state;
  }
  return true;
}
