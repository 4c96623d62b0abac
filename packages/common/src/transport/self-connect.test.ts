/**
 * A TCP connection that reached itself (simultaneous open of a socket with its own address) is told
 * apart from a connection to a listener, so the reconnecting dialler drops it and dials again.
 */
import { connect, createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isSelfConnected } from './reconnecting-connection.js';

/** A port nothing listens on (taken from the kernel, then released). */
async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function connected(socket: Socket): Promise<Socket> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('isSelfConnected', () => {
  it('is true for a socket connected to itself, false for one connected to a listener', async () => {
    const port = await unusedPort();
    // Binding this end to the target's own address makes the kernel connect the socket to itself.
    const self = await connected(
      connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1', localPort: port }),
    );
    try {
      expect(isSelfConnected(self)).toBe(true);
    } finally {
      self.destroy();
    }
    const server = createServer((s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const other = await connected(
      connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port }),
    );
    try {
      expect(isSelfConnected(other)).toBe(false);
    } finally {
      other.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
