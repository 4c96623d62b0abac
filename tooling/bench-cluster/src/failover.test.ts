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

describe('median and metric sums', () => {
  it('takes the middle value, or the rounded mean of the two middle ones', async () => {
    const { median } = await import('./latency.js');
    expect(median([])).toBeNull();
    expect(median([300, 100, 200])).toBe(200);
    expect(median([100, 400, 200, 300])).toBe(250);
  });

  it('sums every label set of one metric and nothing else', async () => {
    const { sumMetric } = await import('./cluster.js');
    const text = [
      '# TYPE paxkv_leader_changes_total counter',
      'paxkv_leader_changes_total{partition="0"} 2',
      'paxkv_leader_changes_total{partition="1"} 1',
      'paxkv_leader_changes_totalx 7',
      'etcd_server_leader_changes_seen_total 3',
    ].join('\n');
    expect(sumMetric(text, 'paxkv_leader_changes_total')).toBe(3);
    expect(sumMetric(text, 'etcd_server_leader_changes_seen_total')).toBe(3);
  });

  it('reads an endpoint once for several metrics', async () => {
    const { createServer } = await import('node:http');
    const { fetchMetricSums } = await import('./cluster.js');
    let reads = 0;
    const server = createServer((_req, res) => {
      reads += 1;
      res.end('a_total{p="0"} 2\na_total{p="1"} 3\nb_sum 0.5\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const sums = await fetchMetricSums(`http://127.0.0.1:${port}/metrics`, ['a_total', 'b_sum', 'c']);
      expect(sums).toEqual([5, 0.5, 0]);
      expect(reads).toBe(1);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
