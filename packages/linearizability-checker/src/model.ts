/**
 * The model interface: a sequential specification that the checker replays operations against.
 * @module
 */

/** Result of one {@link Model.step}: either the operation is legal with a next state, or not. */
export type StepResult<S> = { readonly ok: true; readonly state: S } | { readonly ok: false };

/**
 * A sequential specification of the object under test.
 *
 * The checker calls {@link Model.step} at most once per (distinct state, operation) pair and caches
 * the answer, so `step` may allocate freely. States must be immutable values: `step` returns a new
 * state and never changes the old one.
 *
 * @typeParam S - the state type.
 * @typeParam I - the input (what was asked) type.
 * @typeParam O - the output (what was answered) type.
 */
export interface Model<S = unknown, I = unknown, O = unknown> {
  /** Name shown in reports. */
  readonly name: string;
  /** The initial state (of every partition, when the model is partitioned). */
  init(): S;
  /**
   * Applies `input` to `state` and says whether `output` is what a correct sequential object would
   * answer. `output === undefined` means the answer is unknown (an indeterminate operation): the
   * step must then be legal in every state, and apply the effect the operation would have had if
   * it took place at this point.
   */
  step(state: S, input: I, output: O | undefined): StepResult<S>;
  /**
   * A key that identifies a state: equal states must give equal keys. The checker interns states
   * by it, then confirms with {@link Model.equal} when that is given (so `key` may be a mere hash).
   * Default: `JSON.stringify(state)` for plain JSON states; states that are not plain JSON (a
   * `Map`, a class instance) need this function, or the check throws a {@link ModelError}.
   */
  key?(state: S): string | number;
  /** Exact equality of two states with equal keys. Default: keys are exact. */
  equal?(a: S, b: S): boolean;
  /**
   * P-compositionality: the partition an operation belongs to. Operations of different partitions
   * never interact, so each partition is checked on its own. Return `undefined` for one partition.
   */
  partition?(input: I): string | undefined;
  /**
   * True when the operation, answered with `output`, leaves every state in which it is legal
   * unchanged: a read; a cas answered "failed"; a delete answered "did not exist". Two uses:
   * - with `output === undefined` (indeterminate), such an operation constrains nothing and is
   *   dropped before the search;
   * - during the search, such an operation is linearized as soon as it is legal, and the
   *   alternatives of placing it later are never tried (moving a state-preserving operation
   *   earlier, to a point where it is legal, never invalidates a linearization). This prunes most
   *   of the search on read-heavy histories.
   * Answer `false` when unsure: that is always correct, only slower.
   */
  readOnly?(input: I, output: O | undefined): boolean;
  /**
   * Returns a message when `input`/`output` are not shaped as this model expects, `undefined` when
   * they are. Called for every operation before checking; a message makes the check fail with a
   * {@link InvalidOperationError} that names the line.
   */
  validate?(input: unknown, output: unknown): string | undefined;
  /**
   * Enables the polynomial fast path (with {@link Model.initialRegisterValue}): describes the
   * operation as a register access when it is one. Return `{ kind: 'write', value }` for an
   * operation that sets the value whatever the state and whose answer does not depend on the
   * state, `{ kind: 'read', value }` for one that only observes the value, and `undefined` for
   * anything else. Values are string keys: equal values must give equal keys. A partition where
   * every operation is a read or a write and no two writes share a value (nor a write and the
   * initial value) is checked in O(n log n); any other goes through the general search. The
   * verdicts are the same (a fast-path linearization is replayed through {@link Model.step}).
   */
  registerOp?(
    input: I,
    output: O | undefined,
  ): { readonly kind: 'write' | 'read'; readonly value: string } | undefined;
  /** The register value of the initial state, as a {@link Model.registerOp} key. */
  readonly initialRegisterValue?: string;
  /** A short human-readable form of an operation, for reports (e.g. `put("k", "v") → created`). */
  describeOperation?(input: I, output: O | undefined): string;
  /** A short human-readable form of a state, for reports. */
  describeState?(state: S): string;
}

/**
 * Identity helper that infers the type parameters of a user-defined model.
 * @example
 * const counter = defineModel({ name: 'counter', init: () => 0, step: (s: number, i: { add: number }) => ({ ok: true, state: s + i.add }) });
 */
export function defineModel<S, I, O>(model: Model<S, I, O>): Model<S, I, O> {
  return model;
}

/** Formats a JSON-like value for reports (`null` as `nil`-free `null`, strings quoted). */
export function show(value: unknown): string {
  if (value === undefined) return '?';
  return JSON.stringify(value) ?? String(value);
}
