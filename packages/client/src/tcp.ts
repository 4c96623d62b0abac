/**
 * The default {@link ConnectionFactory}: `@paxkv/common`'s reconnecting TCP transport
 * (length-prefixed msgpack frames, capped exponential backoff between reconnection attempts,
 * bounded outgoing buffer).
 * @module
 */
import { type Introduction, ReconnectingConnection, type ReconnectingConnectionOptions } from '@paxkv/common';
import type { ClientConnection, ConnectionFactory } from './connection.js';

/**
 * What a client sends ahead of a first request larger than a server accepts from a stranger (64 KiB:
 * see the server's `unidentifiedMaxFrameBytes`): a `lookup` (id 0, never a request id of the client, so
 * its answer is ignored), after which the server knows the connection is a client.
 */
export const CLIENT_INTRODUCTION: Introduction = Object.freeze({
  message: Object.freeze({ type: 'lookup', id: 0 }),
});

/**
 * Returns a factory of TCP connections. `options` tune the transport (frame limit, connect timeout,
 * reconnection backoff, high-water mark); see `ReconnectingConnectionOptions` in `@paxkv/common`.
 */
export function tcpConnectionFactory(options: ReconnectingConnectionOptions = {}): ConnectionFactory {
  return (address, events) => {
    let conn: ReconnectingConnection;
    try {
      conn = new ReconnectingConnection(address, { introduction: CLIENT_INTRODUCTION, ...options });
    } catch (e) {
      // An address the transport refuses: a connection that never opens.
      queueMicrotask(() => events.onClose(e instanceof Error ? e : new Error(String(e))));
      return { isOpen: false, send: () => false, close: () => {} };
    }
    conn.on('connect', () => events.onOpen());
    conn.on('disconnect', (reason) => events.onClose(reason));
    conn.on('message', (m) => events.onMessage(m));
    const connection: ClientConnection = {
      get isOpen() {
        return conn.connected;
      },
      send(message) {
        try {
          return conn.send(message);
        } catch {
          // An unencodable or oversized message (the client checks sizes first): not sent.
          return false;
        }
      },
      close() {
        conn.close();
      },
    };
    return connection;
  };
}
