/**
 * The TCP connection factory introduces a client before a first request larger than a server accepts
 * from a stranger (a paxkv server takes at most 64 KiB from a connection until its first valid message).
 */
import { type ClientRequest, TransportServer } from '@paxkv/common';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_INTRODUCTION, tcpConnectionFactory } from './tcp.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server with the stranger limits of a paxkv server, raising them at the first message like it does. */
async function strictServer() {
  const server = new TransportServer({ unidentifiedMaxFrameBytes: 64 * 1024 });
  const received: unknown[] = [];
  const refused: string[] = [];
  server.on('connection', (c) => {
    c.on('message', (m) => {
      received.push(m);
      server.identify(c);
    });
    c.on('protocolError', (e) => refused.push(e.code));
  });
  const { port } = await server.listen('127.0.0.1:0');
  cleanups.push(() => server.close());
  return { address: `127.0.0.1:${port}`, received, refused };
}

function connectWith(factory: ReturnType<typeof tcpConnectionFactory>, address: string) {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const conn = factory(address, { onOpen: () => open(), onClose: () => {}, onMessage: () => {} });
  cleanups.push(() => conn.close());
  return { conn, opened };
}

async function until(cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('tcpConnectionFactory', () => {
  const big: ClientRequest = {
    type: 'kv',
    id: 1,
    op: { op: 'put', key: 'k', value: 'v'.repeat(200 * 1024) },
  };

  it('sends a lookup ahead of a first request over 64 KiB, so a strict server takes it', async () => {
    const server = await strictServer();
    const { conn, opened } = connectWith(tcpConnectionFactory(), server.address);
    await opened;
    expect(conn.send(big)).toBe(true);
    await until(() => server.received.length === 2);
    expect(server.received).toEqual([CLIENT_INTRODUCTION.message, big]);
    expect(server.refused).toEqual([]);
  });

  it('sends nothing extra before a small first request', async () => {
    const server = await strictServer();
    const { conn, opened } = connectWith(tcpConnectionFactory(), server.address);
    await opened;
    const small: ClientRequest = { type: 'kv', id: 1, op: { op: 'get', key: 'k' } };
    conn.send(small);
    conn.send(big);
    await until(() => server.received.length === 2);
    expect(server.received).toEqual([small, big]);
  });

  it('without the introduction, the strict server refuses the large first request', async () => {
    const server = await strictServer();
    const { conn, opened } = connectWith(tcpConnectionFactory({ introduction: undefined }), server.address);
    await opened;
    conn.send(big);
    await until(() => server.refused.length === 1);
    expect(server.refused).toEqual(['FRAME_TOO_LARGE']);
  });
});
