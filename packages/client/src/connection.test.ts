/**
 * A request's attempt timeout is decided after the event loop has read the socket: a reply that arrived
 * while this process was stalled past the timeout is taken, not called a timeout (which would make the
 * client retry a request that was answered).
 */
import { createServer } from 'node:net';
import { TransportServer } from '@paxkv/common';
import { afterEach, describe, expect, it } from 'vitest';
import { Channel } from './connection.js';
import { tcpConnectionFactory } from './tcp.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const ATTEMPT_TIMEOUT_MS = 50;

/** Blocks this process's event loop, as a stall of the machine would. */
function blockFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

describe('Channel attempt timeout', () => {
  it('takes a reply that arrived while the process was stalled past the attempt timeout', async () => {
    const server = new TransportServer({});
    server.on('connection', (c) => {
      c.on('message', (m) => {
        server.identify(c);
        const { id } = m as { id: number };
        const result = {
          op: 'get',
          value: 'v',
          createRevision: 1,
          modRevision: 1,
          version: 1,
          revision: 1,
          partition: 0,
        };
        c.send({ type: 'kv.ok', id, result });
        // The reply is on its way (written to the socket); now this process stalls past the client's
        // attempt timeout, so when the loop runs again the overdue timer comes before the read.
        blockFor(ATTEMPT_TIMEOUT_MS * 4);
      });
    });
    const { port } = await server.listen('127.0.0.1:0');
    cleanups.push(() => server.close());
    const channel = new Channel(`127.0.0.1:${port}`, tcpConnectionFactory());
    cleanups.push(() => channel.close());
    expect(await channel.whenOpen(20_000)).toBe(true);
    const outcome = await channel.request(
      { type: 'kv', id: 7, op: { op: 'get', key: 'k' } },
      ATTEMPT_TIMEOUT_MS,
    );
    expect(outcome).toMatchObject({ kind: 'reply' });
    expect(channel.inFlight).toBe(0);
  });

  it('treats bytes that are not paxkv frames (another service on the port) as a broken connection, not a permanent failure', async () => {
    // An HTTP server where a paxkv server used to be: it answers the first frame with an HTTP error.
    const http = createServer((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'));
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => http.close(() => r())));
    const { port } = http.address() as { port: number };
    const channel = new Channel(`127.0.0.1:${port}`, tcpConnectionFactory());
    cleanups.push(() => channel.close());
    expect(await channel.whenOpen(20_000)).toBe(true);
    const first = await channel.request({ type: 'kv', id: 1, op: { op: 'get', key: 'k' } }, 20_000);
    expect(first.kind).toBe('closed');
    // The next attempt is not failed with the garbage's FRAME_TOO_LARGE as if retrying could never help.
    const next = await channel.request({ type: 'kv', id: 2, op: { op: 'get', key: 'k' } }, 200);
    expect(next.kind === 'not-sent' ? next.error?.code : undefined).toBeUndefined();
  });
});
