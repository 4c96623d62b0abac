/**
 * Real processes: rebalancing when a server joins. A 3-server cluster (6 partitions, 3 replicas each)
 * gets a 4th server; once it has been up for `--replace-after`, the metadata leader moves replicas onto
 * it until every server holds about as many as the others, then evens out the preferred leaders, and
 * each server takes over the leaderships it is preferred for, gently (one group at a time). In the end
 * the replica counts and the leadership counts per server are each within one of each other, and every
 * acknowledged write is still readable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, request, TestCluster, type TestServer, until } from './harness.js';

interface Metadata {
  table: {
    nodes: Array<{ id: number; address: string }>;
    groups: Array<{ partition: number; replicas: number[] }>;
  };
  moving: unknown[];
}

async function metadataOf(address: string): Promise<Metadata | null> {
  const r = (await request(address, { type: 'member.list', id: 1 }, 3000).catch(() => null)) as {
    type: string;
    metadata?: Metadata | null;
  } | null;
  return r?.type === 'member.list.ok' ? (r.metadata ?? null) : null;
}

const spread = (counts: number[]) => Math.max(...counts) - Math.min(...counts);

let cluster: TestCluster;
let all: TestServer[] = [];

beforeAll(async () => {
  cluster = await TestCluster.create({
    nodes: 3,
    partitions: 6,
    replication: 3,
    extraFlags: ['--replace-after', '1'],
  });
  cluster.startAll();
  await cluster.waitReady(60_000);
  all = [...cluster.servers];
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
});

/** Node id -> number of groups it leads, from every server's own status. */
async function leaderships(): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const s of all) {
    const r = (await request(s.address, { type: 'status', id: 2 }, 2000).catch(() => null)) as {
      type: string;
      status?: { node: number; groups: Array<{ partition: number; role: string }> };
    } | null;
    if (r?.type !== 'status.ok' || !r.status) continue;
    out.set(r.status.node, r.status.groups.filter((g) => g.role === 'leader').length);
  }
  return out;
}

describe('rebalancing when a server joins', () => {
  it('evens out replicas and leaderships over the servers, writes kept', async () => {
    const c = await RawClient.connect((cluster.servers[0] as TestServer).address);
    const acked = new Map<string, string>();
    try {
      for (let i = 0; i < 60; i++) {
        const r = await c.callRetrying(
          {
            type: 'kv',
            op: { op: 'put', key: `rb-${i}`, value: `v${i}` },
            session: { client: 'rb', seq: i + 1 },
          },
          20_000,
        );
        if (r?.type === 'kv.ok') acked.set(`rb-${i}`, `v${i}`);
      }
      const fresh = await cluster.addServer();
      cluster.start(fresh);
      all = [...cluster.servers, fresh];

      const balanced = await until(
        'replicas and preferred leaders balanced over 4 servers',
        async () => {
          const m = await metadataOf((cluster.servers[0] as TestServer).address);
          if (!m || m.table.nodes.length < 4 || m.moving.length > 0) return null;
          const ids = m.table.nodes.map((n) => n.id);
          const replicas = ids.map((id) => m.table.groups.filter((g) => g.replicas.includes(id)).length);
          const preferred = ids.map((id) => m.table.groups.filter((g) => g.replicas[0] === id).length);
          return spread(replicas) <= 1 && spread(preferred) <= 1 ? { m, ids, replicas } : null;
        },
        150_000,
      ).catch(async (e: Error) => {
        throw new Error(
          `${e.message}; metadata ${JSON.stringify(await metadataOf((cluster.servers[0] as TestServer).address))}\n${cluster.log(fresh, 30)}`,
        );
      });
      expect(balanced.replicas.every((n) => n >= 4)).toBe(true);

      // The actual leaders follow the preferred ones: every server leads 1 or 2 of the 6 groups.
      const led = await until(
        'leaderships balanced',
        async () => {
          const l = await leaderships();
          const counts = balanced.ids.map((id) => l.get(id) ?? 0);
          const total = counts.reduce((a, b) => a + b, 0);
          return total === 6 && spread(counts) <= 1 ? counts : null;
        },
        90_000,
      ).catch(async (e: Error) => {
        throw new Error(`${e.message}; leaders ${JSON.stringify([...(await leaderships())])}`);
      });
      expect(spread(led)).toBeLessThanOrEqual(1);

      // Every acknowledged write is still there.
      for (const [key, value] of acked) {
        const r = await c.callRetrying({ type: 'kv', op: { op: 'get', key } }, 20_000);
        expect(r, key).toMatchObject({ type: 'kv.ok', result: { value } });
      }
      console.log(
        `after the join: replicas per server ${balanced.replicas.join('/')}, leaderships ${led.join('/')}`,
      );
    } finally {
      c.close();
    }
  }, 300_000);
});
