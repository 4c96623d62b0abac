/**
 * Real processes: self-healing. A 4-server cluster (3 replicas per group) loses one server for good
 * (SIGKILL, data dir deleted); after `--replace-after` the metadata leader moves each of its replicas to
 * the live server outside the group, one group at a time, through a stop-sign reconfiguration of the
 * group. Writes go on throughout, and no acknowledged write is lost. A second, checked workload
 * (`@paxkv/client` clients recording their histories) runs throughout too: its history, final reads
 * included, must be linearizable per key.
 */
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckedKvWorkload, describeOutcome } from './checked-workload.js';
import { RawClient, request, TestCluster, type TestServer, until } from './harness.js';

interface Metadata {
  table: {
    version: number;
    nodes: Array<{ id: number; address: string }>;
    groups: Array<{ partition: number; replicas: number[]; config?: number }>;
  };
  moving: Array<{ partition: number; from: number; to: number }>;
}

async function metadataOf(address: string): Promise<Metadata | null> {
  const r = (await request(address, { type: 'member.list', id: 1 }, 3000).catch(() => null)) as {
    type: string;
    metadata?: Metadata | null;
  } | null;
  return r?.type === 'member.list.ok' ? (r.metadata ?? null) : null;
}

const REPLACE_AFTER_S = 2;
let cluster: TestCluster;
const node = (i: number) => cluster.servers[i - 1] as TestServer;

beforeAll(async () => {
  cluster = await TestCluster.create({
    nodes: 4,
    partitions: 4,
    replication: 3,
    extraFlags: ['--replace-after', String(REPLACE_AFTER_S)],
  });
  cluster.startAll();
  await cluster.waitReady(60_000);
  await until('the metadata on node 4', () => metadataOf(node(4).address), 30_000);
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
});

describe('self-healing', () => {
  it('replaces a server lost for good in every group, while writes keep succeeding', async () => {
    const acked = new Map<string, string>();
    let failures = 0;
    let stop = false;
    const writer = (async () => {
      const c = await RawClient.connect(node(2).address);
      try {
        for (let i = 0; !stop; i++) {
          const key = `heal-${i % 64}`;
          const value = `v${i}`;
          const reply = await c.callRetrying(
            { type: 'kv', op: { op: 'put', key, value }, session: { client: 'heal', seq: i + 1 } },
            20_000,
          );
          if (reply?.type === 'kv.ok') acked.set(key, value);
          else failures++;
        }
      } finally {
        c.close();
      }
    })();
    const checked = new CheckedKvWorkload({ servers: cluster.servers.map((s) => s.address), clients: 3 });
    checked.start();
    await until('some writes acknowledged', async () => (acked.size >= 10 ? true : null), 30_000);
    await checked.waitForWrites(10);

    const start = await until('the metadata', () => metadataOf(node(1).address), 30_000);
    // Node ids follow check-in order, not the start order: the victim is whichever of servers 3 and 4
    // is a replica of the metadata group (one of them is: ids 2-4 go to servers 2-4), so that the
    // metadata group moves too.
    const idOf = (s: TestServer) => start.table.nodes.find((n) => n.address === s.address)?.id as number;
    const metaReplicas = (start as Metadata & { metaReplicas: number[] }).metaReplicas;
    const victim = metaReplicas.includes(idOf(node(3))) ? node(3) : node(4);
    const survivor = victim === node(3) ? node(4) : node(3);
    const victimId = idOf(victim);
    expect(metaReplicas).toContain(victimId);
    await cluster.kill(victim, 'SIGKILL');
    rmSync(victim.dataDir, { recursive: true, force: true });
    const killedAt = Date.now();
    const before = acked.size;

    const healed = await until<Metadata>(
      'every group on live servers only',
      async () => {
        const m = await metadataOf(node(1).address);
        if (!m || m.moving.length > 0) return null;
        const metaMoved = !(m as Metadata & { metaReplicas: number[] }).metaReplicas.includes(victimId);
        return metaMoved &&
          m.table.groups.every((g) => g.replicas.length === 3 && !g.replicas.includes(victimId))
          ? m
          : null;
      },
      (REPLACE_AFTER_S + 60) * 1000,
    ).catch(async (e: Error) => {
      const m = await metadataOf(node(1).address);
      throw new Error(
        `${e.message}; metadata ${JSON.stringify(m)}\n${[node(1), node(2), survivor].map((s) => `--- server ${s.index}\n${cluster.log(s, 40)}`).join('\n')}`,
      );
    });
    const tookMs = Date.now() - killedAt;
    // Every group that held the lost server went through one reconfiguration (configuration id above 0).
    const moved = healed.table.groups.filter((g) => (g.config ?? 0) > 0);
    expect(moved.length).toBeGreaterThan(0);
    for (const g of healed.table.groups) expect(new Set(g.replicas).size).toBe(3);

    // Writes kept succeeding through the change.
    await until(
      'more writes acknowledged after the healing',
      async () => (acked.size > before || acked.size === 64 ? true : null),
      30_000,
    );
    await checked.waitForWrites(10);
    stop = true;
    await writer;
    expect(failures).toBe(0);
    // The checked workload's history (final reads through the live servers included) is linearizable.
    const outcome = await checked.finish([node(1), node(2), survivor].map((s) => s.address));
    console.log(`replace under load: ${describeOutcome(outcome)}`);
    expect(outcome.verdict, describeOutcome(outcome)).toBe('linearizable');
    expect(outcome.finalReads).toBe(checked.keys.length);

    // No acknowledged write lost: every key reads its last acknowledged value, from every live server.
    for (const s of [node(1), node(2), survivor]) {
      const c = await RawClient.connect(s.address);
      try {
        for (const [key, value] of acked) {
          const r = await c.callRetrying({ type: 'kv', op: { op: 'get', key } }, 20_000);
          expect(r, `${key} via ${s.address}`).toMatchObject({ type: 'kv.ok', result: { value } });
        }
      } finally {
        c.close();
      }
    }
    // The replicas report the configuration they run.
    const status = (await request(survivor.address, { type: 'status', id: 3 }, 3000)) as {
      status: { groups: Array<{ partition: number; configId?: number; members?: number[] }> };
    };
    expect(status.status.groups.some((g) => (g.configId ?? 0) > 0 && !g.members?.includes(victimId))).toBe(
      true,
    );
    // The lost server holds no replica now (data groups and the metadata group moved): removing it
    // takes it off the member list at once.
    const admin = await RawClient.connect(survivor.address);
    try {
      const removed = await admin.callRetrying({ type: 'member.remove', node: victimId });
      expect(removed).toMatchObject({ type: 'member.ok', node: victimId, state: 'removed' });
    } finally {
      admin.close();
    }
    console.log(
      `replaced node ${victimId} (and its metadata replica) in ${moved.length} groups ${tookMs} ms after the kill (replace-after ${REPLACE_AFTER_S} s)`,
    );
  }, 180_000);

  it('every server that stayed up ran its start-up warm-up (in memory, beside the real traffic)', async () => {
    // The servers run it `warmUpDelayMs` (3 s) after start; this suite has run for longer than that.
    for (const s of cluster.servers.filter((x) => x.child !== null)) {
      const line = await until(
        `the warm-up of ${s.address}`,
        async () =>
          readFileSync(s.logFile, 'utf8').match(/warm-up done in \d+ ms: 2 reconfigurations, 2 joins/)?.[0],
        60_000,
      );
      expect(line).toBeDefined();
    }
  }, 90_000);
});
