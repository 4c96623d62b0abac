/**
 * The paxkv JSON-lines history format, version 1: types, a reader and a small writer.
 *
 * One JSON object per line. An optional first line `{"paxkvHistory":1,"model":"kv"}` names the
 * version and the model. Every other line is an event: `invoke` (with `op`), then one of `ok`
 * (with `result`), `fail` (definitely did not happen) or `info` (indeterminate), matched by `id`.
 * An invoke with no completion is indeterminate. Lines may be in any order: events are ordered
 * by `time`, and at equal times an invoke counts as concurrent with a return (the permissive
 * choice: coarse clocks never cause false alarms).
 * @module
 */
import { HistoryParseError } from './errors.js';
import type { History, Operation } from './history.js';

/** The format version this package reads and writes. */
export const JSONL_FORMAT_VERSION = 1;

/** Optional first line of a JSON-lines history. */
export interface JsonlHeader {
  /** Format version: 1. */
  readonly paxkvHistory: 1;
  /** The model to check against (`kv`, `register`, `cas-register`, `etcd`, or a custom name). */
  readonly model?: string;
}

/** Fields shared by every event. */
interface EventBase {
  /** The client that invoked the operation. */
  readonly process: number | string;
  /** Unique per invocation in the file; completions repeat it. */
  readonly id: number | string;
  /** Monotonic time (ns or µs); only the order matters. */
  readonly time: number;
}

/** An operation was invoked. */
export interface InvokeEvent<I = unknown> extends EventBase {
  readonly type: 'invoke';
  /** The operation, e.g. `{ f: 'put', key: 'k1', value: 'v' }`. */
  readonly op: I;
}
/** The operation completed with a result. */
export interface OkEvent<O = unknown> extends EventBase {
  readonly type: 'ok';
  /** The result, e.g. `{ created: true }`. */
  readonly result?: O;
}
/** The operation definitely did not take effect. */
export interface FailEvent extends EventBase {
  readonly type: 'fail';
  /** Why. */
  readonly error?: string;
}
/** The outcome is unknown (timeout, lost connection): it may or may not have taken effect. */
export interface InfoEvent extends EventBase {
  readonly type: 'info';
  /** Why. */
  readonly error?: string;
}
/** Any event of the JSON-lines format. */
export type HistoryEvent<I = unknown, O = unknown> = InvokeEvent<I> | OkEvent<O> | FailEvent | InfoEvent;

/** Serializes one event (or the header) as one line, without the newline. */
export function formatEvent(event: HistoryEvent | JsonlHeader): string {
  return JSON.stringify(event);
}

/** Options of {@link HistoryRecorder}. */
export interface HistoryRecorderOptions {
  /** Model named in the header line. Default: none (the checker then assumes `kv`). */
  model?: string;
  /** Monotonic clock in any unit. Default: `performance.now()` in microseconds. */
  clock?: () => number;
  /** Called with each line (no newline) as it is recorded, e.g. to append to a file. Default: keep in memory. */
  sink?: (line: string) => void;
}

/**
 * Records a history while a test runs, in the JSON-lines format. Not a global: create one per
 * test run and share it between the test's clients.
 * @example
 * const rec = new HistoryRecorder({ model: 'kv' });
 * const id = rec.invoke(1, { f: 'put', key: 'a', value: '1' });
 * rec.ok(id, { created: true });
 * fs.writeFileSync('history.jsonl', rec.toString());
 */
export class HistoryRecorder<I = unknown, O = unknown> {
  private readonly clock: () => number;
  private readonly out: string[] = [];
  private readonly sink: ((line: string) => void) | undefined;
  private readonly open = new Map<number, number | string>();
  private nextId = 0;

  /** @param options - model, clock and sink; see {@link HistoryRecorderOptions}. */
  constructor(options: HistoryRecorderOptions = {}) {
    this.clock = options.clock ?? (() => Math.round(performance.now() * 1000));
    this.sink = options.sink;
    const header: JsonlHeader =
      options.model === undefined ? { paxkvHistory: 1 } : { paxkvHistory: 1, model: options.model };
    this.emit(formatEvent(header));
  }

  private emit(line: string): void {
    if (this.sink) this.sink(line);
    else this.out.push(line);
  }

  /** Records an invocation by `process` and returns the id to complete it with. */
  invoke(process: number | string, op: I): number {
    const id = this.nextId++;
    this.open.set(id, process);
    this.emit(formatEvent({ type: 'invoke', process, id, time: this.clock(), op }));
    return id;
  }

  private complete(id: number): number | string {
    const process = this.open.get(id);
    if (process === undefined) {
      throw new RangeError(`operation ${id} is not open: complete each invoke exactly once`);
    }
    this.open.delete(id);
    return process;
  }

  /** Records a successful completion with its result. */
  ok(id: number, result: O): void {
    const process = this.complete(id);
    this.emit(formatEvent({ type: 'ok', process, id, time: this.clock(), result }));
  }

  /** Records a definite failure: the operation did not take effect. */
  fail(id: number, error?: string): void {
    const process = this.complete(id);
    const base = { type: 'fail' as const, process, id, time: this.clock() };
    this.emit(formatEvent(error === undefined ? base : { ...base, error }));
  }

  /** Records an indeterminate outcome (timeout): the operation may or may not have taken effect. */
  info(id: number, error?: string): void {
    const process = this.complete(id);
    const base = { type: 'info' as const, process, id, time: this.clock() };
    this.emit(formatEvent(error === undefined ? base : { ...base, error }));
  }

  /** Lines recorded so far (empty when a `sink` is used). */
  lines(): readonly string[] {
    return this.out;
  }

  /** The whole history as JSON-lines text, newline-terminated. */
  toString(): string {
    return this.out.length === 0 ? '' : `${this.out.join('\n')}\n`;
  }
}

function isId(v: unknown): v is number | string {
  return (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'string';
}

interface Pending {
  process: number | string;
  id: number | string;
  call: number;
  input: unknown;
  line: number;
  ret: number;
  output: unknown;
  status: Operation['status'] | 'open';
}

/**
 * Reads a JSON-lines history. Blank lines are ignored.
 * @throws HistoryParseError naming the line, for bad JSON, unknown event types, missing fields,
 * duplicate ids, completions without an invoke, or a completion timed before its invoke.
 */
export function readJsonl(text: string): History {
  const lines = text.split('\n');
  const byId = new Map<number | string, Pending>();
  let model: string | undefined;
  let sawEvent = false;
  const completions: {
    o: Record<string, unknown>;
    type: 'ok' | 'fail' | 'info';
    process: number | string;
    id: number | string;
    time: number;
    ln: number;
  }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).trim();
    if (raw === '') continue;
    const ln = i + 1;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (err) {
      throw new HistoryParseError(`not valid JSON (${(err as Error).message}): one JSON object per line`, ln);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new HistoryParseError('expected a JSON object per line', ln);
    }
    const o = v as Record<string, unknown>;
    if ('paxkvHistory' in o) {
      if (sawEvent) throw new HistoryParseError('the header line must come first', ln);
      if (o.paxkvHistory !== JSONL_FORMAT_VERSION) {
        throw new HistoryParseError(
          `unsupported format version ${JSON.stringify(o.paxkvHistory)}: this checker reads version 1`,
          ln,
        );
      }
      if (o.model !== undefined) {
        if (typeof o.model !== 'string') throw new HistoryParseError('"model" must be a string', ln);
        model = o.model;
      }
      sawEvent = true;
      continue;
    }
    sawEvent = true;
    const { type, process, id, time } = o;
    if (type !== 'invoke' && type !== 'ok' && type !== 'fail' && type !== 'info') {
      throw new HistoryParseError(`"type" must be invoke, ok, fail or info, got ${JSON.stringify(type)}`, ln);
    }
    if (!isId(process)) throw new HistoryParseError('"process" must be a number or a string', ln);
    if (!isId(id)) throw new HistoryParseError('"id" must be a number or a string', ln);
    if (typeof time !== 'number' || !Number.isFinite(time))
      throw new HistoryParseError('"time" must be a finite number', ln);
    if (type === 'invoke') {
      const p = byId.get(id);
      if (p !== undefined) {
        throw new HistoryParseError(
          `id ${JSON.stringify(id)} is invoked twice (first on line ${p.line}): ids must be unique per invocation`,
          ln,
        );
      }
      if (!('op' in o) || typeof o.op !== 'object' || o.op === null) {
        throw new HistoryParseError('an invoke needs an "op" object', ln);
      }
      byId.set(id, {
        process,
        id,
        call: time,
        input: o.op,
        line: ln,
        ret: Number.POSITIVE_INFINITY,
        output: undefined,
        status: 'open',
      });
      continue;
    }
    completions.push({ o, type, process, id, time, ln });
  }
  // Completions may come before their invoke in the file (merged logs): match them in a second pass.
  for (const { o, type, process, id, time, ln } of completions) {
    const p = byId.get(id);
    if (p === undefined) {
      throw new HistoryParseError(
        `${type} for id ${JSON.stringify(id)} has no invoke: every completion needs an invoke line with the same id`,
        ln,
      );
    }
    if (p.status !== 'open') throw new HistoryParseError(`id ${JSON.stringify(id)} is completed twice`, ln);
    if (p.process !== process) {
      throw new HistoryParseError(
        `id ${JSON.stringify(id)} was invoked by process ${JSON.stringify(p.process)}, completed by ${JSON.stringify(process)}`,
        ln,
      );
    }
    if (time < p.call)
      throw new HistoryParseError(`completion time ${time} is before its invoke time ${p.call}`, ln);
    if (type === 'ok') {
      const result = o.result ?? {};
      if (typeof result !== 'object' || result === null)
        throw new HistoryParseError('"result" must be an object', ln);
      p.ret = time;
      p.output = result;
      p.status = 'ok';
    } else if (type === 'fail') {
      p.ret = time;
      p.status = 'fail';
    } else {
      p.status = 'info';
    }
  }
  const pending = [...byId.values()].sort((a, b) => a.call - b.call || a.line - b.line);
  const operations: Operation[] = pending.map((p, index) => ({
    index,
    id: p.id,
    process: p.process,
    call: p.call,
    ret: p.status === 'ok' || p.status === 'fail' ? p.ret : Number.POSITIVE_INFINITY,
    input: p.input,
    output: p.status === 'ok' ? p.output : undefined,
    status: p.status === 'open' ? 'info' : p.status,
    line: p.line,
  }));
  return model === undefined ? { operations, format: 'jsonl' } : { operations, format: 'jsonl', model };
}
