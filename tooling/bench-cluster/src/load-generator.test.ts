import { describe, expect, it } from 'vitest';
import { loadKeys, runCell } from './load-generator.js';
import { InMemoryTarget } from './test-support.js';
import { keyOf, preloadValue } from './workload.js';

const params = { keySpace: 1_000, preloadKeys: 100, valueBytes: 32 };

describe('runCell', () => {
  it('measures a closed loop: ops, throughput and latency of the measured window only', async () => {
    const t = new InMemoryTarget();
    t.delayMs = 2;
    const r = await runCell(t, {
      workload: 'put',
      concurrency: 4,
      warmupMs: 100,
      durationMs: 400,
      drainTimeoutMs: 1_000,
      params,
      serverPids: [],
    });
    expect(r.errors).toBe(0);
    // 4 workers, each op >= 2 ms: at most 4 * 400 / 2 = 800 ops in the window, and some (how many
    // depends on how much CPU the loaded machine gave this process: no lower bound on speed here).
    expect(r.ops).toBeGreaterThan(0);
    expect(r.ops).toBeLessThanOrEqual(800);
    expect(r.ops).toBeLessThan(t.calls);
    expect(r.latencyUs.count).toBe(r.ops);
    expect(r.latencyUs.p50).toBeGreaterThanOrEqual(1_900);
    expect(r.latencyUs.max).toBeGreaterThanOrEqual(r.latencyUs.p99);
    expect(r.opsPerSec).toBeCloseTo((r.ops / r.windowMs) * 1_000, -1);
    expect(r.cpu.loadgenPct).toBeGreaterThan(0);
  });

  it('counts failures as errors, not as operations, and keeps the first message', async () => {
    const t = new InMemoryTarget();
    t.delayMs = 1;
    t.failWith = new Error('store is down');
    const r = await runCell(t, {
      workload: 'get',
      concurrency: 2,
      warmupMs: 0,
      durationMs: 200,
      drainTimeoutMs: 1_000,
      params,
      serverPids: [],
    });
    expect(r.ops).toBe(0);
    expect(r.errors).toBeGreaterThan(0);
    expect(r.firstError).toContain('store is down');
    expect(r.latencyUs.count).toBe(0);
  });

  it('does not starve the timers when the target answers from memory', async () => {
    const t = new InMemoryTarget();
    const r = await runCell(t, {
      workload: 'mixed',
      concurrency: 8,
      warmupMs: 50,
      durationMs: 200,
      drainTimeoutMs: 1_000,
      params,
      serverPids: [],
    });
    // It ended at all (timers starved by an always-ready target would never end the window) and ran.
    expect(r.ops).toBeGreaterThan(0);
  });

  it('counts applied and mismatched compare-and-sets', async () => {
    const t = new InMemoryTarget();
    t.delayMs = 1;
    await loadKeys(t, params.preloadKeys, () => preloadValue(params.valueBytes), { concurrency: 8, keyOf });
    const r = await runCell(t, {
      workload: 'cas',
      concurrency: 8,
      warmupMs: 0,
      durationMs: 300,
      drainTimeoutMs: 1_000,
      params,
      serverPids: [],
    });
    expect(r.casApplied + r.casMismatch).toBe(r.ops);
    expect(r.casApplied).toBeGreaterThan(0);
  });
});

describe('loadKeys', () => {
  it('writes every key once and retries failed writes', async () => {
    const t = new InMemoryTarget();
    let failures = 3;
    const flaky = Object.assign(Object.create(t) as InMemoryTarget, {
      put: async (k: string, v: string) => {
        if (failures-- > 0) throw new Error('transient');
        await t.put(k, v);
      },
    });
    const progress: number[] = [];
    await loadKeys(flaky, 20_000, (i) => `v${i}`, {
      concurrency: 16,
      keyOf,
      onProgress: (p) => progress.push(p.done),
    });
    expect(t.data.size).toBe(20_000);
    expect(t.data.get(keyOf(12_345))).toBe('v12345');
    expect(progress).toEqual([10_000, 20_000]);
  });

  it('gives up after the retries', async () => {
    const t = new InMemoryTarget();
    t.failWith = new Error('permanent');
    await expect(loadKeys(t, 5, () => 'v', { concurrency: 2, keyOf, retries: 1 })).rejects.toThrow(
      'permanent',
    );
  });
});
