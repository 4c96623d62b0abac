import {
  type Compare,
  DEFAULT_MAX_VALUE_BYTES,
  type KvOp,
  type KvResult,
  type RangeResult,
  type Session,
} from '@paxkv/common';
import { describe, expect, it } from 'vitest';
import { encode } from './codec.js';
import type { KvCommand } from './command.js';
import { KvStateMachine, valuesEqual } from './state-machine.js';

let n = 0;
const cmd = (op: KvOp, session?: Session): KvCommand => ({
  id: `t${n++}`,
  op,
  ...(session ? { session } : {}),
});

const ABSENT = { createRevision: 0, modRevision: 0, version: 0 };
const rev = (createRevision: number, modRevision: number, version: number) => ({
  createRevision,
  modRevision,
  version,
});

function run(m: KvStateMachine, op: KvOp, session?: Session) {
  return m.apply(m.appliedIndex, cmd(op, session));
}

describe('KvStateMachine operations', () => {
  const cases: Array<{
    name: string;
    before: Array<[string, string]>;
    op: KvOp;
    result: unknown;
    after?: string | null;
  }> = [
    {
      name: 'get absent',
      before: [],
      op: { op: 'get', key: 'k' },
      result: { op: 'get', value: null, ...ABSENT, revision: 0, partition: 0 },
    },
    {
      name: 'get present',
      before: [['k', 'v']],
      op: { op: 'get', key: 'k' },
      result: { op: 'get', value: 'v', ...rev(1, 1, 1), revision: 1, partition: 0 },
    },
    {
      name: 'put creates',
      before: [],
      op: { op: 'put', key: 'k', value: 'a' },
      result: { op: 'put', created: true, ...rev(1, 1, 1), revision: 1, partition: 0 },
      after: 'a',
    },
    {
      name: 'put updates',
      before: [['k', 'v']],
      op: { op: 'put', key: 'k', value: 'a' },
      result: { op: 'put', created: false, ...rev(1, 2, 2), revision: 2, partition: 0 },
      after: 'a',
    },
    {
      name: 'delete absent',
      before: [],
      op: { op: 'delete', key: 'k' },
      result: { op: 'delete', existed: false, revision: 0, partition: 0 },
      after: null,
    },
    {
      name: 'delete present',
      before: [['k', 'v']],
      op: { op: 'delete', key: 'k' },
      result: { op: 'delete', existed: true, revision: 2, partition: 0 },
      after: null,
    },
    {
      name: 'cas absent-only on absent',
      before: [],
      op: { op: 'cas', key: 'k', expected: null, value: 'a' },
      result: { op: 'cas', outcome: 'applied', current: 'a', ...rev(1, 1, 1), revision: 1, partition: 0 },
      after: 'a',
    },
    {
      name: 'cas absent-only on present',
      before: [['k', 'v']],
      op: { op: 'cas', key: 'k', expected: null, value: 'a' },
      result: { op: 'cas', outcome: 'mismatch', current: 'v', ...rev(1, 1, 1), revision: 1, partition: 0 },
      after: 'v',
    },
    {
      name: 'cas on absent',
      before: [],
      op: { op: 'cas', key: 'k', expected: 'v', value: 'a' },
      result: { op: 'cas', outcome: 'not-found', current: null, ...ABSENT, revision: 0, partition: 0 },
      after: null,
    },
    {
      name: 'cas match',
      before: [['k', 'v']],
      op: { op: 'cas', key: 'k', expected: 'v', value: 'a' },
      result: { op: 'cas', outcome: 'applied', current: 'a', ...rev(1, 2, 2), revision: 2, partition: 0 },
      after: 'a',
    },
    {
      name: 'cas mismatch',
      before: [['k', 'v']],
      op: { op: 'cas', key: 'k', expected: 'w', value: 'a' },
      result: { op: 'cas', outcome: 'mismatch', current: 'v', ...rev(1, 1, 1), revision: 1, partition: 0 },
      after: 'v',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const m = new KvStateMachine();
      for (const [k, v] of c.before) run(m, { op: 'put', key: k, value: v });
      expect(run(m, c.op)).toEqual({ ok: true, result: c.result, duplicate: false });
      if (c.after !== undefined) expect(m.read('k')).toMatchObject({ op: 'get', value: c.after });
    });
  }

  it('compares on modRevision and version, 0 meaning absent', () => {
    const m = new KvStateMachine();
    run(m, { op: 'put', key: 'other', value: 'x' });
    expect(run(m, { op: 'cas', key: 'k', expectedVersion: 1, value: 'a' })).toMatchObject({
      result: { outcome: 'not-found', current: null, revision: 1 },
    });
    expect(run(m, { op: 'cas', key: 'k', expectedModRevision: 0, value: 'a' })).toMatchObject({
      result: { outcome: 'applied', ...rev(2, 2, 1), revision: 2 },
    });
    expect(run(m, { op: 'cas', key: 'k', expectedModRevision: 1, value: 'b' })).toMatchObject({
      result: { outcome: 'mismatch', current: 'a', ...rev(2, 2, 1), revision: 2 },
    });
    expect(run(m, { op: 'cas', key: 'k', expectedModRevision: 2, value: 'b' })).toMatchObject({
      result: { outcome: 'applied', current: 'b', ...rev(2, 3, 2), revision: 3 },
    });
    expect(run(m, { op: 'cas', key: 'k', expectedVersion: 0, value: 'c' })).toMatchObject({
      result: { outcome: 'mismatch', current: 'b' },
    });
    expect(run(m, { op: 'cas', key: 'k', expectedVersion: 2, value: 'c' })).toMatchObject({
      result: { outcome: 'applied', current: 'c', ...rev(2, 4, 3), revision: 4 },
    });
    expect(m.revision).toBe(4);
  });

  it('compares string and byte values by their UTF-8 bytes', () => {
    expect(valuesEqual('é', new Uint8Array([0xc3, 0xa9]))).toBe(true);
    expect(valuesEqual('a', 'b')).toBe(false);
    const m = new KvStateMachine();
    run(m, { op: 'put', key: 'k', value: new Uint8Array([0x61]) });
    expect(run(m, { op: 'cas', key: 'k', expected: 'a', value: 'b' })).toMatchObject({
      result: { outcome: 'applied' },
    });
  });

  it('skips malformed entries with an error and keeps going', () => {
    const m = new KvStateMachine();
    expect(m.apply(0, { junk: true })).toMatchObject({ ok: false });
    expect(m.apply(1, null)).toMatchObject({ ok: false });
    expect(m.appliedIndex).toBe(2);
    expect(() => m.apply(5, cmd({ op: 'get', key: 'k' }))).toThrow(RangeError);
  });
});

describe('exactly-once sessions', () => {
  it('applies a retried write once and returns the same result', () => {
    const m = new KvStateMachine();
    run(m, { op: 'put', key: 'k', value: 'v' });
    const s = { client: 'c1', seq: 1 };
    const first = run(m, { op: 'cas', key: 'k', expected: 'v', value: 'w' }, s);
    const retry = run(m, { op: 'cas', key: 'k', expected: 'v', value: 'w' }, s);
    const applied = {
      op: 'cas',
      outcome: 'applied',
      current: 'w',
      ...rev(1, 2, 2),
      revision: 2,
      partition: 0,
    };
    expect(first).toEqual({ ok: true, result: applied, duplicate: false });
    expect(retry).toEqual({ ok: true, result: applied, duplicate: true });
    expect(m.revision).toBe(2);
    expect(
      run(m, { op: 'cas', key: 'k', expected: 'v', value: 'x' }, { client: 'c1', seq: 2 }),
    ).toMatchObject({
      result: { outcome: 'mismatch' },
    });
    expect(run(m, { op: 'put', key: 'k', value: 'z' }, { client: 'c1', seq: 1 })).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', field: 'session.seq' },
    });
    expect(m.read('k')).toMatchObject({ op: 'get', value: 'w', version: 2 });
  });

  it('expires sessions by log index and caps their number, deterministically', () => {
    const m = new KvStateMachine({ sessionTtlEntries: 10, maxSessions: 3 });
    run(m, { op: 'put', key: 'a', value: '1' }, { client: 'old', seq: 1 });
    for (let i = 0; i < 10; i++) run(m, { op: 'get', key: 'x' });
    expect(m.session('old')).toBeDefined();
    run(m, { op: 'get', key: 'x' });
    run(m, { op: 'get', key: 'x' });
    expect(m.session('old')).toBeUndefined();
    for (const c of ['a', 'b', 'c', 'd']) run(m, { op: 'put', key: c, value: c }, { client: c, seq: 1 });
    expect(m.sessionCount).toBe(3);
    expect(m.session('a')).toBeUndefined();
    run(m, { op: 'put', key: 'b', value: 'b2' }, { client: 'b', seq: 2 });
    run(m, { op: 'put', key: 'e', value: 'e' }, { client: 'e', seq: 1 });
    // 'c' was the least recently written session, not 'b'.
    expect(m.session('c')).toBeUndefined();
    expect(m.session('b')).toEqual({ seq: 2, lastIndex: 17 });
  });

  it('keeps data and sessions across a snapshot', () => {
    const m = new KvStateMachine({ maxSessions: 2 });
    run(m, { op: 'put', key: 'k', value: new Uint8Array([1, 2, 3]) }, { client: 'c1', seq: 4 });
    run(m, { op: 'put', key: 's', value: 'str' }, { client: 'c2', seq: 1 });
    const copy = KvStateMachine.fromSnapshot(m.snapshot(), { maxSessions: 2 });
    if (!(copy instanceof KvStateMachine)) throw copy;
    expect(copy.appliedIndex).toBe(2);
    expect(copy.read('k')).toEqual(m.read('k'));
    expect(copy.read('s')).toEqual({ op: 'get', value: 'str', ...rev(2, 2, 1), revision: 2, partition: 0 });
    expect(copy.revision).toBe(2);
    const retried = copy.apply(2, cmd({ op: 'put', key: 'k', value: 'other' }, { client: 'c1', seq: 4 }));
    expect(retried).toMatchObject({ ok: true, duplicate: true });
    // Expiry order survives: a new session evicts c1 (oldest), in both machines.
    run(m, { op: 'get', key: 'k' });
    run(m, { op: 'put', key: 'n', value: 'n' }, { client: 'c3', seq: 1 });
    run(copy, { op: 'put', key: 'n', value: 'n' }, { client: 'c3', seq: 1 });
    expect(copy.snapshot()).toEqual(m.snapshot());
  });

  it('keeps revisions across a snapshot and stamps the partition', () => {
    const m = new KvStateMachine({}, 7);
    run(m, { op: 'put', key: 'a', value: '1' });
    run(m, { op: 'put', key: 'b', value: '1' });
    run(m, { op: 'put', key: 'a', value: '2' });
    run(m, { op: 'delete', key: 'b' });
    const copy = KvStateMachine.fromSnapshot(m.snapshot(), {}, 7);
    if (!(copy instanceof KvStateMachine)) throw copy;
    expect(copy.read('a')).toEqual({ op: 'get', value: '2', ...rev(1, 3, 2), revision: 4, partition: 7 });
    expect(run(copy, { op: 'put', key: 'b', value: 'x' })).toMatchObject({
      result: { created: true, ...rev(5, 5, 1), revision: 5, partition: 7 },
    });
  });

  it('reads version-1 snapshots (no revisions) as keys written once at revision 1', () => {
    const v1 = encode({ v: 1, applied: 3, data: [['k', 'v']], sessions: [] });
    const m = KvStateMachine.fromSnapshot(v1);
    if (!(m instanceof KvStateMachine)) throw m;
    expect(m.read('k')).toEqual({ op: 'get', value: 'v', ...rev(1, 1, 1), revision: 1, partition: 0 });
    expect(run(m, { op: 'cas', key: 'k', expectedVersion: 1, value: 'w' })).toMatchObject({
      result: { outcome: 'applied', ...rev(1, 2, 2), revision: 2 },
    });
  });

  it('rejects corrupt snapshots with a typed error', () => {
    expect(
      KvStateMachine.fromSnapshot(
        encode({ v: 2, applied: 0, revision: 1, data: ['k', 'v', 1, 2, 1], sessions: [] }),
      ),
    ).toMatchObject({ name: 'CorruptDataError' });
    expect(
      KvStateMachine.fromSnapshot(
        encode({ v: 2, applied: 0, revision: 1, data: ['k', 'v', 1, 1], sessions: [] }),
      ),
    ).toMatchObject({ name: 'CorruptDataError' });
    expect(KvStateMachine.fromSnapshot(new Uint8Array([0xc1]))).toBeInstanceOf(Error);
    expect(KvStateMachine.fromSnapshot(encode({ v: 99 }))).toMatchObject({ name: 'CorruptDataError' });
    expect(
      KvStateMachine.fromSnapshot(encode({ v: 1, applied: 0, data: [[1, 2]], sessions: [] })),
    ).toMatchObject({
      name: 'CorruptDataError',
    });
  });

  it('incr, append, getdel and set work on bytes and bound their results (Redis semantics)', () => {
    const m = new KvStateMachine();
    const r = (op: KvOp) => {
      const out = run(m, op);
      if (!out.ok) throw out.error;
      return out.result;
    };
    expect(r({ op: 'put', key: 'n', value: new Uint8Array([0x34, 0x32]) })).toMatchObject({ op: 'put' });
    expect(r({ op: 'incr', key: 'n', by: '-50' })).toMatchObject({
      op: 'incr',
      outcome: 'applied',
      value: '-8',
    });
    expect(r({ op: 'incr', key: 'fresh', by: '3' })).toMatchObject({
      op: 'incr',
      outcome: 'applied',
      value: '3',
    });
    r({ op: 'put', key: 'bin', value: new Uint8Array([0xff, 0x00]) });
    expect(r({ op: 'incr', key: 'bin', by: '1' })).toMatchObject({
      op: 'incr',
      outcome: 'not-integer',
      value: null,
    });
    expect(r({ op: 'incr', key: 'n', by: '-9223372036854775808' })).toMatchObject({
      op: 'incr',
      outcome: 'overflow',
      value: '-8',
    });
    expect(r({ op: 'append', key: 'bin', value: new Uint8Array([0x00, 0x01]) })).toMatchObject({
      op: 'append',
      outcome: 'applied',
      length: 4,
    });
    expect(m.read('bin')).toMatchObject({ op: 'get', value: new Uint8Array([0xff, 0, 0, 1]) });
    const big = new Uint8Array(DEFAULT_MAX_VALUE_BYTES - 4);
    expect(r({ op: 'append', key: 'bin', value: big })).toMatchObject({ outcome: 'applied' });
    expect(r({ op: 'append', key: 'bin', value: 'x' })).toMatchObject({
      op: 'append',
      outcome: 'too-large',
      length: DEFAULT_MAX_VALUE_BYTES,
    });
    expect(r({ op: 'getdel', key: 'n' })).toMatchObject({ op: 'getdel', value: '-8' });
    expect(r({ op: 'getdel', key: 'n' })).toMatchObject({ op: 'getdel', value: null });
    expect(r({ op: 'set', key: 'n', value: 'a', condition: 'present', get: true })).toMatchObject({
      op: 'set',
      applied: false,
      previous: null,
    });
    const setAbsent = r({ op: 'set', key: 'n', value: 'a', condition: 'absent' });
    expect(setAbsent).toMatchObject({ op: 'set', applied: true, version: 1 });
    expect(setAbsent).not.toHaveProperty('previous');
    expect(r({ op: 'set', key: 'n', value: 'b', condition: 'equal', expected: 'x' })).toMatchObject({
      op: 'set',
      applied: false,
    });
    expect(
      r({ op: 'set', key: 'n', value: 'b', condition: 'equal', expected: 'a', get: true }),
    ).toMatchObject({
      op: 'set',
      applied: true,
      previous: 'a',
    });
  });
});

describe('transactions', () => {
  const transfer = (from: string, to: string, seen: [string, string], amount: number): KvOp => ({
    op: 'txn',
    compare: [
      { key: from, target: 'value', op: '=', value: seen[0] },
      { key: to, target: 'value', op: '=', value: seen[1] },
    ],
    success: [
      { put: { key: from, value: String(Number(seen[0]) - amount) } },
      { put: { key: to, value: String(Number(seen[1]) + amount) } },
    ],
    failure: [{ get: { key: from } }, { get: { key: to } }],
  });

  it('applies the success branch atomically at one revision when every compare holds', () => {
    const m = new KvStateMachine({}, 4);
    run(m, { op: 'put', key: '{acct}:a', value: '100' });
    run(m, { op: 'put', key: '{acct}:b', value: '0' });
    const r = run(m, transfer('{acct}:a', '{acct}:b', ['100', '0'], 30), { client: 'c', seq: 1 });
    expect(r).toEqual({
      ok: true,
      duplicate: false,
      result: {
        op: 'txn',
        succeeded: true,
        results: [
          { op: 'put', key: '{acct}:a', created: false, ...rev(1, 3, 2) },
          { op: 'put', key: '{acct}:b', created: false, ...rev(2, 3, 2) },
        ],
        revision: 3,
        partition: 4,
      },
    });
    // Retried with the same session: the remembered result, nothing applied twice.
    expect(run(m, transfer('{acct}:a', '{acct}:b', ['100', '0'], 30), { client: 'c', seq: 1 })).toEqual({
      ...r,
      duplicate: true,
    });
    expect(m.read('{acct}:a')).toMatchObject({ value: '70', version: 2, revision: 3 });
  });

  it('runs the failure branch (reads) when a compare fails, changing nothing', () => {
    const m = new KvStateMachine();
    run(m, { op: 'put', key: 'a', value: '100' });
    const r = run(m, transfer('a', 'b', ['100', '0'], 30));
    expect(r).toMatchObject({
      result: {
        succeeded: false,
        results: [
          { op: 'get', key: 'a', value: '100', ...rev(1, 1, 1) },
          { op: 'get', key: 'b', value: null, ...rev(0, 0, 0) },
        ],
        revision: 1,
      },
    });
    expect(m.revision).toBe(1);
  });

  it('evaluates compares like etcd: absent keys compare as 0, a value compare on an absent key fails', () => {
    const m = new KvStateMachine();
    run(m, { op: 'put', key: 'k', value: 'm' });
    const holds = (c: Compare) =>
      (run(m, { op: 'txn', compare: [c], success: [], failure: [] }) as { result: { succeeded: boolean } })
        .result.succeeded;
    expect(holds({ key: 'k', target: 'value', op: '<', value: 'n' })).toBe(true);
    expect(holds({ key: 'k', target: 'value', op: '>', value: 'n' })).toBe(false);
    expect(holds({ key: 'x', target: 'value', op: '!=', value: 'n' })).toBe(false);
    expect(holds({ key: 'x', target: 'version', op: '=', value: 0 })).toBe(true);
    expect(holds({ key: 'k', target: 'modRevision', op: '=', value: 1 })).toBe(true);
    expect(holds({ key: 'k', target: 'createRevision', op: '>', value: 0 })).toBe(true);
    expect(holds({ key: 'k', target: 'exists', op: '=', value: true })).toBe(true);
    expect(holds({ key: 'x', target: 'exists', op: '!=', value: false })).toBe(false);
  });

  it('feeds watches every key it changes, at its one revision', () => {
    const m = new KvStateMachine();
    run(m, { op: 'put', key: 'gone', value: 'x' });
    const events: unknown[] = [];
    m.onChange = (e) => events.push(e);
    run(m, {
      op: 'txn',
      compare: [],
      success: [{ put: { key: 'a', value: '1' } }, { delete: { key: 'gone' } }, { delete: { key: 'never' } }],
      failure: [],
    });
    expect(events).toEqual([
      { type: 'put', key: 'a', value: '1', revision: 2 },
      { type: 'delete', key: 'gone', revision: 2 },
    ]);
  });

  it('sees its own writes in order, and raises the revision only if it changed something', () => {
    const m = new KvStateMachine();
    const r = run(m, {
      op: 'txn',
      compare: [],
      success: [
        { get: { key: 'k' } },
        { put: { key: 'k', value: 'v' } },
        { get: { key: 'k' } },
        { delete: { key: 'z' } },
      ],
      failure: [],
    });
    expect(r).toMatchObject({
      result: {
        results: [
          { op: 'get', value: null },
          { op: 'put', created: true, ...rev(1, 1, 1) },
          { op: 'get', value: 'v', ...rev(1, 1, 1) },
          { op: 'delete', existed: false },
        ],
        revision: 1,
      },
    });
    run(m, { op: 'txn', compare: [], success: [{ delete: { key: 'nope' } }], failure: [] });
    expect(m.revision).toBe(1);
    run(m, { op: 'txn', compare: [], success: [{ delete: { key: 'k' } }], failure: [] });
    expect(m.revision).toBe(2);
  });
});

describe('ranges', () => {
  const filled = () => {
    const m = new KvStateMachine({ maxRangeKeys: 4, maxRangeBytes: 1000 });
    for (const k of ['b', 'a', '\u{10000}', '\uffff', 'c', 'ab'])
      run(m, { op: 'put', key: k, value: `v${k}` });
    return m;
  };
  const keys = (r: KvResult) => (r as RangeResult).kvs.map((kv) => kv.key);

  it('returns keys in UTF-8 byte order within [start, end), forward and reverse, at one revision', () => {
    const m = filled();
    expect(keys(m.query({ op: 'range', start: 'a', end: 'c' }))).toEqual(['a', 'ab', 'b']);
    expect(keys(m.query({ op: 'range', start: 'a', end: 'c', reverse: true }))).toEqual(['b', 'ab', 'a']);
    expect(keys(m.query({ op: 'range', start: 'c' }))).toEqual(['c', '\uffff', '\u{10000}']);
    expect(m.query({ op: 'range', start: 'a', end: 'b' })).toEqual({
      op: 'range',
      kvs: [
        { key: 'a', value: 'va', ...rev(2, 2, 1) },
        { key: 'ab', value: 'vab', ...rev(6, 6, 1) },
      ],
      more: false,
      revision: 6,
      partition: 0,
    });
  });

  it('stops at the limit, maxRangeKeys or maxRangeBytes and says more', () => {
    const m = filled();
    expect(m.query({ op: 'range', start: '', limit: 2 })).toMatchObject({
      kvs: [{ key: 'a' }, { key: 'ab' }],
      more: true,
    });
    expect(m.query({ op: 'range', start: '', limit: 6 })).toMatchObject({ more: true }); // maxRangeKeys 4
    expect(keys(m.query({ op: 'range', start: 'a', end: 'ab', limit: 1 }))).toEqual(['a']);
    expect(m.query({ op: 'range', start: 'a', end: 'ab', limit: 1 })).toMatchObject({ more: false });
    const small = new KvStateMachine({ maxRangeBytes: 5 });
    for (const k of ['a', 'b', 'c']) run(small, { op: 'put', key: k, value: 'xyz' });
    expect(small.query({ op: 'range', start: '' })).toMatchObject({
      kvs: [{ key: 'a' }, { key: 'b' }],
      more: true,
    });
    expect(small.query({ op: 'range', start: '', keysOnly: true })).toMatchObject({
      kvs: [{ key: 'a' }, { key: 'b' }, { key: 'c' }],
      more: false,
    });
    expect(
      (small.query({ op: 'range', start: '', keysOnly: true }) as RangeResult).kvs[0],
    ).not.toHaveProperty('value');
  });

  it('refuses to answer a write as a query', () => {
    expect(() => filled().query({ op: 'put', key: 'k', value: 'v' })).toThrow(RangeError);
  });
});
