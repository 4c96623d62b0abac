/**
 * Real processes: the bootstrap server and the first servers (the metadata group's first replicas) can
 * all be removed. A 6-server cluster removes nodes 1, 2 and 3 one after the other (`member remove`): each
 * drains (its data replicas and its metadata replica move to the other servers), then leaves the member
 * list. Afterwards the metadata group runs on the remaining servers only, and every acknowledged write is
 * readable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, request, TestCluster, type TestServer, until } from './harness.js';

interface Metadata {
  table: { nodes: Array<{ id: number; address: string }>; groups: Array<{ replicas: number[] }> };
  metaReplicas: number[];
  moving: unknown[];
}

async function metadataOf(address: string): Promise<Metadata | null> {
  const r = (await request(address, { type: 'member.list', id: 1 }, 3000).catch(() => null)) as {
    type: string;
    metadata?: Metadata | null;
  } | null;
  return r?.type === 'member.list.ok' ? (r.metadata ?? null) : null;
}

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.create({
    nodes: 6,
    partitions: 4,
    replication: 3,
    extraFlags: ['--replace-after', '1'],
  });
  cluster.startAll();
  await cluster.waitReady(90_000);
}, 150_000);

afterAll(async () => {
  await cluster?.destroy();
});

describe('removing the first servers', () => {
  it('removes nodes 1, 2 and 3 one after the other: the metadata group moves, nothing is lost', async () => {
    // Node ids follow check-in order: talk to the server that got id 6 (it stays).
    const first = await until(
      'the metadata',
      () => metadataOf((cluster.servers[0] as TestServer).address),
      30_000,
    );
    const address = first.table.nodes.find((n) => n.id === 6)?.address as string;
    const last = cluster.servers.find((s) => s.address === address) as TestServer;
    const c = await RawClient.connect(last.address);
    const acked = new Map<string, string>();
    try {
      for (let i = 0; i < 40; i++) {
        const r = await c.callRetrying(
          {
            type: 'kv',
            op: { op: 'put', key: `rf-${i}`, value: `v${i}` },
            session: { client: 'rf', seq: i + 1 },
          },
          20_000,
        );
        if (r?.type === 'kv.ok') acked.set(`rf-${i}`, `v${i}`);
      }
      for (const node of [1, 2, 3]) {
        const removed = await c.callRetrying({ type: 'member.remove', node }, 20_000);
        expect(removed, `remove ${node}: ${JSON.stringify(removed)}`).toMatchObject({
          type: 'member.ok',
          node,
        });
        await until(
          `node ${node} gone from the member list`,
          async () => {
            const m = await metadataOf(last.address);
            return m && !m.table.nodes.some((n) => n.id === node) && m.moving.length === 0 ? m : null;
          },
          120_000,
        ).catch(async (e: Error) => {
          throw new Error(`${e.message}; metadata ${JSON.stringify(await metadataOf(last.address))}`);
        });
      }
      const m = (await metadataOf(last.address)) as Metadata;
      expect(m.table.nodes.map((n) => n.id)).toEqual([4, 5, 6]);
      expect([...m.metaReplicas].sort()).toEqual([4, 5, 6]);
      for (const g of m.table.groups) expect([...g.replicas].sort()).toEqual([4, 5, 6]);
      // The metadata group still takes changes (a new member), and every acknowledged write is there.
      const added = await c.callRetrying({ type: 'member.add', address: '127.0.0.1:1' }, 20_000);
      expect(added).toMatchObject({ type: 'member.ok', state: 'member' });
      for (const [key, value] of acked) {
        const r = await c.callRetrying({ type: 'kv', op: { op: 'get', key } }, 20_000);
        expect(r, key).toMatchObject({ type: 'kv.ok', result: { value } });
      }
    } finally {
      c.close();
    }
  }, 420_000);
});
