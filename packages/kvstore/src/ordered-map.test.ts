import { compareKeys } from '@paxkv/common';
import { Rng } from '@paxkv/paxos/testing';
import { describe, expect, it } from 'vitest';
import { OrderedMap } from './ordered-map.js';

describe('OrderedMap.loadSorted', () => {
  it('builds the same map as one set per key, and it keeps working like one', () => {
    for (const n of [0, 1, 63, 64, 65, 1000, 5000]) {
      const rng = new Rng(n + 1);
      const r = () => rng.next();
      const keys = [...new Set(Array.from({ length: n }, () => `k${Math.floor(r() * 1e9)}é`))].sort(
        compareKeys,
      );
      const values = keys.map((k) => `v-${k}`);
      const bulk = new OrderedMap<string>();
      expect(bulk.loadSorted(keys, values)).toBe(true);
      const one = new OrderedMap<string>();
      for (let i = 0; i < keys.length; i++) one.set(keys[i]!, values[i]!);
      expect(bulk.size).toBe(one.size);
      expect([...bulk.entries()]).toEqual([...one.entries()]);
      // Then the same random edits on both.
      for (let i = 0; i < 2000; i++) {
        const k =
          r() < 0.5 && keys.length > 0 ? keys[Math.floor(r() * keys.length)]! : `n${Math.floor(r() * 1e6)}`;
        if (r() < 0.3) {
          expect(bulk.delete(k)).toBe(one.delete(k));
        } else {
          bulk.set(k, `w${i}`);
          one.set(k, `w${i}`);
        }
      }
      expect([...bulk.entries()]).toEqual([...one.entries()]);
      expect(bulk.getRange('k3', 'k6', false)).toEqual(one.getRange('k3', 'k6', false));
    }
  });

  it('refuses, changing nothing, keys out of order, duplicates, a non-empty map or unequal lengths', () => {
    const m = new OrderedMap<number>();
    expect(m.loadSorted(['b', 'a'], [1, 2])).toBe(false);
    expect(m.loadSorted(['a', 'a'], [1, 2])).toBe(false);
    expect(m.loadSorted(['a'], [1, 2])).toBe(false);
    expect(m.size).toBe(0);
    m.set('x', 1);
    expect(m.loadSorted(['a', 'b'], [1, 2])).toBe(false);
    expect([...m.entries()]).toEqual([['x', 1]]);
  });
});
