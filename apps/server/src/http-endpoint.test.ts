import { afterEach, describe, expect, it } from 'vitest';
import { type HealthReport, HttpEndpoint } from './http-endpoint.js';
import { ServerMetrics } from './metrics.js';

let endpoint: HttpEndpoint | null = null;
afterEach(async () => {
  await endpoint?.close();
  endpoint = null;
});

describe('HTTP endpoint', () => {
  it('serves /health (200 when serving, 503 otherwise), /metrics and 404', async () => {
    const metrics = new ServerMetrics({ defaultMetrics: false });
    let health: HealthReport = {
      status: 'starting',
      node: null,
      address: '127.0.0.1:1',
      tableVersion: null,
      groups: [],
    };
    endpoint = await HttpEndpoint.start('127.0.0.1', 0, {
      health: () => health,
      metrics: () => metrics.render(),
      metricsContentType: metrics.contentType,
    });
    const base = `http://127.0.0.1:${endpoint.port}`;

    let res = await fetch(`${base}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'starting' });
    health = { ...health, status: 'ok', node: 1, tableVersion: 1 };
    res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);

    metrics.observeOp('put', 'ok', 0.002);
    metrics.observeOp('get', 'NOT_LEADER', 0.001);
    metrics.fsyncLatency.observe(0.0003);
    metrics.leaderChanges.inc({ partition: '3' });
    res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('paxkv_ops_total{op="put",result="ok"} 1');
    expect(text).toContain('paxkv_ops_total{op="get",result="NOT_LEADER"} 1');
    expect(text).toContain('paxkv_op_duration_seconds_bucket');
    expect(text).toContain('paxkv_fsync_duration_seconds_count 1');
    expect(text).toContain('paxkv_leader_changes_total{partition="3"} 1');

    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/health`, { method: 'POST' })).status).toBe(405);
  });
});
