/**
 * The server-side limits against hostile connections: a global budget of partial-frame bytes, a
 * separate budget of trusted (authenticated) connections, the eviction of the quietest untrusted
 * connection when full, and per-connection idle timeouts.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder } from '../codec/framing.js';
import { UnavailableError } from '../errors.js';
import type { FramedConnection } from './framed-connection.js';
import { type BudgetHolder, InboundBudget } from './inbound-budget.js';
import { TransportServer } from './server.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startServer(options: ConstructorParameters<typeof TransportServer>[0]) {
  const server = new TransportServer(options);
  const conns: FramedConnection[] = [];
  server.on('connection', (c) => conns.push(c));
  const bound = await server.listen('127.0.0.1:0');
  cleanups.push(() => server.close());
  return { server, conns, port: bound.port };
}

function raw(port: number): Promise<Socket & { closedByServer: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.on('error', () => {});
    s.once('connect', () => resolve(Object.assign(s, { closedByServer: closed })));
    s.once('error', reject);
    cleanups.push(() => s.destroy());
  });
}

/** Every frame in `bytes`. */
function decodeFrames(bytes: Buffer): unknown[] {
  return [...new FrameDecoder().push(bytes)].map((f) => (f.ok ? f.value : f));
}

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A 4-byte header announcing `size` bytes, then `sent` of them. */
function partialFrame(size: number, sent: number): Buffer {
  const b = Buffer.alloc(4 + sent, 0x61);
  b.writeUInt32BE(size, 0);
  return b;
}

describe('InboundBudget', () => {
  const holder = (trusted: boolean) => {
    const h = { trusted, destroyed: undefined as UnavailableError | undefined };
    return Object.assign(h, { destroy: (e: UnavailableError) => (h.destroyed = e) }) as BudgetHolder & {
      destroyed?: UnavailableError;
    };
  };

  it('closes the largest untrusted holder first, trusted ones only when no untrusted one is left', () => {
    const b = new InboundBudget(100);
    const peer = holder(true);
    const small = holder(false);
    const big = holder(false);
    b.update(peer, 60);
    b.update(small, 10);
    b.update(big, 25);
    expect(b.used).toBe(95);
    b.update(small, 20); // 105 > 100: the largest untrusted goes, not the larger peer
    expect(big.destroyed).toBeInstanceOf(UnavailableError);
    expect(peer.destroyed).toBeUndefined();
    expect(b.used).toBe(80);
    b.update(peer, 90); // 110: the untrusted one goes first, then it fits
    expect(small.destroyed).toBeDefined();
    expect(peer.destroyed).toBeUndefined();
    b.update(peer, 101); // alone and over: the peer goes too
    expect(peer.destroyed?.message).toMatch(/inbound buffer budget \(100 bytes\)/);
    expect(b.used).toBe(0);
    expect(b.evicted).toBe(3);
  });
});

describe('TransportServer limits', () => {
  it('keeps half-sent frames within the inbound budget by closing the largest holders', async () => {
    const { server } = await startServer({ inboundBudgetBytes: 2 * 1024 * 1024, maxFrameBytes: 16 << 20 });
    const sockets = [];
    for (let i = 0; i < 6; i++) {
      const s = await raw((server.address as { port: number }).port);
      s.write(partialFrame(8 << 20, 600 * 1024)); // announces 8 MiB, sends 600 KiB, then waits forever
      sockets.push(s);
    }
    await until(() => server.inboundBudget!.evicted >= 3);
    expect(server.inboundBudget!.used).toBeLessThanOrEqual(2 * 1024 * 1024);
    // The evicted connections are closed (waited for: a 200 ms race lost whenever the loop stalled).
    let closed = 0;
    for (const s of sockets) void s.closedByServer.then(() => closed++);
    await until(() => closed >= 3);
    expect(closed).toBeGreaterThanOrEqual(3);
  });

  it('makes room for a newcomer by closing the quietest untrusted connection, never a trusted one', async () => {
    const { server, conns, port } = await startServer({ maxConnections: 3, evictWhenFull: true });
    const evicted: string[] = [];
    server.on('evicted', (a) => evicted.push(a));
    const trustedSock = await raw(port);
    await until(() => conns.length === 1);
    expect(server.trust(conns[0]!)).toBe(true);
    const quiet = await raw(port);
    const active1 = await raw(port);
    const active2 = await raw(port);
    await until(() => conns.length === 4); // 1 trusted + 3 untrusted: the trusted one does not count
    active1.write(encodeFrame({ type: 'ping' }));
    active2.write(encodeFrame({ type: 'ping' }));
    await until(() => conns[2]!.stats.framesIn === 1);
    await until(() => conns[3]!.stats.framesIn === 1);
    const newcomer = await raw(port);
    await quiet.closedByServer; // the one that never spoke made room
    await until(() => conns.length === 5);
    expect(evicted).toHaveLength(1);
    expect(trustedSock.destroyed).toBe(false);
    expect(active1.destroyed).toBe(false);
    expect(newcomer.destroyed).toBe(false);
  });

  it('counts trusted connections against their own budget', async () => {
    const { server, conns, port } = await startServer({ maxConnections: 10, maxTrustedConnections: 1 });
    await raw(port);
    await raw(port);
    await until(() => conns.length === 2);
    expect(server.trust(conns[0]!)).toBe(true);
    expect(server.trust(conns[0]!)).toBe(true);
    expect(server.trust(conns[1]!)).toBe(false);
    expect(server.trustedConnections).toBe(1);
    conns[0]!.destroy();
    await until(() => server.trustedConnections === 0);
    expect(server.trust(conns[1]!)).toBe(true);
  });

  it('closes a connection that stays idle past its idle timeout, which can change per connection', async () => {
    const { conns, port } = await startServer({ idleTimeoutMs: 100 });
    const a = await raw(port);
    const b = await raw(port);
    await until(() => conns.length === 2);
    conns[1]!.setIdleTimeout(0);
    await a.closedByServer;
    expect(b.destroyed).toBe(false);
  });

  it('refuses a frame over unidentifiedMaxFrameBytes from a stranger at its header, and raises the limit on identify', async () => {
    const { server, conns, port } = await startServer({
      unidentifiedMaxFrameBytes: 1024,
      unidentifiedMaxItemsPerFrame: 64,
      maxItemsPerFrame: 10_000,
    });
    const errors: string[] = [];
    const messages: unknown[] = [];
    server.on('connection', (c) => {
      c.on('protocolError', (e) => errors.push(e.code));
      c.on('message', (m) => {
        messages.push(m);
        if ((m as { type?: string }).type === 'hello') server.identify(c);
      });
    });
    // A stranger's 16 MiB frame: refused at the header, nothing buffered, the connection closed.
    const stranger = await raw(port);
    stranger.write(partialFrame(16 << 20, 1000));
    stranger.resume(); // read the FRAME_TOO_LARGE reply, so the close is seen
    await stranger.closedByServer;
    expect(errors).toEqual(['FRAME_TOO_LARGE']);
    // A stranger's frame of too many values is refused (and skipped) even under the byte limit.
    const counted = await raw(port);
    counted.write(encodeFrame(new Array(100).fill(1)));
    await until(() => errors.length === 2);
    expect(errors[1]).toBe('DECODE_FAILED');
    // Once identified (in the same chunk as the big frame that follows), the full limits apply.
    const client = await raw(port);
    const big = { type: 'put', value: 'v'.repeat(100_000), list: new Array(1000).fill(1) };
    client.write(Buffer.concat([encodeFrame({ type: 'hello' }), encodeFrame(big)]));
    await until(() => messages.length === 2);
    expect(messages[1]).toEqual(big);
    expect(conns.at(-1)!.inboundLimits).toEqual({ maxFrameBytes: 16 << 20, maxItemsPerFrame: 10_000 });
    expect(errors).toHaveLength(2);
  });

  it('refuses a frame it cannot decode during the handshake at once, with an error reply', async () => {
    // A hook that waits for a first message forever (the handshake timeout is far beyond the test's).
    const { conns, port } = await startServer({
      handshakeTimeoutMs: 600_000,
      handshake: async (channel) => channel.receive(),
    });
    const stranger = await raw(port);
    const replies: Buffer[] = [];
    stranger.on('data', (d: Buffer) => replies.push(d));
    stranger.write(Uint8Array.of(0, 0, 0, 1, 0xc1)); // 0xc1 is never msgpack
    await stranger.closedByServer;
    const reply = decodeFrames(Buffer.concat(replies));
    // The wire code of a DecodeError, as the application answers one after the handshake.
    expect(reply).toMatchObject([{ type: 'error', id: null, code: 'BAD_REQUEST' }]);
    expect(conns).toHaveLength(0); // never handed to the application
  });

  it('gives a trusted connection full frames and no value limit', async () => {
    const { server, conns, port } = await startServer({
      unidentifiedMaxFrameBytes: 1024,
      maxItemsPerFrame: 10,
    });
    await raw(port);
    await until(() => conns.length === 1);
    expect(conns[0]!.inboundLimits).toEqual({ maxFrameBytes: 1024, maxItemsPerFrame: 10 });
    expect(server.trust(conns[0]!)).toBe(true);
    expect(conns[0]!.inboundLimits).toEqual({ maxFrameBytes: 16 << 20, maxItemsPerFrame: 0 });
  });
});
