/**
 * Checking a whole history: validate, drop operations that constrain nothing, split into
 * partitions (P-compositionality), search each one (in worker threads when there are several big
 * ones), and gather the verdicts.
 * @module
 */
import { InvalidOperationError } from './errors.js';
import type { History, Operation } from './history.js';
import type { Model } from './model.js';
import { builtinModels, getBuiltinModel } from './models.js';
import {
  DEFAULT_SEARCH_LIMITS,
  PartitionSearch,
  type SearchLimits,
  type SearchOutcome,
  searchPartition,
} from './search.js';

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
}

/** Defaults of {@link CheckOptions}. */
export const DEFAULT_CHECK_OPTIONS = {
  timeoutMs: 30_000,
  workers: 'auto' as const,
  parallelMinOperations: 5_000,
  checkAllPartitions: false,
  sliceSteps: 4_096,
};

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
}

interface Prepared {
  model: Model;
  modelName: string | undefined;
  dropped: number[];
  parts: { key: string | undefined; ops: Operation[] }[];
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

function prepare(history: History, options: CheckOptions): Prepared {
  const { model, name } = resolveModel(history, options.model);
  const dropped: number[] = [];
  const byKey = new Map<string | undefined, Operation[]>();
  for (const op of history.operations) {
    const problem = model.validate?.(op.input, op.output);
    if (problem !== undefined) {
      throw new InvalidOperationError(
        `operation ${JSON.stringify(op.id)} does not fit model ${model.name}: ${problem}`,
        op.line,
      );
    }
    if (op.status === 'fail' || (op.output === undefined && model.readOnly?.(op.input, undefined) === true)) {
      dropped.push(op.index);
      continue;
    }
    const key = model.partition?.(op.input);
    let list = byKey.get(key);
    if (list === undefined) {
      list = [];
      byKey.set(key, list);
    }
    list.push(op);
  }
  const parts = [...byKey.entries()].map(([key, ops]) => ({ key, ops }));
  return { model, modelName: name, dropped, parts };
}

function toResult(
  key: string | undefined,
  ops: readonly Operation[],
  out: SearchOutcome,
  ms: number,
): PartitionResult {
  const g = (xs: readonly number[]): number[] => xs.map((i) => (ops[i] as Operation).index);
  const base = { key, verdict: out.verdict, operations: ops.map((o) => o.index), steps: out.steps, ms };
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
    operations: history.operations.length,
    dropped: p.dropped,
    partitions: results,
    ms: performance.now() - started,
    history,
    spec: p.model,
  };
}

function runLocal(
  part: { key: string | undefined; ops: Operation[] },
  model: Model,
  limits: Partial<SearchLimits>,
  progress: (() => void) | undefined,
): PartitionResult {
  const t0 = performance.now();
  const out = searchPartition(part.ops, model, limits, progress);
  return toResult(part.key, part.ops, out, performance.now() - t0);
}

/**
 * Checks a history in the calling thread. Works with any model, including your own.
 * @throws InvalidOperationError when an operation does not fit the model.
 * @throws UnknownModelError for an unknown model name.
 */
export function checkSync(history: History, options: CheckOptions = {}): CheckResult {
  const started = performance.now();
  const p = prepare(history, options);
  const deadline = started + (options.timeoutMs ?? DEFAULT_CHECK_OPTIONS.timeoutMs);
  const limits = { ...DEFAULT_SEARCH_LIMITS, ...options.limits, deadline };
  const report = options.onProgress;
  const all = options.checkAllPartitions ?? DEFAULT_CHECK_OPTIONS.checkAllPartitions;
  const searches = p.parts.map((part) => ({
    part,
    search: new PartitionSearch(part.ops, p.model, limits),
    ms: 0,
  }));
  const results: PartitionResult[] = [];
  let active = searches;
  let slice = options.sliceSteps ?? DEFAULT_CHECK_OPTIONS.sliceSteps;
  let violated = false;
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
      results.push(toResult(s.part.key, s.part.ops, out, s.ms));
      tick?.();
      if (out.verdict === 'not-linearizable') violated = true;
    }
    active = still;
    slice *= 2;
  }
  for (const s of active) {
    if (s.search.result === undefined) {
      results.push({
        key: s.part.key,
        verdict: 'unknown',
        operations: s.part.ops.map((o) => o.index),
        reason: SKIPPED,
        steps: s.search.steps,
        ms: s.ms,
      });
    }
  }
  return combine(history, p, results, started);
}

/** Message to a checker worker. */
export interface WorkerRequest {
  readonly modelName: string;
  readonly ops: Operation[];
  readonly budgetMs: number;
  readonly limits: Partial<Omit<SearchLimits, 'deadline'>>;
}

/** Reply of a checker worker. */
export type WorkerReply =
  | { readonly ok: true; readonly outcome: SearchOutcome; readonly ms: number }
  | { readonly ok: false; readonly error: string };

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
  const requested = options.workers ?? DEFAULT_CHECK_OPTIONS.workers;
  const total = p.parts.reduce((s, x) => s + x.ops.length, 0);
  const os = await import('node:os');
  const cpus = os.availableParallelism();
  const threads =
    requested === 'auto'
      ? total >= (options.parallelMinOperations ?? DEFAULT_CHECK_OPTIONS.parallelMinOperations) &&
        p.parts.length > 1
        ? Math.min(cpus, p.parts.length)
        : 0
      : Math.min(requested, p.parts.length);
  // One partition gains nothing from a thread; custom models cannot cross threads.
  if (threads <= 0 || p.parts.length < 2 || p.modelName === undefined) return checkSync(history, options);

  const { runInWorkers, STOPPED } = await import('./pool.js');
  const deadline = started + budget;
  const all = options.checkAllPartitions ?? DEFAULT_CHECK_OPTIONS.checkAllPartitions;
  const results = await runInWorkers<(typeof p.parts)[number], PartitionResult>(
    p.parts,
    threads,
    (part) => {
      return {
        modelName: p.modelName as string,
        ops: part.ops,
        budgetMs: Math.max(0, deadline - performance.now()),
        limits: options.limits ?? {},
      };
    },
    (part, reply) => {
      if (reply.ok) return { ...toResult(part.key, part.ops, reply.outcome, reply.ms), thread: 'worker' };
      if (reply.error === STOPPED) {
        const skipped: PartitionResult = {
          key: part.key,
          verdict: 'unknown',
          operations: part.ops.map((o) => o.index),
          reason: SKIPPED,
          steps: 0,
          ms: 0,
        };
        return skipped;
      }
      // A worker that cannot run (no loader for sources, resource limits) falls back to this thread.
      return runLocal(part, p.model, { ...DEFAULT_SEARCH_LIMITS, ...options.limits, deadline }, undefined);
    },
    (r) => !all && r.verdict === 'not-linearizable',
    (done) =>
      options.onProgress?.({
        partitionsDone: done,
        partitions: p.parts.length,
        elapsedMs: performance.now() - started,
      }),
  );
  return combine(history, p, results, started);
}

/** Runs one worker request (the body of a worker thread; exported for the worker entry). */
export function handleWorkerRequest(req: WorkerRequest): WorkerReply {
  try {
    const model = getBuiltinModel(req.modelName);
    const t0 = performance.now();
    const outcome = searchPartition(req.ops, model, { ...req.limits, deadline: t0 + req.budgetMs });
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
