import type { WorkloadName } from './options.js';
import type { Target } from './target.js';

/** Width of the numeric part of a key: `k` + 7 digits = 8 bytes, for key spaces up to 10,000,000. */
export const KEY_DIGITS = 7;

/** The 8-byte key of index `i`: `k0000042`. */
export function keyOf(i: number): string {
  return 'k' + String(i).padStart(KEY_DIGITS, '0');
}

/**
 * A value of exactly `bytes` ASCII bytes that starts with `tag` (so compare-and-set can tell values
 * apart) and is padded with a fixed filler.
 */
export function makeValue(tag: string, bytes: number): string {
  if (tag.length >= bytes) return tag.slice(0, bytes);
  return tag + FILLER.slice(0, bytes - tag.length).padEnd(bytes - tag.length, 'x');
}

const FILLER = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.repeat(1 << 10);

/** A small, fast, seeded PRNG (xorshift32) so both systems get the same key sequence per worker. */
export class XorShift32 {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }
  /** Next 32-bit unsigned integer. */
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.state = x;
    return x;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return this.next() % n;
  }
}

/** What one operation of a workload did, for the report. */
export type OpKind = 'put' | 'get' | 'cas-applied' | 'cas-mismatch' | 'txn' | 'range';

/** Keys the `range` workload reads (preloaded): `{r}:k0000000` .. `{r}:k0000099`, one hash tag. */
export const RANGE_KEYS = 100;
/** The range workload's `start` (every key of the tag `r`) and `end`. */
export const RANGE_START = '{r}:';
export const RANGE_END = '{r};';

/** Key `i` of the `range` workload. */
export function rangeKeyOf(i: number): string {
  return RANGE_START + keyOf(i);
}

/** The two keys of transaction pair `i`: `{t0000042}a` and `{t0000042}b` (one hash tag). */
export function txnKeysOf(i: number): [string, string] {
  const tag = `{t${String(i).padStart(KEY_DIGITS, '0')}}`;
  return [`${tag}a`, `${tag}b`];
}

/** Parameters every workload shares. */
export interface WorkloadParams {
  readonly keySpace: number;
  readonly preloadKeys: number;
  readonly valueBytes: number;
}

/**
 * State shared by the workers of one cell: the value this load generator last wrote to each preloaded
 * key, which `cas` uses as its expectation. A concurrent `cas` on the same key by another worker makes
 * the expectation stale: that is a legitimate `mismatch` (it still costs one consensus round in both
 * systems and is counted as an operation), after which the expectation is refreshed from the value
 * the mismatch reported.
 */
export class WorkloadState {
  private readonly lastValue: string[];
  private counter = 0;
  constructor(private readonly params: WorkloadParams) {
    this.lastValue = new Array<string>(params.preloadKeys);
    const initial = preloadValue(params.valueBytes);
    this.lastValue.fill(initial);
  }

  /** A fresh value tag, unique within this run. */
  nextTag(): string {
    this.counter += 1;
    return 'v' + this.counter.toString(36) + ':';
  }

  /** The value this generator believes key `i` holds. */
  expected(i: number): string {
    return this.lastValue[i] ?? preloadValue(this.params.valueBytes);
  }

  /** Records that key `i` now holds `value`. */
  wrote(i: number, value: string): void {
    if (i < this.lastValue.length) this.lastValue[i] = value;
  }
}

/** The value every preloaded key starts with. */
export function preloadValue(bytes: number): string {
  return makeValue('preload:', bytes);
}

/**
 * Builds the operation a worker runs in a loop. The returned function performs one operation and
 * resolves with what it did; it rejects when the target rejects.
 */
export function makeOperation(
  workload: WorkloadName,
  target: Target,
  params: WorkloadParams,
  state: WorkloadState,
  rng: XorShift32,
): () => Promise<OpKind> {
  const putValue = makeValue('put:', params.valueBytes);
  const put = async (): Promise<OpKind> => {
    await target.put(keyOf(rng.int(params.keySpace)), putValue);
    return 'put';
  };
  const get = async (): Promise<OpKind> => {
    await target.get(keyOf(rng.int(params.preloadKeys)));
    return 'get';
  };
  switch (workload) {
    case 'put':
      return put;
    case 'get':
      return get;
    case 'mixed':
      return () => ((rng.next() & 1) === 0 ? get() : put());
    case 'txn':
      return async () => {
        const [a, b] = txnKeysOf(rng.int(params.keySpace));
        await target.txn(a, b, putValue, putValue);
        return 'txn';
      };
    case 'range':
      return async () => {
        const n = await target.range(RANGE_START, RANGE_END, RANGE_KEYS);
        if (n !== RANGE_KEYS) throw new Error(`range read ${n} keys, expected the ${RANGE_KEYS} preloaded`);
        return 'range';
      };
    case 'cas':
      return async () => {
        const i = rng.int(params.preloadKeys);
        const next = makeValue(state.nextTag(), params.valueBytes);
        const outcome = await target.cas(keyOf(i), state.expected(i), next);
        if (outcome.applied) {
          state.wrote(i, next);
          return 'cas-applied';
        }
        if (outcome.current !== undefined && outcome.current !== null) state.wrote(i, outcome.current);
        return 'cas-mismatch';
      };
  }
}
