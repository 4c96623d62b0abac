import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from './cluster.js';
import { findEtcd, startEtcdCluster } from './etcd.js';
import { awaitLeader, measureFailover } from './failover.js';
import { runCell } from './load-generator.js';
import type { Target } from './target.js';
import { expectTargetContract } from './test-support.js';

// Runs where etcd is installed (scripts/install-etcd.sh); skipped, and says so, elsewhere.
describe.runIf(findEtcd() !== undefined)('etcd cluster and target', () => {
  let cluster: LocalCluster;
  let target: Target;

  beforeAll(async () => {
    cluster = await startEtcdCluster({ startTimeoutMs: 30_000 });
    target = await cluster.createTarget({ requestTimeoutMs: 5_000 });
  });

  afterAll(async () => {
    await target?.close();
    await cluster?.stop();
  });

  it('starts three members on loopback and names a live leader', async () => {
    expect(cluster.servers).toHaveLength(3);
    expect(cluster.version).toMatch(/^3\./);
    // Polled: a leader change can be under way on a busy machine.
    const leader = await awaitLeader(cluster, 'anything', 20_000);
    expect(cluster.servers).toContain(leader);
    expect(cluster.sameGroup('a', 'b')).toBe(true);
  });

  it('put, get and cas behave as the Target contract says', async () => {
    await expectTargetContract(target);
  });

  it('measures a short cell with the servers busy', async () => {
    const r = await runCell(target, {
      workload: 'put',
      concurrency: 8,
      warmupMs: 200,
      durationMs: 800,
      drainTimeoutMs: 5_000,
      params: { keySpace: 1_000, preloadKeys: 10, valueBytes: 256 },
      serverPids: cluster.servers.map((s) => s.pid),
    });
    expect(r.errors).toBe(0);
    expect(r.ops).toBeGreaterThan(10);
    expect(r.cpu.serversPct).toBeGreaterThan(0);
  });

  it('survives the SIGKILL of its leader and reports the recovery', async () => {
    const f = await measureFailover(cluster, {
      concurrency: 8,
      warmupMs: 200,
      baselineMs: 800,
      watchMs: 10_000,
      bucketMs: 100,
      keySpace: 1_000,
      valueBytes: 256,
      target: { requestTimeoutMs: 5_000 },
    });
    expect(f.baselineOpsPerSec).toBeGreaterThan(0);
    expect(f.firstWriteMs).not.toBeNull();
    expect(f.leaderElectedMs).not.toBeNull();
    expect(cluster.servers.filter((s) => s.isAlive())).toHaveLength(2);
  });
});
