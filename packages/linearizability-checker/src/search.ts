/**
 * The Wing–Gong–Lowe search over one partition, on typed arrays: a doubly linked list of call and
 * return events, a bitset of linearized operations with an incremental hash, model states interned
 * as small integers with a memoized transition table, and a cache of (linearized set, state).
 * @module
 */

import { internValue, plainJson, ValueTable } from './compact.js';
import { ModelError } from './errors.js';
import type { Operation } from './history.js';
import type { Model } from './model.js';

/** Limits of one search. Every field has a documented default in {@link DEFAULT_SEARCH_LIMITS}. */
export interface SearchLimits {
  /** Absolute `performance.now()` time (ms) after which the search gives up with `unknown`. */
  deadline: number;
  /**
   * Most memory, in bytes, for the cache of (linearized set, state) pairs (each costs about
   * 12 bytes plus 4 bytes per 32 operations of the partition); past it the search gives up with
   * `unknown` rather than exhaust the heap.
   */
  maxCacheBytes: number;
  /**
   * Model states (in order of discovery) whose transitions are memoized in a table of
   * states × operations; later states are stepped by calling the model each time (models such as
   * append-KV discover a new state at almost every step, where a table would only cost memory).
   */
  maxMemoStates: number;
  /**
   * Most bytes for that table (4 per state and operation): on a large partition fewer states get
   * a row, so the table stays small whatever the partition size.
   */
  maxMemoBytes: number;
  /** Most (state, operation) → state transitions remembered for states past the table. */
  maxTransitions: number;
  /**
   * Most search steps between two looks at the clock (and calls of `onProgress`); fewer are
   * taken when steps are slow, so that the clock is read about every millisecond.
   */
  clockCheckInterval: number;
}

/**
 * Defaults: no deadline, 1 GiB of cache, 1,024 memoized states within 16 MiB plus 2 M more
 * transitions, clock
 * checked every 1,024 steps (a look at the clock costs far less than a step; the budget then holds
 * even when steps are slow).
 */
export const DEFAULT_SEARCH_LIMITS: SearchLimits = {
  deadline: Number.POSITIVE_INFINITY,
  maxCacheBytes: 1024 * 1024 * 1024,
  maxMemoStates: 1024,
  maxMemoBytes: 16 * 1024 * 1024,
  maxTransitions: 2_000_000,
  clockCheckInterval: 1_024,
};

/** Outcome of the search over one partition. Operation numbers are positions in the input array. */
export type SearchOutcome =
  | {
      readonly verdict: 'linearizable';
      /** One valid linearization (positions in the input array). */
      readonly linearization: number[];
      /** Search steps taken. */
      readonly steps: number;
    }
  | {
      readonly verdict: 'not-linearizable';
      /** The longest linearizable prefix found (positions, in linearization order). */
      readonly longestPrefix: number[];
      /** Operations that could go next after the prefix and could not be placed. */
      readonly stuck: number[];
      /** Search steps taken. */
      readonly steps: number;
    }
  | {
      readonly verdict: 'unknown';
      /** Why the search stopped. */
      readonly reason: string;
      /** The longest linearizable prefix found before stopping. */
      readonly longestPrefix: number[];
      /** Search steps taken. */
      readonly steps: number;
    };

/** The aimed time between two looks at the clock, in ms. */
const CLOCK_GAP_MS = 1;

/** Transitions computed before deciding whether the transition map pays (1 hit in 8 needed). */
const TRANSITION_PROBE = 8_192;

/** Interns model states as small integers and memoizes transitions per (state, operation). */
class StateSpace<S> {
  readonly states: S[] = [];
  private readonly byKey = new Map<string | number, number | number[]>();
  private readonly rows: (Int32Array | undefined)[] = [];
  private readonly stepped: Uint8Array;
  private readonly transitions: TransitionMap;
  private transitionsUseful = true;
  private transitionHits = 0;
  private transitionMisses = 0;

  constructor(
    private readonly model: Model<S, unknown, unknown>,
    private readonly ops: PartitionOps,
    private readonly maxMemoStates: number,
    maxTransitions: number,
  ) {
    this.transitions = new TransitionMap(maxTransitions);
    this.stepped = new Uint8Array(maxMemoStates);
  }

  intern(state: S): number {
    const m = this.model;
    const key = m.key ? m.key(state) : plainJson(state);
    if (key === undefined) {
      throw new ModelError(
        `model ${m.name}: a state is not plain JSON data (a Map, a Date, a class instance...): give the model a key(state) function`,
      );
    }
    const found = this.byKey.get(key);
    if (found !== undefined) {
      if (m.equal === undefined) return found as number;
      const list = typeof found === 'number' ? [found] : found;
      for (const id of list) if (m.equal(this.states[id] as S, state)) return id;
      const id = this.add(state);
      this.byKey.set(key, [...list, id]);
      return id;
    }
    const id = this.add(state);
    this.byKey.set(key, id);
    return id;
  }

  private add(state: S): number {
    this.states.push(state);
    return this.states.length - 1;
  }

  /** Next state id of `op` from state `s`, or -1 when the op is illegal there. */
  step(s: number, op: number): number {
    let row = this.rows[s];
    if (row === undefined && s < this.maxMemoStates) {
      // A row is allocated on a state's second step: models that reach most states once (an
      // append-KV) then allocate almost nothing.
      if (this.stepped[s] === 1) {
        row = new Int32Array(this.ops.call.length).fill(-2);
        this.rows[s] = row;
      } else {
        this.stepped[s] = 1;
      }
    }
    if (row !== undefined) {
      const cached = row[op] as number;
      if (cached !== -2) return cached;
      const next = this.compute(s, op);
      row[op] = next;
      return next;
    }
    // States past the table: a hash map of (state, op) → next, as long as it gets hits (models
    // such as append-KV reach each state once, and the map would only cost time).
    if (!this.transitionsUseful) return this.compute(s, op);
    const found = this.transitions.get(s, op);
    if (found !== -2) {
      this.transitionHits++;
      return found;
    }
    const next = this.compute(s, op);
    this.transitions.set(s, op, next);
    if (++this.transitionMisses === TRANSITION_PROBE && this.transitionHits * 8 < TRANSITION_PROBE) {
      this.transitionsUseful = false;
    }
    return next;
  }

  private compute(s: number, op: number): number {
    const o = this.ops;
    const out = o.output[op] as number;
    const r = this.model.step(
      this.states[s] as S,
      o.values[o.input[op] as number],
      out < 0 ? undefined : o.values[out],
    );
    return r.ok ? this.intern(r.state) : -1;
  }
}

/** Open-addressing map from (state, op) pairs to next states, in typed arrays; stops growing at a cap. */
class TransitionMap {
  private keysS: Int32Array;
  private keysOp: Int32Array;
  private vals: Int32Array;
  private mask: number;
  private size = 0;

  constructor(private readonly maxEntries: number) {
    const cap = 1 << 12;
    this.keysS = new Int32Array(cap).fill(-1);
    this.keysOp = new Int32Array(cap);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
  }

  private slot(s: number, op: number): number {
    return (Math.imul(s, 0x9e3779b1) ^ Math.imul(op + 1, 0x85ebca6b)) >>> 0;
  }

  /** The cached next state, or -2 when not cached. */
  get(s: number, op: number): number {
    let i = this.slot(s, op) & this.mask;
    for (;;) {
      const k = this.keysS[i] as number;
      if (k === -1) return -2;
      if (k === s && this.keysOp[i] === op) return this.vals[i] as number;
      i = (i + 1) & this.mask;
    }
  }

  set(s: number, op: number, next: number): void {
    if (this.size >= this.maxEntries) return;
    if ((this.size + 1) * 2 > this.keysS.length) this.grow();
    let i = this.slot(s, op) & this.mask;
    while (this.keysS[i] !== -1) i = (i + 1) & this.mask;
    this.keysS[i] = s;
    this.keysOp[i] = op;
    this.vals[i] = next;
    this.size++;
  }

  private grow(): void {
    const oldS = this.keysS;
    const oldOp = this.keysOp;
    const oldV = this.vals;
    const cap = oldS.length * 2;
    this.keysS = new Int32Array(cap).fill(-1);
    this.keysOp = new Int32Array(cap);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
    for (let j = 0; j < oldS.length; j++) {
      const s = oldS[j] as number;
      if (s === -1) continue;
      let i = this.slot(s, oldOp[j] as number) & this.mask;
      while (this.keysS[i] !== -1) i = (i + 1) & this.mask;
      this.keysS[i] = s;
      this.keysOp[i] = oldOp[j] as number;
      this.vals[i] = oldV[j] as number;
    }
  }
}

/**
 * Open-addressing hash set of (linearized set, state) pairs in typed arrays. A set is stored in
 * a compact, canonical form (see {@link encodeSet}) whose size grows with the operations that
 * are open at that point of the search, not with the partition.
 */
class Cache {
  private table: Int32Array;
  private mask: number;
  private hashes: Int32Array;
  private stateIds: Int32Array;
  private offsets: Int32Array;
  private arena: Int32Array;
  private used = 0;
  size = 0;

  constructor() {
    const cap = 1 << 12;
    this.table = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    this.hashes = new Int32Array(cap >> 1);
    this.stateIds = new Int32Array(cap >> 1);
    this.offsets = new Int32Array(cap >> 1);
    this.arena = new Int32Array(cap * 4);
  }

  /** Bytes held (tables and arena). */
  get bytes(): number {
    return this.table.length * 4 + this.hashes.length * 12 + this.used * 4;
  }

  /** Adds the pair (`enc[0..len)` is the set's encoding); returns false when it was already present. */
  add(hash: number, state: number, enc: Int32Array, len: number): boolean {
    const table = this.table;
    const mask = this.mask;
    let slot = (hash ^ (hash >>> 15)) & mask;
    for (;;) {
      const e = table[slot] as number;
      if (e === -1) break;
      if (this.hashes[e] === hash && this.stateIds[e] === state) {
        const arena = this.arena;
        const base = this.offsets[e] as number;
        if (arena[base] === len) {
          let same = true;
          for (let i = 0; i < len; i++) {
            if (arena[base + 1 + i] !== enc[i]) {
              same = false;
              break;
            }
          }
          if (same) return false;
        }
      }
      slot = (slot + 1) & mask;
    }
    const e = this.size;
    if (e >= this.hashes.length) this.growEntries();
    if (this.used + len + 1 > this.arena.length) {
      let cap = this.arena.length * 2;
      while (cap < this.used + len + 1) cap *= 2;
      const a = new Int32Array(cap);
      a.set(this.arena.subarray(0, this.used));
      this.arena = a;
    }
    this.hashes[e] = hash;
    this.stateIds[e] = state;
    this.offsets[e] = this.used;
    this.arena[this.used] = len;
    this.arena.set(enc.subarray(0, len), this.used + 1);
    this.used += len + 1;
    table[slot] = e;
    this.size = e + 1;
    if (this.size * 2 > table.length) this.rehash();
    return true;
  }

  private growEntries(): void {
    const cap = this.hashes.length * 2;
    const grow = (old: Int32Array): Int32Array => {
      const a = new Int32Array(cap);
      a.set(old);
      return a;
    };
    this.hashes = grow(this.hashes);
    this.stateIds = grow(this.stateIds);
    this.offsets = grow(this.offsets);
  }

  private rehash(): void {
    const cap = this.table.length * 2;
    const table = new Int32Array(cap).fill(-1);
    const mask = cap - 1;
    for (let e = 0; e < this.size; e++) {
      const hash = this.hashes[e] as number;
      let slot = (hash ^ (hash >>> 15)) & mask;
      while (table[slot] !== -1) slot = (slot + 1) & mask;
      table[slot] = e;
    }
    this.table = table;
    this.mask = mask;
  }
}

/** Number of 1 bits of a 32-bit word. */
function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) as number;
}

/** Windows of up to this many words are stored as words without looking for a shorter list. */
const SMALL_WINDOW_WORDS = 8;

/**
 * Writes the canonical encoding of the set `bits` (operations in call order) into `enc` and
 * returns its length. With `lo` the first operation not in the set and `hi` one past the last one
 * in it, the set is `[0, lo)` plus part of the window `[lo, hi)`; the window is written either as
 * the list of its missing operations (`enc = [lo, hi, missing...]`) or, when that is longer, as
 * the bitset words that cover it (`enc = [lo, -hi - 1, words...]`; always for windows of up to
 * {@link SMALL_WINDOW_WORDS} words). Either way the size follows
 * the operations open at that point (and indeterminate ones left out), not the partition size.
 */
function encodeSet(bits: Uint32Array, lo: number, hi: number, enc: Int32Array): number {
  enc[0] = lo;
  if (hi <= lo) {
    enc[1] = hi;
    return 2;
  }
  const w0 = lo >>> 5;
  const w1 = (hi - 1) >>> 5;
  if (w1 - w0 < SMALL_WINDOW_WORDS) {
    enc[1] = -hi - 1;
    let k = 2;
    for (let w = w0; w <= w1; w++) enc[k++] = bits[w] as number;
    return k;
  }
  let missing = 0;
  for (let w = w0; w <= w1; w++) {
    let word = ~(bits[w] as number);
    if (w === w0) word &= ~0 << (lo & 31);
    if (w === w1 && (hi & 31) !== 0) word &= (1 << (hi & 31)) - 1;
    missing += popcount(word);
  }
  if (missing * 32 <= hi - lo) {
    enc[1] = hi;
    let k = 2;
    for (let w = w0; w <= w1; w++) {
      let word = ~(bits[w] as number);
      if (w === w0) word &= ~0 << (lo & 31);
      if (w === w1 && (hi & 31) !== 0) word &= (1 << (hi & 31)) - 1;
      while (word !== 0) {
        const t = word & -word;
        enc[k++] = (w << 5) + (31 - Math.clz32(t));
        word ^= t;
      }
    }
    return k;
  }
  enc[1] = -hi - 1;
  let k = 2;
  for (let w = w0; w <= w1; w++) enc[k++] = bits[w] as number;
  return k;
}

/** A fixed xorshift generator, so that hashes (and so runs) are reproducible. */
function zobrist(n: number): Int32Array {
  const z = new Int32Array(n);
  let x = 0x2545f491;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    z[i] = x;
  }
  return z;
}

/**
 * The operations of one partition as columns, in call order: what {@link PartitionSearch}
 * reads. Inputs and outputs are ids into `values` (an output of -1 is unknown).
 */
export interface PartitionOps {
  /** Call times, non-decreasing. */
  readonly call: Float64Array;
  /** Return times (`Infinity` for indeterminate operations). */
  readonly ret: Float64Array;
  /** Input ids (into `values`). */
  readonly input: Int32Array;
  /** Output ids (into `values`), -1 when unknown. */
  readonly output: Int32Array;
  /** Interned inputs and outputs. */
  readonly values: readonly unknown[];
}

/**
 * Converts operation objects to {@link PartitionOps} (sorted by call) and the map from those
 * positions back to positions in `ops`.
 */
export function partitionOpsOf(ops: readonly Operation[]): { part: PartitionOps; back: Int32Array } {
  const n = ops.length;
  const back = new Int32Array(n);
  for (let i = 0; i < n; i++) back[i] = i;
  back.sort((a, b) => (ops[a] as Operation).call - (ops[b] as Operation).call || a - b);
  const table = new ValueTable();
  const call = new Float64Array(n);
  const ret = new Float64Array(n);
  const input = new Int32Array(n);
  const output = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const o = ops[back[k] as number] as Operation;
    call[k] = o.call;
    ret[k] = o.ret;
    input[k] = internValue(table, o.input);
    output[k] = o.output === undefined ? -1 : internValue(table, o.output);
  }
  return { part: { call, ret, input, output, values: table.values }, back };
}

/**
 * A resumable Wing–Gong–Lowe search (with Lowe's cache) over one partition. {@link run} advances it
 * by a number of steps, so that a caller can interleave partitions (and stop them all once one
 * violates) without threads. Operation numbers in its outcome are positions in the
 * {@link PartitionOps} it was given (or in the array of operations).
 */
export class PartitionSearch<S> {
  private readonly n: number;
  private readonly ops: PartitionOps;
  /** Positions in the caller's array, when it was not in call order. */
  private readonly back: Int32Array | undefined;
  private readonly lim: SearchLimits;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly space: StateSpace<S>;
  private readonly bits: Uint32Array;
  private readonly z: Int32Array;
  private readonly cache: Cache;
  private readonly enc: Int32Array;
  private readonly stackOp: Int32Array;
  private readonly stackState: Int32Array;
  private readonly stackHi: Int32Array;
  private readonly best: Int32Array;
  /** 1 for operations that leave every state where they are legal unchanged (linearized greedily). */
  private readonly greedy: Uint8Array;
  /**
   * For each op, an identical op (same input and output) that may always take its place (called no
   * later, returning no later), or -1. An op is only tried once its twin is linearized: orderings
   * that differ by swapping identical ops are explored once.
   */
  private readonly twin: Int32Array;
  private bestLen = 0;
  private sp = 0;
  private hash = 0;
  /** First operation (call order) not linearized. */
  private lo = 0;
  /** One past the last linearized operation (call order). */
  private hi = 0;
  private state: number;
  private e: number;
  private outcome: SearchOutcome | undefined;
  /** Steps between two looks at the clock (adapted as the search runs). */
  private interval = 16;
  /** Steps taken so far. */
  steps = 0;

  /**
   * @param ops - the partition's operations (objects, or columns in call order); indeterminate
   *   ones have `ret === Infinity`.
   * @param model - the sequential specification.
   * @param limits - deadline and memory limits; defaults in {@link DEFAULT_SEARCH_LIMITS}.
   */
  constructor(
    ops: readonly Operation[] | PartitionOps,
    model: Model<S, unknown, unknown>,
    limits: Partial<SearchLimits> = {},
  ) {
    if (Array.isArray(ops)) {
      const { part, back } = partitionOpsOf(ops as readonly Operation[]);
      this.ops = part;
      this.back = back;
    } else {
      this.ops = ops as PartitionOps;
      this.back = undefined;
    }
    const P = this.ops;
    this.lim = { ...DEFAULT_SEARCH_LIMITS, ...limits };
    const n = P.call.length;
    this.n = n;
    // Events: call of op i is entry i, its return is entry n + i. Sort by time; at equal times
    // calls come first, so operations that touch at one instant count as concurrent.
    const timeOf = (e: number): number => (e < n ? (P.call[e] as number) : (P.ret[e - n] as number));
    const sorted = new Int32Array(2 * n);
    for (let i = 0; i < 2 * n; i++) sorted[i] = i;
    sorted.sort((a, b) => {
      const ta = timeOf(a);
      const tb = timeOf(b);
      if (ta !== tb) return ta < tb ? -1 : 1;
      const ca = a < n ? 0 : 1;
      const cb = b < n ? 0 : 1;
      if (ca !== cb) return ca - cb;
      return a - b;
    });
    const H = 2 * n;
    this.next = new Int32Array(2 * n + 1).fill(-1);
    this.prev = new Int32Array(2 * n + 1).fill(-1);
    let last = H;
    for (const e of sorted) {
      this.next[last] = e;
      this.prev[e] = last;
      last = e;
    }
    const rows = Math.min(this.lim.maxMemoStates, Math.floor(this.lim.maxMemoBytes / (4 * Math.max(1, n))));
    this.space = new StateSpace(model, P, rows, this.lim.maxTransitions);
    const words = (n + 31) >>> 5;
    this.bits = new Uint32Array(words + 1);
    this.z = zobrist(n);
    this.cache = new Cache();
    this.enc = new Int32Array(n + words + 4);
    this.stackOp = new Int32Array(n);
    this.stackState = new Int32Array(n);
    this.stackHi = new Int32Array(n);
    this.best = new Int32Array(n);
    this.greedy = new Uint8Array(n);
    const valueAt = (id: number): unknown => (id < 0 ? undefined : P.values[id]);
    if (model.readOnly) {
      for (let i = 0; i < n; i++) {
        this.greedy[i] = model.readOnly(valueAt(P.input[i] as number), valueAt(P.output[i] as number))
          ? 1
          : 0;
      }
    }
    this.twin = new Int32Array(n).fill(-1);
    const lastOf = new Map<number, number>();
    const span = P.values.length + 1;
    for (let i = 0; i < n; i++) {
      // ops are in call order, so an earlier op with the same input and output was called no later
      const id = (P.input[i] as number) * span + (P.output[i] as number) + 1;
      const prevTwin = lastOf.get(id);
      if (prevTwin !== undefined && (P.ret[prevTwin] as number) <= (P.ret[i] as number))
        this.twin[i] = prevTwin;
      lastOf.set(id, i);
    }
    this.state = this.space.intern(model.init());
    this.e = this.next[H] as number;
    if (n === 0) this.outcome = { verdict: 'linearizable', linearization: [], steps: 0 };
  }

  /** The outcome, once the search has finished. */
  get result(): SearchOutcome | undefined {
    return this.outcome;
  }

  /** Bytes held by the cache of visited configurations. */
  get cacheBytes(): number {
    return this.cache.bytes;
  }

  private map(xs: ArrayLike<number>): number[] {
    const b = this.back;
    return b === undefined ? Array.from(xs) : Array.from(xs, (i) => b[i] as number);
  }

  /** The longest linearizable prefix found so far (positions in the caller's operations). */
  longestPrefix(): number[] {
    return this.map(this.best.subarray(0, this.bestLen));
  }

  private unknown(reason: string): SearchOutcome {
    return { verdict: 'unknown', reason, longestPrefix: this.longestPrefix(), steps: this.steps };
  }

  /** Stops the search with verdict `unknown` (e.g. when a shared time budget runs out). */
  abandon(reason: string): SearchOutcome {
    this.outcome ??= this.unknown(reason);
    return this.outcome;
  }

  /**
   * Advances the search by at most `maxSteps` steps.
   * @returns the outcome when the search is over (also on later calls), `undefined` otherwise.
   */
  run(
    maxSteps: number = Number.POSITIVE_INFINITY,
    onProgress?: (steps: number) => void,
  ): SearchOutcome | undefined {
    if (this.outcome !== undefined) return this.outcome;
    const n = this.n;
    const H = 2 * n;
    const { next, prev, bits, z, cache, stackOp, stackState, stackHi, space, lim, greedy, twin, enc } = this;
    let { sp, hash, state, e, steps, lo, hi } = this;
    const stopAt = steps + maxSteps;
    // The clock is read every `interval` steps, adapted so that reads are 0.5-2 ms apart (at most
    // every `clockCheckInterval` steps): the deadline then holds however slow a step is.
    let interval = this.interval;
    let untilClock = interval;
    let lastClock = performance.now();
    let out: SearchOutcome | undefined;
    while (next[H] !== -1) {
      if (--untilClock === 0) {
        const now = performance.now();
        const gap = now - lastClock;
        lastClock = now;
        if (gap > CLOCK_GAP_MS * 2 && interval > 1) interval >>>= 1;
        else if (gap < CLOCK_GAP_MS / 2 && interval < lim.clockCheckInterval) interval <<= 1;
        untilClock = interval;
        onProgress?.(steps);
        if (now > lim.deadline) {
          this.steps = steps;
          out = this.unknown('time budget exhausted');
          break;
        }
        if (cache.bytes > lim.maxCacheBytes) {
          this.steps = steps;
          out = this.unknown(
            `cache reached ${Math.round(lim.maxCacheBytes / 1048576)} MiB after ${cache.size} states (raise limits.maxCacheBytes, or split the history)`,
          );
          break;
        }
      }
      if (steps >= stopAt) break;
      steps++;
      if (e < n) {
        const t = twin[e] as number;
        if (t >= 0 && ((bits[t >>> 5] as number) & (1 << (t & 31))) === 0) {
          e = next[e] as number;
          continue;
        }
        const ns = space.step(state, e);
        if (ns >= 0) {
          const w = e >>> 5;
          const b = 1 << (e & 31);
          bits[w] = (bits[w] as number) | b;
          const h = hash ^ (z[e] as number) ^ Math.imul(ns + 1, 0x9e3779b1);
          let nlo = lo;
          if (e === lo) {
            nlo = lo + 1;
            while (nlo < n && ((bits[nlo >>> 5] as number) & (1 << (nlo & 31))) !== 0) nlo++;
          }
          const nhi = Math.max(e + 1, hi);
          if (cache.add(h, ns, enc, encodeSet(bits, nlo, nhi, enc))) {
            hash ^= z[e] as number;
            stackOp[sp] = e;
            stackState[sp] = state;
            stackHi[sp] = hi;
            sp++;
            state = ns;
            lo = nlo;
            hi = nhi;
            // lift the call and its return out of the list
            let p = prev[e] as number;
            let q = next[e] as number;
            next[p] = q;
            if (q !== -1) prev[q] = p;
            const r = e + n;
            p = prev[r] as number;
            q = next[r] as number;
            next[p] = q;
            if (q !== -1) prev[q] = p;
            if (sp > this.bestLen) {
              // bestLen grows at most n times, so copying the whole stack costs O(n²) at worst
              this.best.set(stackOp.subarray(0, sp));
              this.bestLen = sp;
            }
            e = next[H] as number;
          } else {
            bits[w] = (bits[w] as number) & ~b;
            e = next[e] as number;
          }
        } else {
          e = next[e] as number;
        }
      } else {
        // Backtrack. Popping a greedily linearized (state-preserving) op means its configuration
        // failed, and so did every alternative ordering of it: keep popping to the previous choice.
        let op = -1;
        for (;;) {
          if (sp === 0) break;
          sp--;
          op = stackOp[sp] as number;
          state = stackState[sp] as number;
          hi = stackHi[sp] as number;
          if (op < lo) lo = op;
          const w = op >>> 5;
          bits[w] = (bits[w] as number) & ~(1 << (op & 31));
          hash ^= z[op] as number;
          // unlift: put the return back, then the call
          const r = op + n;
          let p = prev[r] as number;
          let q = next[r] as number;
          next[p] = r;
          if (q !== -1) prev[q] = r;
          p = prev[op] as number;
          q = next[op] as number;
          next[p] = op;
          if (q !== -1) prev[q] = op;
          if (greedy[op] === 0) break;
          op = -1;
        }
        if (op === -1) {
          const prefix = Array.from(this.best.subarray(0, this.bestLen));
          out = {
            verdict: 'not-linearizable',
            longestPrefix: this.map(prefix),
            stuck: this.map(stuckAfter(prefix, this.ops)),
            steps,
          };
          break;
        }
        e = next[op] as number;
      }
    }
    if (out === undefined && next[H] === -1) {
      out = { verdict: 'linearizable', linearization: this.map(stackOp.subarray(0, sp)), steps };
    }
    this.sp = sp;
    this.hash = hash;
    this.state = state;
    this.e = e;
    this.steps = steps;
    this.lo = lo;
    this.hi = hi;
    this.interval = interval;
    this.outcome = out;
    return out;
  }
}

/**
 * Checks one partition to the end (or the deadline) with the Wing–Gong–Lowe algorithm.
 *
 * @param ops - the partition's operations (objects, or columns in call order); indeterminate ones
 *   have `ret === Infinity`.
 * @param model - the sequential specification.
 * @param limits - deadline and memory limits; defaults in {@link DEFAULT_SEARCH_LIMITS}.
 * @param onProgress - called every `clockCheckInterval` steps with the step count.
 */
export function searchPartition<S>(
  ops: readonly Operation[] | PartitionOps,
  model: Model<S, unknown, unknown>,
  limits: Partial<SearchLimits> = {},
  onProgress?: (steps: number) => void,
): SearchOutcome {
  return new PartitionSearch(ops, model, limits).run(Number.POSITIVE_INFINITY, onProgress) as SearchOutcome;
}

/**
 * After a prefix, the operations that could be linearized next (called before the earliest return
 * among the rest) and are not legal from the state the prefix reaches, or lead nowhere.
 */
function stuckAfter(prefix: readonly number[], ops: PartitionOps): number[] {
  const n = ops.call.length;
  const done = new Uint8Array(n);
  for (const i of prefix) done[i] = 1;
  let minRet = Number.POSITIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    if (done[i] === 0) minRet = Math.min(minRet, ops.ret[i] as number);
  }
  const stuck: number[] = [];
  for (let i = 0; i < n; i++) {
    if (done[i] === 0 && (ops.call[i] as number) <= minRet) stuck.push(i);
  }
  // Put the op that had to go next (earliest return) first.
  stuck.sort((a, b) => (ops.ret[a] as number) - (ops.ret[b] as number));
  return stuck;
}
