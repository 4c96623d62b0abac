/**
 * Recording of the client's own operations in the linearizability checker's JSON-lines history
 * format v1, so anyone can check their workload with `paxkv-check` (this package does not depend on
 * the checker; it only writes the documented format).
 *
 * Format (one JSON object per line; the first line of a new file is `{"paxkvHistory":1,"model":"kv"}`):
 * ```
 * {"type":"invoke","process":0,"id":1,"time":1732700000000000,"op":{"f":"put","key":"k","value":"v"}}
 * {"type":"ok","process":0,"id":1,"time":1732700000000950,"result":{"created":true}}
 * {"type":"fail","process":1,"id":2,"time":...,"error":"NOT_READY: ..."}   // certainly not applied
 * {"type":"info","process":1,"id":3,"time":...,"error":"timeout"}          // outcome unknown
 * ```
 * - `time` is microseconds since the Unix epoch from a monotonic clock (`performance.timeOrigin +
 *   performance.now()`), so histories of several processes on one machine can be merged.
 * - `process` is a slot that has at most one operation in flight: a client with many operations in
 *   flight uses several processes; a process whose operation ended `info` is never reused. Clients sharing one sink (the same object, or the same file path
 *   in one Node process) share the numbering, so processes and ids stay unique in the file.
 * - Binary values are written as the string `"base64:" + base64(bytes)`.
 * - Stale reads (`get(k, { stale: true })`) are not recorded: they are not meant to be linearizable.
 * @module
 */
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { ConfigError, historyOp, historyResult, type KvOp, type KvResult } from '@paxkv/common';

export { historyOp, historyResult, historyValue } from '@paxkv/common';

/** Default of the client option `historyBufferLines`. */
export const DEFAULT_HISTORY_BUFFER_LINES = 4096;

/** Where history lines go: anything with a `write(line)` (each line ends with `\n`). */
export interface HistorySink {
  /** Receives one complete line, newline included. */
  write(line: string): void;
}

/** The `history` option: a sink, or a file path (appended to; created with a header line if new). */
export type HistoryOption = HistorySink | string;

/** Current time in microseconds since the Unix epoch, from a monotonic clock. */
export function historyTimeMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * A sink that appends to a file. Lines written in one event-loop turn are gathered and written with
 * one synchronous `write` at the end of the turn (and on close), in order: a crash loses at most the
 * last turn's lines, and the file is always a prefix of the history (an operation whose effect a
 * recorded read observed was invoked before that read returned, so its `invoke` line is there).
 */
class FileSink implements HistorySink {
  readonly #fd: number;
  /** Lines lost because a write failed (disk full, ...). */
  lostLines = 0;
  #buffer: string[] = [];
  #scheduled = false;
  #closed = false;
  readonly #bufferLines: number;
  /** @param bufferLines lines gathered before a write even within one event-loop turn. */
  constructor(path: string, bufferLines: number) {
    this.#bufferLines = bufferLines;
    let fresh = true;
    try {
      fresh = statSync(path).size === 0;
    } catch {
      fresh = true;
    }
    this.#fd = openSync(path, 'a');
    if (fresh) writeSync(this.#fd, `${JSON.stringify({ paxkvHistory: 1, model: 'kv' })}\n`);
  }
  write(line: string): void {
    if (this.#closed) return;
    this.#buffer.push(line);
    // A long turn (many calls completing without yielding) must not gather lines without bound.
    if (this.#buffer.length >= this.#bufferLines) {
      this.flush();
      return;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }
  /** Writes the gathered lines now. */
  flush(): void {
    this.#scheduled = false;
    if (this.#buffer.length === 0 || this.#closed) return;
    const lines = this.#buffer;
    this.#buffer = [];
    try {
      writeSync(this.#fd, lines.join(''));
    } catch {
      // Never let the history crash the process (this runs from setImmediate).
      this.lostLines += lines.length;
    }
  }
  close(): void {
    this.flush();
    this.#closed = true;
    try {
      closeSync(this.#fd);
    } catch {
      // Already closed or the disk is gone: nothing left to do.
    }
  }
}

/** One operation being recorded; call exactly one of its completion methods. */
export interface HistoryEntry {
  /** The operation returned this result. */
  ok(result: KvResult): void;
  /** The operation certainly did not take effect. */
  fail(error: string): void;
  /** The outcome is unknown (timeout, connection lost, client closed). */
  info(error: string): void;
}

/**
 * Writes history events for every client that shares one sink, keeping `process` numbers (one
 * operation in flight per process) and `id`s unique across them. Get one with
 * {@link HistoryRecorder.acquire}; give it back with {@link HistoryRecorder.release}.
 */
export class HistoryRecorder {
  static readonly #bySink = new WeakMap<HistorySink, HistoryRecorder>();
  static readonly #byPath = new Map<string, HistoryRecorder>();

  readonly #sink: HistorySink;
  readonly #path: string | undefined;
  #refs = 0;
  #nextId = 1;
  readonly #freeProcesses: number[] = [];
  #nextProcess = 0;
  #writeErrors = 0;

  private constructor(sink: HistorySink, path?: string) {
    this.#sink = sink;
    this.#path = path;
  }

  /**
   * The recorder shared by every client using `option` (the same sink object or file path).
   * `bufferLines` (default 4096) bounds the lines a file sink gathers before writing; the first
   * acquirer of a path sets it.
   */
  static acquire(option: HistoryOption, settings: { readonly bufferLines?: number } = {}): HistoryRecorder {
    let r: HistoryRecorder | undefined;
    if (typeof option === 'string') {
      r = HistoryRecorder.#byPath.get(option);
      if (!r) {
        let sink: FileSink;
        try {
          sink = new FileSink(option, settings.bufferLines ?? DEFAULT_HISTORY_BUFFER_LINES);
        } catch (e) {
          throw new ConfigError({
            source: 'paxkv client options',
            issues: [
              { path: 'history', problem: `cannot open '${option}' for appending: ${(e as Error).message}` },
            ],
          });
        }
        r = new HistoryRecorder(sink, option);
        HistoryRecorder.#byPath.set(option, r);
      }
    } else {
      r = HistoryRecorder.#bySink.get(option);
      if (!r) {
        r = new HistoryRecorder(option);
        HistoryRecorder.#bySink.set(option, r);
      }
    }
    r.#refs++;
    return r;
  }

  /**
   * Lines that could not be written (the sink threw, or a file write failed): the client never fails
   * because of its history, it counts the loss here.
   */
  get lostLines(): number {
    return this.#writeErrors + (this.#sink instanceof FileSink ? this.#sink.lostLines : 0);
  }

  /** Gives back a recorder; the last release of a file-backed recorder closes the file. */
  release(): void {
    this.#refs--;
    if (this.#refs > 0 || this.#path === undefined) return;
    HistoryRecorder.#byPath.delete(this.#path);
    (this.#sink as FileSink).close();
  }

  /** Records the invocation of `op` now and returns the handle to record its completion. */
  invoke(op: KvOp): HistoryEntry {
    const process = this.#freeProcesses.length > 0 ? this.#takeLowestFree() : this.#nextProcess++;
    const id = this.#nextId++;
    this.#write('invoke', process, id, 'op', historyOp(op));
    let done = false;
    const complete = (type: 'ok' | 'fail' | 'info', field: 'result' | 'error', value: unknown) => {
      if (done) return;
      done = true;
      this.#write(type, process, id, field, value);
      // After an indeterminate outcome the process is retired (as Jepsen does): its operation may
      // still take effect later, so nothing else may run on that process.
      if (type !== 'info') this.#freeProcesses.push(process);
    };
    return {
      ok: (result) => complete('ok', 'result', historyResult(result)),
      fail: (error) => complete('fail', 'error', error),
      info: (error) => complete('info', 'error', error),
    };
  }

  #takeLowestFree(): number {
    let best = 0;
    for (let i = 1; i < this.#freeProcesses.length; i++) {
      if (this.#freeProcesses[i]! < this.#freeProcesses[best]!) best = i;
    }
    const p = this.#freeProcesses[best]!;
    this.#freeProcesses[best] = this.#freeProcesses[this.#freeProcesses.length - 1]!;
    this.#freeProcesses.pop();
    return p;
  }

  /** Writes one event with its fields in the documented order: type, process, id, time, payload. */
  #write(type: string, process: number, id: number, field: string, value: unknown): void {
    try {
      const time = historyTimeMicros();
      this.#sink.write(
        `{"type":"${type}","process":${process},"id":${id},"time":${time},"${field}":${JSON.stringify(value)}}\n`,
      );
    } catch {
      this.#writeErrors++;
    }
  }
}
