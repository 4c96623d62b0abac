import { type ChildProcess, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { framePayload } from '../codec/framing.js';
import { BackpressureError, ConnectionClosedError, type PaxkvError } from '../errors.js';
import { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import type { FramedConnection } from './framed-connection.js';
import { ReconnectingConnection } from './reconnecting-connection.js';
import { TransportServer } from './server.js';

const here = dirname(fileURLToPath(import.meta.url));
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startServer(
  options: ConstructorParameters<typeof TransportServer>[0] = {},
  address = '127.0.0.1:0',
) {
  const server = new TransportServer(options);
  const conns: FramedConnection[] = [];
  server.on('connection', (c) => conns.push(c));
  const bound = await server.listen(address);
  cleanups.push(() => server.close());
  return { server, conns, port: bound.port, address: `127.0.0.1:${bound.port}` };
}

function client(address: string, options: ConstructorParameters<typeof ReconnectingConnection>[1] = {}) {
  const c = new ReconnectingConnection(address, {
    backoff: { initialDelayMs: 10, maxDelayMs: 100 },
    ...options,
  });
  cleanups.push(() => c.close());
  return c;
}

function once<T extends unknown[]>(
  emitter: { once(event: string, fn: (...a: T) => void): unknown },
  event: string,
  timeoutMs = 5_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for '${event}'`)), timeoutMs);
    emitter.once(event, (...a: T) => {
      clearTimeout(t);
      resolve(a);
    });
  });
}

async function until(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Sends `make(i)` until a refused send is not followed by `drain` within 100 ms (the kernel's
 * socket buffers are full too); returns how many were accepted and the largest queue seen.
 */
async function fillUntilStuck(c: ReconnectingConnection, make: (i: number) => unknown, limit = 200_000) {
  let sent = 0;
  let maxBuffered = 0;
  while (sent < limit && c.connected) {
    if (c.send(make(sent))) {
      sent++;
      maxBuffered = Math.max(maxBuffered, c.bufferedBytes);
      continue;
    }
    const drained = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        c.off('drain', onDrain);
        resolve(false);
      }, 100);
      const onDrain = () => {
        clearTimeout(t);
        resolve(true);
      };
      c.once('drain', onDrain);
    });
    if (!drained) break;
  }
  return { sent, maxBuffered };
}

function rawSocket(port: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) }, () =>
      resolve(s),
    );
    s.on('error', reject);
    cleanups.push(() => s.destroy());
  });
}

describe('backoffDelay', () => {
  it('grows exponentially, is capped, and jitters within [d*(1-jitter), d]', () => {
    const cfg = { ...DEFAULT_BACKOFF, initialDelayMs: 100, maxDelayMs: 1_000, multiplier: 2, jitter: 0.5 };
    expect(DEFAULT_BACKOFF).toEqual({
      initialDelayMs: 50,
      maxDelayMs: 5_000,
      multiplier: 2,
      jitter: 0.5,
    });
    expect([0, 1, 2, 3, 4, 10, 5000].map((a) => backoffDelay(a, cfg, () => 0))).toEqual([
      100, 200, 400, 800, 1000, 1000, 1000,
    ]);
    expect(backoffDelay(3, cfg, () => 0.999999)).toBe(400);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, cfg);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });
});

describe('TransportServer + ReconnectingConnection on loopback', () => {
  it('exchanges messages both ways and reports connect', async () => {
    const { server, address } = await startServer();
    server.on('connection', (conn) => conn.on('message', (m) => conn.send({ echo: m })));
    const c = client(address);
    await c.waitConnected();
    const reply = once<[unknown]>(c, 'message');
    expect(c.send({ type: 'ping', id: 1, data: Uint8Array.of(1, 2, 3) })).toBe(true);
    const [m] = await reply;
    expect(m).toMatchObject({ echo: { type: 'ping', id: 1 } });
    expect([...(m as { echo: { data: Uint8Array } }).echo.data]).toEqual([1, 2, 3]);
    const serverSide = [...server.connections][0]!;
    serverSide.close();
    expect(serverSide.isOpen).toBe(false); // closing: nothing more may be queued
    expect(serverSide.send({ late: true })).toBe(false);
    await expect(serverSide.write({ late: true })).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('works over IPv6 loopback with a bracketed address', async (ctx) => {
    const server = new TransportServer();
    cleanups.push(() => server.close());
    server.on('connection', (conn) => {
      conn.on('message', () => conn.send({ peer: conn.remoteAddress }));
    });
    let port: number;
    try {
      ({ port } = await server.listen('[::1]:0'));
    } catch {
      ctx.skip(); // no IPv6 on this machine
      return;
    }
    const c = client(`[::1]:${port}`);
    await c.waitConnected();
    const reply = once<[{ peer: string }]>(c, 'message');
    c.send({});
    expect((await reply)[0].peer).toMatch(/^\[::1\]:\d+$/);
  });

  it('reconnects with backoff after the server closes and comes back on the same port', async () => {
    const first = await startServer();
    first.server.on('connection', (conn) => conn.on('message', (m) => conn.send({ echo: m, from: 'first' })));
    const c = client(first.address);
    const events: string[] = [];
    const delays: number[] = [];
    c.on('connect', () => events.push('connect'));
    c.on('disconnect', () => events.push('disconnect'));
    c.on('reconnecting', ({ delayMs }) => delays.push(delayMs));
    await c.waitConnected();
    await first.server.close();
    await until(() => delays.length >= 3); // several refused attempts while the server is down
    expect(c.connected).toBe(false);
    expect(c.send({ x: 1 })).toBe(false);
    await expect(c.write({ x: 1 })).rejects.toBeInstanceOf(ConnectionClosedError);
    const second = await startServer({}, first.address);
    second.server.on('connection', (conn) =>
      conn.on('message', (m) => conn.send({ echo: m, from: 'second' })),
    );
    await until(() => c.connected, 5_000);
    const reply = once<[unknown]>(c, 'message');
    c.send({ hello: 2 });
    expect((await reply)[0]).toEqual({ echo: { hello: 2 }, from: 'second' });
    expect(events[0]).toBe('connect');
    expect(events.at(-1)).toBe('connect');
    expect(events.filter((e) => e === 'connect')).toHaveLength(2);
    expect(Math.max(...delays)).toBeLessThanOrEqual(100);
  });

  it('reconnects to a peer process that was killed (SIGKILL) and restarted', async () => {
    const root = join(here, '../../../..');
    const fixture = join(here, '../../test/fixtures/echo-server.ts');
    const spawnServer = async (address: string): Promise<{ child: ChildProcess; port: number }> => {
      // Run node itself (with tsx as a loader) so that the pid we kill is the server's.
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--conditions=@paxkv/source', fixture, address],
        {
          cwd: root,
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      cleanups.push(() => child.kill('SIGKILL'));
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(Number(out.trim()));
        });
        child.on('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
      });
      return { child, port };
    };
    const a = await spawnServer('127.0.0.1:0');
    const c = client(`127.0.0.1:${a.port}`);
    await c.waitConnected(10_000);
    let reply = once<[{ pid: number }]>(c, 'message');
    c.send({ n: 1 });
    expect((await reply)[0].pid).toBe(a.child.pid);
    const lost = once<[PaxkvError | undefined]>(c, 'disconnect');
    a.child.kill('SIGKILL');
    await lost;
    const b = await spawnServer(`127.0.0.1:${a.port}`);
    await until(() => c.connected, 10_000);
    reply = once<[{ pid: number }]>(c, 'message');
    c.send({ n: 2 });
    expect((await reply)[0].pid).toBe(b.child.pid);
  }, 30_000);

  it('sees a graceful close by the peer (FIN) as a disconnect and reconnects', async () => {
    const { conns, address } = await startServer();
    const c = client(address);
    await c.waitConnected();
    await until(() => conns.length === 1);
    const lost = once<[PaxkvError | undefined]>(c, 'disconnect', 2_000);
    conns[0]!.close();
    expect((await lost)[0]).toBeUndefined(); // an orderly close carries no error
    await until(() => conns.length === 2 && c.connected);
  });

  it('a slow reader makes the writer see backpressure; the queue stays under the high-water mark', async () => {
    const hwm = 64 * 1024;
    const { conns, address } = await startServer();
    const c = client(address, { highWaterMark: hwm });
    await c.waitConnected();
    await until(() => conns.length === 1);
    const serverSide = conns[0]!;
    serverSide.pause(); // the peer stops reading
    const received: number[] = [];
    serverSide.on('message', (m) => received.push((m as { seq: number }).seq));
    const payload = new Uint8Array(1024);
    const rssBefore = process.memoryUsage().rss;
    // Loopback kernel buffers absorb a few MiB; well before 200 MiB the writer must be refused for good.
    const { sent, maxBuffered } = await fillUntilStuck(c, (seq) => ({ seq, payload }));
    expect(sent).toBeLessThan(200_000);
    expect(maxBuffered).toBeLessThanOrEqual(hwm + 1100);
    expect(c.bufferedBytes).toBeLessThanOrEqual(hwm + 1100);
    expect(c.stats?.refused).toBeGreaterThan(0);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024);
    // write() waits for room instead of failing.
    const waiting = c.write({ seq: sent, payload });
    const drained = once(c, 'drain', 10_000);
    serverSide.resume();
    await drained;
    await waiting;
    await until(() => received.length === sent + 1, 10_000);
    expect(received).toEqual([...Array(sent + 1).keys()]);
  });

  it('write() rejects with BackpressureError when too many writes wait or the drain takes too long', async () => {
    const { conns, address } = await startServer();
    const c = client(address, { highWaterMark: 16 * 1024, maxPendingWrites: 1, drainTimeoutMs: 200 });
    await c.waitConnected();
    await until(() => conns.length === 1);
    conns[0]!.pause();
    const payload = new Uint8Array(8 * 1024);
    await fillUntilStuck(c, () => ({ payload }));
    const first = c.write({ payload });
    await expect(c.write({ payload })).rejects.toBeInstanceOf(BackpressureError);
    await expect(first).rejects.toBeInstanceOf(BackpressureError);
  });

  it("onBackpressure 'disconnect' turns a refused send into a visible session break", async () => {
    const { conns, address } = await startServer();
    const c = client(address, { highWaterMark: 16 * 1024, onBackpressure: 'disconnect' });
    await c.waitConnected();
    await until(() => conns.length === 1);
    conns[0]!.pause();
    const lost = once<[PaxkvError | undefined]>(c, 'disconnect');
    const payload = new Uint8Array(8 * 1024);
    let accepted = 0;
    while (accepted < 100_000 && c.send({ payload })) accepted++; // frames of one tick are corked: no flush
    expect(accepted).toBeLessThanOrEqual(3);
    const [reason] = await lost;
    expect(reason).toBeInstanceOf(BackpressureError);
  });

  it('answers an oversized frame with FRAME_TOO_LARGE and closes the connection', async () => {
    const { server, port } = await startServer({ maxFrameBytes: 1024 });
    const errors: PaxkvError[] = [];
    server.on('connection', (conn) => conn.on('protocolError', (e) => errors.push(e)));
    const s = await rawSocket(port);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1_000_000_000);
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    const closed = once(s, 'close');
    s.write(header);
    await closed;
    expect(errors.map((e) => e.code)).toEqual(['FRAME_TOO_LARGE']);
    const { decodeFrames } = await import('../codec/framing.js');
    const [reply] = decodeFrames(Buffer.concat(chunks));
    expect(reply).toMatchObject({ ok: true, value: { type: 'error', id: null, code: 'FRAME_TOO_LARGE' } });
  });

  it('survives garbage: bad payloads are reported and the connection keeps working', async () => {
    const { server, port } = await startServer();
    const errors: string[] = [];
    server.on('connection', (conn) => {
      conn.on('protocolError', (e) => errors.push(e.code));
      conn.on('message', (m) => conn.send({ echo: m }));
    });
    const s = await rawSocket(port);
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    s.write(framePayload(Uint8Array.of(0xc1)));
    s.write(framePayload(Uint8Array.of(0x92, 0x01)));
    s.write(framePayload(Uint8Array.of(0xa1, 0x78))); // "x"
    await until(() => got.length > 0);
    expect(errors).toEqual(['DECODE_FAILED', 'DECODE_FAILED']);
    const stats = [...server.connections][0]!.stats;
    expect(stats).toMatchObject({ framesIn: 1, framesOut: 1, protocolErrors: 2, refused: 0 });
    expect(stats.bytesIn).toBe(5 + 6 + 6);
    const { decodeFrames } = await import('../codec/framing.js');
    expect(decodeFrames(Buffer.concat(got))).toEqual([{ ok: true, value: { echo: 'x' } }]);
  });

  it('reports a stream cut inside a frame as TRUNCATED_FRAME', async () => {
    const { server, port } = await startServer();
    const errors: string[] = [];
    const closed: (PaxkvError | undefined)[] = [];
    server.on('connection', (conn) => {
      conn.on('protocolError', (e) => errors.push(e.code));
      conn.on('close', (r) => closed.push(r));
    });
    const s = await rawSocket(port);
    s.end(Uint8Array.of(0, 0, 0, 10, 1, 2));
    await until(() => closed.length === 1);
    expect(errors).toEqual(['TRUNCATED_FRAME']);
    expect(closed[0]?.code).toBe('TRUNCATED_FRAME');
  });

  it('a throwing listener closes only its connection, not the process', async () => {
    const { server, address } = await startServer();
    const closes: (PaxkvError | undefined)[] = [];
    server.on('connection', (conn) => {
      conn.on('message', () => {
        throw new Error('handler bug');
      });
      conn.on('close', (r) => closes.push(r));
    });
    const c = client(address);
    await c.waitConnected();
    c.send({ boom: true });
    await until(() => closes.length === 1);
    expect(closes[0]?.code).toBe('INTERNAL');
  });

  it('closes a connection idle for idleTimeoutMs (e.g. a peer stuck inside a frame)', async () => {
    const { server, port } = await startServer({ idleTimeoutMs: 100 });
    const closed: (PaxkvError | undefined)[] = [];
    server.on('connection', (conn) => conn.on('close', (r) => closed.push(r)));
    const s = await rawSocket(port);
    s.write(Uint8Array.of(0, 0, 1, 0, 1, 2, 3)); // a partial frame, then silence
    await once(s, 'close');
    await until(() => closed.length === 1);
    expect(closed[0]?.code).toBe('TIMEOUT');
  });

  it('keeps growing the backoff against a peer that accepts and drops at once', async () => {
    const { server, address } = await startServer();
    server.on('connection', (conn) => conn.destroy());
    const c = client(address, { backoff: { initialDelayMs: 5, maxDelayMs: 80, jitter: 0 } });
    const delays: number[] = [];
    c.on('reconnecting', ({ delayMs }) => delays.push(delayMs));
    await until(() => delays.length >= 6);
    expect(delays.slice(0, 6)).toEqual([5, 10, 20, 40, 80, 80]);
  });

  it('refuses connections beyond maxConnections', async () => {
    const { server, port } = await startServer({ maxConnections: 1 });
    const rejected: string[] = [];
    server.on('rejected', (a) => rejected.push(a));
    await rawSocket(port);
    const second = await rawSocket(port);
    await once(second, 'close');
    expect(rejected).toHaveLength(1);
    expect(server.connections.size).toBe(1);
  });

  it('close() stops reconnecting and rejects waiters', async () => {
    const c = new ReconnectingConnection('127.0.0.1:1', { backoff: { initialDelayMs: 5, maxDelayMs: 10 } });
    const waiting = c.waitConnected(5_000);
    await once(c, 'reconnecting');
    c.close();
    await expect(waiting).rejects.toBeInstanceOf(ConnectionClosedError);
    expect(c.isClosed).toBe(true);
  });

  it('validates options with typed errors', () => {
    expect(() => new TransportServer({ highWaterMark: -1 })).toThrow(/highWaterMark/);
    expect(() => new ReconnectingConnection('nope')).toThrow(/invalid address/);
    expect(() => new ReconnectingConnection('127.0.0.1:1', { backoff: { jitter: 2 } })).toThrow(
      /backoff\.jitter/,
    );
  });
});
