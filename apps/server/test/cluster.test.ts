/**
 * Bad input on every port of a real 3-server cluster: random bytes, an oversized frame, an unknown message
 * type, wrong field types, non-msgpack payloads, forged peer traffic, fuzzed messages, and garbage on the
 * HTTP port. Each gets an error reply or a closed connection; meanwhile a well-behaved client on its own
 * connection keeps getting correct answers, and every server process stays up.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { encodeFrame } from '@paxkv/common';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dial, httpGet, RawClient, request, TestCluster, type TestServer } from './harness.js';

let cluster: TestCluster;
let good: RawClient;
let goodCounter = 0;

beforeAll(async () => {
  cluster = await TestCluster.create({ nodes: 3, partitions: 4 });
  cluster.startAll();
  await cluster.waitReady(40_000);
  good = await RawClient.connect((cluster.servers[0] as TestServer).address);
}, 60_000);

afterAll(async () => {
  good?.close();
  await cluster?.destroy();
});

/**
 * The well-behaved client writes and reads back a fresh value: the server keeps serving others. It
 * retries what a careful client retries (TIMEOUT, NO_LEADER, UNAVAILABLE: on a loaded machine a group
 * may lose its leader's heartbeats for a moment); a put of the same value may be repeated.
 */
async function goodClientWorks(): Promise<void> {
  const value = `v${++goodCounter}`;
  const put = await good.callRetrying({ type: 'kv', op: { op: 'put', key: 'good-key', value } });
  expect(put).toMatchObject({ type: 'kv.ok', result: { op: 'put' } });
  const get = await good.callRetrying({ type: 'kv', op: { op: 'get', key: 'good-key' } });
  expect(get).toMatchObject({ type: 'kv.ok', result: { op: 'get', value } });
}

function header(length: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(length);
  return b;
}

function expectErrorOrClosed(reply: unknown, code?: string): void {
  if (reply === null) return; // closed without a reply: allowed
  expect(reply).toMatchObject({ type: 'error' });
  if (code) expect((reply as { code: string }).code).toBe(code);
}

describe('bad input on the TCP port of every server', () => {
  it('answers each kind of bad input with an error or a closed connection, and keeps serving', async () => {
    for (const s of cluster.servers) {
      const a = s.address;
      // Random bytes (several shapes: the prefix may announce any length).
      for (let i = 0; i < 5; i++)
        expectErrorOrClosed(await request(a, randomBytes(64 + i * 100), 5000, { halfClose: true }));
      // A frame cut short by the end of the stream: the connection is closed. (Its first bytes are a valid
      // beginning: random ones may already be refused as they arrive, with an error reply.)
      const cut = encodeFrame({ type: 'kv', id: 1, op: { op: 'put', key: 'k', value: 'x'.repeat(2000) } });
      expect(await request(a, cut.subarray(0, 30), 5000, { halfClose: true })).toBeNull();
      // An oversized frame: a 64 MiB length prefix, no payload needed.
      expectErrorOrClosed(await request(a, header(64 * 1024 * 1024)), 'FRAME_TOO_LARGE');
      // Not msgpack: 0xc1 is never used by msgpack.
      expectErrorOrClosed(await request(a, Buffer.concat([header(1), Buffer.from([0xc1])])), 'BAD_REQUEST');
      // An unknown type, answered to its id.
      const unknown = await request(a, { type: 'frobnicate', id: 7 });
      expect(unknown).toMatchObject({ type: 'error', id: 7, code: 'UNKNOWN_TYPE' });
      // Wrong field types.
      const wrong = await request(a, { type: 'kv', id: 8, op: { op: 'put', key: 42, value: true } });
      expect(wrong).toMatchObject({ type: 'error', id: 8, code: 'BAD_REQUEST' });
      expect((wrong as { message: string }).message).toContain('op');
      // Not a map at all.
      expect(await request(a, [1, 2, 3])).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
      // A key over the size limit.
      const big = await request(a, { type: 'kv', id: 9, op: { op: 'get', key: 'k'.repeat(5000) } });
      expect(big).toMatchObject({ type: 'error', id: 9, code: 'KEY_TOO_LARGE' });
      // Forged bootstrap traffic.
      const checkin = await request(a, { type: 'checkin', address: 'not an address' });
      expect(checkin).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
      await goodClientWorks();
    }
  }, 60_000);

  it('ignores forged or malformed peer traffic without disturbing the groups', async () => {
    for (const s of cluster.servers) {
      await new Promise<void>((resolveDone) => {
        const { socket, ready } = dial('127.0.0.1', s.port);
        socket.once(ready, () => {
          // paxos without hello, hello with a bad id, then paxos with garbage inside.
          socket.write(encodeFrame({ type: 'paxos', partition: 0, from: 2, msg: { type: 'Prepare' } }));
          socket.write(encodeFrame({ type: 'peer.hello', from: -1 }));
          socket.write(encodeFrame({ type: 'peer.hello', from: 3 }));
          socket.write(
            encodeFrame({ type: 'paxos', partition: 0, from: 3, msg: { type: 'Accept', n: 'x' } }),
          );
          socket.write(encodeFrame({ type: 'paxos', partition: 99, from: 3, msg: 'garbage' }));
          socket.write(encodeFrame({ type: 'paxos', partition: 'zero', from: 3, msg: null }));
          setTimeout(() => {
            socket.destroy();
            resolveDone();
          }, 200);
        });
        socket.on('error', () => resolveDone());
      });
    }
    await goodClientWorks();
  }, 30_000);

  it('survives fuzzed messages with known type tags', async () => {
    const types = [
      'kv',
      'lookup',
      'status',
      'checkin',
      'heartbeat',
      'peer.hello',
      'paxos',
      'table.push',
      'members',
      'kv.ok',
      'error',
    ];
    const messages = fc.sample(
      fc.record(
        {
          type: fc.constantFrom(...types),
          id: fc.anything(),
          op: fc.anything(),
          table: fc.anything(),
          msg: fc.anything(),
        },
        { requiredKeys: ['type'] },
      ),
      { numRuns: 150, seed: 42 },
    );
    const target = cluster.servers[1] as TestServer;
    await new Promise<void>((resolveDone) => {
      const { socket, ready } = dial('127.0.0.1', target.port);
      socket.once(ready, () => {
        for (const m of messages) {
          try {
            socket.write(encodeFrame(m));
          } catch {
            // some sampled values cannot be encoded (e.g. functions): skip them
          }
        }
        setTimeout(() => {
          socket.destroy();
          resolveDone();
        }, 500);
      });
      socket.on('error', () => resolveDone());
    });
    await goodClientWorks();
  }, 30_000);
});

describe('bad input on the HTTP port of every server', () => {
  it('rejects garbage and keeps serving /health and /metrics', async () => {
    for (const s of cluster.servers) {
      await new Promise<void>((resolveDone) => {
        const socket = connect({ host: '127.0.0.1', port: s.httpPort }, () => {
          socket.write(randomBytes(300));
          socket.write('\r\n\r\n');
        });
        socket.on('data', () => {});
        socket.on('close', () => resolveDone());
        socket.on('error', () => resolveDone());
        setTimeout(() => {
          socket.destroy();
          resolveDone();
        }, 1000);
      });
      const health = await httpGet(s.httpPort, '/health');
      expect(health.status).toBe(200);
      const metrics = (await httpGet(s.httpPort, '/metrics')).body;
      expect(metrics).toContain('paxkv_bad_input_total');
    }
  }, 30_000);

  it('leaves every server process running', async () => {
    for (const s of cluster.servers) {
      expect(s.child?.exitCode).toBeNull();
      expect(s.child?.signalCode).toBeNull();
    }
    await goodClientWorks();
  });
});

describe('membership and shutdown', () => {
  it('registers a server that joins after the start as a spare, which serves as an entry point', async () => {
    const spare = await cluster.addServer();
    cluster.start(spare);
    // A guard, not a wait: the loop ends when the spare shows up (a server started from source takes
    // 20 s and more to check in on a machine at load 40+).
    const deadline = Date.now() + 90_000;
    let state: string | undefined;
    while (Date.now() < deadline && state !== 'spare') {
      const reply = (await request((cluster.servers[0] as TestServer).address, {
        type: 'status',
        id: 1,
      }).catch(() => null)) as {
        status?: { members: Array<{ address: string; state: string }> };
      } | null;
      state = reply?.status?.members.find((m) => m.address === spare.address)?.state;
      if (state !== 'spare') await new Promise((r) => setTimeout(r, 100));
    }
    expect(state).toBe('spare');
    // The spare hosts no group but has the table and forwards requests to the group leaders.
    const viaSpare = await RawClient.connect(spare.address);
    try {
      const deadline2 = Date.now() + 30_000;
      let put: Record<string, unknown> | null = null;
      while (Date.now() < deadline2) {
        put = await viaSpare.call({ type: 'kv', op: { op: 'put', key: 'via-spare', value: 'yes' } });
        if (put?.type === 'kv.ok') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(put).toMatchObject({ type: 'kv.ok' });
      expect(await viaSpare.callRetrying({ type: 'kv', op: { op: 'get', key: 'via-spare' } })).toMatchObject({
        type: 'kv.ok',
        result: { value: 'yes' },
      });
    } finally {
      viaSpare.close();
    }
    expect(await cluster.kill(spare, 'SIGTERM')).toBe('code 0');
  }, 180_000);

  it('shuts down cleanly on SIGTERM and restarts on its data', async () => {
    const victim = cluster.servers[2] as TestServer;
    expect(await cluster.kill(victim, 'SIGTERM')).toBe('code 0');
    expect(cluster.log(victim, 5)).toContain('paxkv-server stopped');
    // The other two still form a majority of every group.
    await goodClientWorks();
    cluster.start(victim);
    const deadline = Date.now() + 30_000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = await httpGet(victim.httpPort, '/health').then(
        (r) => r.status,
        () => 0,
      );
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    await goodClientWorks();
  }, 60_000);

  it('exports metrics of the traffic it served', async () => {
    const s = cluster.servers[0] as TestServer;
    const text = (await httpGet(s.httpPort, '/metrics')).body;
    expect(text).toMatch(/paxkv_ops_total\{op="put",result="ok"\} [1-9]/);
    expect(text).toMatch(/paxkv_op_duration_seconds_count\{op="get"\} [1-9]/);
    expect(text).toMatch(/paxkv_fsync_duration_seconds_count [1-9]/);
    expect(text).toMatch(/paxkv_bad_input_total\{code="UNKNOWN_TYPE"\} [1-9]/);
    expect(text).toContain('paxkv_decided_index{partition=');
    expect(text).toContain('paxkv_leader_changes_total');
  });
});
