/**
 * Typed errors of the checker. Each one says what went wrong and what to do about it.
 * @module
 */

/**
 * A history file could not be read: a line is malformed, an event does not match an invocation,
 * or an operation does not fit the chosen model. The CLI maps it to exit code 3.
 */
export class HistoryParseError extends Error {
  override readonly name = 'HistoryParseError';
  /** 1-based line of the offending event, when known. */
  readonly line: number | undefined;
  /** The file the history came from, when known. */
  readonly file: string | undefined;
  /** The reason alone, without the location prefix. */
  readonly reason: string;

  /**
   * @param reason - what is wrong and how to fix the input.
   * @param line - 1-based line number, if the error belongs to one line.
   * @param file - file name, if known.
   */
  constructor(reason: string, line?: number, file?: string) {
    super(`${file ?? 'history'}${line === undefined ? '' : `:${line}`}: ${reason}`);
    this.reason = reason;
    this.line = line;
    this.file = file;
  }

  /** A copy of this error that names `file`. */
  withFile(file: string): HistoryParseError {
    return new HistoryParseError(this.reason, this.line, file);
  }
}

/**
 * An operation does not fit the model it is checked against (unknown `f`, missing field, wrong type).
 * Choose the right model (`--model`) or fix the writer of the history.
 */
export class InvalidOperationError extends HistoryParseError {
  override readonly name = 'HistoryParseError';
}

/** A model name that is not registered. Use one of `available` or pass a {@link Model} object. */
export class UnknownModelError extends Error {
  override readonly name = 'UnknownModelError';
  /** The names that are registered. */
  readonly available: readonly string[];

  /** @param model - the name asked for. @param available - registered names. */
  constructor(model: string, available: readonly string[]) {
    super(`unknown model "${model}": use one of ${available.join(', ')}, or pass your own Model object`);
    this.available = available;
  }
}

/** Bad command line usage: the message says which flag and what it accepts. Exit code 3. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * A model cannot be used as given, e.g. its states are not plain JSON data and it has no
 * `key(state)` function to tell them apart. Fix the model.
 */
export class ModelError extends Error {
  override readonly name = 'ModelError';
}
