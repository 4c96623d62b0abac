import { describe, expect, it } from 'vitest';
import { parseEdn, readEdn } from './edn.js';
import { HistoryParseError } from './errors.js';
import { detectFormat, readHistory } from './formats.js';
import { HistoryRecorder, readJsonl } from './jsonl.js';
import { readPorcupineEtcd, readPorcupineKv } from './porcupine.js';

function lineOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HistoryParseError);
    return (err as HistoryParseError).line;
  }
  throw new Error('expected a HistoryParseError');
}

const jl = (...events: object[]): string => `${events.map((e) => JSON.stringify(e)).join('\n')}\n`;

describe('JSON-lines reader', () => {
  it('reads invoke/ok/fail/info, sorts by time, and leaves unfinished ops indeterminate', () => {
    const h = readJsonl(
      jl(
        { paxkvHistory: 1, model: 'kv' },
        { type: 'ok', process: 1, id: 'a', time: 20, result: { created: true } },
        { type: 'invoke', process: 1, id: 'a', time: 10, op: { f: 'put', key: 'k', value: 'v' } },
        { type: 'invoke', process: 2, id: 'b', time: 5, op: { f: 'get', key: 'k' } },
        { type: 'info', process: 2, id: 'b', time: 30, error: 'timeout' },
        { type: 'invoke', process: 3, id: 'c', time: 6, op: { f: 'delete', key: 'k' } },
        { type: 'fail', process: 3, id: 'c', time: 7, error: 'no leader' },
        { type: 'invoke', process: 4, id: 'd', time: 40, op: { f: 'get', key: 'k' } },
      ),
    );
    expect(h.model).toBe('kv');
    expect(h.operations.map((o) => o.id)).toEqual(['b', 'c', 'a', 'd']);
    const [b, c, a, d] = h.operations;
    expect(b).toMatchObject({ status: 'info', ret: Number.POSITIVE_INFINITY, output: undefined, line: 4 });
    expect(c).toMatchObject({ status: 'fail', ret: 7 });
    expect(a).toMatchObject({ status: 'ok', call: 10, ret: 20, output: { created: true } });
    expect(d).toMatchObject({ status: 'info', ret: Number.POSITIVE_INFINITY });
    expect(h.operations.map((o) => o.index)).toEqual([0, 1, 2, 3]);
  });

  it.each([
    ['bad JSON', '{"type":', 1, /not valid JSON/],
    ['not an object', '[1,2]', 1, /JSON object/],
    ['unknown type', jl({ type: 'done', process: 1, id: 1, time: 1 }), 1, /"type" must be/],
    ['missing time', jl({ type: 'invoke', process: 1, id: 1, op: { f: 'get', key: 'a' } }), 1, /"time"/],
    ['missing op', jl({ type: 'invoke', process: 1, id: 1, time: 1 }), 1, /"op"/],
    ['completion without invoke', jl({ type: 'ok', process: 1, id: 9, time: 1 }), 1, /has no invoke/],
    [
      'duplicate id',
      jl(
        { type: 'invoke', process: 1, id: 1, time: 1, op: {} },
        { type: 'invoke', process: 2, id: 1, time: 2, op: {} },
      ),
      2,
      /invoked twice/,
    ],
    [
      'completed twice',
      jl(
        { type: 'invoke', process: 1, id: 1, time: 1, op: {} },
        { type: 'ok', process: 1, id: 1, time: 2 },
        { type: 'ok', process: 1, id: 1, time: 3 },
      ),
      3,
      /completed twice/,
    ],
    [
      'return before call',
      jl({ type: 'invoke', process: 1, id: 1, time: 5, op: {} }, { type: 'ok', process: 1, id: 1, time: 2 }),
      2,
      /before its invoke/,
    ],
    ['wrong version', jl({ paxkvHistory: 2 }), 1, /version 2/],
    [
      'header after events',
      jl({ type: 'invoke', process: 1, id: 1, time: 1, op: {} }, { paxkvHistory: 1 }),
      2,
      /first/,
    ],
  ])('rejects %s with the line', (_name, text, line, msg) => {
    expect(lineOf(() => readJsonl(text))).toBe(line);
    expect(() => readJsonl(text)).toThrow(msg);
  });

  it('round-trips what HistoryRecorder writes', () => {
    let t = 0;
    const rec = new HistoryRecorder({ model: 'kv', clock: () => ++t });
    const a = rec.invoke(1, { f: 'put', key: 'k', value: 'v' });
    const b = rec.invoke(2, { f: 'get', key: 'k' });
    rec.ok(a, { created: true });
    rec.info(b, 'timeout');
    const c = rec.invoke(3, { f: 'delete', key: 'k' });
    rec.fail(c);
    expect(() => rec.ok(a, {})).toThrow(/not open/);
    const h = readJsonl(rec.toString());
    expect(h.model).toBe('kv');
    expect(h.operations.map((o) => o.status)).toEqual(['ok', 'info', 'fail']);
    expect(rec.lines()[0]).toBe('{"paxkvHistory":1,"model":"kv"}');
  });

  it('streams to a sink', () => {
    const lines: string[] = [];
    const rec = new HistoryRecorder({ sink: (l) => lines.push(l) });
    rec.ok(rec.invoke(1, { f: 'read' }), { value: null });
    expect(lines).toHaveLength(3);
    expect(rec.toString()).toBe('');
  });
});

describe('EDN', () => {
  it('parses maps, vectors, sets, keywords, strings, numbers, nil, tags and comments', () => {
    const [f] = parseEdn('{:a [1 -2 3.5 "s\\n" nil true] :b #{:x} :c #inst "2020" ; note\n}');
    const m = f?.value as Map<unknown, unknown>;
    expect(m.size).toBe(3);
  });
  it.each([
    ['{:a 1', /missing "}"/],
    ['{:a}', /even number/],
    ['"abc', /unterminated/],
    [')', /unexpected "\)"/],
    ['['.repeat(100_000), /nesting deeper than 200/],
  ])('rejects %s', (text, msg) => {
    expect(() => parseEdn(text)).toThrow(msg);
  });

  it('reads a Jepsen cas-register history (one map per line), dropping nothing at read time', () => {
    const h = readEdn(
      [
        '{:type :invoke, :f :write, :value 1, :process 0}',
        '{:type :invoke, :f :cas, :value [1 2], :process 1}',
        '{:type :ok, :f :write, :value 1, :process 0}',
        '{:type :info, :f :cas, :value [1 2], :process 1}',
        '{:type :invoke, :f :read, :value nil, :process 2}',
        '{:type :ok, :f :read, :value 2, :process 2}',
        '{:type :info, :f :start, :process :nemesis}',
      ].join('\n'),
    );
    expect(h.model).toBe('cas-register');
    expect(h.operations.map((o) => o.input)).toEqual([
      { f: 'write', value: 1 },
      { f: 'cas', expected: 1, value: 2 },
      { f: 'read' },
    ]);
    expect(h.operations[1]).toMatchObject({ status: 'info', ret: Number.POSITIVE_INFINITY });
    expect(h.operations[2]?.output).toEqual({ value: 2 });
  });

  it('reads a history given as one vector', () => {
    const h = readEdn('[{:type :invoke :f :read :process 0} {:type :ok :f :read :value 3 :process 0}]');
    expect(h.operations).toHaveLength(1);
  });

  it.each([
    ['{:type :ok, :f :read, :value 1, :process 0}', 1, /no open :invoke/],
    ['{:type :invoke, :f :fly, :value 1, :process 0}', 1, /unknown register operation/],
    ['{:type :begin, :f :read, :process 0}', 1, /:type must be/],
    ['{:type :invoke, :f :read, :process 0}\n{:type :invoke, :f :read, :process 0}', 2, /invokes again/],
    ['{:type :invoke, :f :cas, :value 3, :process 0}', 1, /\[expected new\]/],
    [
      '{:type :invoke, :f :read, :process 0}\n{:type :ok, :f :write, :value 1, :process 0}',
      2,
      /does not match/,
    ],
  ])('rejects %s', (text, line, msg) => {
    expect(lineOf(() => readEdn(text))).toBe(line);
    expect(() => readEdn(text)).toThrow(msg);
  });
});

describe('Porcupine etcd logs', () => {
  const log = (...lines: string[]): string => `${lines.map((l) => `INFO  jepsen.util - ${l}`).join('\n')}\n`;
  it('reads tab- and space-separated lines with Porcupine semantics', () => {
    const h = readPorcupineEtcd(
      log(
        '0\t:invoke\t:read\tnil',
        '1   :invoke :cas    [1 2]',
        '0\t:ok\t:read\tnil',
        '1   :fail   :cas    [1 2]',
        '2\t:invoke\t:write\t3',
        '2\t:info\t:write\t:timed-out',
      ),
    );
    expect(h.model).toBe('etcd');
    expect(h.operations.map((o) => [o.input, o.output, o.status, o.ret])).toEqual([
      [{ f: 'read' }, { value: null }, 'ok', 3],
      [{ f: 'cas', expected: 1, value: 2 }, { ok: false }, 'ok', 4],
      [{ f: 'write', value: 3 }, undefined, 'info', Number.POSITIVE_INFINITY],
    ]);
  });
  it.each([
    ['garbage', log('x'), 1, /not a Jepsen etcd log line/],
    ['unknown shape', log('0\t:invoke\t:write\tnil'), 1, /unexpected line shape/],
    ['bad value', log('0\t:invoke\t:write\tfoo'), 1, /is not nil/],
    ['completion without invoke', log('0\t:ok\t:read\t1'), 1, /no open :invoke/],
    [
      'ok write with timeout',
      log('0\t:invoke\t:write\t1', '0\t:ok\t:write\t:timed-out'),
      2,
      /unexpected line shape/,
    ],
  ])('rejects %s', (_n, text, line, msg) => {
    expect(lineOf(() => readPorcupineEtcd(text))).toBe(line);
    expect(() => readPorcupineEtcd(text)).toThrow(msg);
  });
});

describe('Porcupine kv', () => {
  it('reads get/put/append and rejects anything else', () => {
    const h = readPorcupineKv(
      '{:process 0, :type :invoke, :f :append, :key "1", :value "x"}\n{:process 0, :type :ok, :f :append, :key "1", :value "x"}\n',
    );
    expect(h.model).toBe('porcupine-kv');
    expect(h.operations[0]?.input).toEqual({ f: 'append', key: '1', value: 'x' });
    expect(
      lineOf(() =>
        readPorcupineKv(
          '{:process 0, :type :invoke, :f :append, :key "1", :value "x"}\n{:process 0 :type :ok}\n',
        ),
      ),
    ).toBe(2);
  });
});

describe('format detection', () => {
  it.each([
    ['INFO  jepsen.util - 0\t:invoke\t:read\tnil', 'porcupine-etcd'],
    ['{:process 0, :type :invoke, :f :get, :key "1", :value nil}', 'porcupine-kv'],
    ['{"type":"invoke"}', 'jsonl'],
    ['{:type :invoke, :f :read, :process 0}', 'edn'],
    ['[{:type :invoke}]', 'edn'],
    ['', 'jsonl'],
  ])('%s → %s', (text, fmt) => {
    expect(detectFormat(text)).toBe(fmt);
  });
  it('refuses to guess on junk', () => {
    expect(() => detectFormat('hello')).toThrow(/--format/);
  });
  it('reads an empty etcd log as an empty history', () => {
    expect(readHistory('', 'porcupine-etcd').operations).toEqual([]);
  });
});

describe('Porcupine kv line matching', () => {
  const line = (p: number, t: string, f: string, k: string, v: string): string =>
    `{:process ${p}, :type :${t}, :f :${f}, :key "${k}", :value ${v}}`;
  it('reads a get result and checks invoke/ok pairing', () => {
    const h = readPorcupineKv(
      [line(0, 'invoke', 'get', '1', 'nil'), line(0, 'ok', 'get', '1', '"x y"')].join('\n'),
    );
    expect(h.operations[0]).toMatchObject({
      input: { f: 'get', key: '1' },
      output: { value: 'x y' },
      call: 1,
      ret: 2,
      status: 'ok',
    });
  });
  it.each([
    ['ok without invoke', [line(0, 'ok', 'get', '1', '""')], 1, /no open :invoke/],
    [
      'mismatched key',
      [line(0, 'invoke', 'get', '1', 'nil'), line(0, 'ok', 'get', '2', '""')],
      2,
      /does not match/,
    ],
    ['put with nil', [line(0, 'invoke', 'put', '1', 'nil')], 1, /string :value/],
    [
      'double invoke',
      [line(0, 'invoke', 'get', '1', 'nil'), line(0, 'invoke', 'get', '1', 'nil')],
      2,
      /invokes again/,
    ],
  ])('rejects %s', (_n, lines, ln, msg) => {
    expect(lineOf(() => readPorcupineKv(lines.join('\n')))).toBe(ln);
    expect(() => readPorcupineKv(lines.join('\n'))).toThrow(msg);
  });
});
