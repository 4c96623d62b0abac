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
import {
  type CompactHistory,
  CompactHistoryBuilder,
  STATUS_FAIL,
  STATUS_INFO,
  STATUS_OK,
} from './compact.js';
import { HistoryParseError } from './errors.js';

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

/** A completion seen before its invoke (merged logs): kept until the invoke arrives. */
interface EarlyCompletion {
  type: 'ok' | 'fail' | 'info';
  processId: number;
  time: number;
  /** The interned result (`ok` only), else -1. */
  resultId: number;
  ln: number;
}

/** Where {@link scalarAt} stopped. */
let scanEnd = 0;

/**
 * A JSON number of plain digits (optionally signed, with a fraction) or a string without escapes
 * at `p`, or `undefined`; sets {@link scanEnd} past it.
 */
function scalarAt(s: string, p: number, end: number): number | string | undefined {
  if (s.charCodeAt(p) === 34 /* " */) {
    const q = s.indexOf('"', p + 1);
    if (q < 0 || q >= end) return undefined;
    const text = s.slice(p + 1, q);
    if (text.includes('\\')) return undefined;
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) < 32) return undefined;
    scanEnd = q + 1;
    return text;
  }
  let i = p;
  if (s.charCodeAt(i) === 45 /* - */) i++;
  const d0 = i;
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  if (i === d0 || (s.charCodeAt(d0) === 48 && i - d0 > 1)) return undefined;
  if (s.charCodeAt(i) === 46 /* . */) {
    const f0 = ++i;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      i++;
    }
    if (i === f0) return undefined;
  }
  const v = Number(s.slice(p, i));
  if (!Number.isFinite(v)) return undefined;
  scanEnd = i;
  return v;
}

/** Parses the text of a JSON object (`undefined` when it is not one). */
function parseObject(text: string): unknown {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

const STATUS_OPEN = 3;

/**
 * Reads a JSON-lines history incrementally: feed it lines ({@link line}) or raw chunks
 * ({@link push}), then call {@link finish}. Operations go straight into a
 * {@link CompactHistory} (typed columns, inputs and outputs interned), so the memory used grows
 * with the operations, not with the text: a line is parsed, stored and dropped.
 */
export class JsonlReader {
  private readonly b = new CompactHistoryBuilder();
  /** Slots of invoked ids: small non-negative integers here, any other id in `sparse`. */
  private dense = new Int32Array(1024).fill(-1);
  private readonly sparse = new Map<number | string, number>();
  private completed = 0;
  private readonly early = new Map<number | string, EarlyCompletion>();
  private model: string | undefined;
  private sawEvent = false;
  private ln = 0;
  private tail = '';
  private readonly decoder = new TextDecoder();

  /** Feeds a chunk of the file (text or bytes); lines may span chunks. */
  push(chunk: string | Uint8Array): void {
    const text =
      this.tail + (typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true }));
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.lineAt(text, start, nl);
      start = nl + 1;
    }
    this.tail = text.slice(start);
  }

  /** Reads the next line (without its newline). */
  line(text: string): void {
    this.lineAt(text, 0, text.length);
  }

  /** Reads the line `text[start, end)`. */
  private lineAt(text: string, start: number, end: number): void {
    const ln = ++this.ln;
    if (this.sawEvent && this.fastLine(text, start, end, ln)) return;
    const raw = text.slice(start, end).trim();
    if (raw === '') return;
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
      if (this.sawEvent) throw new HistoryParseError('the header line must come first', ln);
      if (o.paxkvHistory !== JSONL_FORMAT_VERSION) {
        throw new HistoryParseError(
          `unsupported format version ${JSON.stringify(o.paxkvHistory)}: this checker reads version 1`,
          ln,
        );
      }
      if (o.model !== undefined) {
        if (typeof o.model !== 'string') throw new HistoryParseError('"model" must be a string', ln);
        this.model = o.model;
      }
      this.sawEvent = true;
      return;
    }
    this.sawEvent = true;
    const { type, process, id, time } = o;
    if (type !== 'invoke' && type !== 'ok' && type !== 'fail' && type !== 'info') {
      throw new HistoryParseError(`"type" must be invoke, ok, fail or info, got ${JSON.stringify(type)}`, ln);
    }
    if (!isId(process)) throw new HistoryParseError('"process" must be a number or a string', ln);
    if (!isId(id)) throw new HistoryParseError('"id" must be a number or a string', ln);
    if (typeof time !== 'number' || !Number.isFinite(time))
      throw new HistoryParseError('"time" must be a finite number', ln);
    let payload = -1;
    if (type === 'invoke') {
      if (!('op' in o) || typeof o.op !== 'object' || o.op === null) {
        throw new HistoryParseError('an invoke needs an "op" object', ln);
      }
      payload = this.b.values.intern(o.op);
    } else if (type === 'ok') {
      const result = o.result ?? {};
      if (typeof result !== 'object' || result === null)
        throw new HistoryParseError('"result" must be an object', ln);
      payload = this.b.values.intern(result);
    }
    this.event(type, process, id, time, payload, ln);
  }

  /**
   * The common case without a general JSON parse: a line exactly as {@link formatEvent} writes
   * it (`{"type":..,"process":..,"id":..,"time":..,"op"|"result"|"error":..}`), with plain
   * numbers and strings without escapes. The operation or result text is parsed (validated) only
   * the first time it is seen. Returns false, having changed nothing, for any other line.
   */
  private fastLine(s: string, start: number, end: number, ln: number): boolean {
    if (!s.startsWith('{"type":"', start)) return false;
    let p = start + 9;
    let type: 'invoke' | 'ok' | 'fail' | 'info';
    if (s.startsWith('invoke"', p)) type = 'invoke';
    else if (s.startsWith('ok"', p)) type = 'ok';
    else if (s.startsWith('fail"', p)) type = 'fail';
    else if (s.startsWith('info"', p)) type = 'info';
    else return false;
    p += type.length + 1;
    if (!s.startsWith(',"process":', p)) return false;
    const process = scalarAt(s, p + 11, end);
    if (process === undefined) return false;
    p = scanEnd;
    if (!s.startsWith(',"id":', p)) return false;
    const id = scalarAt(s, p + 6, end);
    if (id === undefined) return false;
    p = scanEnd;
    if (!s.startsWith(',"time":', p)) return false;
    const time = scalarAt(s, p + 8, end);
    if (typeof time !== 'number') return false;
    p = scanEnd;
    const last = end - 1;
    if (s.charCodeAt(last) !== 125 /* } */) return false;
    let payload = -1;
    if (type === 'invoke') {
      if (!s.startsWith(',"op":{', p)) return false;
      payload = this.b.values.internText(s.slice(p + 6, last), parseObject);
      if (payload < 0) return false;
    } else if (type === 'ok') {
      if (p === last) {
        payload = this.b.values.internText('{}', parseObject);
      } else {
        if (!s.startsWith(',"result":{', p)) return false;
        payload = this.b.values.internText(s.slice(p + 10, last), parseObject);
        if (payload < 0) return false;
      }
    } else if (p !== last) {
      if (!s.startsWith(',"error":"', p)) return false;
      // free text: validate it as a JSON string
      try {
        if (typeof JSON.parse(s.slice(p + 9, last)) !== 'string') return false;
      } catch {
        return false;
      }
    }
    this.event(type, process, id, time, payload, ln);
    return true;
  }

  /** The slot of an invoked id, or -1. */
  private slotOf(id: number | string): number {
    if (typeof id === 'number' && id >= 0 && id < this.dense.length && Number.isInteger(id)) {
      const k = this.dense[id] as number;
      if (k >= 0) return k;
    }
    return this.sparse.get(id) ?? -1;
  }

  private setSlot(id: number | string, slot: number): void {
    // small non-negative integer ids (the usual 0, 1, 2, ...) go in a typed array
    if (typeof id === 'number' && id >= 0 && Number.isInteger(id) && id < 4 * (this.b.size + 1024)) {
      if (id >= this.dense.length) {
        let cap = this.dense.length * 2;
        while (cap <= id) cap *= 2;
        const d = new Int32Array(cap).fill(-1);
        d.set(this.dense);
        this.dense = d;
      }
      this.dense[id] = slot;
      return;
    }
    this.sparse.set(id, slot);
  }

  private event(
    type: 'invoke' | 'ok' | 'fail' | 'info',
    process: number | string,
    id: number | string,
    time: number,
    payload: number,
    ln: number,
  ): void {
    const b = this.b;
    const processId = b.internProcess(process);
    if (type === 'invoke') {
      const first = this.slotOf(id);
      if (first >= 0) {
        throw new HistoryParseError(
          `id ${JSON.stringify(id)} is invoked twice (first on line ${b.lineOf(first)}): ids must be unique per invocation`,
          ln,
        );
      }
      const slot = b.add(id, processId, time, Number.POSITIVE_INFINITY, payload, -1, STATUS_OPEN, ln);
      this.setSlot(id, slot);
      const done = this.early.get(id);
      if (done !== undefined) {
        this.early.delete(id);
        this.complete(slot, id, done);
      }
      return;
    }
    const c: EarlyCompletion = { type, processId, time, resultId: payload, ln };
    const slot = this.slotOf(id);
    if (slot < 0) {
      if (this.early.has(id)) throw new HistoryParseError(`id ${JSON.stringify(id)} is completed twice`, ln);
      this.early.set(id, c);
      return;
    }
    this.complete(slot, id, c);
  }

  private complete(slot: number, id: number | string, c: EarlyCompletion): void {
    const b = this.b;
    const { ln, time, type } = c;
    if (b.statusOf(slot) !== STATUS_OPEN)
      throw new HistoryParseError(`id ${JSON.stringify(id)} is completed twice`, ln);
    if (b.processOf(slot) !== c.processId) {
      throw new HistoryParseError(
        `id ${JSON.stringify(id)} was invoked by process ${JSON.stringify(b.processes.values[b.processOf(slot)])}, completed by ${JSON.stringify(b.processes.values[c.processId])}`,
        ln,
      );
    }
    const call = b.callOf(slot);
    if (time < call)
      throw new HistoryParseError(`completion time ${time} is before its invoke time ${call}`, ln);
    this.completed++;
    if (type === 'ok') b.complete(slot, time, c.resultId, STATUS_OK);
    else if (type === 'fail') b.complete(slot, time, -1, STATUS_FAIL);
    else b.complete(slot, Number.POSITIVE_INFINITY, -1, STATUS_INFO);
  }

  /**
   * Ends the input and returns the history, sorted by call time (ties by line).
   * @throws HistoryParseError for a completion whose invoke never came.
   */
  finish(): CompactHistory {
    if (this.tail !== '') {
      const t = this.tail;
      this.tail = '';
      this.line(t);
    }
    for (const [id, c] of this.early) {
      throw new HistoryParseError(
        `${c.type} for id ${JSON.stringify(id)} has no invoke: every completion needs an invoke line with the same id`,
        c.ln,
      );
    }
    // operations never completed are indeterminate
    const b = this.b;
    for (let k = 0; k < b.size; k++)
      if (b.statusOf(k) === STATUS_OPEN) b.complete(k, Number.POSITIVE_INFINITY, -1, STATUS_INFO);
    return b.finish('jsonl', this.model);
  }

  /**
   * The history read so far, without ending the input: operations still open count as
   * indeterminate, completions whose invoke has not come yet are left out. Checking it is safe
   * while a history is recorded in real time: were the final history linearizable, this one
   * would be too (see `shrinkPartition`, truncation).
   */
  snapshot(): CompactHistory {
    const h = this.b.finish('jsonl', this.model);
    const status = h.columns.status;
    for (let k = 0; k < status.length; k++) if (status[k] === STATUS_OPEN) status[k] = STATUS_INFO;
    return h;
  }

  /** Operations read so far, and how many of them are completed (ok, fail or info). */
  get counts(): { operations: number; completed: number } {
    return { operations: this.b.size, completed: this.completed };
  }
}

/**
 * Reads a JSON-lines history. Blank lines are ignored.
 * @throws HistoryParseError naming the line, for bad JSON, unknown event types, missing fields,
 * duplicate ids, completions without an invoke, or a completion timed before its invoke.
 */
export function readJsonl(text: string): CompactHistory {
  const r = new JsonlReader();
  r.push(text);
  return r.finish();
}

/**
 * Reads a JSON-lines history file in chunks (never holding the whole text): memory grows with the
 * operations, not with the file.
 * @throws HistoryParseError naming the line, as {@link readJsonl}.
 */
export async function readJsonlFile(path: string): Promise<CompactHistory> {
  const { createReadStream } = await import('node:fs');
  const r = new JsonlReader();
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) r.push(chunk as Uint8Array);
  return r.finish();
}
