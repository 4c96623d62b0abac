/**
 * The attacks of issue 14 replayed against a real 3-server cluster started WITHOUT a cluster token (the
 * worst case: anything may claim to be a peer), while a good client writes and reads all along:
 *
 * 1. a forged `peer.hello` and a `Prepare` with ballot 2^53 - 1 to every partition: dropped and counted,
 *    never persisted (every server restarts on its data at the end);
 * 2. a forged `table.push` (version 1001, dead ports): refused, nothing adopted or saved;
 * 3. amplification: 16 MiB frames of 16.7 M empty maps: from a stranger, refused at the frame header
 *    (`unidentifiedMaxFrameBytes`, 64 KiB) and the connection closed; from a connection that already sent
 *    a valid request, refused by the incremental scan within the frame's first chunk, then closed;
 * 4. half-sent frames: 12 client connections (a valid first request, then 8 MiB of a 16 MiB frame; a
 *    stranger could not even announce one): the global inbound budget
 *    (64 MiB here) closes the largest holders, the server's memory stays bounded;
 * 5. 10 000 idle connections from another process, from ten attacking hosts (loopback addresses
 *    127.0.0.100-109, 1 000 each: under the default `maxConnectionsPerHost`, 1024), against the default
 *    `maxConnections` (10 000, so the limit is really reached), kept up (a connection the server closes
 *    is dialled again): a
 *    restarted peer still gets in (the quietest connections make room), new clients still connect and
 *    write, the server's memory stays under a stated bound, and once the attacker stops dialling again
 *    the header timeout clears the idle ones. Skipped, with the limit named, where `ulimit -n` cannot
 *    allow 10 000 sockets on each side;
 * 6. one attacking host (127.0.0.99) opening 1 100 idle connections holds at most `maxConnectionsPerHost`
 *    (1024): the rest are refused at accept and counted (`paxkv_connections_evicted_total{reason="host-limit"}`).
 *
 * At the end every server is killed and restarted on its data, and the good client's last value is read
 * back. The good client's error count must be zero; its latency is printed (not asserted: timing
 * assertions do not belong in tests on a shared machine).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame } from '@paxkv/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AvailabilityProbe, type WindowReport } from './availability-probe.js';
import { RawClient, request, TestCluster, type TestServer } from './harness.js';
import {
  eventually,
  fileDescriptorLimits,
  forgedTablePush,
  forgeHelloAndPrepares,
  Impostor,
  metric,
  startIdleFlood,
} from './hostile-helpers.js';

const BUDGET = 64 * 1024 * 1024;
const PARTITIONS = 4;
const HEADER_TIMEOUT_MS = 60_000;
/** A 16 MiB frame holding an array of 16.7 M empty maps (~1.7 GB once decoded). */
const amplificationFrame = (() => {
  const payload = Buffer.alloc(16 * 1024 * 1024 - 16, 0x80);
  payload[0] = 0xdd;
  payload.writeUInt32BE(payload.length - 5, 1);
  const frame = Buffer.concat([Buffer.alloc(4), payload]);
  frame.writeUInt32BE(payload.length, 0);
  return frame;
})();
/** The server's `maxConnections` (its default, written out): the flood below is larger. */
const MAX_CONNECTIONS = 10_000;
/** The issue's flood: 10 000 idle connections (plus the good client's: the server must evict). */
const IDLE_CONNECTIONS = 10_000;
/** The servers' `maxConnectionsPerHost` (its default, written out). */
const PER_HOST = 1024;
/** The ten attacking hosts of the 10 000-connection flood (1 000 each, under PER_HOST). */
const TEN_HOSTS = Array.from({ length: 10 }, (_, i) => `127.0.0.${100 + i}`);
/** Open files a server needs to hold MAX_CONNECTIONS (plus peers, WAL and snapshot files). */
const SERVER_FDS = MAX_CONNECTIONS + 512;
/** The stated memory bound of a server holding MAX_CONNECTIONS idle connections. */
const IDLE_FLOOD_RSS_BOUND_MIB = 512;
let cluster: TestCluster;
let configFile: string;
const server = (i: number) => cluster.servers[i - 1] as TestServer;

/** The good client: a loop of put + get on its own connection, recording latencies and errors. */
const good = {
  client: null as RawClient | null,
  running: false,
  loop: Promise.resolve(),
  latencies: [] as number[],
  errors: [] as string[],
  last: '',
  n: 0,
  retries: 0,
};

/**
 * One request as a careful client sends it: a retryable answer (TIMEOUT, NO_LEADER, UNAVAILABLE: a
 * server was restarted under it, or the machine is loaded) is retried with the same request, and the
 * same session sequence number for writes, so a retried put is applied once. Retries are counted.
 */
async function careful(message: Record<string, unknown>): Promise<unknown> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const reply = await good
      .client!.call(message, 30_000)
      .catch((e: Error) => ({ type: 'exception', message: e.message }));
    const code = (reply as { code?: string })?.code;
    const retryable = code === 'TIMEOUT' || code === 'NO_LEADER' || code === 'UNAVAILABLE';
    if (!retryable || Date.now() > deadline) return reply;
    good.retries++;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function goodLoop(): Promise<void> {
  while (good.running) {
    const seq = ++good.n;
    const value = `v${seq}`;
    const t0 = performance.now();
    const put = await careful({
      type: 'kv',
      op: { op: 'put', key: 'good', value },
      session: { client: 'hostile-suite-good-client', seq },
    });
    const get = await careful({ type: 'kv', op: { op: 'get', key: 'good' } });
    good.latencies.push(performance.now() - t0);
    if ((put as { type?: string })?.type !== 'kv.ok') good.errors.push(JSON.stringify(put));
    else if ((get as { result?: { value?: string } })?.result?.value !== value)
      good.errors.push(JSON.stringify(get));
    else good.last = value;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

function rssMiB(s: TestServer): number {
  const status = readFileSync(`/proc/${s.child!.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

const phases: Array<{ phase: string; ops: number; p50: number; p99: number }> = [];
let mark = 0;
function endPhase(phase: string): void {
  const xs = good.latencies.slice(mark);
  mark = good.latencies.length;
  phases.push({ phase, ops: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99) });
}

let probe: AvailabilityProbe;
const windows: WindowReport[] = [];

/**
 * Runs one attack inside an availability window (see availability-probe.ts): it fails if a forged
 * ballot got into any replica or a partition takes no write after the attack; the longest gap per
 * partition is printed at the end.
 */
async function underProbe(name: string, attack: () => Promise<void>): Promise<void> {
  const { report } = await probe.window(name, attack);
  windows.push(report);
  endPhase(name);
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-hostile-'));
  configFile = join(dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      inboundBudgetBytes: BUDGET,
      // Longer than opening 10 000 connections takes on a loaded machine (with the default 10 s the flood
      // expires faster than it opens there, and never holds the limit); the last step waits for it.
      headerTimeoutMs: HEADER_TIMEOUT_MS,
      maxConnections: MAX_CONNECTIONS,
      maxConnectionsPerHost: PER_HOST,
    }),
  );
  cluster = await TestCluster.create({
    nodes: 3,
    partitions: PARTITIONS,
    security: 'none', // the worst case: no token, no TLS
    extraFlags: ['--config', configFile],
  });
  cluster.startAll();
  await cluster.waitReady(60_000);
  good.client = await RawClient.connect(server(1).address);
  good.running = true;
  good.loop = goodLoop();
  probe = await AvailabilityProbe.start({
    servers: () => cluster.servers,
    via: () => server(1),
    partitions: PARTITIONS,
  });
  await eventually(() => good.latencies.length >= 50, 60_000);
  endPhase('baseline');
}, 180_000);

afterAll(async () => {
  await probe?.stop();
  console.log(
    `availability (longest time without an acknowledged write per partition; the election timeout is 300 ms by default; loaded shared machine):\n${windows.map((w) => `  ${AvailabilityProbe.format(w)}`).join('\n')}`,
  );
  good.running = false;
  await good.loop.catch(() => {});
  good.client?.close();
  console.log(
    `good client latency (put + get round trip, ms), loaded shared machine:\n${phases
      .map(
        (p) =>
          `  ${p.phase.padEnd(28)} ops ${String(p.ops).padStart(4)}  p50 ${p.p50.toFixed(1)}  p99 ${p.p99.toFixed(1)}`,
      )
      .join(
        '\n',
      )}\n  retried answers (TIMEOUT/NO_LEADER/UNAVAILABLE): ${good.retries}; errors: ${good.errors.length}`,
  );
  await cluster?.destroy();
});

describe('hostile peers against a cluster without a token', () => {
  it('drops a forged hello + maximum-ballot Prepare, and counts it', () =>
    underProbe('forged hello + Prepare', async () => {
      for (const target of cluster.servers) {
        const claimed = target.index === 2 ? 3 : 2;
        await forgeHelloAndPrepares(
          target,
          claimed,
          Number.MAX_SAFE_INTEGER,
          4,
          'paxkv_peer_messages_dropped_total',
          {
            reason: 'out-of-bounds',
          },
        );
      }
      expect((await cluster.leaders()).size).toBe(4);
    }));

  it('refuses a forged table.push and saves nothing', () =>
    underProbe('forged table.push', async () => {
      const target = server(2);
      const forged = forgedTablePush();
      expect(await request(target.address, forged)).toMatchObject({ type: 'error', code: 'UNAUTHENTICATED' });
      const health = (await (await fetch(`http://127.0.0.1:${target.httpPort}/health`)).json()) as {
        tableVersion: number;
      };
      expect(health.tableVersion).toBeLessThan(1001);
      expect(readFileSync(join(target.dataDir, 'server.json'), 'utf8')).not.toContain('127.0.0.1:9"');
    }));

  it(
    'refuses amplification frames (16 MiB of empty maps) from strangers at their header',
    () =>
      underProbe('amplification (strangers)', async () => {
        const target = server(1);
        const before = await metric(target.httpPort, 'paxkv_unidentified_frames_refused_total', {
          code: 'FRAME_TOO_LARGE',
        });
        for (let i = 0; i < 4; i++) {
          const stranger = await Impostor.connect(target.address);
          stranger.write(amplificationFrame);
          // Refused at the 4-byte header (the limit of a connection that never said who it is), then closed:
          // none of the 16 MiB is buffered, scanned or decoded.
          const reply = await stranger.waitFor((m) => (m as { type?: string })?.type === 'error', 30_000);
          expect(reply).toMatchObject({ code: 'FRAME_TOO_LARGE' });
          expect((reply as { message: string }).message).toContain('maximum of 65536 bytes');
          await stranger.waitClosed(30_000);
        }
        expect(
          await metric(target.httpPort, 'paxkv_unidentified_frames_refused_total', {
            code: 'FRAME_TOO_LARGE',
          }),
        ).toBeGreaterThanOrEqual(before + 4);
      }),
    120_000,
  );

  it(
    'refuses amplification frames from a known client at their first chunk, and closes its connection',
    () =>
      underProbe('amplification (client)', async () => {
        const target = server(1);
        const before = await metric(target.httpPort, 'paxkv_bad_input_total', { code: 'DECODE_FAILED' });
        for (let i = 0; i < 4; i++) {
          const client = await Impostor.connect(target.address);
          // A valid first message makes it a client: frames up to maxFrameBytes, scanned as they arrive.
          client.send({ type: 'status', id: 1 });
          await client.waitFor((m) => (m as { id?: number })?.id === 1, 30_000);
          // Only the first MiB of the 16 MiB frame: it is refused while it arrives, not once complete.
          client.write(amplificationFrame.subarray(0, 1024 * 1024));
          const refusal = (await client.waitFor(
            (m) => /could not decode/.test((m as { message?: string })?.message ?? ''),
            30_000,
          )) as { message: string };
          // Refused within the first kilobytes of the 16 MiB frame, before the rest was even sent (session 1
          // scanned it once all 16 MiB had arrived, to ~4 MiB), then the connection is closed.
          expect(Number(/refused at offset (\d+)/.exec(refusal.message)?.[1])).toBeLessThan(64 * 1024);
          await client.waitClosed(30_000);
        }
        expect(
          await metric(target.httpPort, 'paxkv_bad_input_total', { code: 'DECODE_FAILED' }),
        ).toBeGreaterThanOrEqual(before + 4);
        expect(rssMiB(target)).toBeLessThan(1024);
      }),
    120_000,
  );

  it(
    'bounds half-sent frames with the global inbound budget',
    () =>
      underProbe('half-sent frames', async () => {
        const target = server(2);
        const sockets: Socket[] = [];
        const closed: boolean[] = [];
        const half = Buffer.alloc(4 + 8 * 1024 * 1024, 0x61);
        half.writeUInt32BE(16 * 1024 * 1024, 0);
        for (let i = 0; i < 12; i++) {
          const s = connect({ host: '127.0.0.1', port: target.port });
          s.on('error', () => {});
          s.on('close', () => {
            closed[i] = true;
          });
          s.resume(); // read the status reply, so the server's close is seen
          // A valid first message first: a stranger's 16 MiB header would be refused outright (64 KiB limit).
          s.write(Buffer.concat([encodeFrame({ type: 'status', id: 1 }), half]));
          sockets.push(s);
        }
        // 12 x 8 MiB = 96 MiB > 64 MiB: at least 4 holders are closed.
        await eventually(() => closed.filter(Boolean).length >= 4, 60_000);
        expect(rssMiB(target)).toBeLessThan(1024);
        for (const s of sockets) s.destroy();
      }),
    90_000,
  );

  it(`lets a restarted peer and new clients in through ${IDLE_CONNECTIONS} idle connections`, async (ctx) => {
    const limits = fileDescriptorLimits();
    ctx.skip(
      limits.soft < SERVER_FDS || limits.hard < IDLE_CONNECTIONS + 64,
      `the idle-connection flood needs an open-file limit (ulimit -n) of at least ${SERVER_FDS} for the servers (the soft limit, inherited) and ${IDLE_CONNECTIONS + 64} for the attacker (the hard limit); this machine has soft ${limits.soft}, hard ${limits.hard}`,
    );
    const target = server(1);
    // The attacker is a process of its own: 10 000 sockets are its file descriptors and its event loop.
    // It dials again every connection the server closes, so the header timeout alone cannot clear it.
    const flood = startIdleFlood(target, IDLE_CONNECTIONS, MAX_CONNECTIONS, {
      from: TEN_HOSTS,
      perHost: PER_HOST,
    });
    try {
      await underProbe(`${IDLE_CONNECTIONS} idle connections`, async () => {
        const holding = await flood.next('holding', 600_000);
        console.log(`idle flood: ${JSON.stringify(holding)}`);
        // The server is at its limit: it made room for newcomers by closing the quietest connections.
        expect(holding.serverConnections).toBeGreaterThanOrEqual(MAX_CONNECTIONS);
        await eventually(
          async () => (await metric(target.httpPort, 'paxkv_connections_evicted_total')) > 0,
          60_000,
        );
        const rss = rssMiB(target);
        console.log(`server 1 RSS while holding ${MAX_CONNECTIONS} connections: ${rss.toFixed(0)} MiB`);
        expect(rss).toBeLessThan(IDLE_FLOOD_RSS_BOUND_MIB);
        // A new client connects and is served (a write, through server 1, to its partition's leader).
        const fresh = await RawClient.connect(target.address);
        expect(await fresh.call({ type: 'status' }, 30_000)).toMatchObject({ type: 'status.ok' });
        expect(
          await fresh.callRetrying({ type: 'kv', op: { op: 'put', key: 'fresh', value: 'in' } }, 60_000),
        ).toMatchObject({ type: 'kv.ok' });
        fresh.close();
      });
      // A peer restarts (a deliberate fault: outside the availability windows) and must get back in:
      // its links to server 1 pass through the flood.
      const peer = server(2);
      const peerNode = (
        (await request(peer.address, { type: 'status', id: 1 }, 30_000)) as {
          status: { node: number };
        }
      ).status.node;
      const hellos = () =>
        (readFileSync(target.logFile, 'utf8').match(new RegExp(`peer ${peerNode} connected from`, 'g')) ?? [])
          .length;
      const hellosBefore = hellos();
      await cluster.kill(peer);
      cluster.start(peer);
      await cluster.waitReady(120_000);
      await eventually(() => hellos() > hellosBefore, 60_000);
      expect(rssMiB(target)).toBeLessThan(IDLE_FLOOD_RSS_BOUND_MIB);
      endPhase('a peer restarts through the flood');
      // Once the attacker stops dialling again, the header timeout clears the idle ones.
      flood.stopReopening();
      await eventually(
        async () => (await metric(target.httpPort, 'paxkv_connections')) < 100,
        HEADER_TIMEOUT_MS + 120_000,
      );
    } finally {
      await flood.close();
    }
  }, 900_000);

  it(`holds at most ${PER_HOST} idle connections from one host`, async () => {
    const target = server(2);
    const count = PER_HOST + 76;
    const refused = () =>
      metric(target.httpPort, 'paxkv_connections_evicted_total', { reason: 'host-limit' }).catch(() => 0);
    const before = await refused();
    const flood = startIdleFlood(target, count, MAX_CONNECTIONS, { from: ['127.0.0.99'], perHost: PER_HOST });
    try {
      await underProbe(`${count} idle connections from one host`, async () => {
        const holding = await flood.next('holding', 300_000);
        console.log(`one-host flood: ${JSON.stringify(holding)}`);
        await eventually(async () => (await refused()) >= before + count - PER_HOST, 120_000);
        // The clients, probe and peers (from 127.0.0.1 and the servers' own addresses) hold a few more.
        expect(await metric(target.httpPort, 'paxkv_connections')).toBeLessThan(PER_HOST + 64);
      });
    } finally {
      await flood.close();
    }
  }, 600_000);

  it('restarts every server on its data, and the good client saw no error', async () => {
    good.running = false;
    await good.loop;
    await probe.stop();
    const last = good.last;
    expect(good.errors).toEqual([]);
    expect(probe.errors).toEqual([]);
    for (const s of cluster.servers) await cluster.kill(s);
    cluster.startAll();
    await cluster.waitReady(60_000);
    good.client?.close();
    good.client = await RawClient.connect(server(3).address);
    await eventually(async () => {
      const got = await good.client!.call({ type: 'kv', op: { op: 'get', key: 'good' } });
      return (got as { result?: { value?: string } })?.result?.value === last;
    }, 30_000);
    for (const s of cluster.servers)
      expect(cluster.log(s, 200)).not.toMatch(/could not be decoded|cannot open the replica group/);
  }, 120_000);
});
