/**
 * The compact in-memory history: one typed-array column per field, with inputs, outputs and
 * processes interned, so a history costs tens of bytes per operation plus its distinct values.
 * @module
 */
import type { History, Operation, OperationStatus } from './history.js';

/** Status codes of the `status` column. */
export const STATUS_OK = 0;
/** Definitely did not happen. */
export const STATUS_FAIL = 1;
/** Indeterminate. */
export const STATUS_INFO = 2;
const STATUS_NAMES: readonly OperationStatus[] = ['ok', 'fail', 'info'];

/**
 * Interns JSON-like values by a text key (their JSON form by default): equal values share one
 * object and one small integer id.
 */
export class ValueTable {
  /** The distinct values, by id. */
  readonly values: unknown[] = [];
  private readonly ids = new Map<string, number>();

  /** The id of `value`, whose identity is `text` (JSON by default). */
  intern(value: unknown, text: string = JSON.stringify(value) ?? 'undefined'): number {
    let id = this.ids.get(text);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(value);
      this.ids.set(text, id);
    }
    return id;
  }

  /**
   * The id of the value whose JSON text is `text`, parsing it with `parse` only the first time
   * the text is seen; -1 (and nothing stored) when `parse` returns `undefined`.
   */
  internText(text: string, parse: (text: string) => unknown): number {
    let id = this.ids.get(text);
    if (id === undefined) {
      const value = parse(text);
      if (value === undefined) return -1;
      id = this.values.length;
      this.values.push(value);
      // a copy: `text` may be a slice that keeps a whole chunk of the file alive
      this.ids.set(` ${text}`.slice(1), id);
    }
    return id;
  }

  /** Number of distinct values. */
  get size(): number {
    return this.values.length;
  }
}

/** A growable typed array (doubling). */
class Grow<T extends Float64Array | Int32Array | Uint8Array> {
  data: T;
  constructor(private readonly make: (n: number) => T) {
    this.data = make(1024);
  }
  set(i: number, v: number): void {
    if (i >= this.data.length) {
      let cap = this.data.length * 2;
      while (cap <= i) cap *= 2;
      const d = this.make(cap);
      d.set(this.data);
      this.data = d;
    }
    this.data[i] = v;
  }
}

/**
 * Builds a {@link CompactHistory} one operation at a time, in any order; {@link finish} sorts by
 * call time (ties by line, then by insertion).
 */
export class CompactHistoryBuilder {
  private n = 0;
  private readonly call = new Grow((k) => new Float64Array(k));
  private readonly ret = new Grow((k) => new Float64Array(k));
  private readonly status = new Grow((k) => new Uint8Array(k));
  private readonly process = new Grow((k) => new Int32Array(k));
  private readonly input = new Grow((k) => new Int32Array(k));
  private readonly output = new Grow((k) => new Int32Array(k));
  private readonly line = new Grow((k) => new Int32Array(k));
  private readonly ids: (number | string)[] = [];
  /** Interned inputs and outputs (one table: `{}` and friends are shared). */
  readonly values = new ValueTable();
  /** Interned processes. */
  readonly processes = new ValueTable();

  /** Operations added so far. */
  get size(): number {
    return this.n;
  }

  /** Interns a process (number or string; `1` and `"1"` differ). */
  internProcess(p: number | string): number {
    return this.processes.intern(p, typeof p === 'number' ? `n${p}` : `s${p}`);
  }

  /**
   * Adds an operation and returns its slot. `ret` is `Infinity` and `outputId` -1 when
   * indeterminate; `line` 0 when unknown.
   */
  add(
    id: number | string,
    processId: number,
    call: number,
    ret: number,
    inputId: number,
    outputId: number,
    status: number,
    line: number,
  ): number {
    const k = this.n++;
    this.ids.push(id);
    this.call.set(k, call);
    this.ret.set(k, ret);
    this.process.set(k, processId);
    this.input.set(k, inputId);
    this.output.set(k, outputId);
    this.status.set(k, status);
    this.line.set(k, line);
    return k;
  }

  /** Sets the completion of slot `k`. */
  complete(k: number, ret: number, outputId: number, status: number): void {
    this.ret.set(k, ret);
    this.output.set(k, outputId);
    this.status.set(k, status);
  }

  /** The call time of slot `k`. */
  callOf(k: number): number {
    return this.call.data[k] as number;
  }

  /** The process id of slot `k`. */
  processOf(k: number): number {
    return this.process.data[k] as number;
  }

  /** The status code of slot `k`. */
  statusOf(k: number): number {
    return this.status.data[k] as number;
  }

  /** The line of slot `k`. */
  lineOf(k: number): number {
    return this.line.data[k] as number;
  }

  /**
   * The history, sorted by call time (then line, then insertion order) unless `sort` is false
   * (then in insertion order).
   */
  finish(format: string, model?: string, sort = true): CompactHistory {
    const n = this.n;
    const call = this.call.data;
    const line = this.line.data;
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    let sorted = true;
    for (let i = 1; i < n && sorted && sort; i++) {
      const a = call[i - 1] as number;
      const b = call[i] as number;
      if (a > b || (a === b && (line[i - 1] as number) > (line[i] as number))) sorted = false;
    }
    if (!sorted) {
      order.sort(
        (a, b) =>
          (call[a] as number) - (call[b] as number) || (line[a] as number) - (line[b] as number) || a - b,
      );
    }
    const pick = <T extends Float64Array | Int32Array | Uint8Array>(src: T, make: (k: number) => T): T => {
      const out = make(n);
      for (let i = 0; i < n; i++) out[i] = src[order[i] as number] as number;
      return out;
    };
    const ids = sorted ? this.ids : Array.from(order, (k) => this.ids[k] as number | string);
    return new CompactHistory({
      format,
      ...(model === undefined ? {} : { model }),
      call: pick(call, (k) => new Float64Array(k)),
      ret: pick(this.ret.data, (k) => new Float64Array(k)),
      status: pick(this.status.data, (k) => new Uint8Array(k)),
      process: pick(this.process.data, (k) => new Int32Array(k)),
      input: pick(this.input.data, (k) => new Int32Array(k)),
      output: pick(this.output.data, (k) => new Int32Array(k)),
      line: pick(line, (k) => new Int32Array(k)),
      ids,
      values: this.values.values,
      processes: this.processes.values as (number | string)[],
    });
  }
}

/** The columns of a {@link CompactHistory}. */
export interface CompactColumns {
  format: string;
  model?: string;
  /** Call times. */
  call: Float64Array;
  /** Return times (`Infinity` when indeterminate). */
  ret: Float64Array;
  /** {@link STATUS_OK}, {@link STATUS_FAIL} or {@link STATUS_INFO}. */
  status: Uint8Array;
  /** Index into `processes`. */
  process: Int32Array;
  /** Index into `values`. */
  input: Int32Array;
  /** Index into `values`, or -1 when the output is unknown. */
  output: Int32Array;
  /** 1-based source line, 0 when unknown. */
  line: Int32Array;
  /** Source ids. */
  ids: (number | string)[];
  /** Interned inputs and outputs. */
  values: unknown[];
  /** Interned processes. */
  processes: (number | string)[];
}

/**
 * A {@link History} stored as columns: about 40 bytes per operation plus the distinct inputs and
 * outputs (a read of one key is stored once however often it occurs). The JSON-lines reader
 * returns one; the checker works on the columns directly.
 *
 * {@link operations} builds ordinary {@link Operation} objects on first use (costing a few
 * hundred bytes per operation); after that the checker reads the objects (so edits to them
 * count), and the columns are only used when no one has asked for the objects.
 */
export class CompactHistory implements History {
  /** The format read from. */
  readonly format: string;
  /** The model the file names, if any. */
  readonly model?: string;
  /** Number of operations. */
  readonly size: number;
  /** The columns. */
  readonly columns: Readonly<CompactColumns>;
  private materialized: Operation[] | undefined;

  /** @param columns - equal-length columns, sorted by call time. */
  constructor(columns: CompactColumns) {
    this.columns = columns;
    this.format = columns.format;
    if (columns.model !== undefined) this.model = columns.model;
    this.size = columns.call.length;
  }

  /** Whether {@link operations} has been built (then it, not the columns, is authoritative). */
  get isMaterialized(): boolean {
    return this.materialized !== undefined;
  }

  /** Operation `i` as an object (built on each call; cheap for a few). */
  op(i: number): Operation {
    if (this.materialized !== undefined) return this.materialized[i] as Operation;
    const c = this.columns;
    const out = c.output[i] as number;
    const line = c.line[i] as number;
    const op: Operation = {
      index: i,
      id: c.ids[i] as number | string,
      process: c.processes[c.process[i] as number] as number | string,
      call: c.call[i] as number,
      ret: c.ret[i] as number,
      input: c.values[c.input[i] as number],
      output: out < 0 ? undefined : c.values[out],
      status: STATUS_NAMES[c.status[i] as number] as OperationStatus,
    };
    if (line > 0) op.line = line;
    return op;
  }

  /** Every operation as objects, built once on first access (see the class notes). */
  get operations(): Operation[] {
    if (this.materialized === undefined) {
      const ops: Operation[] = new Array(this.size);
      for (let i = 0; i < this.size; i++) ops[i] = this.op(i);
      this.materialized = ops;
    }
    return this.materialized;
  }
}

/**
 * The compact form of any history: a {@link CompactHistory} whose objects were never built is
 * returned as is; anything else is converted (inputs and outputs interned by their JSON text).
 */
export function toCompact(history: History): CompactHistory {
  if (history instanceof CompactHistory && !history.isMaterialized) return history;
  const b = new CompactHistoryBuilder();
  for (const op of history.operations) {
    const out = op.output === undefined ? -1 : internValue(b.values, op.output);
    b.add(
      op.id,
      b.internProcess(op.process),
      op.call,
      op.ret,
      internValue(b.values, op.input),
      out,
      op.status === 'ok' ? STATUS_OK : op.status === 'fail' ? STATUS_FAIL : STATUS_INFO,
      op.line ?? 0,
    );
  }
  // keep the caller's positions: results name operations by their index in `history.operations`
  return b.finish(history.format, history.model, false);
}

/**
 * Interns a value by its JSON text when it is plain JSON data; other values (a Map, a class
 * instance) are interned by identity, so they never share an id with another value.
 */
export function internValue(table: ValueTable, value: unknown): number {
  const text = plainJson(value);
  if (text !== undefined) return table.intern(value, text);
  return table.intern(value, `\u0000${table.size}`);
}

/**
 * The JSON text of `value` when it is plain JSON data (null, booleans, finite numbers, strings,
 * arrays, plain objects), so that equal texts mean equal values; `undefined` otherwise.
 */
export function plainJson(value: unknown): string | undefined {
  const plain = (v: unknown): boolean => {
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
    if (typeof v === 'number') return Number.isFinite(v);
    if (Array.isArray(v)) return v.every(plain);
    if (typeof v !== 'object') return false;
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return false;
    return Object.values(v as Record<string, unknown>).every((x) => x !== undefined && plain(x));
  };
  return plain(value) ? JSON.stringify(value) : undefined;
}
