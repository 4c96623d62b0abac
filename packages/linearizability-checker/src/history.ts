/**
 * The history model: operations with a process, a call time, a return time (or none) and an
 * input and output.
 * @module
 */

/** How an operation completed. */
export type OperationStatus =
  /** Completed with a result that the model must explain. */
  | 'ok'
  /** Definitely did not take effect: dropped before the search. */
  | 'fail'
  /** Indeterminate (timeout, crash, never completed): may take effect at any time after its call, or never. */
  | 'info';

/**
 * One operation of a history.
 *
 * Guarantees of histories produced by this package's readers: `call < ret` for completed
 * operations; `ret === Infinity` and `output === undefined` for indeterminate ones; `index` is the
 * position in {@link History.operations}.
 */
export interface Operation<I = unknown, O = unknown> {
  /** Position of this operation in {@link History.operations}. */
  index: number;
  /** The id in the source (JSON-lines `id`, or the line of the invocation for other formats). */
  id: number | string;
  /** The client or process that invoked it. */
  process: number | string;
  /** Invocation time. Only the order of times matters. */
  call: number;
  /** Return time; `Infinity` when the operation is indeterminate. */
  ret: number;
  /** What was asked, e.g. `{ f: 'put', key: 'k', value: 'v' }`. */
  input: I;
  /** What was answered; `undefined` when unknown (indeterminate operations). */
  output: O | undefined;
  /** How the operation completed. */
  status: OperationStatus;
  /** 1-based source line of the invocation, when the history came from a file. */
  line?: number;
}

/** A parsed history, in any input format. */
export interface History {
  /** Every operation, in order of invocation. */
  operations: Operation[];
  /** The format it was read from (`jsonl`, `edn`, `porcupine-etcd`, `porcupine-kv`, or `memory`). */
  format: string;
  /** The model the file declares or implies, if any (`kv`, `etcd`, ...). */
  model?: string;
}

/**
 * One completed or pending event when building a history in memory with {@link buildHistory}.
 * Times are any monotonic numbers; `ret` absent means indeterminate.
 */
export interface OperationSpec<I = unknown, O = unknown> {
  /** Client or process. */
  process: number | string;
  /** Invocation time. */
  call: number;
  /** Return time; omit for an indeterminate operation. */
  ret?: number;
  /** The operation's input. */
  input: I;
  /** The operation's output; omit when unknown. */
  output?: O;
  /** Completion status; defaults to `ok` when `ret` is given, `info` otherwise. */
  status?: OperationStatus;
  /** Optional id; defaults to the position. */
  id?: number | string;
}

/**
 * Builds a {@link History} from plain operation records (for tests and for systems that already
 * hold their operations in memory). Indeterminate operations (no `ret`, or status `info`) get
 * `ret = Infinity` and an unknown output.
 * @throws RangeError when a return time is not after its call time.
 */
export function buildHistory<I, O>(specs: readonly OperationSpec<I, O>[], model?: string): History {
  const operations: Operation[] = specs.map((s, index) => {
    const status: OperationStatus = s.status ?? (s.ret === undefined ? 'info' : 'ok');
    const indeterminate = status === 'info' || s.ret === undefined;
    const ret = indeterminate ? Number.POSITIVE_INFINITY : (s.ret as number);
    if (!(ret >= s.call)) {
      throw new RangeError(`operation ${index}: return time ${ret} is before call time ${s.call}`);
    }
    return {
      index,
      id: s.id ?? index,
      process: s.process,
      call: s.call,
      ret,
      input: s.input,
      output: indeterminate ? undefined : s.output,
      status: indeterminate ? 'info' : status,
    };
  });
  operations.sort((a, b) => a.call - b.call);
  operations.forEach((op, i) => {
    op.index = i;
  });
  return model === undefined ? { operations, format: 'memory' } : { operations, format: 'memory', model };
}
