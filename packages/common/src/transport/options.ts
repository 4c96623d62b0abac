/**
 * Settings of framed connections, servers and reconnecting clients, with their defaults.
 * @module
 */
import { z } from 'zod';
import { ABSOLUTE_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES } from '../codec/framing.js';
import { BackoffConfigSchema } from './backoff.js';

/** Default high-water mark of a connection's outgoing buffer: 4 MiB. */
export const DEFAULT_HIGH_WATER_MARK = 4 * 1024 * 1024;

/**
 * The largest frame a paxkv server accepts from a connection it has not identified yet: 64 KiB (see
 * `unidentifiedMaxFrameBytes`). Clients introduce themselves before a larger first frame.
 */
export const DEFAULT_UNIDENTIFIED_MAX_FRAME_BYTES = 64 * 1024;

/** Settings of one framed connection. */
export const ConnectionConfigSchema = z.object({
  /** Largest frame payload sent or accepted, in bytes. Default 16 MiB. */
  maxFrameBytes: z.number().int().min(1).max(ABSOLUTE_MAX_FRAME_BYTES).default(DEFAULT_MAX_FRAME_BYTES),
  /**
   * Most msgpack values (map keys and values, array elements) accepted in one inbound frame, checked
   * while the frame arrives; a frame with more is refused with a `DecodeError` and skipped. 0 (default):
   * no limit. Decoding time grows with the number of values, not bytes (a 16 MiB array of small
   * integers takes seconds to decode), so a server limits what it accepts from strangers and clients.
   */
  maxItemsPerFrame: z.number().int().nonnegative().default(0),
  /**
   * High-water mark of the outgoing buffer, in bytes. Default 4 MiB. A frame is refused when bytes
   * are already queued and it would push the queue past the mark (a frame is always accepted on an
   * empty queue, so the queue never exceeds `highWaterMark + maxFrameBytes`). `drain` is emitted
   * once the queue falls to half the mark.
   */
  highWaterMark: z.number().int().min(1).default(DEFAULT_HIGH_WATER_MARK),
  /**
   * What `send()` does past the high-water mark: `reject` (default) returns false and queues
   * nothing; `disconnect` also closes the connection with a `BackpressureError`, which is what a
   * FIFO session (a Paxos peer link) wants: a lost message is then a visible session break.
   */
  onBackpressure: z.enum(['reject', 'disconnect']).default('reject'),
  /** Most `write()` calls that may wait for room at once; more are rejected. Default 1024. */
  maxPendingWrites: z.number().int().nonnegative().default(1024),
  /** How long a `write()` may wait for room before it is rejected, in ms. Default 30000. */
  drainTimeoutMs: z.number().int().positive().default(30_000),
  /** Disable Nagle's algorithm (send small frames at once). Default true. */
  noDelay: z.boolean().default(true),
  /** TCP keep-alive initial delay in ms, 0 to disable. Default 10000. */
  keepAliveMs: z.number().int().nonnegative().default(10_000),
  /**
   * Close the connection when nothing was read or written for this many ms (a stalled or
   * half-open peer, a slowloris client holding a partial frame). 0 (default) disables it: peer links
   * carry heartbeats and detect failures themselves, and clients may legitimately idle.
   */
  idleTimeoutMs: z.number().int().nonnegative().default(0),
  /**
   * Application-level liveness: close the connection (with a `TimeoutError`) when nothing at all was
   * received from the peer for this many ms, in ms. 0 (default) disables it. TCP alone keeps a
   * black-holed connection "up" for tens of seconds; a peer link sets this to a few heartbeat rounds
   * and both ends set {@link ConnectionConfigSchema} `keepaliveIntervalMs`, so an idle but healthy
   * link is never taken for dead. A check that runs late because the event loop was blocked does not
   * count (the data may be waiting in the kernel): only silence seen by an on-time check closes it.
   */
  livenessTimeoutMs: z.number().int().nonnegative().default(0),
  /**
   * Send a keepalive frame when nothing was sent for this many ms. 0 (default) disables it. A
   * keepalive is a frame whose payload is msgpack `nil`; every {@link FramedConnection} consumes such
   * frames itself (they count as traffic for liveness and are never emitted as messages), so no
   * protocol message may be `null`.
   */
  keepaliveIntervalMs: z.number().int().nonnegative().default(0),
  /**
   * Most time the handshake hook (see `Handshake`) may take before the connection is closed, in ms.
   * Default 5000.
   */
  handshakeTimeoutMs: z.number().int().positive().default(5_000),
  /**
   * Before closing a connection that sent an oversized frame, send it an `error` message with code
   * `FRAME_TOO_LARGE` so the peer learns why. Default true.
   */
  replyFrameTooLarge: z.boolean().default(true),
});

/** Settings of one framed connection (see {@link ConnectionConfigSchema}). */
export type ConnectionConfig = z.output<typeof ConnectionConfigSchema>;

/** Settings of a {@link TransportServer}: the connection settings plus server limits. */
export const ServerConfigSchema = ConnectionConfigSchema.extend({
  /**
   * Most simultaneous untrusted connections (every connection until the application marks it trusted
   * with `TransportServer.trust`); past it a new one is refused, or makes room (see `evictWhenFull`).
   * Default 10000.
   */
  maxConnections: z.number().int().positive().default(10_000),
  /**
   * Most trusted connections (authenticated peers), counted apart from `maxConnections` so clients can
   * never take the peers' places. Default 1024.
   */
  maxTrustedConnections: z.number().int().positive().default(1024),
  /**
   * When `maxConnections` untrusted connections are open, close one to accept the new one: the oldest
   * of those that never sent a message, else the one whose last message is oldest; instead of
   * refusing the new one. Then a flood of idle connections cannot keep a peer from connecting to
   * authenticate. Default false (refuse).
   */
  evictWhenFull: z.boolean().default(false),
  /**
   * Most bytes of partial frames held across all connections (see `InboundBudget`); past it the
   * connection holding the largest partial frame is closed, untrusted ones first. 0 (default) = no
   * global budget (each connection may still hold one frame of up to `maxFrameBytes`).
   */
  inboundBudgetBytes: z.number().int().nonnegative().default(0),
  /**
   * Largest inbound frame of a connection the application has not identified yet (see
   * `TransportServer.identify` and `trust`), in bytes; it is raised to `maxFrameBytes` once identified.
   * A stranger's oversized frame is refused at its 4-byte header (`FrameTooLargeError`, then the
   * connection is closed), before any of it is buffered or scanned. 0 (default): `maxFrameBytes`.
   */
  unidentifiedMaxFrameBytes: z.number().int().nonnegative().max(ABSOLUTE_MAX_FRAME_BYTES).default(0),
  /**
   * Most msgpack values in one frame of a connection not identified yet (see `maxItemsPerFrame`); raised
   * to `maxItemsPerFrame` once identified. 0 (default): `maxItemsPerFrame`.
   */
  unidentifiedMaxItemsPerFrame: z.number().int().nonnegative().default(0),
  /**
   * Most simultaneous untrusted connections from one remote address (IP); a new one past it is refused
   * (`rejected`), whatever `evictWhenFull` says: one host cannot fill `maxConnections` nor make the server
   * evict other hosts' clients. Trusted connections (`TransportServer.trust`, authenticated peers) and
   * connections the application exempts (`TransportServer.exemptFromHostLimit`, e.g. clients that logged
   * in) do not count. 0 = no per-host limit. Default 1024: a host of clients with a connection each per
   * process stays far below it, while one attacking host can hold ~1/10 of the default `maxConnections`
   * (10 000) and, above all, cannot close 10 000 connections at once (tearing down 10 000 sockets cost a
   * server 200-300 ms of CPU and its peers' heartbeats: `bench:hostile --attack idle --trace`).
   */
  maxConnectionsPerHost: z.number().int().nonnegative().default(1024),
});

/** Settings of a server (see {@link ServerConfigSchema}). */
export type ServerConfig = z.output<typeof ServerConfigSchema>;

/** Settings of a {@link ReconnectingConnection}: the connection settings plus reconnection. */
export const ClientConfigSchema = ConnectionConfigSchema.extend({
  /** Reconnection backoff. Defaults: 50 ms doubling up to 5 s, 50 % jitter. */
  backoff: BackoffConfigSchema.prefault({}),
  /**
   * A connection that stayed up this long, or delivered at least one frame, resets the backoff to
   * its first step, in ms. Default 1000. A peer that accepts and drops at once (overloaded, over
   * its connection limit) therefore still sees growing delays.
   */
  stableAfterMs: z.number().int().nonnegative().default(1_000),
  /** Give up a connection attempt after this many ms. Default 3000. */
  connectTimeoutMs: z.number().int().positive().default(3_000),
  /**
   * Local address (an IP of this host, no port) the outgoing socket is bound to. Default: none (the
   * kernel picks, which on loopback is always 127.0.0.1). A server sets it to the host it advertises,
   * so firewall rules and logs can tell servers on one host apart.
   */
  localAddress: z.string().min(1).max(64).optional(),
});

/** Settings of a reconnecting client connection (see {@link ClientConfigSchema}). */
export type ClientConfig = z.output<typeof ClientConfigSchema>;
