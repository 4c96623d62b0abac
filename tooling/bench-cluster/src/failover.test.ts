import { describe, expect, it } from 'vitest';
import { recoveryTime } from './failover.js';

describe('recoveryTime', () => {
  it('is the end of the first 3-bucket window averaging >= 90% of the baseline', () => {
    // Baseline 1000 ops/s; outage for 3 buckets, then a ramp.
    const buckets = [0, 0, 0, 500, 950, 1000, 1000, 1000];
    expect(recoveryTime(buckets, 1_000, 100)).toBe(700);
  });

  it('is null when throughput never comes back', () => {
    expect(recoveryTime([0, 100, 200, 300], 1_000, 100)).toBeNull();
    expect(recoveryTime([], 1_000, 100)).toBeNull();
  });

  it('a short dip inside a window still has to be averaged out', () => {
    expect(recoveryTime([1_000, 0, 1_000, 1_000, 1_000], 1_000, 100)).toBe(500);
  });
});
