import { describe, expect, it } from 'vitest';
import { kthLargestInPlace } from './order-stat.js';

describe('kthLargestInPlace', () => {
  it('agrees with a full sort for every k, with ties, on the first n values only', () => {
    let seed = 7;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % 6;
    };
    for (let round = 0; round < 500; round++) {
      const n = 1 + (round % 7);
      const values = Array.from({ length: n + 2 }, next);
      const expected = values.slice(0, n).sort((a, b) => b - a);
      for (let k = 1; k <= n; k++) {
        const scratch = [...values];
        expect(kthLargestInPlace(scratch, n, k)).toBe(expected[k - 1]);
        // The values past n are left alone (the scratch array is longer than the replicas counted).
        expect(scratch.slice(n)).toEqual(values.slice(n));
      }
    }
  });

  it('returns the majority-th largest acknowledged length of three replicas', () => {
    expect(kthLargestInPlace([10, 4, 7], 3, 2)).toBe(7);
    expect(kthLargestInPlace([10, 10, 0], 3, 2)).toBe(10);
  });
});
