import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  KeyTooLargeError,
  NoLeaderError,
  TimeoutError,
  UnavailableError,
  ValueTooLargeError,
} from '@paxkv/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeCluster, localAddresses } from '../test/fake-cluster.js';
import { createClient, type PaxkvClient, WATCHES_PER_CONNECTION } from './client.js';
import { ClientClosedError, ClientOverloadedError } from './errors.js';
import { HistoryRecorder, type HistorySink } from './history.js';
import type { ClientOptions } from './options.js';

/** Guard of the waits for an event (`vi.waitFor` polls every 5 ms); it only ends a hang. */
const WAIT = { timeout: 20_000, interval: 5 };

const clients: PaxkvClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

/** Options of the tests whose faults are meant to make attempts time out (lost replies). */
const TIMEOUT_TEST_OPTIONS = { attemptTimeoutMs: 200, requestTimeoutMs: 5_000 } as const;

function setup(options: Partial<ClientOptions> = {}, clusterOptions = {}) {
  const cluster = new FakeCluster(clusterOptions);
  cluster.setAddresses(localAddresses(cluster));
  const client = createClient({
    servers: [cluster.addresses.get(1)!],
    connectionFactory: cluster.connectionFactory(),
    // Generous: a test that counts attempts must not see a spurious attempt timeout when the machine
    // stalls this process for a moment. Tests about timeouts set their own (TIMEOUT_TEST_OPTIONS).
    attemptTimeoutMs: 5_000,
    requestTimeoutMs: 20_000,
    backoff: { initialDelayMs: 5, maxDelayMs: 40 },
    ...options,
  });
  clients.push(client);
  return { cluster, client };
}

/** A key whose partition is `p` in a cluster of `partitions`. */
function keyIn(cluster: FakeCluster, p: number, prefix = 'k'): string {
  for (let i = 0; ; i++) if (cluster.partitionOf(`${prefix}${i}`) === p) return `${prefix}${i}`;
}

/** Puts `key` once more and checks that the client sent it straight to `node` (one attempt, not forwarded). */
async function putGoesStraightTo(client: PaxkvClient, cluster: FakeCluster, key: string, node: number) {
  cluster.log.length = 0;
  cluster.forwardedCount = 0;
  await client.put(key, 'again');
  expect(cluster.log.map((l) => l.node)).toEqual([node]);
  expect(cluster.forwardedCount).toBe(0);
}

class MemorySink implements HistorySink {
  readonly lines: string[] = [];
  write(line: string): void {
    this.lines.push(line);
  }
  events(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

describe('PaxkvClient operations', () => {
  it('get / put / cas / delete return typed results', async () => {
    const { client } = setup();
    expect(await client.get('a')).toBeNull();
    expect(await client.put('a', '1')).toMatchObject({ created: true });
    expect(await client.put('a', '2')).toMatchObject({ created: false });
    expect(await client.get('a')).toBe('2');
    expect(await client.cas('a', '1', '3')).toMatchObject({ outcome: 'mismatch', current: '2' });
    expect(await client.cas('a', '2', '3')).toMatchObject({ outcome: 'applied', current: '3' });
    expect(await client.cas('b', 'x', 'y')).toMatchObject({ outcome: 'not-found', current: null });
    expect(await client.cas('b', null, 'y')).toMatchObject({ outcome: 'applied', current: 'y' });
    expect(await client.delete('a')).toMatchObject({ existed: true });
    expect(await client.delete('a')).toMatchObject({ existed: false });
    const bytes = new Uint8Array([0, 1, 255]);
    await client.put('bin', bytes);
    expect(await client.get('bin')).toEqual(bytes);
  });

  it('checks key and value sizes before sending', async () => {
    const { client, cluster } = setup({ limits: { maxKeyBytes: 8, maxValueBytes: 16 } });
    await expect(client.put('123456789', 'v')).rejects.toBeInstanceOf(KeyTooLargeError);
    await expect(client.put('k', 'x'.repeat(17))).rejects.toBeInstanceOf(ValueTooLargeError);
    await expect(client.cas('k', 'x'.repeat(17), 'v')).rejects.toBeInstanceOf(ValueTooLargeError);
    expect(cluster.log).toHaveLength(0);
  });

  it('rejects bad input from JavaScript callers with BadRequestError, sending nothing', async () => {
    const { client, cluster } = setup();
    const c = client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    for (const [method, args, field] of [
      ['get', [''], 'key'],
      ['get', [42], 'key'],
      ['put', ['k', 42], 'value'],
      ['put', ['k', { a: 1 }], 'value'],
      ['cas', ['k', 7, 'v'], 'expected'],
      ['delete', [null], 'key'],
      ['get', ['k', { timeoutMs: -1 }], 'timeoutMs'],
    ] as const) {
      const e = await c[method]!.apply(client, [...args]).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'BAD_REQUEST', field });
    }
    await expect(client.status({ server: 'bogus' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      field: 'server',
    });
    expect(cluster.log).toHaveLength(0);
  });

  it('reports the cluster status of a server', async () => {
    const { client, cluster } = setup();
    const status = await client.status();
    expect(status.table?.version).toBe(1);
    expect(status.members).toHaveLength(3);
    const s3 = await client.status({ server: cluster.addresses.get(3)! });
    expect(s3.node).toBe(3);
  });

  it('rejects invalid options with a ConfigError naming every field', () => {
    expect(() => createClient({ servers: [] })).toThrow(ConfigError);
    expect(() => createClient({ servers: ['nope'] })).toThrow(/servers.0/);
    expect(() =>
      createClient({
        servers: ['127.0.0.1:1'],
        attemptTimeoutMs: 0,
        backoff: { initialDelayMs: 10, maxDelayMs: 5 },
      }),
    ).toThrow(/attemptTimeoutMs.*backoff.initialDelayMs/s);
    expect(() => createClient({ servers: ['127.0.0.1:1'], sessionId: 'x'.repeat(49) })).toThrow(/sessionId/);
  });
});

describe('PaxkvClient routing', () => {
  it("first tries the group's preferred leader, then caches the leader it learned from a redirect", async () => {
    const { client, cluster } = setup();
    const p = 1;
    const key = keyIn(cluster, p);
    const leader = cluster.replicasOf(p)[2]!;
    cluster.leaders.set(p, leader);
    await client.put(key, 'v');
    const first = cluster.log.filter((l) => 'key' in l.request.op && l.request.op.key === key);
    expect(first.map((l) => l.node)).toEqual([cluster.replicasOf(p)[0], leader]);
    expect(client.leaderOf(p)).toBe(leader);
    expect(client.stats.redirects).toBe(1);
    cluster.log.length = 0;
    await client.get(key);
    await client.put(key, 'w');
    expect(cluster.log.map((l) => l.node)).toEqual([leader, leader]);
  });

  it('learns the leader from a successful reply and sends each key to its own group leader', async () => {
    const { client, cluster } = setup({}, { servers: 5, partitions: 8, replication: 3 });
    for (let p = 0; p < 8; p++) await client.put(keyIn(cluster, p), `v${p}`);
    for (let p = 0; p < 8; p++) expect(client.leaderOf(p)).toBe(cluster.replicasOf(p)[0]);
    // Every request went straight to its leader: no redirects, one attempt each.
    expect(client.stats.redirects).toBe(0);
    expect(client.stats.attempts).toBe(8);
  });

  it('learns the leader from a forwarded success that names it, and goes there next time', async () => {
    // Discovery off: what the client learns comes from the reply.
    const { client, cluster } = setup({ leaderDiscoveryIntervalMs: 0 });
    cluster.forwarding = true;
    const key = keyIn(cluster, 0);
    const [preferred, , leader] = cluster.replicasOf(0);
    cluster.leaders.set(0, leader!);
    await client.put(key, 'a');
    expect(cluster.log.map((l) => l.node)).toEqual([preferred, leader]);
    expect(cluster.forwardedCount).toBe(1);
    expect(client.leaderOf(0)).toBe(leader);
    expect(client.stats.leaderUpdates).toBe(1);
    await putGoesStraightTo(client, cluster, key, leader!);
    // The leader moves back; the old one forwards once, and the client follows at once.
    cluster.leaders.set(0, preferred!);
    await client.get(key);
    expect(client.leaderOf(0)).toBe(preferred);
    expect(client.stats.leaderUpdates).toBe(2);
  });

  it('discovers the leaders from status when servers forward (no NOT_LEADER to learn from)', async () => {
    const { client, cluster } = setup({ leaderDiscoveryIntervalMs: 50 });
    cluster.forwarding = true;
    cluster.forwardNamesLeader = false; // an older server: a forwarded success names no leader
    const key = keyIn(cluster, 0);
    const [preferred, , leader] = cluster.replicasOf(0);
    cluster.leaders.set(0, leader!);
    await client.put(key, 'a');
    // The discovery that follows the first table finds the leader (waited for, not timed).
    await vi.waitFor(() => expect(client.leaderOf(0)).toBe(leader), WAIT);
    expect(client.stats.leaderDiscoveries).toBeGreaterThan(0);
    await putGoesStraightTo(client, cluster, key, leader!);
    // The leader moves; the old one forwards. The next periodic discovery finds the new one.
    cluster.leaders.set(0, preferred!);
    // Calls start a discovery once the interval passed: keep calling until one has found the new leader.
    await vi.waitFor(async () => {
      await client.get(key);
      expect(client.leaderOf(0)).toBe(preferred);
    }, WAIT);
  });

  it('waits out an election (NO_LEADER) with backoff and refreshes the table', async () => {
    const { client, cluster } = setup({ tableRefreshIntervalMs: 5 });
    const key = keyIn(cluster, 0);
    await client.put(key, 'a');
    const lookupsBefore = [...cluster.received.values()].reduce((s, r) => s + r.lookup, 0);
    cluster.leaders.set(0, null);
    setTimeout(() => cluster.leaders.set(0, 2), 150);
    const t0 = performance.now();
    expect(await client.put(key, 'b')).toMatchObject({ created: false });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(100);
    expect(client.leaderOf(0)).toBe(2);
    expect(client.stats.retries).toBeGreaterThan(0);
    const lookupsAfter = [...cluster.received.values()].reduce((s, r) => s + r.lookup, 0);
    expect(lookupsAfter).toBeGreaterThan(lookupsBefore);
  });

  it('fails over to another replica when the leader is down and follows the new leader', async () => {
    const { client, cluster } = setup();
    const key = keyIn(cluster, 0);
    await client.put(key, 'a');
    expect(client.leaderOf(0)).toBe(1);
    cluster.fault(1).down = true;
    cluster.breakConnections(1);
    cluster.leaders.set(0, 3);
    expect(await client.get(key)).toBe('a');
    expect(client.leaderOf(0)).toBe(3);
  });

  it('adopts a newer table when a redirect names a node it does not know', async () => {
    const { client, cluster } = setup();
    const key = keyIn(cluster, 0);
    await client.put(key, 'a');
    // Node 1 restarts on a new address: the cluster's table moves to version 2.
    const moved = new Map(cluster.addresses);
    moved.set(1, '10.0.9.1:7000');
    cluster.tableVersion = 2;
    cluster.addresses = moved;
    cluster.leaders.set(0, 2);
    cluster.fault(2).failWith = null;
    // Node 1 at its old address is gone; node 2 now leads.
    expect(await client.get(key)).toBe('a');
    await client.lookupTable({ refresh: true });
    expect(client.table?.version).toBe(2);
    expect(client.table?.nodes.find((n) => n.id === 1)?.address).toBe('10.0.9.1:7000');
  });

  it('retries lookups while the cluster is not started (NOT_READY)', async () => {
    const { client, cluster } = setup();
    cluster.ready = false;
    setTimeout(() => {
      cluster.ready = true;
    }, 120);
    expect(await client.put('x', 'y')).toMatchObject({ created: true });
    expect(client.table?.version).toBe(1);
  });

  it('serves stale reads from any replica, marks them stale, and does not learn a leader from them', async () => {
    const { client, cluster } = setup();
    const key = keyIn(cluster, 0);
    cluster.leaders.set(0, 3);
    cluster.data.set(key, 'v');
    expect(await client.get(key, { stale: true })).toBe('v');
    expect(cluster.log[0]!.request.consistency).toBe('stale');
    expect(cluster.log[0]!.node).toBe(1);
    expect(client.leaderOf(0)).toBeUndefined();
  });
});

describe('PaxkvClient retries and exactly-once', () => {
  it('retries a write whose reply was lost with the same session and seq: applied once', async () => {
    const { client, cluster } = setup(TIMEOUT_TEST_OPTIONS);
    const key = keyIn(cluster, 0);
    cluster.fault(1).dropReplies = 2;
    expect(await client.put(key, 'v')).toMatchObject({ created: true });
    const attempts = cluster.log.filter((l) => 'key' in l.request.op && l.request.op.key === key);
    // Two attempts at the leader timed out; in between the client tried another replica, which
    // redirected it back. Every attempt carried the same session and seq.
    expect(attempts.filter((a) => a.node === 1).length).toBe(3);
    const sessions = new Set(attempts.map((a) => JSON.stringify(a.request.session)));
    expect(sessions.size).toBe(1);
    expect([...cluster.applied.values()]).toEqual([1]);
    expect(client.stats.attemptTimeouts).toBe(2);
  });

  it('a CAS retried across a leader change is applied once', async () => {
    const { client, cluster } = setup(TIMEOUT_TEST_OPTIONS);
    const key = keyIn(cluster, 0);
    await client.put(key, '0');
    cluster.fault(1).dropReplies = 1;
    const pending = client.cas(key, '0', '1');
    // Node 1 applied the CAS and lost the reply; then the group elects node 2: the retry reaches it and
    // is deduplicated.
    await vi.waitFor(() => expect(cluster.data.get(key)).toBe('1'), WAIT);
    cluster.leaders.set(0, 2);
    expect(await pending).toMatchObject({ outcome: 'applied', current: '1' });
    expect(cluster.data.get(key)).toBe('1');
    for (const n of cluster.applied.values()) expect(n).toBe(1);
  });

  it('pipelines many calls over one connection, one session slot per write in flight', async () => {
    const { client, cluster } = setup({}, { partitions: 1 });
    cluster.fault(1).delayMs = 20;
    const n = 200;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => client.put(`key-${i}`, `v${i}`)));
    expect(results.every((r) => r.created)).toBe(true);
    expect(cluster.maxInFlightPerConnection).toBeGreaterThan(50);
    const clients = new Set(cluster.log.map((l) => l.request.session?.client));
    expect(clients.size).toBe(n);
    for (const v of cluster.applied.values()) expect(v).toBe(1);
    // Sequential writes reuse the first slot with increasing seqs.
    cluster.log.length = 0;
    await client.put('s', '1');
    await client.put('s', '2');
    const seqs = cluster.log.map((l) => l.request.session!);
    expect(seqs[0]!.client).toBe(seqs[1]!.client);
    expect(seqs[1]!.seq).toBe(seqs[0]!.seq + 1);
  });

  it('backs off and stays with the leader when its connection is at the high-water mark', async () => {
    const { client, cluster } = setup({ leaderDiscoveryIntervalMs: 0 });
    const key = keyIn(cluster, 0);
    await client.put(key, 'a');
    cluster.log.length = 0;
    cluster.refuseSends = 3;
    expect(await client.put(key, 'b')).toMatchObject({ created: false });
    expect(cluster.log.map((l) => l.node)).toEqual([1]);
    expect(client.stats.retries).toBe(3);
    expect(client.leaderOf(0)).toBe(1);
  });

  it('queues calls beyond maxInFlight', async () => {
    const { client, cluster } = setup({ maxInFlight: 4 }, { partitions: 1 });
    cluster.fault(1).delayMs = 10;
    await Promise.all(Array.from({ length: 40 }, (_, i) => client.get(`k${i}`)));
    expect(cluster.maxInFlightPerConnection).toBeLessThanOrEqual(4);
  });

  it('refuses calls beyond maxQueuedCalls at once with ClientOverloadedError (not sent, not recorded)', async () => {
    const sink = new MemorySink();
    const { client, cluster } = setup(
      { maxInFlight: 2, maxQueuedCalls: 3, history: sink },
      { partitions: 1 },
    );
    await client.lookupTable();
    cluster.fault(1).delayMs = 20;
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => client.put(`k${i}`, 'v')));
    const refused = results.filter((r) => r.status === 'rejected');
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    expect(refused).toHaveLength(5);
    for (const r of refused) {
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ClientOverloadedError);
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'UNAVAILABLE', queued: 3 });
    }
    expect(cluster.log).toHaveLength(5);
    expect(sink.events().filter((e) => e.type === 'invoke')).toHaveLength(5);
  });

  it('keeps at most maxConnections connections open, closing the least recently used idle one', async () => {
    const cluster = new FakeCluster({ partitions: 3 });
    cluster.setAddresses(localAddresses(cluster));
    for (let p = 0; p < 3; p++) cluster.leaders.set(p, p + 1);
    const inner = cluster.connectionFactory();
    let open = 0;
    let most = 0;
    const closed: string[] = [];
    const client = createClient({
      servers: [cluster.addresses.get(1)!],
      connectionFactory: (address, events) => {
        const c = inner(address, events);
        open++;
        most = Math.max(most, open);
        return {
          get isOpen() {
            return c.isOpen;
          },
          send: (m) => c.send(m),
          close: () => {
            open--;
            closed.push(address);
            c.close();
          },
        };
      },
      maxConnections: 2,
      leaderDiscoveryIntervalMs: 0,
      attemptTimeoutMs: 200,
      backoff: { initialDelayMs: 5, maxDelayMs: 40 },
    });
    clients.push(client);
    for (let round = 0; round < 3; round++) {
      for (let p = 0; p < 3; p++) expect(await client.put(keyIn(cluster, p), `v${round}`)).toBeDefined();
    }
    expect(most).toBe(2);
    expect(new Set(cluster.log.map((l) => l.node))).toEqual(new Set([1, 2, 3]));
    // A server that moves: its old connection closes when the new table arrives.
    const old = cluster.addresses.get(3)!;
    expect(await client.put(keyIn(cluster, 2), 'x')).toBeDefined();
    cluster.addresses.set(3, '10.0.0.33:7000');
    cluster.tableVersion++;
    closed.length = 0;
    await client.lookupTable({ refresh: true });
    expect(closed).toEqual([old]);
    expect(await client.put(keyIn(cluster, 2), 'y')).toBeDefined();
  });

  it('gives up at the deadline with UnavailableError when every server is down (nothing sent)', async () => {
    const { client, cluster } = setup({ requestTimeoutMs: 300 });
    await client.put('a', '1');
    for (const id of cluster.ids) {
      cluster.fault(id).down = true;
      cluster.breakConnections(id);
    }
    cluster.log.length = 0;
    const t0 = performance.now();
    const e = await client.put('a', '2').catch((x: unknown) => x);
    const took = performance.now() - t0;
    expect(e).toBeInstanceOf(UnavailableError);
    expect((e as Error).message).toMatch(/unreachable/);
    // It kept trying until its deadline (no upper bound: a loaded machine may run the deadline late;
    // a hang fails the test's own timeout), and no server got the write.
    expect(took).toBeGreaterThanOrEqual(290);
    expect(cluster.log).toHaveLength(0);
  });

  it('surfaces the last typed error when nothing was sent (no leader at all)', async () => {
    const { client, cluster } = setup({ requestTimeoutMs: 200 });
    const key = keyIn(cluster, 0);
    cluster.leaders.set(0, null);
    const e = await client.put(key, '1').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NoLeaderError);
  });

  it('does not retry a request the server calls bad', async () => {
    const { client, cluster } = setup();
    cluster.fault(1).failWith = 'BAD_REQUEST';
    await expect(client.get(keyIn(cluster, 0))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(cluster.log).toHaveLength(1);
  });

  it('close() rejects calls in flight and later calls with ClientClosedError', async () => {
    const { client, cluster } = setup();
    await client.lookupTable();
    cluster.fault(1).delayMs = 500;
    const pending = client.put(keyIn(cluster, 0), 'v');
    // Closed while an attempt is in flight (the server takes 500 ms to answer, attempts time out at 200).
    await vi.waitFor(() => expect(client.stats.attempts).toBeGreaterThan(0), WAIT);
    await client.close();
    const e = await pending.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ClientClosedError);
    await expect(client.get('x')).rejects.toBeInstanceOf(ClientClosedError);
  });
});

describe('PaxkvClient history', () => {
  it('records invoke/ok in the JSON-lines format v1', async () => {
    const sink = new MemorySink();
    const { client } = setup({ history: sink });
    await client.put('k', 'v');
    await client.get('k');
    await client.cas('k', 'v', 'w');
    await client.cas('k', 'zz', 'w');
    await client.delete('k');
    await client.get('k', { stale: true });
    const ev = sink.events();
    expect(ev.map((e) => e.type)).toEqual([
      'invoke',
      'ok',
      'invoke',
      'ok',
      'invoke',
      'ok',
      'invoke',
      'ok',
      'invoke',
      'ok',
    ]);
    expect(ev[0]).toMatchObject({
      type: 'invoke',
      process: 0,
      id: 1,
      op: { f: 'put', key: 'k', value: 'v' },
    });
    expect(ev[1]).toMatchObject({ type: 'ok', process: 0, id: 1, result: { created: true, version: 1 } });
    // The revisions the kv-txn model checks: the put's modRevision is the partition's revision after it.
    const put = ev[1]!.result as { modRevision: number; revision: number };
    expect(put.modRevision).toBeGreaterThan(0);
    expect(put.revision).toBe(put.modRevision);
    expect(ev[3]).toMatchObject({ result: { version: 1, modRevision: put.modRevision } });
    expect(ev[3]).toMatchObject({ result: { value: 'v' } });
    expect(ev[4]).toMatchObject({ op: { f: 'cas', key: 'k', expected: 'v', value: 'w' } });
    expect(ev[5]).toMatchObject({ result: { ok: true } });
    expect(ev[7]).toMatchObject({ result: { ok: false } });
    expect(ev[9]).toMatchObject({ result: { existed: true } });
    for (const e of ev) expect(typeof e.time).toBe('number');
    expect(Object.keys(ev[0]!)).toEqual(['type', 'process', 'id', 'time', 'op']);
  });

  it('gives concurrent calls distinct processes and shares numbering between clients of one sink', async () => {
    const sink = new MemorySink();
    const { client, cluster } = setup({ history: sink });
    const other = createClient({
      servers: [cluster.addresses.get(2)!],
      connectionFactory: cluster.connectionFactory(),
      history: sink,
    });
    clients.push(other);
    await Promise.all([client.put('a', '1'), client.put('b', '2'), other.put('c', '3')]);
    const invokes = sink.events().filter((e) => e.type === 'invoke');
    expect(new Set(invokes.map((e) => e.process)).size).toBe(3);
    expect(new Set(invokes.map((e) => e.id)).size).toBe(3);
  });

  it('records a write that timed out after being sent as info, and retires its process', async () => {
    const sink = new MemorySink();
    const { client, cluster } = setup({ history: sink, requestTimeoutMs: 250 });
    const key = keyIn(cluster, 0);
    cluster.fault(1).dropReplies = 100;
    cluster.fault(2).dropReplies = 100;
    cluster.fault(3).dropReplies = 100;
    await expect(client.put(key, 'v')).rejects.toBeInstanceOf(TimeoutError);
    for (const id of cluster.ids) cluster.fault(id).dropReplies = 0;
    await client.put(key, 'w');
    const ev = sink.events();
    expect(ev[1]).toMatchObject({ type: 'info', process: 0 });
    expect(String(ev[1]!.error)).toMatch(/TIMEOUT/);
    expect(ev[2]).toMatchObject({ type: 'invoke', process: 1 });
  });

  it('records a write that was certainly not applied as fail', async () => {
    const sink = new MemorySink();
    const { client, cluster } = setup({ history: sink, requestTimeoutMs: 150 });
    cluster.leaders.set(cluster.partitionOf('k'), null);
    await expect(client.put('k', 'v')).rejects.toBeInstanceOf(NoLeaderError);
    expect(sink.events()[1]).toMatchObject({ type: 'fail', process: 0 });
  });

  it('refuses a history file that cannot be opened, and survives a sink that throws', async () => {
    expect(() => setup({ history: '/nonexistent-dir/x/history.jsonl' })).toThrow(/history/);
    const { client } = setup({
      history: {
        write() {
          throw new Error('disk full');
        },
      },
    });
    expect(await client.put('k', 'v')).toMatchObject({ created: true });
    expect(client.historyLostLines).toBe(2);
  });

  it('writes a history file once historyBufferLines lines wait, even within one event-loop turn', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-client-history-'));
    const path = join(dir, 'h.jsonl');
    try {
      const recorder = HistoryRecorder.acquire(path, { bufferLines: 3 });
      for (let i = 0; i < 4; i++) recorder.invoke({ op: 'get', key: `k${i}` });
      // Header + the first 3 lines are on disk already; the 4th waits for the end of the turn.
      expect(readFileSync(path, 'utf8').trimEnd().split('\n')).toHaveLength(4);
      recorder.release();
      expect(readFileSync(path, 'utf8').trimEnd().split('\n')).toHaveLength(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes binary values as base64 strings', async () => {
    const sink = new MemorySink();
    const { client } = setup({ history: sink });
    await client.put('k', new Uint8Array([1, 2, 3]));
    expect(sink.events()[0]).toMatchObject({ op: { value: 'base64:AQID' } });
  });
});

describe('PaxkvClient watch connections', () => {
  it('shares a connection per server between watches (at most WATCHES_PER_CONNECTION each) and closes it with the last one', async () => {
    const cluster = new FakeCluster({ partitions: 1 });
    cluster.setAddresses(localAddresses(cluster));
    const inner = cluster.connectionFactory();
    /** Connections that carried watch requests, with how many; and the ones closed. */
    const watchConns = new Map<object, number>();
    const closed = new Set<object>();
    const client = createClient({
      servers: [cluster.addresses.get(1)!],
      connectionFactory: (address, events) => {
        const c = inner(address, events);
        const me = {
          get isOpen() {
            return c.isOpen;
          },
          // Watch requests are held (never answered): the streams stay open, waiting.
          send: (m: Parameters<typeof c.send>[0]) => {
            if ((m as { type?: string }).type === 'watch') {
              watchConns.set(me, (watchConns.get(me) ?? 0) + 1);
              return true;
            }
            if ((m as { type?: string }).type === 'watch.cancel') return true;
            return c.send(m);
          },
          close: () => {
            closed.add(me);
            c.close();
          },
        };
        return me;
      },
      leaderDiscoveryIntervalMs: 0,
    });
    clients.push(client);
    const n = WATCHES_PER_CONNECTION * 2 + 20;
    const watches = Array.from({ length: n }, (_, i) => client.watch(`k${i % 3}`));
    const deadline = Date.now() + 10_000;
    const sent = () => [...watchConns.values()].reduce((a, b) => a + b, 0);
    while (sent() < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(sent()).toBe(n);
    // One partition, so every stream goes to the same replica first: 3 shared connections, not n.
    expect(watchConns.size).toBe(3);
    expect(Math.max(...watchConns.values())).toBe(WATCHES_PER_CONNECTION);
    for (const w of watches.slice(0, n - 1)) w.cancel();
    expect([...watchConns.keys()].filter((c) => closed.has(c))).toHaveLength(2);
    watches[n - 1]?.cancel();
    expect([...watchConns.keys()].every((c) => closed.has(c))).toBe(true);
  });
});
