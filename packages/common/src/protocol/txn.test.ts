import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CrossPartitionError, errorFromWire, errorToWire } from '../errors.js';
import { compareKeys, partitionOfOp, prefixEnd, rangeTagPartition } from './keys.js';
import type { KvOp } from './kv.js';
import { checkKvOpLimits } from './limits.js';
import { parseClientRequest, parseServerResponse } from './messages.js';
import { partitionOf } from './partition.js';
import { isPlainTxnOp, isTxnOp, MAX_TXN_OPS_HARD, TxnOpSchema } from './txn.js';

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

describe('isTxnOp', () => {
  // Inputs near the valid shape: each field mostly valid, sometimes one of the near-misses a decoder
  // could produce (wrong type, empty key, negative, fractional or unsafe revision, extra fields, a
  // key written twice), so that both verdicts occur often.
  const mostly = <T>(good: fc.Arbitrary<T>, bad: readonly unknown[]) =>
    fc.oneof({ arbitrary: good, weight: 12 }, { arbitrary: fc.constantFrom(...bad), weight: 1 });
  const key = mostly(fc.constantFrom('a', 'b', '{t}c', 'd'), ['', 7, undefined]);
  const value = mostly(fc.constantFrom<unknown>('v', '', new Uint8Array([1, 2])), [3, null, undefined]);
  const revision = mostly(fc.constantFrom<unknown>(0, -0, 5, Number.MAX_SAFE_INTEGER), [
    -1,
    1.5,
    2 ** 53,
    '3',
  ]);
  const operator = mostly(fc.constantFrom<unknown>('=', '!=', '<', '>'), ['>=', undefined]);
  const extra = fc.option(fc.record({ extra: fc.constantFrom<unknown>(1, 'x') }), {
    nil: undefined,
    freq: 4,
  });
  const compare = fc.oneof(
    fc
      .tuple(key, fc.constantFrom('version', 'modRevision', 'createRevision'), operator, revision, extra)
      .map(([k, target, op, v, more]) => ({ key: k, target, op, value: v, ...more })),
    fc.tuple(key, operator, value).map(([k, op, v]) => ({ key: k, target: 'value', op, value: v })),
    fc
      .tuple(key, mostly(fc.constantFrom('=', '!='), ['<']), mostly(fc.boolean(), [1]))
      .map(([k, op, v]) => ({ key: k, target: 'exists', op, value: v })),
    fc.constantFrom<unknown>({ key: 'a', target: 'lease', op: '=', value: 1 }, null, []),
  );
  const lease = mostly(fc.constantFrom<unknown>(undefined, 65_536, 2 ** 40), [
    65_535,
    70_000.5,
    2 ** 60,
    '65536',
  ]);
  const request = fc.oneof(
    { arbitrary: fc.tuple(key, extra).map(([k, more]) => ({ get: { key: k, ...more } })), weight: 3 },
    { arbitrary: fc.tuple(key, extra).map(([k, more]) => ({ delete: { key: k, ...more } })), weight: 3 },
    {
      arbitrary: fc
        .tuple(key, value, lease, fc.boolean())
        .map(([k, v, l, withLease]) => ({ put: { key: k, value: v, ...(withLease ? { lease: l } : {}) } })),
      weight: 6,
    },
    {
      arbitrary: fc.constantFrom<unknown>(
        null,
        'put',
        [],
        { set: { key: 'a' } },
        { put: { key: 'a', value: 'v' }, get: { key: 'a' } },
      ),
      weight: 1,
    },
  );
  const list = (item: fc.Arbitrary<unknown>) =>
    mostly(fc.array(item, { maxLength: 3 }), [undefined, {}, 'x']);
  const txn = fc
    .tuple(
      mostly(fc.constant('txn'), ['range', undefined]),
      list(compare),
      list(request),
      list(request),
      extra,
    )
    .map(([op, c, success, failure, more]) => ({ op, compare: c, success, failure, ...more }));

  it('gives the schema verdict, and answers every generated shape without the schema', () => {
    let valid = 0;
    let invalid = 0;
    fc.assert(
      fc.property(txn, (x) => {
        const expected = TxnOpSchema.safeParse(x).success;
        if (expected) valid++;
        else invalid++;
        expect(isTxnOp(x)).toBe(expected);
        // The direct check alone already agrees: the fast path serves these shapes.
        expect(isPlainTxnOp(x)).toBe(expected);
      }),
      { numRuns: 5_000 },
    );
    // Both verdicts were exercised (the generator is not degenerate).
    expect(valid).toBeGreaterThan(500);
    expect(invalid).toBeGreaterThan(500);
  });

  it('bounds every list by MAX_TXN_OPS_HARD and refuses a key written twice in one branch', () => {
    const put = (k: string) => ({ put: { key: k, value: 'v' } });
    const ok = { op: 'txn', compare: [], success: [put('a'), { get: { key: 'a' } }], failure: [put('a')] };
    expect(isTxnOp(ok)).toBe(true);
    expect(isTxnOp({ ...ok, success: [put('a'), { delete: { key: 'a' } }] })).toBe(false);
    const many = Array.from({ length: MAX_TXN_OPS_HARD + 1 }, (_, i) => ({ get: { key: `k${i}` } }));
    expect(isTxnOp({ ...ok, success: many })).toBe(false);
    expect(isTxnOp({ ...ok, success: many.slice(1) })).toBe(true);
    const compares = many.map((g) => ({ key: g.get.key, target: 'version', op: '=', value: 0 }));
    expect(isTxnOp({ ...ok, compare: compares })).toBe(false);
  });
});
