import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CrossPartitionError, errorFromWire, errorToWire } from '../errors.js';
import { compareKeys, partitionOfOp, prefixEnd, rangeTagPartition } from './keys.js';
import type { KvOp } from './kv.js';
import { checkKvOpLimits } from './limits.js';
import { parseClientRequest, parseServerResponse } from './messages.js';
import { partitionOf } from './partition.js';

const bytes = (s: string) => new TextEncoder().encode(s);
function byteOrder(a: string, b: string): number {
  const x = bytes(a);
  const y = bytes(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++)
    if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}
/** Strings of well-formed UTF-16 (no lone surrogates), mixing the planes where UTF-16 and UTF-8 orders differ. */
const text = fc.string({
  unit: fc.oneof(
    fc.constantFrom(
      'a',
      'b',
      '{',
      '}',
      '~',
      '\u00e9',
      '\ud7ff',
      '\ue000',
      '\uffff',
      '\u{10000}',
      '\u{10ffff}',
    ),
    fc.string({ unit: 'grapheme', maxLength: 1 }),
  ),
  maxLength: 6,
});

describe('key order', () => {
  it('is the order of UTF-8 bytes (not of UTF-16 code units)', () => {
    expect(compareKeys('\uffff', '\u{10000}')).toBeLessThan(0);
    expect('\uffff' < '\u{10000}').toBe(false); // what JavaScript's < would say
    fc.assert(
      fc.property(text, text, (a, b) => {
        expect(Math.sign(compareKeys(a, b))).toBe(Math.sign(byteOrder(a, b)));
      }),
    );
  });
  it('prefixEnd(p) is above every key that starts with p and at most any greater key that does not', () => {
    expect(prefixEnd('a/')).toBe('a0');
    expect(prefixEnd('')).toBeUndefined();
    expect(prefixEnd('\u{10ffff}')).toBeUndefined();
    expect(prefixEnd('a\u{10ffff}')).toBe('b');
    expect(prefixEnd('\ud7ff')).toBe('\ue000');
    fc.assert(
      fc.property(text, text, (p, k) => {
        const end = prefixEnd(p);
        fc.pre(end !== undefined);
        if (k.startsWith(p)) expect(compareKeys(k, end as string)).toBeLessThan(0);
        else if (compareKeys(k, p) > 0) expect(compareKeys(k, end as string)).toBeGreaterThanOrEqual(0);
      }),
    );
  });
});

describe('routing of transactions and ranges', () => {
  const txn = (...keys: string[]): KvOp => ({
    op: 'txn',
    compare: [{ key: keys[0] as string, target: 'version', op: '>', value: 0 }],
    success: keys.slice(1).map((key) => ({ put: { key, value: 'v' } })),
    failure: [],
  });
  it('sends a transaction on one hash tag to the tag partition', () => {
    expect(partitionOfOp(txn('{acct}:a', '{acct}:b', 'x{acct}y'), 16)).toBe(partitionOf('acct', 16));
  });
  it('refuses keys of different partitions with CROSS_PARTITION naming the hash-tag rule', () => {
    let err: unknown;
    try {
      partitionOfOp(txn('{a}1', '{b}2'), 1024);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CrossPartitionError);
    const e = err as CrossPartitionError;
    expect(e.code).toBe('CROSS_PARTITION');
    expect(e.retryable).toBe(false);
    expect(e.keys).toEqual(['{a}1', '{b}2']);
    expect(e.message).toMatch(/hash tag/);
    const back = errorFromWire(errorToWire(e, 1));
    expect(back).toBeInstanceOf(CrossPartitionError);
    expect(back.message).toBe(e.message);
  });
  it('finds the one partition of a range inside one hash tag, and no partition otherwise', () => {
    const p = partitionOf('t', 64);
    expect(rangeTagPartition('{t}:a', '{t}:z', 64)).toBe(p);
    expect(rangeTagPartition('{t}', '{t~', 64)).toBe(p);
    expect(rangeTagPartition('{t}:a', '{t~a', 64)).toBeUndefined();
    expect(rangeTagPartition('{t}:a', undefined, 64)).toBeUndefined();
    expect(rangeTagPartition('a', 'b', 64)).toBeUndefined();
    expect(partitionOfOp({ op: 'range', start: 'a', end: 'b', partition: 5 }, 64)).toBe(5);
    expect(() => partitionOfOp({ op: 'range', start: 'a', end: 'b' }, 64)).toThrow(CrossPartitionError);
    expect(() => partitionOfOp({ op: 'range', start: 'a', partition: 64 }, 64)).toThrow(/does not exist/);
    // Every key inside the range shares the partition the function names.
    fc.assert(
      fc.property(text, text, text, (t, a, b) => {
        fc.pre(t.length > 0 && !t.includes('}') && !t.includes('{'));
        const [lo, hi] = compareKeys(a, b) <= 0 ? [a, b] : [b, a];
        const start = `{${t}}${lo}`;
        const end = `{${t}}${hi}`;
        expect(rangeTagPartition(start, end, 97)).toBe(partitionOf(t, 97));
      }),
    );
  });
});

describe('transaction and range messages', () => {
  const transfer = {
    compare: [{ key: '{acct}:a', target: 'value', op: '=', value: '100' }],
    success: [{ put: { key: '{acct}:a', value: '50' } }, { put: { key: '{acct}:b', value: '50' } }],
    failure: [{ get: { key: '{acct}:a' } }],
  };
  it("accepts etcd's shape (the issue's example)", () => {
    const msg = { type: 'kv', id: 1, op: { op: 'txn', ...transfer }, session: { client: 'c', seq: 1 } };
    expect(parseClientRequest(msg)).toEqual({ ok: true, value: msg });
  });
  it.each([
    [{ ...transfer, success: [{ put: { key: 'k', value: 'a' } }, { delete: { key: 'k' } }] }, 'op.success'],
    [{ ...transfer, compare: [{ key: 'k', target: 'version', op: '=', value: -1 }] }, 'op.compare.0.value'],
    [{ ...transfer, compare: [{ key: 'k', target: 'exists', op: '<', value: true }] }, 'op.compare.0.op'],
    [{ ...transfer, success: [{ put: { key: 'k', value: 'a' }, get: { key: 'k' } }] }, 'op.success.0'],
    [{ ...transfer, failure: [{ frob: { key: 'k' } }] }, 'op.failure.0'],
  ])('rejects a malformed transaction %#', (txn, field) => {
    const r = parseClientRequest({ type: 'kv', id: 1, op: { op: 'txn', ...txn } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatchObject({ code: 'BAD_REQUEST', field });
  });
  it('bounds transactions by maxTxnOps and every key and value by the size limits', () => {
    const many = Array.from({ length: 129 }, (_, i) => ({ get: { key: `k${i}` } }));
    expect(checkKvOpLimits({ op: 'txn', compare: [], success: many, failure: [] })).toMatchObject({
      code: 'BAD_REQUEST',
      field: 'op.success',
    });
    expect(
      checkKvOpLimits(
        { op: 'txn', compare: [], success: many, failure: [] },
        { maxKeyBytes: 8, maxValueBytes: 8, maxTxnOps: 200 },
      ),
    ).toBeUndefined();
    const big = 'x'.repeat(9);
    const lim = { maxKeyBytes: 8, maxValueBytes: 8 };
    expect(
      checkKvOpLimits(
        { op: 'txn', compare: [], success: [{ put: { key: 'k', value: big } }], failure: [] },
        lim,
      ),
    ).toMatchObject({ code: 'VALUE_TOO_LARGE' });
    expect(
      checkKvOpLimits(
        {
          op: 'txn',
          compare: [{ key: big, target: 'exists', op: '=', value: true }],
          success: [],
          failure: [],
        },
        lim,
      ),
    ).toMatchObject({ code: 'KEY_TOO_LARGE' });
    expect(checkKvOpLimits({ op: 'range', start: 'a', end: big }, lim)).toMatchObject({
      code: 'KEY_TOO_LARGE',
    });
  });
  it('accepts range requests and results, and bounds their limit', () => {
    const msg = {
      type: 'kv',
      id: 2,
      op: { op: 'range', start: '', end: 'z', limit: 10, reverse: true, keysOnly: true, partition: 3 },
    };
    expect(parseClientRequest(msg)).toEqual({ ok: true, value: msg });
    expect(parseClientRequest({ ...msg, op: { ...msg.op, limit: 0 } }).ok).toBe(false);
    expect(parseClientRequest({ ...msg, op: { ...msg.op, limit: 1e9 } }).ok).toBe(false);
    const reply = {
      type: 'kv.ok',
      id: 2,
      result: {
        op: 'range',
        kvs: [{ key: 'a', createRevision: 1, modRevision: 2, version: 2 }],
        more: true,
        revision: 7,
        partition: 3,
      },
    };
    expect(parseServerResponse(reply)).toEqual({ ok: true, value: reply });
  });
});
