/**
 * The client over real TCP (common's transport) against three loopback servers playing a cluster:
 * redirects, dropped connections, delays, lost replies, a leader change. CAS increments from two
 * clients prove exactly-once: the final counter equals the number of increments that succeeded.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type PaxkvClient } from '../src/client.js';
import { tcpConnectionFactory } from '../src/tcp.js';
import { TcpFakeCluster } from './fake-cluster.js';

let tcp: TcpFakeCluster;
const clients: PaxkvClient[] = [];
let dir: string;

beforeAll(async () => {
  tcp = await TcpFakeCluster.start({ servers: 3, partitions: 4, replication: 3 });
  dir = mkdtempSync(join(tmpdir(), 'paxkv-client-'));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await tcp.stop();
  rmSync(dir, { recursive: true, force: true });
});

function client(history?: string, timeouts = { attemptTimeoutMs: 150, requestTimeoutMs: 8000 }): PaxkvClient {
  const c = createClient({
    servers: [tcp.cluster.addresses.get(3)!],
    ...timeouts,
    backoff: { initialDelayMs: 5, maxDelayMs: 50 },
    tableRefreshIntervalMs: 20,
    ...(history ? { history } : {}),
  });
  clients.push(c);
  return c;
}

/** An address on loopback where nothing listens (a port that was free a moment ago). */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return `127.0.0.1:${port}`;
}

async function increment(c: PaxkvClient, key: string): Promise<void> {
  for (;;) {
    const current = await c.get(key);
    const n = current === null ? 0 : Number(current);
    const r = await c.cas(key, current, String(n + 1));
    if (r.outcome === 'applied') return;
  }
}

describe('client over TCP against a 3-server fake cluster', () => {
  it('routes, follows redirects, survives dropped connections, delays and lost replies, exactly once', async () => {
    const cluster = tcp.cluster;
    const historyFile = join(dir, 'history.jsonl');
    const a = client(historyFile);
    const b = client(historyFile);
    // Leaders not on the preferred replica: the first request of each group is redirected.
    for (let p = 0; p < cluster.partitions; p++) cluster.leaders.set(p, cluster.replicasOf(p)[1]!);
    await a.put('warmup', 'x');
    expect(a.table?.nodes).toHaveLength(3);

    const keys = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5'];
    // At least one lost reply for sure: the leader of c0's group applies and does not answer.
    cluster.fault(cluster.leaders.get(cluster.partitionOf('c0'))!).dropReplies = 1;
    let stop = false;
    const chaos = (async () => {
      let round = 0;
      while (!stop) {
        await new Promise((r) => setTimeout(r, 40));
        round++;
        const node = cluster.ids[round % 3]!;
        if (round % 3 === 0) tcp.dropConnections(node);
        if (round % 4 === 0) cluster.fault(node).dropReplies = 1;
        cluster.fault(node).delayMs = round % 5 === 0 ? 30 : 0;
        if (round % 7 === 0) {
          // A leader change in one group.
          const p = round % cluster.partitions;
          const replicas = cluster.replicasOf(p);
          cluster.leaders.set(p, null);
          setTimeout(() => cluster.leaders.set(p, replicas[round % replicas.length]!), 30);
        }
      }
      for (const id of cluster.ids) Object.assign(cluster.fault(id), { dropReplies: 0, delayMs: 0 });
    })();

    const perClient = 10;
    const work = async (c: PaxkvClient, offset: number) => {
      let done = 0;
      for (let i = 0; i < perClient; i++) {
        await Promise.all(
          keys.map((k, j) => ((i + j + offset) % 2 === 0 ? increment(c, k) : Promise.resolve())),
        );
        done += keys.filter((_, j) => (i + j + offset) % 2 === 0).length;
      }
      return done;
    };
    let doneA = 0;
    let doneB = 0;
    try {
      [doneA, doneB] = await Promise.all([work(a, 0), work(b, 1)]);
    } finally {
      stop = true;
      await chaos;
    }

    let total = 0;
    for (const k of keys) total += Number(await a.get(k));
    expect(total).toBe(doneA + doneB);
    for (const n of cluster.applied.values()) expect(n).toBe(1);
    // The chaos did cause retries (after lost replies) and redirects (leaders off the preferred replica).
    expect(a.stats.attemptTimeouts + b.stats.attemptTimeouts).toBeGreaterThan(0);
    expect(a.stats.retries + b.stats.retries).toBeGreaterThan(0);
    expect(a.stats.redirects + b.stats.redirects).toBeGreaterThan(0);

    // The shared history file: header line, then one invoke per completion with unique ids.
    await a.close();
    await b.close();
    const lines = readFileSync(historyFile, 'utf8').trim().split('\n');
    expect(JSON.parse(lines[0]!)).toEqual({ paxkvHistory: 1, model: 'kv' });
    const events = lines.slice(1).map((l) => JSON.parse(l) as { type: string; id: number; process: number });
    const invokes = events.filter((e) => e.type === 'invoke');
    const completions = events.filter((e) => e.type !== 'invoke');
    expect(new Set(invokes.map((e) => e.id)).size).toBe(invokes.length);
    expect(completions.length).toBe(invokes.length);
    // No process has two operations in flight at once.
    const open = new Map<number, number>();
    for (const e of events) {
      if (e.type === 'invoke') {
        expect(open.has(e.process)).toBe(false);
        open.set(e.process, e.id);
      } else {
        expect(open.get(e.process)).toBe(e.id);
        open.delete(e.process);
      }
    }
  });

  it('pipelines over one TCP connection per server', async () => {
    // 300 puts at once, each held 20 ms by the server: on a loaded machine some wait far longer than
    // the short attempt timeout of the fault tests, and this test is about pipelining, not timeouts.
    const c = client(undefined, { attemptTimeoutMs: 10_000, requestTimeoutMs: 60_000 });
    const cluster = tcp.cluster;
    for (let p = 0; p < cluster.partitions; p++) cluster.leaders.set(p, 1);
    cluster.fault(1).delayMs = 20;
    const before = cluster.received.get(1)!.kv;
    cluster.maxInFlightPerConnection = 0;
    await Promise.all(Array.from({ length: 300 }, (_, i) => c.put(`p${i}`, 'v')));
    cluster.fault(1).delayMs = 0;
    expect(cluster.received.get(1)!.kv - before).toBeGreaterThanOrEqual(300);
    // Pipelining, shown without timing: the server saw several requests in flight at once on one
    // connection (each waits 20 ms before its answer). A client that sent one request per round
    // trip would keep this at 1.
    expect(cluster.maxInFlightPerConnection).toBeGreaterThan(1);
    expect(tcp.servers.get(1)!.connections.size).toBeLessThanOrEqual(clients.length);
  });

  it('finds the cluster through the next seed when the first one refuses connections', async () => {
    const refused = await closedPort();
    const good = tcp.cluster.addresses.get(2)!;
    const dialled: string[] = [];
    const transport = tcpConnectionFactory();
    const c = createClient({
      servers: [refused, good],
      // The attempt timeout is the whole request budget: had the refused seed held the call until its
      // attempt timed out, the call could not have succeeded through the next seed. No timing needed.
      attemptTimeoutMs: 600_000,
      requestTimeoutMs: 600_000,
      connectionFactory: (address, events) => {
        dialled.push(address);
        return transport(address, events);
      },
    });
    clients.push(c);
    await c.put('seed-test', 'v');
    // The refused seed was tried first (so the test went through the refusal), then the next one.
    expect(dialled.indexOf(refused)).toBe(0);
    expect(dialled).toContain(good);
    expect(c.stats.attemptTimeouts).toBe(0);
    expect(c.table?.version).toBe(1);
  });

  it('keeps working while a server is down', async () => {
    const c = client();
    const cluster = tcp.cluster;
    for (let p = 0; p < cluster.partitions; p++) cluster.leaders.set(p, 2);
    await c.put('down-test', '1');
    cluster.fault(2).down = true;
    tcp.dropConnections(2);
    for (let p = 0; p < cluster.partitions; p++) cluster.leaders.set(p, 3);
    expect(await c.cas('down-test', '1', '2')).toMatchObject({ outcome: 'applied', current: '2' });
    cluster.fault(2).down = false;
  });
});
