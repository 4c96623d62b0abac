/**
 * A client connection that keeps itself connected: capped exponential backoff with jitter between
 * attempts, connect / disconnect events, and the backpressure of {@link FramedConnection}.
 * @module
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { type HostPort, parseAddress } from '../address.js';
import type { Codec } from '../codec/msgpack.js';
import {
  ConfigError,
  ConnectionClosedError,
  InvalidAddressError,
  type PaxkvError,
  TimeoutError,
  TlsError,
} from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { backoffDelay } from './backoff.js';
import {
  type ConnectionStats,
  FramedConnection,
  type Handshake,
  type Introduction,
} from './framed-connection.js';
import { type ClientConfig, ClientConfigSchema } from './options.js';
import { tlsMaterial as pem, type TlsOptions, tlsFailure } from './tls.js';

/** Events of a {@link ReconnectingConnection}. */
export interface ReconnectingConnectionEvents {
  /** A connection was established. Send any handshake (e.g. `peer.hello`) from this listener. */
  connect: [];
  /** The connection was lost (or an attempt failed). A new attempt follows unless closed. */
  disconnect: [reason: PaxkvError | undefined];
  /** The next attempt is scheduled. */
  reconnecting: [info: { readonly attempt: number; readonly delayMs: number }];
  /** A decoded message from the server (validate it with a `parse...` function). */
  message: [message: unknown];
  /** Bad input from the server (see `FramedConnectionEvents.protocolError`). */
  protocolError: [error: PaxkvError];
  /** Room is available again after a refused send. */
  drain: [];
}

/** Options: any subset of {@link ClientConfig} plus wiring. */
export type ReconnectingConnectionOptions = Partial<Omit<ClientConfig, 'backoff'>> & {
  /** Backoff settings; missing fields take their defaults. */
  readonly backoff?: Partial<ClientConfig['backoff']>;
  /** Codec of the payloads. Default msgpack. */
  readonly codec?: Codec;
  /** Logger. Default: none. */
  readonly logger?: Logger;
  /** Random source in [0, 1) for the jitter (inject a seeded one in tests). Default `Math.random`. */
  readonly random?: () => number;
  /**
   * Run on every new connection before `connect` is emitted (see {@link Handshake}); while it runs
   * the connection counts as not connected. A connection whose hook rejects or times out is closed
   * and the next attempt follows the backoff. Default: none.
   */
  readonly handshake?: Handshake;
  /**
   * Dial with TLS: verify the server's certificate against `ca` and that it names the host dialled
   * (or `servername`), and present `cert`/`key` when given (see {@link TlsOptions}). A failed
   * verification is reported as a {@link TlsError} (in `disconnect`, and by `waitConnected`, which
   * rejects with it at once). Default: plain TCP.
   */
  readonly tls?: TlsOptions;
  /**
   * Sent on each new connection ahead of a first frame larger than the server accepts from strangers
   * (see {@link Introduction}; a server takes at most 64 KiB from a connection until its first valid
   * message). Default: none (`undefined` too, to turn off a default a wrapper sets).
   */
  readonly introduction?: Introduction | undefined;
};

/**
 * A connection to one `host:port` that reconnects until {@link ReconnectingConnection.close}.
 * Attempt n waits `backoffDelay(n)`; n restarts from 0 after a connection that was stable (see
 * `stableAfterMs`).
 * Sends while disconnected are refused (`send` returns false, `write` rejects with
 * {@link ConnectionClosedError}); nothing is buffered across connections, so a caller that needs
 * FIFO sessions sees every break as a `disconnect` event.
 */
export class ReconnectingConnection extends EventEmitter<ReconnectingConnectionEvents> {
  /** The target address. */
  readonly address: string;
  /** The settings in force. */
  readonly config: ClientConfig;
  private readonly target: HostPort;
  private readonly codec: Codec | undefined;
  private readonly logger: Logger | undefined;
  private readonly random: () => number;
  private readonly handshake: Handshake | undefined;
  private readonly tls: TlsOptions | undefined;
  private readonly introduction: Introduction | undefined;
  private current: FramedConnection | undefined;
  /** When the peer was last heard on the connection that was lost last (`performance.now()`). */
  private lostAt: number | undefined;
  private handshaking: FramedConnection | undefined;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private connecting = false;

  /**
   * Starts connecting at once.
   * @throws {@link InvalidAddressError} for a bad address, {@link ConfigError} for a bad option.
   */
  constructor(address: string, options: ReconnectingConnectionOptions = {}) {
    super();
    const hp = parseAddress(address);
    if (hp instanceof InvalidAddressError) throw hp;
    this.address = address;
    this.target = hp;
    const { codec, logger, random, handshake, tls, introduction, ...rest } = options;
    const parsed = ClientConfigSchema.safeParse(rest);
    if (!parsed.success) {
      throw new ConfigError({
        source: 'ReconnectingConnection options',
        issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), problem: i.message })),
      });
    }
    this.config = parsed.data;
    this.codec = codec;
    this.logger = logger;
    this.random = random ?? Math.random;
    this.handshake = handshake;
    this.tls = tls;
    this.introduction = introduction;
    queueMicrotask(() => this.dial());
  }

  /** True while connected. */
  get connected(): boolean {
    return this.current?.isOpen ?? false;
  }

  /**
   * Milliseconds since the peer was last heard: since the last byte on the current connection, or,
   * while disconnected, since the last connection was lost (adding what it had been silent before).
   * `undefined` until a first connection was established. With keepalives on, a healthy link is never
   * silent much longer than the keepalive interval: a caller can route around a link that is, before
   * the liveness check tears it down.
   */
  get silentForMs(): number | undefined {
    const c = this.current;
    if (c?.isOpen) return c.silentForMs;
    if (this.lostAt === undefined) return undefined;
    return performance.now() - this.lostAt;
  }

  /** True once {@link ReconnectingConnection.close} was called. */
  get isClosed(): boolean {
    return this.stopped;
  }

  /** The current connection (after its handshake), or undefined while disconnected. */
  get connection(): FramedConnection | undefined {
    return this.current;
  }

  /** Counters of the current connection, or undefined while disconnected. */
  get stats(): Readonly<ConnectionStats> | undefined {
    return this.current?.stats;
  }

  /** Bytes queued on the current connection. */
  get bufferedBytes(): number {
    return this.current?.bufferedBytes ?? 0;
  }

  /** See {@link FramedConnection.send}; also false while disconnected. */
  send(message: unknown): boolean {
    const c = this.current;
    return c?.isOpen ? c.send(message) : false;
  }

  /** See {@link FramedConnection.write}; rejects with {@link ConnectionClosedError} while disconnected. */
  write(message: unknown): Promise<void> {
    const c = this.current;
    if (!c?.isOpen) {
      return Promise.reject(new ConnectionClosedError({ address: this.address, reason: 'not connected' }));
    }
    return c.write(message);
  }

  /**
   * Resolves once connected (at once if already connected). Rejects with {@link TimeoutError} after
   * `timeoutMs` (default: the connect timeout) or {@link ConnectionClosedError} if closed meanwhile.
   */
  waitConnected(timeoutMs: number = this.config.connectTimeoutMs): Promise<void> {
    if (this.connected) return Promise.resolve();
    if (this.stopped)
      return Promise.reject(new ConnectionClosedError({ address: this.address, reason: 'closed' }));
    return new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(t);
        this.off('connect', onConnect);
        this.off('disconnect', onDisconnect);
      };
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const onDisconnect = (reason: PaxkvError | undefined) => {
        if (reason instanceof TlsError || (reason?.code === 'UNAUTHENTICATED' && !reason.retryable)) {
          // Retrying will not fix a certificate or a refused login: say why now rather than time out.
          cleanup();
          reject(reason);
          return;
        }
        if (!this.stopped) return;
        cleanup();
        reject(new ConnectionClosedError({ address: this.address, reason: 'closed' }));
      };
      const t = setTimeout(() => {
        cleanup();
        reject(new TimeoutError({ timeoutMs, operation: `connecting to ${this.address}` }));
      }, timeoutMs);
      this.on('connect', onConnect);
      this.on('disconnect', onDisconnect);
    });
  }

  /**
   * Breaks the current connection (if any) so that a fresh one is made after the backoff, e.g.
   * after a protocol violation. The `disconnect` event reports `reason`.
   */
  reset(reason?: PaxkvError): void {
    this.current?.destroy(reason);
  }

  /** Stops reconnecting and closes the connection. Idempotent. */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.handshaking?.destroy();
    const c = this.current;
    if (c) c.destroy(new ConnectionClosedError({ address: this.address, reason: 'closed by the caller' }));
    else this.emit('disconnect', undefined);
  }

  private dial(): void {
    if (this.stopped || this.connecting || this.current) return;
    this.connecting = true;
    const local = this.config.localAddress !== undefined ? { localAddress: this.config.localAddress } : {};
    const t = this.tls;
    const socket: Socket = t
      ? tlsConnect({
          host: this.target.host,
          port: this.target.port,
          ...local,
          ca: pem(t.ca),
          ...(t.cert !== undefined ? { cert: pem(t.cert) } : {}),
          ...(t.key !== undefined ? { key: pem(t.key) } : {}),
          ...(t.servername !== undefined ? { servername: t.servername } : {}),
          minVersion: 'TLSv1.2',
        })
      : netConnect({ host: this.target.host, port: this.target.port, ...local });
    const connectEvent = t ? 'secureConnect' : 'connect';
    // Only our own listeners are removed: net.Socket registers internal ones (e.g. on 'end').
    const detach = () => {
      clearTimeout(timeout);
      socket.off('error', onError);
      socket.off(connectEvent, onConnect);
    };
    const fail = (reason: PaxkvError) => {
      detach();
      socket.on('error', () => {});
      socket.destroy();
      this.connecting = false;
      this.logger?.debug({ address: this.address, err: reason }, 'connect attempt failed');
      if (!this.stopped) this.safeEmit('disconnect', reason);
      this.schedule();
    };
    const timeout = setTimeout(
      () =>
        fail(
          new TimeoutError({
            timeoutMs: this.config.connectTimeoutMs,
            operation: `connecting to ${this.address}`,
          }),
        ),
      this.config.connectTimeoutMs,
    );
    const onError = (e: Error) =>
      fail(
        (t ? tlsFailure(e, this.address, 'dial') : null) ??
          new ConnectionClosedError({ address: this.address, reason: e.message }, { cause: e }),
      );
    const onConnect = () => {
      if (isSelfConnected(socket)) {
        fail(
          new ConnectionClosedError({
            address: this.address,
            reason:
              'the connection reached itself (TCP self-connect: nothing listened at the target and the kernel chose the target port for this end)',
          }),
        );
        return;
      }
      detach();
      this.connecting = false;
      if (this.stopped) {
        socket.on('error', () => {});
        socket.destroy();
        return;
      }
      const connectedAt = Date.now();
      const conn = new FramedConnection(socket, this.config, {
        ...(this.codec ? { codec: this.codec } : {}),
        ...(this.logger ? { logger: this.logger } : {}),
        ...(t ? { tlsSide: 'dial' as const } : {}),
        ...(this.introduction ? { introduction: this.introduction } : {}),
      });
      this.connecting = true;
      conn.on('message', (m) => this.emit('message', m));
      conn.on('protocolError', (e) => this.emit('protocolError', e));
      conn.on('drain', () => this.emit('drain'));
      conn.on('close', (reason) => {
        if (this.current === conn) {
          this.current = undefined;
          this.lostAt = performance.now() - conn.silentForMs;
        } else if (this.handshaking === conn) {
          this.handshaking = undefined;
          this.connecting = false;
        }
        if (conn.stats.framesIn > 0 || Date.now() - connectedAt >= this.config.stableAfterMs)
          this.attempt = 0;
        this.safeEmit('disconnect', reason);
        this.schedule();
      });
      const established = () => {
        this.connecting = false;
        this.handshaking = undefined;
        if (!conn.isOpen) return;
        if (this.stopped) {
          conn.destroy();
          return;
        }
        this.current = conn;
        this.logger?.debug({ address: this.address }, 'connected');
        this.safeEmit('connect');
        conn.releaseHeld();
      };
      if (!this.handshake) {
        established();
        return;
      }
      this.handshaking = conn;
      conn
        .runHandshake(this.handshake, 'client')
        .then(established, (e: unknown) =>
          this.logger?.warn({ address: this.address, err: e }, 'handshake failed'),
        );
    };
    socket.once('error', onError);
    socket.once(connectEvent, onConnect);
  }

  private schedule(): void {
    if (this.stopped || this.timer) return;
    const delayMs = backoffDelay(this.attempt, this.config.backoff, this.random);
    const attempt = ++this.attempt;
    this.safeEmit('reconnecting', { attempt, delayMs });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.dial();
    }, delayMs);
  }

  private safeEmit<K extends keyof ReconnectingConnectionEvents>(
    event: K,
    ...args: ReconnectingConnectionEvents[K]
  ): void {
    try {
      (this.emit as (e: K, ...a: ReconnectingConnectionEvents[K]) => boolean)(event, ...args);
    } catch (e) {
      this.logger?.error(
        { err: e, event, address: this.address },
        'listener threw; resetting the connection',
      );
      if (event === 'connect') this.current?.destroy();
    }
  }
}

/**
 * Whether `socket` is connected to itself. Dialling a local port nobody listens on, in the range the
 * kernel picks outgoing ports from, can end in a TCP "simultaneous open" of the socket with itself: it
 * then reads back everything it writes (a bootstrap client got its own `checkin` as the answer, for a
 * minute, in a test run under load). Such a connection is dropped and the dial retried.
 */
export function isSelfConnected(socket: Socket): boolean {
  return (
    socket.localPort !== undefined &&
    socket.localPort === socket.remotePort &&
    socket.localAddress === socket.remoteAddress
  );
}
