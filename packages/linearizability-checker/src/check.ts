/**
 * Checking a whole history: validate, drop operations that constrain nothing, split into
 * partitions (P-compositionality), search each one (in worker threads when there are several big
 * ones), and gather the verdicts.
 * @module
 */
import { type CompactHistory, STATUS_FAIL, toCompact } from './compact.js';
import { InvalidOperationError } from './errors.js';
import { fastCheck } from './fast.js';
import type { History } from './history.js';
import type { Model } from './model.js';
import { builtinModels, getBuiltinModel } from './models.js';
import {
  DEFAULT_SEARCH_LIMITS,
  type PartitionOps,
  PartitionSearch,
  type SearchLimits,
  type SearchOutcome,
  searchPartition,
} from './search.js';
import { DEFAULT_SHRINK_TIMEOUT_MS, shrinkPartition } from './shrink.js';

/** The answer for a history or a partition. */
export type Verdict = 'linearizable' | 'not-linearizable' | 'unknown';

/** Progress of a running check. */
export interface CheckProgress {
  /** Partitions finished. */
  readonly partitionsDone: number;
  /** Partitions in all. */
  readonly partitions: number;
  /** Milliseconds since the check started. */
  readonly elapsedMs: number;
}

/** Options of {@link check} and {@link checkSync}. */
export interface CheckOptions {
  /** The model: a built-in name or your own {@link Model}. Default: the history's model, else `kv`. */
  model?: Model | string;
  /** Time budget in ms for the whole check; when it runs out the verdict is `unknown`. Default 30,000. */
  timeoutMs?: number;
  /**
   * Worker threads for partitions (async {@link check} only, built-in models only). `'auto'` uses
   * one per available CPU when the history has at least `parallelMinOperations` operations and
   * more than one partition. `0` checks everything in the calling thread. Default `'auto'`.
   */
  workers?: number | 'auto';
  /** Fewest operations for which `workers: 'auto'` starts threads (startup costs ~30 ms). Default 5,000. */
  parallelMinOperations?: number;
  /** Search memory limits; see {@link DEFAULT_SEARCH_LIMITS}. */
  limits?: Partial<Omit<SearchLimits, 'deadline'>>;
  /** Called when a partition finishes and now and then during long searches. */
  onProgress?: (progress: CheckProgress) => void;
  /**
   * Keep checking the other partitions after one is found not linearizable. Default `false`: the
   * verdict is already known, and the partitions still running get verdict `unknown` with a reason
   * (partitions are interleaved, so cheap ones finish before any hard one can hold the check up).
   */
  checkAllPartitions?: boolean;
  /** Search steps a partition runs before the next partition gets its turn (doubling each round). Default 4,096. */
  sliceSteps?: number;
  /**
   * Use the polynomial fast path for partitions whose model describes every operation as a
   * register read or write with unique written values (see {@link Model.registerOp}). Default
   * `true`; `false` sends every partition through the general search (same verdicts, slower).
   */
  fastPath?: boolean;
  /**
   * Shrink each violation found by the general search to a small sub-history that is still not
   * linearizable (see {@link shrinkPartition}), into {@link PartitionResult.minimal}. Default `true`.
   */
  shrink?: boolean;
  /** Time budget of each shrink, in ms, on top of `timeoutMs`. Default 2,000. */
  shrinkTimeoutMs?: number;
}

/** Defaults of {@link CheckOptions}. */
export const DEFAULT_CHECK_OPTIONS = {
  timeoutMs: 30_000,
  workers: 'auto' as const,
  parallelMinOperations: 5_000,
  checkAllPartitions: false,
  sliceSteps: 4_096,
  fastPath: true,
  shrink: true,
  shrinkTimeoutMs: DEFAULT_SHRINK_TIMEOUT_MS,
};

/** The reason of a partition stopped by the time budget. */
const BUDGET = 'time budget exhausted';

const SKIPPED = 'not finished: another partition is not linearizable (set checkAllPartitions to finish it)';

/** The verdict of one partition. Operation numbers are indexes into `history.operations`. */
export interface PartitionResult {
  /** The partition key (`undefined` for an unpartitioned model). */
  readonly key: string | undefined;
  /** This partition's verdict. */
  readonly verdict: Verdict;
  /** Operations checked (after dropping). */
  readonly operations: readonly number[];
  /** A linearization, when linearizable. */
  readonly linearization?: readonly number[];
  /** The longest linearizable prefix found, when not linearizable (or unknown). */
  readonly longestPrefix?: readonly number[];
  /** Operations that could go next after the prefix and could not be placed (earliest return first). */
  readonly stuck?: readonly number[];
  /** Why the verdict is unknown. */
  readonly reason?: string;
  /** Search steps. */
  readonly steps: number;
  /** Milliseconds spent on this partition. */
  readonly ms: number;
  /** Where it was checked: the calling thread, or a worker thread. */
  readonly thread?: 'main' | 'worker';
  /** How it was decided: the polynomial fast path, or the general search. */
  readonly method?: 'fast' | 'search';
  /**
   * For a violation: a sub-history that is not linearizable on its own, in call order. From the
   * fast path, at most six operations (`longestPrefix` and `stuck` then describe the search over
   * these operations only); from the general search, the result of {@link shrinkPartition}
   * (option `shrink`). Either way, were the whole history linearizable, this one would be too.
   */
  readonly minimal?: readonly number[];
  /** Operations of {@link minimal} that count as indeterminate there (still running at the cut). */
  readonly relaxed?: readonly number[];
  /** What the minimal operations show, in words. */
  readonly why?: string;
}

/** The result of checking one history. */
export interface CheckResult {
  /** Linearizable only if every partition is; not linearizable if any is. */
  readonly verdict: Verdict;
  /** The model's name. */
  readonly model: string;
  /** Operations in the history. */
  readonly operations: number;
  /** Operations dropped before the search: failed ones, and indeterminate ones that cannot change state. */
  readonly dropped: readonly number[];
  /** One entry per partition, violations first. */
  readonly partitions: readonly PartitionResult[];
  /** Milliseconds for the whole check. */
  readonly ms: number;
  /** The history that was checked. */
  readonly history: History;
  /** The model object used (for describing operations and replaying states in reports). */
  readonly spec: Model;
  /**
   * True when the time budget ran out: the verdict is then `unknown` (unless a violation was
   * found first), and the partial result is in {@link partitionsFinished} and in each unfinished
   * partition's `longestPrefix`.
   */
  readonly budgetExhausted: boolean;
  /** Partitions whose verdict is known (linearizable or not). */
  readonly partitionsFinished: number;
}

/** One partition: its operations (indexes into the history, in call order) as columns. */
interface Part {
  key: string | undefined;
  /** History index of each operation of the partition. */
  idx: Int32Array;
  ops: PartitionOps;
}

interface Prepared {
  model: Model;
  modelName: string | undefined;
  dropped: number[];
  parts: Part[];
  compact: CompactHistory;
}

function resolveModel(
  history: History,
  model: Model | string | undefined,
): { model: Model; name: string | undefined } {
  const m = model ?? history.model ?? 'kv';
  if (typeof m === 'string') return { model: getBuiltinModel(m), name: m };
  for (const [name, b] of Object.entries(builtinModels)) if ((b as unknown) === m) return { model: m, name };
  return { model: m, name: undefined };
}

/** The columns of the operations `idx` of a history, sharing its value table. */
export function partColumns(c: CompactHistory, idx: Int32Array): PartitionOps {
  const n = idx.length;
  const col = c.columns;
  const call = new Float64Array(n);
  const ret = new Float64Array(n);
  const input = new Int32Array(n);
  const output = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = idx[k] as number;
    call[k] = col.call[i] as number;
    ret[k] = col.ret[i] as number;
    input[k] = col.input[i] as number;
    output[k] = col.output[i] as number;
  }
  return { call, ret, input, output, values: col.values };
}

function prepare(history: History, options: CheckOptions): Prepared {
  const { model, name } = resolveModel(history, options.model);
  const c = toCompact(history);
  const col = c.columns;
  const values = col.values;
  const dropped: number[] = [];
  // Per distinct input: its partition (-1 not yet known).
  const partOfInput = new Int32Array(values.length).fill(-1);
  const keys: (string | undefined)[] = [];
  const keyIndex = new Map<string | undefined, number>();
  const members: number[][] = [];
  for (let i = 0; i < c.size; i++) {
    const inId = col.input[i] as number;
    const outId = col.output[i] as number;
    const input = values[inId];
    const output = outId < 0 ? undefined : values[outId];
    if (model.validate !== undefined) {
      const problem = model.validate(input, output);
      if (problem !== undefined) {
        const line = col.line[i] as number;
        throw new InvalidOperationError(
          `operation ${JSON.stringify(col.ids[i])} does not fit model ${model.name}: ${problem}`,
          line > 0 ? line : undefined,
        );
      }
    }
    if (
      col.status[i] === STATUS_FAIL ||
      (output === undefined && model.readOnly?.(input, undefined) === true)
    ) {
      dropped.push(i);
      continue;
    }
    let pi = partOfInput[inId] as number;
    if (pi < 0) {
      const key = model.partition?.(input);
      let k = keyIndex.get(key);
      if (k === undefined) {
        k = keys.length;
        keys.push(key);
        keyIndex.set(key, k);
        members.push([]);
      }
      pi = k;
      partOfInput[inId] = pi;
    }
    (members[pi] as number[]).push(i);
  }
  const parts = keys.map((key, k) => {
    const idx = Int32Array.from(members[k] as number[]);
    return { key, idx, ops: partColumns(c, idx) };
  });
  return { model, modelName: name, dropped, parts, compact: c };
}

function toResult(key: string | undefined, idx: Int32Array, out: SearchOutcome, ms: number): PartitionResult {
  const g = (xs: readonly number[]): number[] => xs.map((i) => idx[i] as number);
  const base = { key, verdict: out.verdict, operations: Array.from(idx), steps: out.steps, ms };
  switch (out.verdict) {
    case 'linearizable':
      return { ...base, linearization: g(out.linearization) };
    case 'not-linearizable':
      return { ...base, longestPrefix: g(out.longestPrefix), stuck: g(out.stuck) };
    case 'unknown':
      return { ...base, longestPrefix: g(out.longestPrefix), reason: out.reason };
  }
}

function combine(history: History, p: Prepared, results: PartitionResult[], started: number): CheckResult {
  const rank: Record<Verdict, number> = { 'not-linearizable': 0, unknown: 1, linearizable: 2 };
  results.sort((a, b) => rank[a.verdict] - rank[b.verdict] || String(a.key).localeCompare(String(b.key)));
  const verdict: Verdict = results.some((r) => r.verdict === 'not-linearizable')
    ? 'not-linearizable'
    : results.some((r) => r.verdict === 'unknown')
      ? 'unknown'
      : 'linearizable';
  return {
    verdict,
    model: p.model.name,
    operations: p.compact.size,
    dropped: p.dropped,
    partitions: results,
    ms: performance.now() - started,
    history,
    spec: p.model,
    budgetExhausted: results.some((r) => r.reason?.startsWith(BUDGET) === true),
    partitionsFinished: results.filter((r) => r.verdict !== 'unknown').length,
  };
}

/** The columns of positions `sub` of a partition. */
function subColumns(ops: PartitionOps, sub: readonly number[]): PartitionOps {
  const pick = (src: Float64Array | Int32Array, out: Float64Array | Int32Array): void => {
    sub.forEach((k, j) => {
      out[j] = src[k] as number;
    });
  };
  const call = new Float64Array(sub.length);
  const ret = new Float64Array(sub.length);
  const input = new Int32Array(sub.length);
  const output = new Int32Array(sub.length);
  pick(ops.call, call);
  pick(ops.ret, ret);
  pick(ops.input, input);
  pick(ops.output, output);
  return { call, ret, input, output, values: ops.values };
}

/**
 * The fast path on one partition: a result, or `undefined` when it does not apply (or, as a
 * safety net, when the general search on its minimal operations disagrees).
 */
function fastResult(part: Part, model: Model, limits: Partial<SearchLimits>): PartitionResult | undefined {
  const t0 = performance.now();
  const out = fastCheck(part.ops, model);
  if (out === undefined) return undefined;
  const g = (xs: readonly number[]): number[] => xs.map((i) => part.idx[i] as number);
  const base = { key: part.key, operations: Array.from(part.idx), steps: 0, method: 'fast' as const };
  if (out.verdict === 'linearizable') {
    return {
      ...base,
      verdict: 'linearizable',
      linearization: g(out.linearization),
      ms: performance.now() - t0,
    };
  }
  const core = [...out.core].sort((a, b) => a - b);
  const sub = searchPartition(subColumns(part.ops, core), model, limits);
  if (sub.verdict !== 'not-linearizable') return undefined;
  const back = (xs: readonly number[]): number[] => g(xs.map((j) => core[j] as number));
  return {
    ...base,
    verdict: 'not-linearizable',
    minimal: g(core),
    why: out.why,
    longestPrefix: back(sub.longestPrefix),
    stuck: back(sub.stuck),
    steps: sub.steps,
    ms: performance.now() - t0,
  };
}

/** Adds a shrunk sub-history to each violation of the general search (option `shrink`). */
function explain(p: Prepared, results: PartitionResult[], options: CheckOptions): PartitionResult[] {
  if (!(options.shrink ?? DEFAULT_CHECK_OPTIONS.shrink)) return results;
  return results.map((r) => {
    if (r.verdict !== 'not-linearizable' || r.minimal !== undefined) return r;
    const part = p.parts.find((x) => x.key === r.key);
    if (part === undefined) return r;
    const s = shrinkPartition(part.ops, p.model, {
      timeoutMs: options.shrinkTimeoutMs ?? DEFAULT_CHECK_OPTIONS.shrinkTimeoutMs,
    });
    if (s === undefined) return r;
    const g = (xs: readonly number[]): number[] => xs.map((i) => part.idx[i] as number);
    return {
      ...r,
      minimal: g(s.ops),
      relaxed: g(s.relaxed),
      why: `these ${s.ops.length} of ${part.idx.length} operations are not linearizable on their own${s.complete ? '' : ' (shrinking stopped at its time budget)'}`,
    };
  });
}

function runLocal(
  part: Part,
  model: Model,
  limits: Partial<SearchLimits>,
  progress: (() => void) | undefined,
): PartitionResult {
  const t0 = performance.now();
  const out = searchPartition(part.ops, model, limits, progress);
  return { ...toResult(part.key, part.idx, out, performance.now() - t0), thread: 'main', method: 'search' };
}

function skipped(part: Part, steps: number, ms: number): PartitionResult {
  return { key: part.key, verdict: 'unknown', operations: Array.from(part.idx), reason: SKIPPED, steps, ms };
}

/** Runs the fast path on every partition; returns the results and the partitions left to search. */
function fastPass(
  p: Prepared,
  options: CheckOptions,
  limits: Partial<SearchLimits>,
): { results: PartitionResult[]; rest: Part[]; violated: boolean } {
  const results: PartitionResult[] = [];
  const rest: Part[] = [];
  let violated = false;
  const all = options.checkAllPartitions ?? DEFAULT_CHECK_OPTIONS.checkAllPartitions;
  for (const part of p.parts) {
    const r =
      (options.fastPath ?? DEFAULT_CHECK_OPTIONS.fastPath) && !(violated && !all)
        ? fastResult(part, p.model, limits)
        : undefined;
    if (r === undefined) {
      rest.push(part);
      continue;
    }
    results.push(r);
    if (r.verdict === 'not-linearizable') violated = true;
  }
  return { results, rest, violated };
}

/**
 * Checks a history in the calling thread. Works with any model, including your own.
 * @throws InvalidOperationError when an operation does not fit the model.
 * @throws UnknownModelError for an unknown model name.
 */
export function checkSync(history: History, options: CheckOptions = {}): CheckResult {
  return checkPrepared(history, options);
}

function checkPrepared(
  history: History,
  options: CheckOptions,
  prepared?: Prepared,
  fastDone?: ReturnType<typeof fastPass>,
  startedAt?: number,
): CheckResult {
  const started = startedAt ?? performance.now();
  const p = prepared ?? prepare(history, options);
  const deadline = started + (options.timeoutMs ?? DEFAULT_CHECK_OPTIONS.timeoutMs);
  const limits = { ...DEFAULT_SEARCH_LIMITS, ...options.limits, deadline };
  const report = options.onProgress;
  const all = options.checkAllPartitions ?? DEFAULT_CHECK_OPTIONS.checkAllPartitions;
  const fast = fastDone ?? fastPass(p, options, limits);
  const results: PartitionResult[] = fast.results;
  let violated = fast.violated;
  const searches = fast.rest.map((part) => ({
    part,
    search: new PartitionSearch<unknown>(part.ops, p.model, limits),
    ms: 0,
  }));
  let active = searches;
  let slice = options.sliceSteps ?? DEFAULT_CHECK_OPTIONS.sliceSteps;
  const tick = report
    ? () =>
        report({
          partitionsDone: results.length,
          partitions: p.parts.length,
          elapsedMs: performance.now() - started,
        })
    : undefined;
  // Round-robin with doubling slices: cheap partitions finish first, and a violation anywhere is
  // found without waiting for a hard partition elsewhere.
  while (active.length > 0 && !(violated && !all)) {
    const still: typeof active = [];
    for (const s of active) {
      const t0 = performance.now();
      const out = s.search.run(slice, tick);
      s.ms += performance.now() - t0;
      if (out === undefined) {
        still.push(s);
        continue;
      }
      results.push({ ...toResult(s.part.key, s.part.idx, out, s.ms), method: 'search' });
      tick?.();
      if (out.verdict === 'not-linearizable') violated = true;
    }
    active = still;
    slice *= 2;
  }
  for (const s of active) {
    if (s.search.result === undefined) results.push(skipped(s.part, s.search.steps, s.ms));
  }
  return combine(history, p, explain(p, results, options), started);
}

/** Message to a checker worker. */
export interface WorkerRequest {
  readonly modelName: string;
  readonly ops: PartitionOps;
  /** The deadline as a `Date.now()` time (clocks of `performance` differ between threads). */
  readonly deadlineEpochMs: number;
  readonly limits: Partial<Omit<SearchLimits, 'deadline'>>;
}

/** Reply of a checker worker. */
export type WorkerReply =
  | { readonly ok: true; readonly outcome: SearchOutcome; readonly ms: number }
  | { readonly ok: false; readonly error: string };

/** The columns with a value table of their own (what a worker thread needs, and no more). */
function localize(ops: PartitionOps): PartitionOps {
  const ids = new Map<number, number>();
  const values: unknown[] = [];
  const remap = (src: Int32Array): Int32Array =>
    src.map((id) => {
      if (id < 0) return id;
      let k = ids.get(id);
      if (k === undefined) {
        k = values.length;
        values.push(ops.values[id]);
        ids.set(id, k);
      }
      return k;
    });
  return { call: ops.call, ret: ops.ret, input: remap(ops.input), output: remap(ops.output), values };
}

/**
 * Checks a history; partitions run in parallel worker threads when that pays (see
 * {@link CheckOptions.workers}). Custom models always run in the calling thread.
 * @throws InvalidOperationError when an operation does not fit the model.
 * @throws UnknownModelError for an unknown model name.
 */
export async function check(history: History, options: CheckOptions = {}): Promise<CheckResult> {
  const started = performance.now();
  const p = prepare(history, options);
  const budget = options.timeoutMs ?? DEFAULT_CHECK_OPTIONS.timeoutMs;
  const deadline = started + budget;
  const requested = options.workers ?? DEFAULT_CHECK_OPTIONS.workers;
  const limits = { ...DEFAULT_SEARCH_LIMITS, ...options.limits, deadline };
  const fast = fastPass(p, options, limits);
  const all = options.checkAllPartitions ?? DEFAULT_CHECK_OPTIONS.checkAllPartitions;
  const rest = fast.rest;
  if (fast.violated && !all) {
    return combine(history, p, [...fast.results, ...rest.map((part) => skipped(part, 0, 0))], started);
  }
  const total = rest.reduce((s, x) => s + x.idx.length, 0);
  const os = await import('node:os');
  const cpus = os.availableParallelism();
  const threads =
    requested === 'auto'
      ? total >= (options.parallelMinOperations ?? DEFAULT_CHECK_OPTIONS.parallelMinOperations) &&
        rest.length > 1
        ? Math.min(cpus, rest.length)
        : 0
      : Math.min(requested, rest.length);
  // One partition gains nothing from a thread; custom models cannot cross threads.
  if (threads <= 0 || rest.length < 2 || p.modelName === undefined) {
    return checkPrepared(history, options, p, fast, started);
  }

  const { runInWorkers, STOPPED } = await import('./pool.js');
  // Workers watch the deadline themselves; this guard ends one that overruns it by 5% of the
  // budget (a very slow model step), so the budget holds in any case.
  const abort = new AbortController();
  let overran = false;
  const guard = setTimeout(
    () => {
      overran = true;
      abort.abort();
    },
    Math.max(0, deadline - performance.now()) + Math.max(20, budget * 0.05),
  );
  const results = await runInWorkers<Part, PartitionResult>(
    rest,
    threads,
    (part) => ({
      modelName: p.modelName as string,
      ops: localize(part.ops),
      deadlineEpochMs: Date.now() + Math.max(0, deadline - performance.now()),
      limits: options.limits ?? {},
    }),
    (part, reply) => {
      if (reply.ok) {
        return {
          ...toResult(part.key, part.idx, reply.outcome, reply.ms),
          thread: 'worker',
          method: 'search',
        };
      }
      if (reply.error === STOPPED) {
        return overran
          ? { ...skipped(part, 0, 0), reason: `${BUDGET} (the worker thread was stopped)` }
          : skipped(part, 0, 0);
      }
      // A worker that cannot run (no loader for sources, resource limits) falls back to this thread.
      return runLocal(part, p.model, limits, undefined);
    },
    (r) => !all && r.verdict === 'not-linearizable',
    (done) =>
      options.onProgress?.({
        partitionsDone: fast.results.length + done,
        partitions: p.parts.length,
        elapsedMs: performance.now() - started,
      }),
    (part) => part.idx.length,
    abort.signal,
  );
  clearTimeout(guard);
  return combine(history, p, explain(p, [...fast.results, ...results], options), started);
}

/** Runs one worker request (the body of a worker thread; exported for the worker entry). */
export function handleWorkerRequest(req: WorkerRequest): WorkerReply {
  try {
    const model = getBuiltinModel(req.modelName);
    const t0 = performance.now();
    const outcome = searchPartition(req.ops, model, {
      ...req.limits,
      deadline: t0 + (req.deadlineEpochMs - Date.now()),
    });
    return { ok: true, outcome, ms: performance.now() - t0 };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/**
 * Terminates the idle worker threads that {@link check} keeps between checks. Optional: idle
 * threads never keep the process alive; call it to free their memory at once.
 */
export async function closeWorkerPool(): Promise<void> {
  const { closeWorkerPool: close } = await import('./pool.js');
  await close();
}
