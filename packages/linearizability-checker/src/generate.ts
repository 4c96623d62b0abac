/**
 * A generator of large key-value histories in the JSON-lines format, for benchmarks and tests:
 * clients run gets and puts (unique values) against a linearizable map, with overlapping
 * operations, a few failed and indeterminate ones, and optionally one injected stale read.
 * @module
 */
import { formatEvent } from './jsonl.js';

/** Options of {@link generateHistory}. */
export interface GenerateOptions {
  /** Operations to generate. Default 1,000. */
  ops?: number;
  /** Keys, named `k0`, `k1`, ... Default 10. */
  keys?: number;
  /** Concurrent clients (each runs one operation at a time). Default 20. */
  clients?: number;
  /** Share of gets (the rest are puts). Default 0.5. */
  readRatio?: number;
  /** Share of puts that fail (definitely not applied). Default 0.001. */
  failRate?: number;
  /**
   * Share of operations that end indeterminate (no completion; a put then takes effect or not,
   * at random). The client is then replaced by a new process, as in Jepsen. Default 0.001.
   */
  infoRate?: number;
  /** Inject one stale read past the middle of the history (a certain violation). Default false. */
  violate?: boolean;
  /** Seed of the pseudo-random generator: the same seed gives the same history. Default 1. */
  seed?: number;
}

/** Defaults of {@link GenerateOptions}. */
export const DEFAULT_GENERATE_OPTIONS: Required<GenerateOptions> = {
  ops: 1000,
  keys: 10,
  clients: 20,
  readRatio: 0.5,
  failRate: 0.001,
  infoRate: 0.001,
  violate: false,
  seed: 1,
};

/** What {@link generateHistory} produced. */
export interface GenerateSummary {
  /** Operations written. */
  readonly operations: number;
  /** Lines written (header included). */
  readonly lines: number;
  /** The `id` of the injected stale read, when `violate` was asked and one was placed. */
  readonly violationId: number | undefined;
}

/** xorshift32: small, fast, reproducible. */
function rng(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/**
 * Writes a linearizable (unless `violate`) kv history as JSON-lines to `sink`, in chunks of
 * whole lines, in time order. Operation `i` takes effect at time `10·i`; its call and return
 * are drawn around that point, so operations of different clients overlap.
 * @throws RangeError for non-positive counts.
 */
export function generateHistory(options: GenerateOptions, sink: (chunk: string) => void): GenerateSummary {
  const o = { ...DEFAULT_GENERATE_OPTIONS, ...options };
  if (!(o.ops >= 0 && o.keys >= 1 && o.clients >= 1)) {
    throw new RangeError('generate: --ops must be ≥ 0, --keys and --clients ≥ 1');
  }
  const n = Math.floor(o.ops);
  const C = Math.floor(o.clients);
  const rand = rng(o.seed);
  const SPACING = 10;
  const W = Math.max(1, SPACING * C - SPACING);
  const call = new Float64Array(n);
  const ret = new Float64Array(n); // Infinity: no completion
  const kind = new Uint8Array(n); // 0 get, 1 put
  const status = new Uint8Array(n); // 0 ok, 1 fail, 2 info
  const key = new Int32Array(n);
  const proc = new Int32Array(n);
  const readValue = new Int32Array(n); // for gets: index of the put read, -1 absent
  const prevRet = new Float64Array(C).fill(Number.NEGATIVE_INFINITY);
  const procOf = new Int32Array(C);
  for (let c = 0; c < C; c++) procOf[c] = c;
  let nextProc = C;
  // per key: the current value (index of its put, -1 absent), the one before, and the put times
  const cur = new Int32Array(o.keys).fill(-1);
  const before = new Int32Array(o.keys).fill(-1);
  let violationId: number | undefined;
  for (let i = 0; i < n; i++) {
    const L = SPACING * (i + 1) + W; // + W: every time is positive (the event sort below needs it)
    const c = i % C;
    const cl = Math.max(L - 1 - Math.floor(rand() * W), (prevRet[c] as number) + 1);
    const rt = L + 1 + Math.floor(rand() * W);
    call[i] = cl;
    ret[i] = rt;
    proc[i] = procOf[c] as number;
    const k = Math.floor(rand() * o.keys);
    key[i] = k;
    const r = rand();
    const info = rand() < o.infoRate;
    if (r < o.readRatio) {
      kind[i] = 0;
      let v = cur[k] as number;
      if (o.violate && violationId === undefined && i >= n / 2 && !info) {
        // a stale read: the last put finished before this get started, and the value before it
        // was either absent or written by a put that finished before the last one started
        const last = cur[k] as number;
        const old = before[k] as number;
        if (
          last >= 0 &&
          (ret[last] as number) < cl &&
          (old < 0 || (ret[old] as number) < (call[last] as number))
        ) {
          v = old;
          violationId = i;
        }
      }
      readValue[i] = v;
    } else {
      kind[i] = 1;
      if (!info && rand() < o.failRate) {
        status[i] = 1;
      } else if (!info || rand() < 0.5) {
        before[k] = cur[k] as number;
        cur[k] = i;
      }
    }
    if (info) {
      status[i] = 2;
      ret[i] = Number.POSITIVE_INFINITY;
      procOf[c] = nextProc++;
      prevRet[c] = rt;
    } else {
      prevRet[c] = rt;
    }
  }
  // Events in time order: key = time · 2^21 + event number (calls are 2i, returns 2i + 1).
  const TAG = 2 ** 21;
  if (2 * n >= TAG) throw new RangeError('generate: at most 1,048,575 operations');
  const evKeys = new Float64Array(2 * n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    evKeys[m++] = (call[i] as number) * TAG + 2 * i;
    if ((status[i] as number) !== 2) evKeys[m++] = (ret[i] as number) * TAG + 2 * i + 1;
  }
  const sorted = evKeys.subarray(0, m).sort();
  let buf: string[] = [formatEvent({ paxkvHistory: 1, model: 'kv' })];
  let lines = 1;
  const flush = (): void => {
    sink(`${buf.join('\n')}\n`);
    buf = [];
  };
  for (let e = 0; e < m; e++) {
    const code = (sorted[e] as number) % TAG;
    const i = code >>> 1;
    const process = proc[i] as number;
    const k = `k${key[i]}`;
    if ((code & 1) === 0) {
      const op = kind[i] === 0 ? { f: 'get', key: k } : { f: 'put', key: k, value: `v${i}` };
      buf.push(formatEvent({ type: 'invoke', process, id: i, time: call[i] as number, op }));
    } else if (status[i] === 1) {
      buf.push(formatEvent({ type: 'fail', process, id: i, time: ret[i] as number, error: 'rejected' }));
    } else {
      const v = readValue[i] as number;
      const result = kind[i] === 0 ? { value: v < 0 ? null : `v${v}` } : {};
      buf.push(formatEvent({ type: 'ok', process, id: i, time: ret[i] as number, result }));
    }
    lines++;
    if (buf.length >= 8192) flush();
  }
  flush();
  return { operations: n, lines, violationId };
}
