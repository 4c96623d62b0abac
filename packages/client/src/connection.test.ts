/**
 * A request's attempt timeout is decided after the event loop has read the socket: a reply that arrived
 * while this process was stalled past the timeout is taken, not called a timeout (which would make the
 * client retry a request that was answered).
 */
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
});
