import { describe, expect, it } from 'vitest';
import { LatencyRecorder } from './latency.js';

describe('LatencyRecorder', () => {
  it('never reports a percentile above the exact maximum (a bucket top can be above it)', () => {
    const r = new LatencyRecorder();
    // 70,702 µs lies in a bucket whose top is 70,719 µs (3 significant digits).
    for (let i = 0; i < 10; i++) r.recordMs(1);
    r.recordMs(70.702);
    const s = r.summary();
    expect(s.max).toBe(70_702);
    expect(s.p99).toBeLessThanOrEqual(s.max);
    expect(s.p999).toBe(70_702);
    expect(s.p50).toBe(1_000);
  });
});
