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
 * 5. many idle connections: 4000 (scaled down from the issue's 10 000 for the shared 2-core CI
 *    machine, with `maxConnections` 2000 so the limit is really reached): a restarted peer still gets
 *    in (the quietest connections make room), new clients still connect, and the header timeout
 *    clears the idle ones.
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
import { RawClient, request, TestCluster, type TestServer } from './harness.js';
import { eventually, forgedTablePush, forgeHelloAndPrepares, Impostor, metric } from './hostile-helpers.js';

const BUDGET = 64 * 1024 * 1024;
/** A 16 MiB frame holding an array of 16.7 M empty maps (~1.7 GB once decoded). */
const amplificationFrame = (() => {
  const payload = Buffer.alloc(16 * 1024 * 1024 - 16, 0x80);
  payload[0] = 0xdd;
  payload.writeUInt32BE(payload.length - 5, 1);
  const frame = Buffer.concat([Buffer.alloc(4), payload]);
  frame.writeUInt32BE(payload.length, 0);
  return frame;
})();
const MAX_CONNECTIONS = 2000;
const IDLE_CONNECTIONS = 4000;
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

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-hostile-'));
  configFile = join(dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({ inboundBudgetBytes: BUDGET, headerTimeoutMs: 30_000, maxConnections: MAX_CONNECTIONS }),
  );
  cluster = await TestCluster.create({ nodes: 3, partitions: 4, extraFlags: ['--config', configFile] });
  cluster.startAll();
  await cluster.waitReady(60_000);
  good.client = await RawClient.connect(server(1).address);
  good.running = true;
  good.loop = goodLoop();
  await eventually(() => good.latencies.length >= 50, 60_000);
  endPhase('baseline');
}, 120_000);

afterAll(async () => {
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
  it('drops a forged hello + maximum-ballot Prepare, and counts it', async () => {
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
    endPhase('forged hello + Prepare');
  });

  it('refuses a forged table.push and saves nothing', async () => {
    const target = server(2);
    const forged = forgedTablePush();
    expect(await request(target.address, forged)).toMatchObject({ type: 'error', code: 'UNAUTHENTICATED' });
    const health = (await (await fetch(`http://127.0.0.1:${target.httpPort}/health`)).json()) as {
      tableVersion: number;
    };
    expect(health.tableVersion).toBeLessThan(1001);
    expect(readFileSync(join(target.dataDir, 'server.json'), 'utf8')).not.toContain('127.0.0.1:9"');
    endPhase('forged table.push');
  });

  it('refuses amplification frames (16 MiB of empty maps) from strangers at their header', async () => {
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
      await metric(target.httpPort, 'paxkv_unidentified_frames_refused_total', { code: 'FRAME_TOO_LARGE' }),
    ).toBeGreaterThanOrEqual(before + 4);
    endPhase('amplification (strangers)');
  }, 120_000);

  it('refuses amplification frames from a known client at their first chunk, and closes its connection', async () => {
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
    endPhase('amplification (client)');
  }, 120_000);

  it('bounds half-sent frames with the global inbound budget', async () => {
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
    endPhase('half-sent frames');
  }, 90_000);

  it('lets a restarted peer and new clients in through thousands of idle connections', async () => {
    const target = server(1);
    const idle: Socket[] = [];
    // The flood goes at the server's pace, in waves smaller than the listen backlog: a client-side
    // 'connect' only means the kernel answered; with the accept queue full the kernel drops the
    // handshake's last ACK and the server sees the connection seconds later (SYN-ACK retransmits back
    // off), so a flood sent at once on a loaded machine trickles in slower than the header timeout clears
    // it and the server never reaches its limit. Each wave waits until the server holds it (or is full).
    const WAVE = 200;
    for (let i = 0; i < IDLE_CONNECTIONS; i += WAVE) {
      const wave: Promise<void>[] = [];
      for (let j = 0; j < WAVE; j++) {
        const s = connect({ host: '127.0.0.1', port: target.port });
        wave.push(
          new Promise<void>((resolve) => {
            s.once('connect', () => resolve());
            s.once('error', () => resolve());
          }),
        );
        s.on('error', () => {});
        idle.push(s);
      }
      await Promise.all(wave);
      const want = Math.min(i + WAVE, MAX_CONNECTIONS);
      await eventually(async () => (await metric(target.httpPort, 'paxkv_connections')) >= want, 60_000);
    }
    // The server is at its limit: it made room by closing the quietest connections.
    await eventually(
      async () => (await metric(target.httpPort, 'paxkv_connections_evicted_total')) > 0,
      30_000,
    );
    // A peer restarts and must get back in (its links to server 1 pass through the flood).
    const peer = server(2);
    await cluster.kill(peer);
    cluster.start(peer);
    await cluster.waitReady(60_000);
    // A new client connects and is served.
    const fresh = await RawClient.connect(target.address);
    expect(await fresh.call({ type: 'status' })).toMatchObject({ type: 'status.ok' });
    fresh.close();
    // The header timeout clears the idle ones.
    await eventually(async () => (await metric(target.httpPort, 'paxkv_connections')) < 100, 90_000);
    for (const s of idle) s.destroy();
    endPhase(`${IDLE_CONNECTIONS} idle connections`);
  }, 240_000);

  it('restarts every server on its data, and the good client saw no error', async () => {
    good.running = false;
    await good.loop;
    const last = good.last;
    expect(good.errors).toEqual([]);
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
