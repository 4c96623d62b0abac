/**
 * Readers for the formats of Porcupine's published test data: the Jepsen etcd logs
 * (`test_data/jepsen/etcd_NNN.log`) and the kv histories (`test_data/kv/cNN-*.txt`).
 * @module
 */
import { HistoryParseError } from './errors.js';
import type { History, Operation } from './history.js';

const ETCD_LINE = /^INFO {2}jepsen\.util - (\d+)\s+(:invoke|:ok|:fail|:info)\s+(:read|:write|:cas)\s+(.+)$/;
const INT = /^\d+$/;
const PAIR = /^\[(\d+) (\d+)\]$/;

type EtcdValue =
  | { kind: 'nil' }
  | { kind: 'int'; v: number }
  | { kind: 'pair'; a: number; b: number }
  | { kind: 'timeout' };

function etcdValue(s: string, line: number): EtcdValue {
  if (s === 'nil') return { kind: 'nil' };
  if (s === ':timed-out') return { kind: 'timeout' };
  if (INT.test(s)) return { kind: 'int', v: Number(s) };
  const m = PAIR.exec(s);
  if (m) return { kind: 'pair', a: Number(m[1]), b: Number(m[2]) };
  throw new HistoryParseError(`value ${JSON.stringify(s)} is not nil, an integer, [a b] or :timed-out`, line);
}

/**
 * Reads a Porcupine/Jepsen etcd log (`INFO  jepsen.util - <process> <type> <f> <value>`, fields
 * separated by tabs or runs of spaces). Line order is real-time order. A completion matches the
 * open invoke of its process. Porcupine's semantics: `:fail :cas` is a definite "value ≠ expected"
 * answer (kept, as `{ok: false}`); `:info` and `:fail :read :timed-out` leave the op
 * indeterminate. Only the 11 line shapes of that data are accepted.
 * @throws HistoryParseError naming the line, for any other shape.
 */
export function readPorcupineEtcd(text: string): History {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const operations: Operation[] = [];
  const open = new Map<number, Operation>();
  for (let i = 0; i < lines.length; i++) {
    const ln = i + 1;
    const m = ETCD_LINE.exec((lines[i] as string).replace(/\r$/, ''));
    if (!m)
      throw new HistoryParseError(
        'not a Jepsen etcd log line: expected "INFO  jepsen.util - <process> :<type> :<f> <value>"',
        ln,
      );
    const proc = Number(m[1]);
    const type = (m[2] as string).slice(1);
    const f = (m[3] as string).slice(1);
    const val = etcdValue((m[4] as string).trim(), ln);
    const shape = `${type} ${f} ${val.kind}`;
    if (type === 'invoke') {
      if (open.has(proc))
        throw new HistoryParseError(`process ${proc} invokes again while its previous op is open`, ln);
      let input: unknown;
      if (shape === 'invoke read nil') input = { f: 'read' };
      else if (shape === 'invoke write int' && val.kind === 'int') input = { f: 'write', value: val.v };
      else if (shape === 'invoke cas pair' && val.kind === 'pair')
        input = { f: 'cas', expected: val.a, value: val.b };
      else throw new HistoryParseError(`unexpected line shape ":${shape.replace(/ /g, ' :')}"`, ln);
      const op: Operation = {
        index: operations.length,
        id: ln,
        process: proc,
        call: ln,
        ret: Number.POSITIVE_INFINITY,
        input,
        output: undefined,
        status: 'info',
        line: ln,
      };
      operations.push(op);
      open.set(proc, op);
      continue;
    }
    const op = open.get(proc);
    if (op === undefined) throw new HistoryParseError(`:${type} for process ${proc} has no open :invoke`, ln);
    if ((op.input as { f: string }).f !== f)
      throw new HistoryParseError(
        `:${type} :${f} does not match the open :invoke :${(op.input as { f: string }).f} of process ${proc}`,
        ln,
      );
    open.delete(proc);
    if (shape === 'ok read nil' || shape === 'ok read int') {
      op.ret = ln;
      op.status = 'ok';
      op.output = { value: val.kind === 'int' ? val.v : null };
    } else if (shape === 'ok write int') {
      op.ret = ln;
      op.status = 'ok';
      op.output = {};
    } else if (shape === 'ok cas pair' || shape === 'fail cas pair') {
      op.ret = ln;
      op.status = 'ok';
      op.output = { ok: type === 'ok' };
    } else if (
      shape === 'fail read timeout' ||
      shape === 'info read timeout' ||
      shape === 'info write timeout' ||
      shape === 'info cas timeout'
    ) {
      // indeterminate: stays open to the end of the history
    } else {
      throw new HistoryParseError(`unexpected line shape :${type} :${f} ${(m[4] as string).trim()}`, ln);
    }
  }
  return { operations, format: 'porcupine-etcd', model: 'etcd' };
}

const KV_LINE =
  /^\{:process (\d+), :type :(invoke|ok), :f :(get|put|append), :key "([^"]*)", :value (nil|"[^"]*")\}$/;

/**
 * Reads a Porcupine kv history (`{:process 0, :type :invoke, :f :append, :key "0", :value "x"}`
 * per line). Checked with the `porcupine-kv` model: a missing key reads as `""`. Line order is
 * real-time order; an `:ok` completes the open invoke of its process (`:value` echoes the argument
 * of put and append, and is the result of get).
 * @throws HistoryParseError naming the line, for any line outside that grammar.
 */
export function readPorcupineKv(text: string): History {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const operations: Operation[] = [];
  const open = new Map<number, Operation>();
  for (let i = 0; i < lines.length; i++) {
    const ln = i + 1;
    const m = KV_LINE.exec((lines[i] as string).replace(/\r$/, ''));
    if (!m) {
      throw new HistoryParseError(
        'not a Porcupine kv line: expected {:process N, :type :invoke|:ok, :f :get|:put|:append, :key "k", :value nil|"v"}',
        ln,
      );
    }
    const proc = Number(m[1]);
    const type = m[2] as string;
    const f = m[3] as 'get' | 'put' | 'append';
    const key = m[4] as string;
    const raw = m[5] as string;
    const value = raw === 'nil' ? null : raw.slice(1, -1);
    if (type === 'invoke') {
      if (open.has(proc))
        throw new HistoryParseError(`process ${proc} invokes again while its previous op is open`, ln);
      if ((f === 'get') !== (value === null)) {
        throw new HistoryParseError(
          `:invoke :${f} needs ${f === 'get' ? ':value nil' : 'a string :value'}`,
          ln,
        );
      }
      const input = f === 'get' ? { f, key } : { f, key, value: value as string };
      const op: Operation = {
        index: operations.length,
        id: ln,
        process: proc,
        call: ln,
        ret: Number.POSITIVE_INFINITY,
        input,
        output: undefined,
        status: 'info',
        line: ln,
      };
      operations.push(op);
      open.set(proc, op);
      continue;
    }
    const op = open.get(proc);
    if (op === undefined) throw new HistoryParseError(`:ok for process ${proc} has no open :invoke`, ln);
    const inp = op.input as { f: string; key: string };
    if (inp.f !== f || inp.key !== key) {
      throw new HistoryParseError(
        `:ok :${f} ${JSON.stringify(key)} does not match the open :invoke of process ${proc}`,
        ln,
      );
    }
    if (f === 'get' && value === null) throw new HistoryParseError(':ok :get needs a string :value', ln);
    open.delete(proc);
    op.ret = ln;
    op.status = 'ok';
    op.output = f === 'get' ? { value } : {};
  }
  return { operations, format: 'porcupine-kv', model: 'porcupine-kv' };
}
