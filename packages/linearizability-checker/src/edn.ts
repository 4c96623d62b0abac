/**
 * A small EDN reader (enough for Jepsen histories) and the Jepsen history reader.
 * @module
 */
import { HistoryParseError } from './errors.js';
import type { History, Operation } from './history.js';

/** An EDN keyword, e.g. `:invoke`. */
export class Keyword {
  /** @param name - the name without the colon. */
  constructor(readonly name: string) {}
  /** `:name`. */
  toString(): string {
    return `:${this.name}`;
  }
}
/** An EDN symbol, e.g. `foo`. */
export class EdnSymbol {
  /** @param name - the symbol's text. */
  constructor(readonly name: string) {}
}
/** A tagged EDN value, e.g. `#inst "..."`. */
export interface Tagged {
  readonly tag: string;
  readonly value: EdnValue;
}
/** Any EDN value. Maps keep keys as EDN values in a `Map`; keyword keys are looked up with {@link ednGet}. */
export type EdnValue =
  | null
  | boolean
  | number
  | string
  | Keyword
  | EdnSymbol
  | EdnValue[]
  | Map<EdnValue, EdnValue>
  | Set<EdnValue>
  | Tagged;

/** Looks a keyword key up in an EDN map. */
export function ednGet(map: Map<EdnValue, EdnValue>, keyword: string): EdnValue | undefined {
  for (const [k, v] of map) if (k instanceof Keyword && k.name === keyword) return v;
  return undefined;
}

const DELIM = new Set([' ', '\t', '\n', '\r', ',', '(', ')', '[', ']', '{', '}', '"', ';']);

/** Deepest nesting {@link parseEdn} accepts by default (histories nest 2–3 levels). */
export const DEFAULT_EDN_MAX_DEPTH = 200;

/** One top-level EDN form with the line it starts on. */
export interface EdnForm {
  readonly value: EdnValue;
  readonly line: number;
}

/**
 * Parses every top-level EDN form in `text`, nested at most `maxDepth` levels.
 * @throws HistoryParseError with the line of the problem.
 */
export function parseEdn(text: string, maxDepth: number = DEFAULT_EDN_MAX_DEPTH): EdnForm[] {
  let i = 0;
  let line = 1;
  let depth = 0;
  const fail = (msg: string): never => {
    throw new HistoryParseError(`EDN: ${msg}`, line);
  };
  const skip = (): void => {
    while (i < text.length) {
      const c = text[i] as string;
      if (c === '\n') {
        line++;
        i++;
      } else if (c === ' ' || c === '\t' || c === '\r' || c === ',') i++;
      else if (c === ';') {
        while (i < text.length && text[i] !== '\n') i++;
      } else break;
    }
  };
  const readSeq = (close: string): EdnValue[] => {
    const out: EdnValue[] = [];
    const opened = line;
    if (++depth > maxDepth) fail(`nesting deeper than ${maxDepth} levels: not a history`);
    for (;;) {
      skip();
      if (i >= text.length) {
        throw new HistoryParseError(
          `EDN: missing "${close}" before end of input (opened on this line)`,
          opened,
        );
      }
      if (text[i] === close) {
        i++;
        depth--;
        return out;
      }
      out.push(read());
    }
  };
  const read = (): EdnValue => {
    skip();
    if (i >= text.length) fail('unexpected end of input');
    const c = text[i] as string;
    if (c === '{') {
      i++;
      const items = readSeq('}');
      if (items.length % 2 !== 0) fail('a map needs an even number of forms');
      const m = new Map<EdnValue, EdnValue>();
      for (let k = 0; k < items.length; k += 2) m.set(items[k] as EdnValue, items[k + 1] as EdnValue);
      return m;
    }
    if (c === '[' || c === '(') {
      i++;
      return readSeq(c === '[' ? ']' : ')');
    }
    if (c === ')' || c === ']' || c === '}') fail(`unexpected "${c}"`);
    if (c === '"') {
      i++;
      let s = '';
      for (;;) {
        if (i >= text.length) fail('unterminated string');
        const d = text[i++] as string;
        if (d === '"') return s;
        if (d === '\n') line++;
        if (d === '\\') {
          const esc = text[i++];
          if (esc === 'n') s += '\n';
          else if (esc === 't') s += '\t';
          else if (esc === 'r') s += '\r';
          else if (esc === '"' || esc === '\\') s += esc;
          else if (esc === 'u') {
            const hex = text.slice(i, i + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
            s += String.fromCharCode(Number.parseInt(hex, 16));
            i += 4;
          } else fail(`unknown string escape \\${esc ?? ''}`);
        } else s += d;
      }
    }
    if (c === '#') {
      i++;
      if (text[i] === '{') {
        i++;
        return new Set(readSeq('}'));
      }
      if (text[i] === '_') {
        i++;
        read();
        return read();
      }
      const tag = readToken();
      return { tag, value: read() };
    }
    const tok = readToken();
    if (tok === '') fail(`unexpected character ${JSON.stringify(c)}`);
    if (tok === 'nil') return null;
    if (tok === 'true') return true;
    if (tok === 'false') return false;
    if (tok.startsWith(':')) {
      if (tok.length === 1) fail('empty keyword');
      return new Keyword(tok.slice(1));
    }
    if (tok.startsWith('\\')) return tok.slice(1);
    if (/^[+-]?\d/.test(tok)) {
      const num = Number(tok.replace(/[NM]$/, ''));
      if (Number.isNaN(num)) fail(`bad number ${tok}`);
      return num;
    }
    return new EdnSymbol(tok);
  };
  const readToken = (): string => {
    const start = i;
    while (i < text.length && !DELIM.has(text[i] as string)) i++;
    return text.slice(start, i);
  };
  const forms: EdnForm[] = [];
  for (;;) {
    skip();
    if (i >= text.length) return forms;
    const at = line;
    forms.push({ value: read(), line: at });
  }
}

function kw(v: EdnValue | undefined): string | undefined {
  return v instanceof Keyword ? v.name : undefined;
}

function scalar(v: EdnValue | undefined): string | number | boolean | null | undefined {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (v instanceof Keyword) return v.toString();
  return undefined;
}

/** Options of {@link readEdn}. */
export interface EdnReadOptions {
  /** Format name recorded in the history. Default `edn`. */
  format?: string;
  /** Model hint for histories with `:key` fields. Default `kv`. */
  keyedModel?: string;
}

interface OpenOp {
  op: Operation;
}
/**
 * Reads a Jepsen history in EDN: one map per line, or one vector of maps. Each map has `:type`
 * (`:invoke`, `:ok`, `:fail`, `:info`), `:process`, `:f` and `:value`. Register ops: `:read`,
 * `:write v`, `:cas [old new]`. With a `:key` field the ops are KV ops (`:get`/`:read`,
 * `:put`/`:write`, `:append`, `:cas`, `:delete`). A completion matches the open invoke of the same
 * process. `:fail` means the op did not happen (dropped); `:info` leaves it indeterminate.
 * Event order is real-time order.
 * @throws HistoryParseError naming the line.
 */
export function readEdn(text: string, options: EdnReadOptions = {}): History {
  let forms = parseEdn(text);
  if (forms.length === 1 && Array.isArray(forms[0]?.value)) {
    const line = forms[0].line;
    forms = (forms[0].value as EdnValue[]).map((value) => ({ value, line }));
  }
  const operations: Operation[] = [];
  const open = new Map<string, OpenOp>();
  let keyed = false;
  let t = 0;
  for (const { value, line } of forms) {
    t++;
    if (!(value instanceof Map))
      throw new HistoryParseError('expected an EDN map like {:type :invoke, :f :read, ...}', line);
    const type = kw(ednGet(value, 'type'));
    const f = kw(ednGet(value, 'f'));
    const procV = ednGet(value, 'process');
    if (type === undefined || !['invoke', 'ok', 'fail', 'info'].includes(type)) {
      throw new HistoryParseError(':type must be :invoke, :ok, :fail or :info', line);
    }
    if (f === undefined) throw new HistoryParseError(':f must be a keyword such as :read', line);
    if (procV instanceof Keyword && procV.name === 'nemesis') continue;
    const proc = scalar(procV);
    if (typeof proc !== 'number' && typeof proc !== 'string')
      throw new HistoryParseError(':process must be a number', line);
    const pk = String(proc);
    const val = ednGet(value, 'value');
    const keyV = ednGet(value, 'key');
    const key = keyV === undefined ? undefined : scalar(keyV);
    if (keyV !== undefined && key === undefined)
      throw new HistoryParseError(':key must be a string or number', line);
    if (type === 'invoke') {
      if (open.has(pk))
        throw new HistoryParseError(`process ${pk} invokes again while its previous op is still open`, line);
      const input = toInput(f, val, key, line);
      if (key !== undefined) keyed = true;
      const op: Operation = {
        index: operations.length,
        id: line,
        process: proc,
        call: t,
        ret: Number.POSITIVE_INFINITY,
        input,
        output: undefined,
        status: 'info',
        line,
      };
      operations.push(op);
      open.set(pk, { op });
      continue;
    }
    const o = open.get(pk);
    if (o === undefined) throw new HistoryParseError(`:${type} for process ${pk} has no open :invoke`, line);
    const inF = (o.op.input as { f: string }).f;
    if (toF(f, key !== undefined) !== inF)
      throw new HistoryParseError(`:${type} :${f} does not match the open :invoke of process ${pk}`, line);
    open.delete(pk);
    if (type === 'info') continue;
    o.op.ret = t;
    if (type === 'fail') {
      o.op.status = 'fail';
      continue;
    }
    o.op.status = 'ok';
    o.op.output = toOutput(inF, val, line);
  }
  return {
    operations,
    format: options.format ?? 'edn',
    model: keyed ? (options.keyedModel ?? 'kv') : 'cas-register',
  };
}

function toF(f: string, keyed: boolean): string {
  if (!keyed) return f;
  if (f === 'read') return 'get';
  if (f === 'write') return 'put';
  return f;
}

function toInput(
  f: string,
  v: EdnValue | undefined,
  key: string | number | boolean | null | undefined,
  line: number,
): unknown {
  if (key !== undefined) {
    const k = String(key);
    const g = toF(f, true);
    const s = scalar(v);
    switch (g) {
      case 'get':
        return { f: 'get', key: k };
      case 'delete':
        return { f: 'delete', key: k };
      case 'put':
      case 'append':
        if (s === undefined || s === null) throw new HistoryParseError(`:${f} needs a :value`, line);
        return { f: g, key: k, value: String(s) };
      case 'cas': {
        if (!Array.isArray(v) || v.length !== 2)
          throw new HistoryParseError(':cas needs :value [expected new]', line);
        const a = scalar(v[0]);
        const b = scalar(v[1]);
        if (a === undefined || b === undefined || b === null)
          throw new HistoryParseError(':cas [expected new] must hold scalars', line);
        return { f: 'cas', key: k, expected: a === null ? null : String(a), value: String(b) };
      }
      default:
        throw new HistoryParseError(
          `unknown KV operation :${f}: use :get, :put, :append, :cas or :delete`,
          line,
        );
    }
  }
  switch (f) {
    case 'read':
      return { f: 'read' };
    case 'write': {
      const s = scalar(v);
      if (s === undefined) throw new HistoryParseError(':write needs a scalar :value', line);
      return { f: 'write', value: s };
    }
    case 'cas': {
      if (!Array.isArray(v) || v.length !== 2)
        throw new HistoryParseError(':cas needs :value [expected new]', line);
      const a = scalar(v[0]);
      const b = scalar(v[1]);
      if (a === undefined || b === undefined)
        throw new HistoryParseError(':cas [expected new] must hold scalars', line);
      return { f: 'cas', expected: a, value: b };
    }
    default:
      throw new HistoryParseError(
        `unknown register operation :${f}: use :read, :write or :cas (or add :key for KV ops)`,
        line,
      );
  }
}

function toOutput(f: string, v: EdnValue | undefined, line: number): unknown {
  switch (f) {
    case 'read':
    case 'get': {
      const s = scalar(v);
      if (s === undefined) throw new HistoryParseError(`:ok :${f} needs a scalar :value`, line);
      return { value: s };
    }
    case 'cas':
      return { ok: true };
    default:
      return {};
  }
}
