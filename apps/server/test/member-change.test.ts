/**
 * Real processes: `paxkv member add` of a fresh server to a running cluster under load, then `paxkv
 * member remove` of an old one, while a client workload runs throughout. The history of every call
 * (the clients' own recorder) is checked with the linearizability checker, `kv` model, final reads
 * included (so an acknowledged write that was lost fails the check); the replicas end rebalanced: the
 * new server holds its share, the removed one none, and it is off the member list.
 */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckedKvWorkload, describeOutcome } from './checked-workload.js';
import { RawClient, request, TestCluster, type TestServer, until } from './harness.js';

interface MemberList {
  metadata: {
    table: {
      version: number;
      nodes: Array<{ id: number; address: string }>;
      groups: Array<{ partition: number; replicas: number[]; config?: number }>;
    };
    metaReplicas: number[];
    moving: Array<{ partition: number; from: number; to: number }>;
    draining: number[];
  } | null;
  members: Array<{ id: number; address: string; state: string }>;
}

async function memberList(address: string): Promise<MemberList | null> {
  const r = (await request(address, { type: 'member.list', id: 1 }, 3000).catch(() => null)) as
    | (MemberList & { type: string })
    | null;
  return r?.type === 'member.list.ok' ? r : null;
}

/** Replicas held by each node in the table. */
function load(m: NonNullable<MemberList['metadata']>): Map<number, number> {
  const out = new Map<number, number>(m.table.nodes.map((n) => [n.id, 0]));
  for (const g of m.table.groups) for (const r of g.replicas) out.set(r, (out.get(r) ?? 0) + 1);
  return out;
}

const PARTITIONS = 4;
// A new server receives replicas once it has been up without a break for --replace-after.
const REPLACE_AFTER_S = 2;
let cluster: TestCluster;
const node = (i: number) => cluster.servers[i - 1] as TestServer;

beforeAll(async () => {
  cluster = await TestCluster.create({
    nodes: 4,
    partitions: PARTITIONS,
    replication: 3,
    extraFlags: ['--replace-after', String(REPLACE_AFTER_S)],
  });
  cluster.startAll();
  await cluster.waitReady(60_000);
  await until('the metadata on node 4', async () => (await memberList(node(4).address))?.metadata, 30_000);
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
});

describe('member add and member remove under load', () => {
  it('adds a fresh server and removes an old one: linearizable, no acknowledged write lost, rebalanced', async () => {
    const workload = new CheckedKvWorkload({ servers: cluster.servers.map((s) => s.address), clients: 4 });
    workload.start();
    let fresh: TestServer | undefined;
    const dump = async (why: string) => {
      const m = await memberList(node(1).address);
      // The move lines of every server's log (what the metadata leader planned, ran, or gave up).
      const logs = [...cluster.servers, ...(fresh ? [fresh] : [])]
        .map(
          (s) =>
            `--- ${s.address}\n${cluster
              .log(s, 100_000)
              .split('\n')
              .filter((l) => /mov|now on|failed|error/i.test(l))
              .slice(-30)
              .join('\n')}`,
        )
        .join('\n');
      return `${why}; metadata ${JSON.stringify(m?.metadata)}\n${logs}`;
    };
    let failure: Error | undefined;
    try {
      await workload.waitForWrites(20);

      // member add: the fresh server's address is recorded first, then it starts and checks in.
      fresh = await cluster.addServer();
      const admin = await RawClient.connect(node(2).address);
      let freshId: number;
      try {
        const added = await admin.callRetrying({ type: 'member.add', address: fresh.address }, 20_000);
        expect(added).toMatchObject({ type: 'member.ok', state: 'member' });
        freshId = added?.node as number;
      } finally {
        admin.close();
      }
      cluster.start(fresh, ['--join', node(2).address]);

      // Rebalancing: the new server receives replicas until the counts differ by at most one.
      const rebalanced = await until(
        'replicas rebalanced onto the new server',
        async () => {
          const m = (await memberList(node(1).address))?.metadata;
          if (!m || m.moving.length > 0) return null;
          const l = load(m);
          const counts = [...l.values()];
          return (l.get(freshId) ?? 0) > 0 && Math.max(...counts) - Math.min(...counts) <= 1 ? m : null;
        },
        120_000,
      ).catch(async (e: Error) => {
        throw new Error(await dump(e.message));
      });
      expect(rebalanced.table.nodes.map((n) => n.id)).toContain(freshId);
      await workload.waitForWrites(20);

      // member remove of an old server that is not a metadata replica: it drains, then leaves.
      const start = rebalanced;
      const victimId = start.table.nodes
        .map((n) => n.id)
        .find((id) => id !== freshId && !start.metaReplicas.includes(id)) as number;
      expect(victimId).toBeGreaterThan(0);
      const victimAddress = start.table.nodes.find((n) => n.id === victimId)?.address;
      const victim = cluster.servers.find((s) => s.address === victimAddress) as TestServer;
      const held = load(start).get(victimId) ?? 0;
      const admin2 = await RawClient.connect(node(1).address);
      try {
        const removed = await admin2.callRetrying({ type: 'member.remove', node: victimId }, 20_000);
        expect(removed).toMatchObject({
          type: 'member.ok',
          node: victimId,
          state: held > 0 ? 'draining' : 'removed',
        });
      } finally {
        admin2.close();
      }
      const after = await until(
        `node ${victimId} drained and gone`,
        async () => {
          const m = (await memberList(node(1).address))?.metadata;
          if (!m || m.moving.length > 0) return null;
          return m.table.nodes.some((n) => n.id === victimId) ? null : m;
        },
        120_000,
      ).catch(async (e: Error) => {
        throw new Error(await dump(e.message));
      });
      // Its process is stopped, as `member remove` says to; writes go on without it.
      await cluster.kill(victim, 'SIGTERM');
      await workload.waitForWrites(20);

      // Rebalanced: every group has 3 distinct replicas on the remaining members, the new one holds its
      // share, the removed one none.
      const live = new Set(after.table.nodes.map((n) => n.id));
      expect(live.has(victimId)).toBe(false);
      for (const g of after.table.groups) {
        expect(new Set(g.replicas).size, `partition ${g.partition}`).toBe(3);
        for (const r of g.replicas) expect(live.has(r), `partition ${g.partition} on ${r}`).toBe(true);
      }
      const l = load(after);
      expect(l.get(freshId)).toBeGreaterThanOrEqual(Math.floor((PARTITIONS * 3) / live.size));
      // The new server runs those replicas (its status lists them, each past configuration 0).
      const status = (await request(fresh.address, { type: 'status', id: 3 }, 3000)) as {
        status: { node: number; groups: Array<{ partition: number; configId?: number }> };
      };
      expect(status.status.node).toBe(freshId);
      const hosted = after.table.groups.filter((g) => g.replicas.includes(freshId)).map((g) => g.partition);
      for (const p of hosted) {
        const row = status.status.groups.find((g) => g.partition === p);
        expect(row, `partition ${p} on the new server`).toBeDefined();
        expect(row?.configId ?? 0).toBeGreaterThan(0);
      }
      // Every member the others list is one of the remaining servers. The new server learns the metadata
      // version that node 1 reported asynchronously: wait for its list to change, then compare.
      const freshAddress = fresh.address;
      const members = await until(
        'the new server to list only the remaining members',
        async () => {
          const list = (await memberList(freshAddress))?.members;
          return list && !list.some((m) => m.id === victimId) ? list : null;
        },
        60_000,
      );
      expect(members.map((m) => m.id).sort()).toEqual([...live].sort());
    } catch (e) {
      failure = e as Error;
    }
    // The workload ends in every case: its history is checked, and kept with the logs on a failure.
    const survivors = [...cluster.servers, ...(fresh ? [fresh] : [])]
      .filter((s) => s.child)
      .map((s) => s.address);
    const outcome = await workload.finish(survivors);
    console.log(`member add/remove under load: ${describeOutcome(outcome)}`);
    if (failure || outcome.verdict !== 'linearizable' || outcome.finalReads !== workload.keys.length) {
      // Keep the history and the server logs for the failure message.
      const keep = mkdtempSync(join(tmpdir(), 'paxkv-member-change-'));
      writeFileSync(join(keep, 'history.jsonl'), outcome.history);
      for (const s of [...cluster.servers, ...(fresh ? [fresh] : [])])
        cpSync(s.logFile, join(keep, `server-${s.index}.log`), { force: true });
      throw new Error(
        `${failure ? `${failure.message}\n` : ''}workload: ${describeOutcome(outcome)}; history and logs kept in ${keep}`,
      );
    }
    // Three phases of at least 20 acknowledged writes each: writes went on before, during and after.
    expect(outcome.acknowledgedWrites).toBeGreaterThanOrEqual(60);
  }, 400_000);
});
