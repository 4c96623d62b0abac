import { freePorts } from '@paxkv/server/launcher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from './cluster.js';
import { awaitLeader, measureFailover, measureFailovers } from './failover.js';
import { runCell } from './load-generator.js';
import { measureMemory } from './memory.js';
import { startPaxkvCluster } from './paxkv.js';
import { measureRestartAll } from './restart-all.js';
import { probeStatus } from './status-probe.js';
import type { Target } from './target.js';
import { expectTargetContract } from './test-support.js';

/** Longest wait for a partition's leader to report itself leader (a few election timeouts on a busy machine). */
const LEADER_WAIT_MS = 20_000;

// A real 3-server paxkv cluster, run from source (no build needed). PAXKV_BENCH_SKIP_CLUSTER=1 skips it.
describe.skipIf(process.env.PAXKV_BENCH_SKIP_CLUSTER === '1')('paxkv cluster and target', () => {
  let cluster: LocalCluster;
  let target: Target;

  beforeAll(async () => {
    cluster = await startPaxkvCluster({ fromSource: true, startTimeoutMs: 45_000 });
    target = await cluster.createTarget({ requestTimeoutMs: 10_000 });
  }, 60_000);

  afterAll(async () => {
    await target?.close();
    await cluster?.stop();
  });

  it('starts three servers that agree on a leader for every partition', async () => {
    expect(cluster.servers).toHaveLength(3);
    // Every server knows a leader once the cluster is up; that leader's own status may say so a moment
    // later (and a leader change can be under way on a busy machine): poll, as the failover figure does.
    const leader = await awaitLeader(cluster, 'k0000000', LEADER_WAIT_MS);
    expect(cluster.servers).toContain(leader);
    expect(cluster.sameGroup('k0000000', 'k0000000')).toBe(true);
    expect(cluster.settings.fsync).toBe('batch');
  });

  it('put, get and cas behave as the Target contract says', async () => {
    await expectTargetContract(target);
  });

  it('measures a short cell and the memory of a small load', async () => {
    const r = await runCell(target, {
      workload: 'mixed',
      concurrency: 16,
      warmupMs: 200,
      durationMs: 800,
      drainTimeoutMs: 5_000,
      params: { keySpace: 1_000, preloadKeys: 10, valueBytes: 256 },
      serverPids: cluster.servers.map((s) => s.pid),
    });
    expect(r.errors).toBe(0);
    expect(r.ops).toBeGreaterThan(10);
    expect(r.cpu.serversPct).toBeGreaterThan(0);
    const m = await measureMemory(cluster, {
      keys: 500,
      valueBytes: 100,
      concurrency: 32,
      settleMs: 0,
      target: { requestTimeoutMs: 10_000 },
    });
    expect(m.rssAfterBytes.every((b) => b > 0)).toBe(true);
    expect(await target.get('m0000499')).toMatch(/^499:/);
  });

  it('restarts every server after a SIGKILL of all of them and writes again; counts leader changes', async () => {
    const before = await cluster.leaderChanges();
    expect(before).toBeGreaterThan(0); // the first elections count too
    const r = await measureRestartAll(cluster, {
      rounds: 1,
      watchMs: 30_000,
      valueBytes: 64,
      target: { requestTimeoutMs: 10_000 },
      readyTimeoutMs: 45_000,
    });
    expect(r.rounds).toHaveLength(1);
    expect(r.firstWriteMedianMs).not.toBeNull();
    expect(r.rounds[0]?.allGroupsMs).not.toBeNull();
    expect(cluster.servers.every((s) => s.isAlive())).toBe(true);
    await cluster.waitReady(45_000);
  });

  it('kills a group leader twice, restarting it in between, and reports both kills', async () => {
    const f = await measureFailovers(cluster, {
      concurrency: 4,
      warmupMs: 200,
      baselineMs: 500,
      watchMs: 10_000,
      afterFirstWriteMs: 200,
      bucketMs: 100,
      keySpace: 1_000,
      valueBytes: 64,
      target: { requestTimeoutMs: 10_000 },
      kills: 2,
      readyTimeoutMs: 45_000,
    });
    expect(f.kills).toHaveLength(2);
    expect(f.firstWriteMaxMs).not.toBeNull();
    // The first kill's server came back, the second's stays down.
    expect(cluster.servers.filter((s) => s.isAlive())).toHaveLength(2);
    for (const s of cluster.servers) if (!s.isAlive()) await cluster.restart(s);
    await cluster.waitReady(45_000);
  });

  it('survives the SIGKILL of a group leader and reports the recovery', async () => {
    const f = await measureFailover(cluster, {
      concurrency: 8,
      warmupMs: 200,
      baselineMs: 800,
      watchMs: 10_000,
      bucketMs: 100,
      keySpace: 1_000,
      valueBytes: 256,
      target: { requestTimeoutMs: 10_000 },
    });
    expect(f.baselineOpsPerSec).toBeGreaterThan(0);
    expect(f.firstWriteMs).not.toBeNull();
    expect(f.leaderElectedMs).not.toBeNull();
    const alive = cluster.servers.filter((s) => s.isAlive());
    expect(alive).toHaveLength(2);
    const leader = await awaitLeader(cluster, 'k0000000', LEADER_WAIT_MS);
    expect(alive).toContain(leader);
  });
});

describe('probeStatus', () => {
  it('rejects with the address when nothing listens there', async () => {
    const [port] = await freePorts(1);
    await expect(probeStatus(`127.0.0.1:${port}`, 1_000)).rejects.toThrow(`status of 127.0.0.1:${port}`);
  });
});
