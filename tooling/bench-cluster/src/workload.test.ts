import { describe, expect, it } from 'vitest';
import { InMemoryTarget } from './test-support.js';
import {
  keyOf,
  makeOperation,
  makeValue,
  preloadValue,
  RANGE_KEYS,
  rangeKeyOf,
  txnKeysOf,
  WorkloadState,
  XorShift32,
} from './workload.js';

describe('keys and values', () => {
  it('keys are 8 bytes', () => {
    expect(keyOf(0)).toBe('k0000000');
    expect(keyOf(99_999)).toBe('k0099999');
    expect(Buffer.byteLength(keyOf(9_999_999))).toBe(8);
  });

  it('values have exactly the requested size and start with their tag', () => {
    for (const n of [16, 100, 256, 5000]) {
      const v = makeValue('v12:', n);
      expect(Buffer.byteLength(v)).toBe(n);
      expect(v.startsWith('v12:')).toBe(true);
    }
    expect(makeValue('a', 256)).not.toBe(makeValue('b', 256));
  });

  it('the PRNG is deterministic and covers the range', () => {
    const a = new XorShift32(42);
    const b = new XorShift32(42);
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      const x = a.int(100);
      expect(x).toBe(b.int(100));
      seen.add(x);
    }
    expect(seen.size).toBe(100);
  });
});

describe('makeOperation', () => {
  const params = { keySpace: 1_000, preloadKeys: 50, valueBytes: 64 };

  it('put writes inside the key space, get reads preloaded keys', async () => {
    const t = new InMemoryTarget();
    const state = new WorkloadState(params);
    const put = makeOperation('put', t, params, state, new XorShift32(1));
    for (let i = 0; i < 500; i++) expect(await put()).toBe('put');
    for (const k of t.data.keys()) expect(Number(k.slice(1))).toBeLessThan(params.keySpace);
    const get = makeOperation('get', t, params, state, new XorShift32(2));
    for (let i = 0; i < 100; i++) expect(await get()).toBe('get');
  });

  it('mixed is about half gets, half puts', async () => {
    const t = new InMemoryTarget();
    const op = makeOperation('mixed', t, params, new WorkloadState(params), new XorShift32(3));
    const kinds = { put: 0, get: 0 } as Record<string, number>;
    for (let i = 0; i < 2_000; i++) {
      const k = await op();
      kinds[k] = (kinds[k] ?? 0) + 1;
    }
    expect(kinds.put).toBeGreaterThan(800);
    expect(kinds.get).toBeGreaterThan(800);
  });

  it('cas against preloaded keys applies, and refreshes its expectation after a mismatch', async () => {
    const t = new InMemoryTarget();
    for (let i = 0; i < params.preloadKeys; i++) t.data.set(keyOf(i), preloadValue(params.valueBytes));
    const state = new WorkloadState(params);
    const cas = makeOperation('cas', t, params, state, new XorShift32(4));
    for (let i = 0; i < 200; i++) expect(await cas()).toBe('cas-applied');
    // Someone else overwrites a key: the next cas on it mismatches once, then applies again.
    t.data.set(keyOf(0), 'foreign');
    const kinds: string[] = [];
    for (let i = 0; i < 2_000; i++) kinds.push(await cas());
    expect(kinds.filter((k) => k === 'cas-mismatch')).toHaveLength(1);
  });

  it('txn writes both keys of one hash tag; range reads the 100 preloaded keys of its tag', async () => {
    const t = new InMemoryTarget();
    const txn = makeOperation('txn', t, params, new WorkloadState(params), new XorShift32(5));
    for (let i = 0; i < 100; i++) expect(await txn()).toBe('txn');
    const keys = [...t.data.keys()].sort();
    expect(keys.length % 2).toBe(0);
    for (let i = 0; i < keys.length; i += 2) {
      expect(keys[i]?.slice(0, -1)).toBe(keys[i + 1]?.slice(0, -1)); // {tNNN}a, {tNNN}b
    }
    expect(txnKeysOf(3)).toEqual(['{t0000003}a', '{t0000003}b']);
    const range = makeOperation('range', t, params, new WorkloadState(params), new XorShift32(6));
    await expect(range()).rejects.toThrow(/expected the 100 preloaded/);
    for (let i = 0; i < RANGE_KEYS + 5; i++) t.data.set(rangeKeyOf(i), 'x');
    expect(await range()).toBe('range');
  });
});
