import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FramedSocket } from './framed-socket.js';
import { Link } from './link.js';

const servers: Server[] = [];
const links: Link[] = [];
afterEach(async () => {
  for (const l of links.splice(0)) l.close();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

/** A framed echo server that records what it received. */
async function echoServer(
  port = 0,
): Promise<{ server: Server; port: number; received: unknown[]; sockets: Set<Socket> }> {
  const received: unknown[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const conn = new FramedSocket(
      socket,
      { maxFrameBytes: 1024 },
      {
        onMessage: (v) => {
          received.push(v);
          conn.send({ echo: v });
        },
        onFrameError: (e) => conn.send({ error: e.code }),
        onClose: () => {},
      },
    );
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0, received, sockets };
}

const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('Link', () => {
  it('sends a hello first, delivers replies, and reconnects after the peer drops it', async () => {
    const peer = await echoServer();
    const replies: unknown[] = [];
    let connects = 0;
    const link = new Link(`127.0.0.1:${peer.port}`, {
      maxFrameBytes: 1024,
      reconnectMinMs: 10,
      hello: () => ({ type: 'hello' }),
      onConnected: () => {
        connects += 1;
      },
      onMessage: (v) => replies.push(v),
    });
    links.push(link);
    await until(() => link.connected);
    expect(link.send({ n: 1 })).toBe(true);
    await until(() => replies.length === 2);
    expect(peer.received).toEqual([{ type: 'hello' }, { n: 1 }]);

    // The peer drops every connection: the link comes back on its own and says so.
    for (const s of peer.sockets) s.destroy();
    await until(() => connects === 2);
    expect(link.send({ n: 2 })).toBe(true);
    await until(() => peer.received.length === 4);
    expect(peer.received.slice(2)).toEqual([{ type: 'hello' }, { n: 2 }]);
  });

  it('drops messages while the peer is down instead of buffering them', async () => {
    const port = (await echoServer()).port;
    await new Promise<void>((r) => (servers.pop() as Server).close(() => r()));
    const link = new Link(`127.0.0.1:${port}`, {
      maxFrameBytes: 1024,
      reconnectMinMs: 10,
      reconnectMaxMs: 50,
    });
    links.push(link);
    expect(link.send({ lost: true })).toBe(false);
    const peer = await echoServer(port);
    await until(() => link.connected);
    expect(link.send({ kept: true })).toBe(true);
    await until(() => peer.received.length === 1);
    expect(peer.received).toEqual([{ kept: true }]);
  });
});

describe('FramedSocket', () => {
  it('reports an undecodable frame and keeps the connection; an oversized one closes it', async () => {
    const peer = await echoServer();
    const replies: unknown[] = [];
    let closed = false;
    const { connect } = await import('node:net');
    const socket = connect({ host: '127.0.0.1', port: peer.port });
    await new Promise((r) => socket.once('connect', r));
    const conn = new FramedSocket(
      socket,
      { maxFrameBytes: 1 << 20 },
      {
        onMessage: (v) => replies.push(v),
        onFrameError: () => {},
        onClose: () => {
          closed = true;
        },
      },
    );
    socket.write(Buffer.from([0, 0, 0, 1, 0xc1]));
    await until(() => replies.length === 1);
    expect(replies[0]).toEqual({ error: 'DECODE_FAILED' });
    expect(conn.send({ ok: 1 })).toBe(true);
    await until(() => replies.length === 2);
    socket.write(Buffer.from([0, 0, 0x10, 0]));
    await until(() => closed);
    expect(replies[2]).toEqual({ error: 'FRAME_TOO_LARGE' });
  });

  it('closes a connection whose reader falls more than the high-water mark behind', async () => {
    const stuck = createServer((s) => s.pause());
    servers.push(stuck);
    await new Promise<void>((r) => stuck.listen(0, '127.0.0.1', () => r()));
    const addr = stuck.address();
    const { connect } = await import('node:net');
    const socket = connect({ host: '127.0.0.1', port: typeof addr === 'object' && addr ? addr.port : 0 });
    await new Promise((r) => socket.once('connect', r));
    let reason = '';
    const conn = new FramedSocket(
      socket,
      { maxFrameBytes: 1 << 20, highWaterMarkBytes: 256 * 1024 },
      { onMessage: () => {}, onFrameError: () => {}, onClose: (r) => (reason = r) },
    );
    const chunk = 'x'.repeat(64 * 1024);
    let sent = 0;
    while (conn.send({ chunk }) && sent < 10_000) {
      sent += 1;
      if (sent % 8 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    expect(conn.closed).toBe(true);
    expect(reason).toContain('too slow');
  });
});
