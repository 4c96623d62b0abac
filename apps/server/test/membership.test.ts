/**
 * Real processes: the lookup table and the member list live in the metadata group (on the first three
 * servers), any server answers and takes check-ins, and the cluster goes on without its bootstrap
 * server once it is up (killed for good, data dir deleted).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, request, TestCluster, type TestServer } from './harness.js';

interface MemberListOk {
  type: 'member.list.ok';
  metadata: {
    table: {
      version: number;
      nodes: Array<{ id: number; address: string }>;
      groups: Array<{ partition: number; replicas: number[] }>;
    };
    metaReplicas: number[];
    nextNodeId: number;
  } | null;
  members: Array<{ id: number; address: string; state: string }>;
}

async function memberList(address: string): Promise<MemberListOk | null> {
  const reply = (await request(address, { type: 'member.list', id: 1 }, 3000).catch(
    () => null,
  )) as MemberListOk | null;
  return reply?.type === 'member.list.ok' ? reply : null;
}

/** Polls `probe` until it returns a value, for up to `ms` (a guard: the condition is an event). */
async function until<T>(what: string, probe: () => Promise<T | null | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let cluster: TestCluster;
const node = (i: number) => cluster.servers[i - 1] as TestServer;

beforeAll(async () => {
  cluster = await TestCluster.create({ nodes: 4, partitions: 4, replication: 3 });
  cluster.startAll();
  await cluster.waitReady(60_000);
}, 90_000);

afterAll(async () => {
  await cluster?.destroy();
});

describe('the metadata group', () => {
  it('holds the table and the members, and every server answers with the same metadata', async () => {
    const lists = await until('metadata on every server', async () => {
      const all = await Promise.all(cluster.servers.map((s) => memberList(s.address)));
      return all.every((l) => l?.metadata) ? (all as MemberListOk[]) : null;
    });
    const first = lists[0]!.metadata!;
    expect(first.metaReplicas).toEqual([1, 2, 3]);
    expect(first.table.nodes.map((n) => n.id)).toEqual([1, 2, 3, 4]);
    const version = Math.max(...lists.map((l) => l.metadata!.table.version));
    const same = await until('the same version everywhere', async () => {
      const all = await Promise.all(cluster.servers.map((s) => memberList(s.address)));
      return all.every((l) => l?.metadata?.table.version === version) ? all : null;
    });
    expect(same).toHaveLength(4);
    expect(lists[3]!.members.map((m) => m.state)).toEqual(['alive', 'alive', 'alive', 'alive']);
  }, 60_000);

  it('keeps taking writes, check-ins and membership changes after the bootstrap server is gone for good', async () => {
    const victim = node(1);
    await cluster.kill(victim, 'SIGKILL');
    rmSync(victim.dataDir, { recursive: true, force: true });

    // Writes keep working through another server.
    const c = await RawClient.connect(node(3).address);
    try {
      for (let i = 0; i < 20; i++) {
        const put = await c.callRetrying({
          type: 'kv',
          op: { op: 'put', key: `after-bootstrap-${i}`, value: String(i) },
          session: { client: 'membership-test', seq: i + 1 },
        });
        expect(put).toMatchObject({ type: 'kv.ok' });
      }
    } finally {
      c.close();
    }

    // Node 1 is seen as suspected by the others.
    await until('node 1 suspected', async () => {
      const l = await memberList(node(4).address);
      return l?.members.find((m) => m.id === 1)?.state === 'suspected' ? true : null;
    });

    // A new server checks in with node 2 (not the bootstrap server) and becomes a spare, id 5.
    const fresh = await cluster.addServer();
    cluster.start(fresh, ['--join', node(2).address]);
    const listed = await until('the new server listed as a spare', async () => {
      const l = await memberList(node(3).address);
      const m = l?.members.find((x) => x.address === fresh.address);
      return m?.state === 'spare' ? m : null;
    });
    expect(listed.id).toBe(5);
    // It got the table and answers lookups itself.
    const lookup = await until('a lookup answered by the new server', async () => {
      const r = (await request(fresh.address, { type: 'lookup', id: 7 }).catch(() => null)) as {
        type: string;
        table?: { nodes: Array<{ id: number }> };
      } | null;
      return r?.type === 'lookup.ok' && r.table?.nodes.some((n) => n.id === 5) ? r : null;
    });
    expect(lookup.type).toBe('lookup.ok');

    // Operator changes: add an address (a spare), remove it again; refusals say what to do.
    const admin = await RawClient.connect(node(4).address);
    try {
      const added = await admin.callRetrying({ type: 'member.add', address: '127.0.0.1:1' });
      expect(added).toMatchObject({ type: 'member.ok', node: 6, state: 'member' });
      const removed = await admin.callRetrying({ type: 'member.remove', node: 6 });
      expect(removed).toMatchObject({ type: 'member.ok', node: 6, state: 'removed' });
      // The bootstrap server (node 1, lost for good, a replica of the metadata group) can be removed:
      // it drains (its replicas, the metadata group's included, move to other servers), then leaves.
      const bootstrapGone = await admin.callRetrying({ type: 'member.remove', node: 1 });
      expect(bootstrapGone).toMatchObject({ type: 'member.ok', node: 1, state: 'draining' });
      const unknown = await admin.callRetrying({ type: 'member.remove', node: 42 });
      expect(String(unknown?.message)).toMatch(/not a member.*paxkv member list/);
      const bad = await admin.call({ type: 'member.add', address: 'not an address' });
      expect(bad).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
      // The seed comes only from a peer (the bootstrap server), never from a client.
      const current = (await memberList(node(4).address))?.metadata;
      const forged = await admin.call({ type: 'member.seed', metadata: current });
      expect(forged).toMatchObject({ type: 'error', code: 'UNAUTHENTICATED' });
    } finally {
      admin.close();
    }
    const after = await until('the removal seen by node 5', async () => {
      const l = await memberList(fresh.address);
      return l?.metadata && !l.metadata.table.nodes.some((n) => n.id === 6) && l.metadata.nextNodeId === 7
        ? l
        : null;
    });
    expect(after.metadata?.table.nodes.map((n) => n.id)).toEqual([1, 2, 3, 4, 5]);
  }, 120_000);
});
