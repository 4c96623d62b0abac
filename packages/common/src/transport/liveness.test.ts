import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame } from '../codec/framing.js';
import { ConnectionClosedError, type PaxkvError, UnavailableError } from '../errors.js';
import type { FramedConnection, HandshakeChannel } from './framed-connection.js';
import { ReconnectingConnection } from './reconnecting-connection.js';
import { TransportServer } from './server.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startServer(options: ConstructorParameters<typeof TransportServer>[0] = {}) {
  const server = new TransportServer(options);
  const conns: FramedConnection[] = [];
  server.on('connection', (c) => conns.push(c));
  const bound = await server.listen('127.0.0.1:0');
  cleanups.push(() => server.close());
  return { server, conns, address: `127.0.0.1:${bound.port}` };
}

function client(address: string, options: ConstructorParameters<typeof ReconnectingConnection>[1] = {}) {
  const c = new ReconnectingConnection(address, {
    backoff: { initialDelayMs: 10, maxDelayMs: 50 },
    ...options,
  });
  cleanups.push(() => c.close());
  return c;
}

/** A raw TCP server that accepts and then never sends a byte (a black hole that keeps the socket open). */
async function silentServer(): Promise<{ address: string; sockets: Socket[]; received: () => number }> {
  const sockets: Socket[] = [];
  let bytes = 0;
  const server: Server = createServer((s) => {
    sockets.push(s);
    s.on('data', (d) => {
      bytes += d.length;
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  const a = server.address();
  return { address: `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`, sockets, received: () => bytes };
}

function waitFor<T>(fn: (resolve: (v: T) => void) => void, timeoutMs = 10_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), timeoutMs);
    fn((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('application-level liveness', () => {
  it('tears down a connection that hears nothing and redials it', async () => {
    const hole = await silentServer();
    const c = client(hole.address, { livenessTimeoutMs: 150 });
    const reason = await waitFor<PaxkvError | undefined>((done) => {
      c.on('connect', () => c.once('disconnect', done));
    });
    expect(reason).toBeInstanceOf(ConnectionClosedError);
    expect(reason?.message).toMatch(/liveness timeout 150 ms/);
    // And it dials again.
    await until(() => hole.sockets.length >= 2);
  });

  it('keeps an idle link with keepalives on both ends up, and never delivers a keepalive as a message', async () => {
    const { conns, address } = await startServer({ keepaliveIntervalMs: 20, livenessTimeoutMs: 200 });
    const c = client(address, { keepaliveIntervalMs: 20, livenessTimeoutMs: 200 });
    const messages: unknown[] = [];
    const serverMessages: unknown[] = [];
    let disconnects = 0;
    c.on('message', (m) => messages.push(m));
    c.on('disconnect', () => disconnects++);
    await c.waitConnected(5_000);
    await until(() => conns.length === 1);
    conns[0]!.on('message', (m) => serverMessages.push(m));
    // Idle for many liveness periods: keepalives flow in both directions, nothing else.
    await until(() => (c.stats?.keepalivesIn ?? 0) >= 30 && conns[0]!.stats.keepalivesIn >= 30);
    expect(disconnects).toBe(0);
    expect(c.connected).toBe(true);
    expect(messages).toEqual([]);
    expect(serverMessages).toEqual([]);
    expect(c.stats?.framesIn).toBe(0);
    c.send({ type: 'ping' });
    await until(() => serverMessages.length === 1);
    expect(serverMessages).toEqual([{ type: 'ping' }]);
  });

  it('turns liveness on for an accepted connection at run time (setLiveness)', async () => {
    const { conns, address } = await startServer();
    const raw = connect({ host: '127.0.0.1', port: Number(address.split(':')[1]) });
    raw.on('error', () => {});
    cleanups.push(() => raw.destroy());
    await until(() => conns.length === 1);
    const conn = conns[0]!;
    const closed = waitFor<PaxkvError | undefined>((done) => conn.once('close', done));
    raw.write(encodeFrame({ type: 'hello' }));
    conn.setLiveness({ livenessTimeoutMs: 100, keepaliveIntervalMs: 0 });
    expect((await closed)?.message).toMatch(/liveness timeout 100 ms/);
  });
});

describe('handshake hook', () => {
  const hmacLike = async (ch: HandshakeChannel): Promise<unknown> => {
    if (ch.role === 'client') {
      ch.send({ type: 'auth', token: 'secret' });
      const answer = (await ch.receive()) as { ok?: boolean };
      if (!answer.ok) throw new UnavailableError({ reason: 'refused by the server' });
      return 'server-verified';
    }
    const m = (await ch.receive()) as { token?: string };
    if (m.token !== 'secret') throw new UnavailableError({ reason: 'bad token' });
    ch.send({ ok: true });
    return 'client-verified';
  };

  it('runs on both ends before the application sees the connection; messages sent right after are not lost', async () => {
    const { conns, address } = await startServer({ handshake: hmacLike });
    const got: unknown[] = [];
    const c = client(address, { handshake: hmacLike });
    await c.waitConnected(5_000);
    expect(c.connection?.handshakeResult).toBe('server-verified');
    // Sent in the same turn as the connect event: may share a TCP segment with the handshake's end.
    for (let i = 0; i < 5; i++) c.send({ i });
    await until(() => conns.length === 1);
    conns[0]!.on('message', (m) => got.push(m));
    expect(conns[0]!.handshakeResult).toBe('client-verified');
    await until(() => got.length === 5);
    expect(got).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
  });

  it('closes a connection whose hook rejects, and never emits it', async () => {
    const { conns, address } = await startServer({ handshake: hmacLike });
    const bad = async (ch: HandshakeChannel) => {
      ch.send({ type: 'auth', token: 'wrong' });
      return ch.receive();
    };
    const c = client(address, { handshake: bad });
    let connects = 0;
    c.on('connect', () => connects++);
    const reasons: (PaxkvError | undefined)[] = [];
    c.on('disconnect', (r) => reasons.push(r));
    await until(() => reasons.length >= 2);
    expect(connects).toBe(0);
    expect(conns).toHaveLength(0);
  });

  it('closes a connection whose hook takes longer than handshakeTimeoutMs', async () => {
    const { conns, address } = await startServer({ handshake: hmacLike, handshakeTimeoutMs: 100 });
    const raw = connect({ host: '127.0.0.1', port: Number(address.split(':')[1]) });
    cleanups.push(() => raw.destroy());
    raw.on('error', () => {});
    const closed = waitFor<void>((done) => raw.once('close', () => done()));
    await closed;
    expect(conns).toHaveLength(0);
  });

  it('leaves a peeked message for the application', async () => {
    const peekOnly = async (ch: HandshakeChannel) => (ch.role === 'server' ? ch.peek() : undefined);
    const { server, conns, address } = await startServer({ handshake: peekOnly });
    const got: unknown[] = [];
    // The application attaches its listener in the `connection` handler, as it must.
    server.on('connection', (conn) => conn.on('message', (m) => got.push(m)));
    const c = client(address);
    await c.waitConnected(5_000);
    c.send({ type: 'first' });
    c.send({ type: 'second' });
    await until(() => conns.length === 1);
    await until(() => got.length === 2);
    expect(conns[0]!.handshakeResult).toEqual({ type: 'first' });
    expect(got).toEqual([{ type: 'first' }, { type: 'second' }]);
  });
});

describe('localAddress', () => {
  it('binds the outgoing socket to the given local address', async () => {
    const { conns, address } = await startServer();
    const c = client(address, { localAddress: '127.0.0.7' });
    await c.waitConnected(5_000);
    await until(() => conns.length === 1);
    expect(conns[0]!.remoteAddress.startsWith('127.0.0.7:')).toBe(true);
  });
});

describe('graceful close of a server', () => {
  it('flushes what was queued on open connections before ending them', async () => {
    const { server, conns, address } = await startServer();
    const c = client(address);
    const got: unknown[] = [];
    c.on('message', (m) => got.push(m));
    await c.waitConnected(5_000);
    await until(() => conns.length === 1);
    for (let i = 0; i < 100; i++) conns[0]!.send({ i, pad: 'x'.repeat(1000) });
    await server.close({ graceMs: 5_000 });
    await until(() => got.length === 100);
  });
});

describe('silentForMs', () => {
  it('is undefined before the first connection, grows while the peer says nothing, resets when it speaks', async () => {
    const { conns, address } = await startServer();
    const c = client(address);
    expect(c.silentForMs).toBeUndefined();
    await waitFor<void>((done) => c.once('connect', () => done()));
    await waitFor<void>((done) => {
      const t = setInterval(() => {
        if (conns.length > 0 && (c.silentForMs ?? 0) > 60) {
          clearInterval(t);
          done();
        }
      }, 5);
    });
    const before = c.silentForMs as number;
    conns[0]?.send({ hello: 1 });
    await waitFor<void>((done) => c.once('message', () => done()));
    expect(c.silentForMs as number).toBeLessThan(before);
  });

  it('counts from the last byte heard on the lost connection while disconnected', async () => {
    const { server, conns, address } = await startServer();
    const c = client(address, { backoff: { initialDelayMs: 60_000, maxDelayMs: 60_000 } });
    await waitFor<void>((done) => c.once('connect', () => done()));
    await waitFor<void>((done) => {
      const t = setInterval(() => {
        if (conns.length > 0) {
          clearInterval(t);
          done();
        }
      }, 5);
    });
    // The last byte arrives after this send: silence counted from it is at most the time since the
    // send (a time taken after the 'message' event could be later than the arrival on a busy machine).
    const sentAt = performance.now();
    conns[0]?.send({ hello: 1 });
    await waitFor<void>((done) => c.once('message', () => done()));
    const down = waitFor<void>((done) => c.once('disconnect', () => done()));
    await server.close();
    await down;
    expect(c.connected).toBe(false);
    const s1 = c.silentForMs as number;
    expect(s1).toBeGreaterThanOrEqual(0);
    expect(s1).toBeLessThanOrEqual(performance.now() - sentAt + 1);
    await waitFor<void>((done) => setTimeout(done, 30));
    expect(c.silentForMs as number).toBeGreaterThan(s1);
  });
});
