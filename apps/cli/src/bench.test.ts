import { describe, expect, it } from 'vitest';
import { type BenchClient, benchDefaults, formatBenchReport, runBench } from './bench.js';
import type { CliValue } from './execute.js';

/** A single-copy in-memory store with a small delay per call, standing for a server in this unit test. */
function memoryClient(store: Map<string, CliValue>, closed: { n: number }): BenchClient {
  const tick = () => new Promise((r) => setTimeout(r, 1));
  return {
    async get(key) {
      await tick();
      return store.get(key) ?? null;
    },
    async put(key, value) {
      await tick();
      const created = !store.has(key);
      store.set(key, value);
      return { created };
    },
    async cas(key, expected, value) {
      await tick();
      const current = store.get(key) ?? null;
      if (current !== expected) return { outcome: 'mismatch', current };
      store.set(key, value);
      return { outcome: 'applied', current: value };
    },
    async delete(key) {
      await tick();
      return { existed: store.delete(key) };
    },
    close() {
      closed.n += 1;
    },
  };
}

describe('runBench', () => {
  it.each(['put', 'get', 'mixed', 'cas'] as const)(
    'measures the %s workload and closes its clients',
    async (workload) => {
      const store = new Map<string, CliValue>();
      const closed = { n: 0 };
      const progress: string[] = [];
      const report = await runBench(() => memoryClient(store, closed), {
        clients: 4,
        durationMs: 300,
        workload,
        keys: 20,
        valueSize: 32,
        progressMs: 100,
        progress: (l) => progress.push(l),
      });
      // At least one operation per client, whatever the load on the machine.
      expect(report.ops).toBeGreaterThanOrEqual(4);
      expect(report.errors).toBe(0);
      expect(report.opsPerSec).toBeGreaterThan(0);
      const l = report.latencyMs;
      expect(l.p50).toBeGreaterThan(0);
      expect(l.p50).toBeLessThanOrEqual(l.p90);
      expect(l.p90).toBeLessThanOrEqual(l.p99);
      expect(l.p99).toBeLessThanOrEqual(l.max);
      expect(closed.n).toBe(4);
      expect(progress.length).toBeGreaterThan(0);
      if (workload === 'get' || workload === 'cas') expect(store.size).toBe(20);
      if (workload === 'cas')
        expect((report.cas?.applied ?? 0) + (report.cas?.mismatch ?? 0)).toBe(report.ops);
      for (const v of store.values()) expect(String(v).length).toBe(32);
      expect(formatBenchReport(report)).toContain('ops/s');
    },
  );

  it('counts errors by code instead of stopping', async () => {
    const failing: BenchClient = {
      ...memoryClient(new Map(), { n: 0 }),
      put: async () => {
        await new Promise((r) => setTimeout(r, 1));
        throw Object.assign(new Error('no leader'), { code: 'NO_LEADER' });
      },
    };
    const report = await runBench(() => failing, {
      clients: 2,
      durationMs: 100,
      workload: 'put',
      progressMs: 0,
    });
    expect(report.ops).toBe(0);
    expect(report.errors).toBeGreaterThan(0);
    expect(report.errorsByCode).toEqual({ NO_LEADER: report.errors });
  });

  it('prints a last progress line even when the run is shorter than one interval', async () => {
    const progress: string[] = [];
    const report = await runBench(() => memoryClient(new Map(), { n: 0 }), {
      clients: 2,
      durationMs: 1,
      workload: 'put',
      progressMs: 3_600_000,
      progress: (l) => progress.push(l),
    });
    expect(report.ops).toBeGreaterThanOrEqual(2);
    expect(progress).toHaveLength(1);
    expect(progress[0]).toMatch(/ops\/s/);
  });

  it('validates its options', () => {
    expect(() => benchDefaults({ clients: 0 })).toThrow(/--clients/);
    expect(() => benchDefaults({ durationMs: -1 })).toThrow(/--duration/);
    expect(() => benchDefaults({ workload: 'nope' as 'put' })).toThrow(/--workload/);
    expect(() => benchDefaults({ valueSize: 2 * 1024 * 1024 })).toThrow(/--value-size/);
    expect(benchDefaults({})).toMatchObject({
      clients: 16,
      durationMs: 10_000,
      workload: 'mixed',
      keys: 1000,
      valueSize: 100,
    });
  });
});
