import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { OP_LATENCY_BUCKETS } from './metrics.js';
import { MAX_OP_SERIES, OpMetrics } from './op-metrics.js';

/** The same observations through prom-client's own Counter and Histogram. */
function reference(observations: readonly (readonly [string, string, number])[]): Promise<string> {
  const registry = new Registry();
  const ops = new Counter({
    name: 'paxkv_ops_total',
    help: 'Client operations by type (get, put, cas, delete, lookup, status) and result (ok or error code)',
    labelNames: ['op', 'result'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'paxkv_op_duration_seconds',
    help: 'Latency of client operations at this server, in seconds',
    labelNames: ['op'],
    buckets: OP_LATENCY_BUCKETS,
    registers: [registry],
  });
  for (const [op, result, s] of observations) {
    ops.inc({ op, result });
    latency.observe({ op }, s);
  }
  return registry.metrics();
}

describe('OpMetrics', () => {
  it("writes the exposition prom-client's Counter and Histogram write for the same observations", async () => {
    const observations: [string, string, number][] = [];
    const ops = ['get', 'put', 'txn', 'lookup'];
    const results = ['ok', 'ok', 'NOT_LEADER', 'TIMEOUT'];
    let x = 7;
    for (let i = 0; i < 2000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      // Latencies over every bucket, on the bounds themselves too, and past the last one.
      const s = i % 50 === 0 ? OP_LATENCY_BUCKETS[i % OP_LATENCY_BUCKETS.length]! : (x / 2 ** 31) ** 4 * 20;
      observations.push([ops[x % 4]!, results[(x >> 3) % 4]!, s]);
    }
    const registry = new Registry();
    const m = new OpMetrics({ registry, buckets: OP_LATENCY_BUCKETS });
    for (const [op, result, s] of observations) m.observe(op, result, s);
    const sort = (t: string) => t.split('\n').sort().join('\n');
    expect(sort(await registry.metrics())).toBe(sort(await reference(observations)));
  });

  it(`keeps at most ${MAX_OP_SERIES} (op, result) pairs, counting the rest under op "other"`, async () => {
    const registry = new Registry();
    const m = new OpMetrics({ registry, buckets: [0.1, 1] });
    for (let i = 0; i < MAX_OP_SERIES + 10; i++) m.observe('get', `E${i}`, 0.5);
    const text = await registry.metrics();
    expect(text).toContain('paxkv_ops_total{op="other",result="other"} 10');
    expect(text).toContain('paxkv_op_duration_seconds_count{op="other"} 10');
    expect(text).toContain(`paxkv_op_duration_seconds_count{op="get"} ${MAX_OP_SERIES}`);
  });

  it('refuses buckets that are not ascending', () => {
    expect(() => new OpMetrics({ registry: new Registry(), buckets: [1, 0.5] })).toThrow(RangeError);
  });
});
