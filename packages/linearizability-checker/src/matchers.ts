/**
 * `toBeLinearizable()` for vitest and jest (`expect.extend`), from the subpath
 * `@paxkv/linearizability-checker/matchers`.
 * @module
 */
import { type CheckOptions, type CheckResult, checkSync } from './check.js';
import { readHistory } from './formats.js';
import type { History } from './history.js';
import { HistoryRecorder } from './jsonl.js';
import { formatText } from './report.js';

/** What `toBeLinearizable` accepts: a history, a recorder, or the text of a history file. */
export type LinearizableInput = History | HistoryRecorder | string;

/** The result shape of a vitest/jest matcher. */
export interface MatcherResult {
  pass: boolean;
  message: () => string;
  actual?: unknown;
  expected?: unknown;
}

/**
 * Types of the matchers, to merge into your test framework's assertion type:
 * `declare module 'vitest' { interface Assertion<T> extends LinearizabilityMatchers<T> {} }`.
 */
export interface LinearizabilityMatchers<R = unknown> {
  /** Passes when the history is linearizable (fails with the explanation when not, or when unknown). */
  toBeLinearizable(options?: CheckOptions): R;
}

function toHistory(received: LinearizableInput): History {
  if (received instanceof HistoryRecorder) {
    const text = received.toString();
    if (text === '') {
      throw new TypeError(
        'toBeLinearizable: this HistoryRecorder has a sink, so it kept no lines: pass the history instead',
      );
    }
    return readHistory(text, 'jsonl');
  }
  if (typeof received === 'string') return readHistory(received);
  if (typeof received === 'object' && received !== null && Array.isArray((received as History).operations)) {
    return received;
  }
  throw new TypeError('toBeLinearizable: expected a History, a HistoryRecorder or the text of a history');
}

/**
 * The matcher: checks `received` with {@link checkSync} (default model: the history's, else `kv`).
 * Passes on `linearizable`; the failure message is the checker's explanation (longest prefix,
 * stuck operations, minimal failing sub-history).
 */
export function toBeLinearizable(
  this: { isNot?: boolean } | undefined,
  received: LinearizableInput,
  options: CheckOptions = {},
): MatcherResult {
  const result: CheckResult = checkSync(toHistory(received), options);
  const pass = result.verdict === 'linearizable';
  return {
    pass,
    message: () =>
      pass
        ? `expected the history not to be linearizable, but it is (${result.operations} operations, model ${result.model})`
        : `expected the history to be linearizable, but it is ${result.verdict}:\n${formatText('history', result)}`,
    actual: result.verdict,
    expected: 'linearizable',
  };
}

/** Pass to `expect.extend(linearizabilityMatchers)` (vitest or jest). */
export const linearizabilityMatchers = { toBeLinearizable };
