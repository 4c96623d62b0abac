/**
 * Online checking: a violation is flagged while a history is still being recorded, before the run
 * ends.
 * @module
 */
import { type CheckOptions, type CheckResult, checkSync } from './check.js';
import { JsonlReader } from './jsonl.js';

/** Options of {@link OnlineChecker}. */
export interface OnlineCheckerOptions extends Omit<CheckOptions, 'onProgress'> {
  /** Completed operations before the first check. Default 1,000. */
  firstCheckOps?: number;
  /**
   * Growth between checks: the next check comes once the completed operations have grown by this
   * share (so the checks cost a small multiple of one final check). Default 0.25.
   */
  growth?: number;
  /** Called once, with the result, when a check finds a violation. */
  onViolation?: (result: CheckResult) => void;
}

/**
 * Checks a JSON-lines history while it is recorded. Feed it the lines a {@link HistoryRecorder}
 * writes (its `sink`), in the order they are recorded; every so often it checks what it has so
 * far, with the operations still running as indeterminate. A violation found then is a
 * violation of the whole run, whatever happens next (operations still running can only add
 * possibilities, later ones cannot undo what completed), so a test can stop at once.
 * @example
 * const online = new OnlineChecker({ onViolation: (r) => controller.abort() });
 * const rec = new HistoryRecorder({ model: 'kv', sink: (line) => { file.write(`${line}\n`); online.push(line); } });
 */
export class OnlineChecker {
  private readonly reader = new JsonlReader();
  private readonly options: OnlineCheckerOptions;
  private nextCheck: number;
  private found: CheckResult | undefined;
  /** Checks run so far. */
  checks = 0;

  /** @param options - check options and the schedule; see {@link OnlineCheckerOptions}. */
  constructor(options: OnlineCheckerOptions = {}) {
    this.options = options;
    this.nextCheck = options.firstCheckOps ?? 1_000;
  }

  /** Feeds one recorded line (the header or an event). @throws HistoryParseError for a bad line. */
  push(line: string): void {
    this.reader.line(line);
    if (this.found === undefined && this.reader.counts.completed >= this.nextCheck) {
      this.checkNow();
      const done = this.reader.counts.completed;
      this.nextCheck = Math.max(done + 1, Math.ceil(done * (1 + (this.options.growth ?? 0.25))));
    }
  }

  /** A `sink` for {@link HistoryRecorder}: `new HistoryRecorder({ sink: online.sink })`. */
  readonly sink = (line: string): void => this.push(line);

  /** The first violation found, if any. */
  get violation(): CheckResult | undefined {
    return this.found;
  }

  /** Checks what has been recorded so far; returns the result (and reports a violation). */
  checkNow(): CheckResult {
    const { firstCheckOps: _f, growth: _g, onViolation, ...check } = this.options;
    const result = checkSync(this.reader.snapshot(), check);
    this.checks++;
    if (result.verdict === 'not-linearizable' && this.found === undefined) {
      this.found = result;
      onViolation?.(result);
    }
    return result;
  }
}
