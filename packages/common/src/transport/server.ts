/**
 * A TCP server accepting framed connections.
 * @module
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { formatAddress, type HostPort, parseAddress } from '../address.js';
import type { InboundFrameLimits } from '../codec/framing.js';
import type { Codec } from '../codec/msgpack.js';
import {
  ConfigError,
  ConnectionClosedError,
  InvalidAddressError,
  type PaxkvError,
  UnavailableError,
} from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { FramedConnection, type Handshake } from './framed-connection.js';
import { InboundBudget } from './inbound-budget.js';
import { type ServerConfig, ServerConfigSchema } from './options.js';
import { tlsMaterial as pem, type TlsOptions, tlsFailure } from './tls.js';

/** Events of a {@link TransportServer}. */
export interface TransportServerEvents {
  /** A client connected. Attach `message` / `close` listeners right away. */
  connection: [connection: FramedConnection];
  /**
   * A connection was refused: `maxConnections` untrusted connections were open (`reason` 'connection-limit'),
   * or `maxConnectionsPerHost` from its address (`reason` 'host-limit').
   */
  rejected: [remoteAddress: string, reason: 'connection-limit' | 'host-limit'];
  /** A quiet untrusted connection was closed to make room for a new one (`evictWhenFull`). */
  evicted: [remoteAddress: string];
  /**
   * A TLS handshake failed (with `tls`): the error says why and what to fix (a client that does not
   * trust this server's CA, plain TCP to the TLS port, ...). The socket is already closed.
   */
  tlsError: [error: PaxkvError, remoteAddress: string];
}

/** Options of a {@link TransportServer}: any subset of {@link ServerConfig} plus wiring. */
export type TransportServerOptions = Partial<ServerConfig> & {
  /** Codec of the payloads. Default msgpack. */
  readonly codec?: Codec;
  /** Logger. Default: none. */
  readonly logger?: Logger;
  /**
   * Run on every accepted connection before `connection` is emitted (see {@link Handshake}); a
   * connection whose hook rejects or times out is closed and never emitted. Default: none.
   */
  readonly handshake?: Handshake;
  /**
   * Serve TLS with this certificate and key (`cert`/`key` required), verifying client certificates
   * against `ca` (see {@link TlsOptions}). The TLS handshake counts against `handshakeTimeoutMs`.
   * Default: plain TCP.
   */
  readonly tls?: TlsOptions;
};

/**
 * Accepts TCP connections and wraps each in a {@link FramedConnection} with the server's settings.
 *
 * ```ts
 * const server = new TransportServer({ maxFrameBytes: 1 << 20 });
 * server.on('connection', (conn) => conn.on('message', (m) => conn.send(reply(m))));
 * const { port } = await server.listen('127.0.0.1:0');
 * ```
 */
export class TransportServer extends EventEmitter<TransportServerEvents> {
  /** The settings in force (defaults filled in). */
  readonly config: ServerConfig;
  private readonly server: Server;
  private readonly open = new Set<FramedConnection>();
  private readonly codec: Codec | undefined;
  private readonly logger: Logger | undefined;
  private readonly handshake: Handshake | undefined;
  private bound: HostPort | undefined;
  /** Untrusted open connections that never sent a message, oldest first. */
  private readonly silent = new Set<FramedConnection>();
  /** Untrusted open connections that sent messages, quietest first (a message moves one to the end). */
  private readonly quiet = new Set<FramedConnection>();
  private trustedCount = 0;
  /** Open connections counted against `maxConnectionsPerHost`, by remote address, and each one's address. */
  private readonly perHost = new Map<string, number>();
  private readonly hostOf = new Map<FramedConnection, string>();
  private readonly budget: InboundBudget | undefined;
  private readonly tls: TlsOptions | undefined;

  /** @throws {@link ConfigError} if an option is invalid. */
  constructor(options: TransportServerOptions = {}) {
    super();
    const { codec, logger, handshake, ...rest } = options;
    const parsed = ServerConfigSchema.safeParse(rest);
    if (!parsed.success) {
      throw new ConfigError({
        source: 'TransportServer options',
        issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), problem: i.message })),
      });
    }
    this.config = parsed.data;
    this.codec = codec;
    this.logger = logger;
    this.handshake = handshake;
    this.budget =
      this.config.inboundBudgetBytes > 0 ? new InboundBudget(this.config.inboundBudgetBytes) : undefined;
    this.tls = options.tls;
    if (options.tls) {
      const t = options.tls;
      if (t.cert === undefined || t.key === undefined) {
        throw new ConfigError({
          source: 'TransportServer options',
          issues: [{ path: 'tls', problem: 'a TLS server needs cert and key' }],
        });
      }
      const server = createTlsServer(
        {
          ca: pem(t.ca),
          cert: pem(t.cert),
          key: pem(t.key),
          requestCert: t.requireClientCert === true || t.requestClientCert !== false,
          rejectUnauthorized: t.requireClientCert === true,
          minVersion: 'TLSv1.2',
          handshakeTimeout: this.config.handshakeTimeoutMs,
          noDelay: this.config.noDelay,
        },
        (socket: TLSSocket) => this.accept(socket),
      );
      // A socket that failed its handshake is already closed and no longer knows its peer: remember it.
      const peers = new WeakMap<object, string>();
      server.on('connection', (raw: Socket) => peers.set(raw, `${raw.remoteAddress}:${raw.remotePort}`));
      server.on('tlsClientError', (e, socket) => {
        const raw = (socket as unknown as { _parent?: object })._parent;
        const from =
          (raw && peers.get(raw)) ??
          (socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'a client');
        const error =
          tlsFailure(e, from, 'accept') ??
          new ConnectionClosedError({ address: from, reason: `during the TLS handshake: ${e.message}` });
        this.emit('tlsError', error, from);
      });
      this.server = server;
    } else {
      this.server = createServer({ noDelay: this.config.noDelay }, (socket) => this.accept(socket));
    }
    this.server.on('error', (e) => this.logger?.error({ err: e }, 'server socket error'));
  }

  /** The connections currently open. */
  get connections(): ReadonlySet<FramedConnection> {
    return this.open;
  }

  /** The global inbound budget, when `inboundBudgetBytes` is set (for metrics: `used`, `evicted`). */
  get inboundBudget(): InboundBudget | undefined {
    return this.budget;
  }

  /** Open trusted connections. */
  get trustedConnections(): number {
    return this.trustedCount;
  }

  /** The inbound limits of a connection not identified yet (see `unidentifiedMaxFrameBytes`). */
  get unidentifiedLimits(): Required<InboundFrameLimits> {
    const c = this.config;
    return {
      maxFrameBytes:
        c.unidentifiedMaxFrameBytes > 0
          ? Math.min(c.unidentifiedMaxFrameBytes, c.maxFrameBytes)
          : c.maxFrameBytes,
      maxItemsPerFrame:
        c.unidentifiedMaxItemsPerFrame > 0 ? c.unidentifiedMaxItemsPerFrame : c.maxItemsPerFrame,
    };
  }

  /**
   * Tells the server who `conn` is: a client that sent a valid first message (or logged in), a peer.
   * Raises its inbound limits from the unidentified ones (`unidentifiedMaxFrameBytes`,
   * `unidentifiedMaxItemsPerFrame`) to `limits` (default: the server's `maxFrameBytes` and
   * `maxItemsPerFrame`), from its next frame on. Call it from the `message` listener that recognised the
   * first message: the limits then apply to the very next frame, even one that arrived in the same chunk.
   */
  identify(conn: FramedConnection, limits: InboundFrameLimits = {}): void {
    conn.setInboundLimits({
      maxFrameBytes: limits.maxFrameBytes ?? this.config.maxFrameBytes,
      maxItemsPerFrame: limits.maxItemsPerFrame ?? this.config.maxItemsPerFrame,
    });
  }

  /**
   * Marks `conn` trusted (an authenticated peer): it leaves the `maxConnections` budget for the
   * `maxTrustedConnections` one, is never evicted to make room, and is evicted by the inbound budget only
   * after every untrusted connection. Returns false (and changes nothing) when `maxTrustedConnections`
   * trusted connections are open.
   */
  trust(conn: FramedConnection): boolean {
    if (conn.trusted) return true;
    if (!this.open.has(conn) || this.trustedCount >= this.config.maxTrustedConnections) return false;
    conn.markTrusted();
    this.trustedCount++;
    this.exemptFromHostLimit(conn);
    // An authenticated peer sends whatever the protocol needs: full frames, no value limit.
    this.identify(conn, { maxItemsPerFrame: 0 });
    this.quiet.delete(conn);
    this.silent.delete(conn);
    return true;
  }

  /**
   * Stops counting `conn` against `maxConnectionsPerHost` (it still counts against `maxConnections`): for
   * a connection the application authenticated (a client that logged in). Trusted connections are exempt
   * already. Idempotent.
   */
  exemptFromHostLimit(conn: FramedConnection): void {
    const host = this.hostOf.get(conn);
    if (host === undefined) return;
    this.hostOf.delete(conn);
    const n = (this.perHost.get(host) ?? 1) - 1;
    if (n > 0) this.perHost.set(host, n);
    else this.perHost.delete(host);
  }

  /** Open connections counted against `maxConnectionsPerHost` from `host` (an IP, as `remoteAddress` gives it). */
  connectionsFrom(host: string): number {
    return this.perHost.get(host) ?? 0;
  }

  /** Whether this server speaks TLS. */
  get secure(): boolean {
    return this.tls !== undefined;
  }

  /** The bound address, once listening. */
  get address(): HostPort | undefined {
    return this.bound;
  }

  /**
   * Starts listening on `host:port` (port 0 picks a free port). Resolves with the bound address.
   * Rejects with {@link InvalidAddressError} for a bad address and {@link UnavailableError} if the
   * port cannot be bound (in use, no permission).
   */
  listen(address: string | HostPort): Promise<HostPort> {
    const hp = typeof address === 'string' ? parseAddress(address, { allowPortZero: true }) : address;
    if (hp instanceof InvalidAddressError) return Promise.reject(hp);
    return new Promise<HostPort>((resolve, reject) => {
      const onError = (e: Error) => {
        reject(
          new UnavailableError(
            { reason: `cannot listen on ${formatAddress(hp)}: ${e.message}` },
            { cause: e },
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen(hp.port, hp.host, () => {
        this.server.off('error', onError);
        const a = this.server.address();
        this.bound = a && typeof a === 'object' ? { host: a.address, port: a.port } : hp;
        this.logger?.info({ address: formatAddress(this.bound) }, 'listening');
        resolve(this.bound);
      });
    });
  }

  /**
   * Stops accepting new connections at once; connections already open are not touched (end them
   * with {@link TransportServer.close}).
   */
  stopAccepting(): void {
    if (this.server.listening) this.server.close();
  }

  /**
   * Stops accepting, closes every open connection, and resolves when the server is closed. With
   * `graceMs` (default 0: at once) open connections are ended gracefully (queued frames are flushed)
   * and only those still open after `graceMs` are destroyed.
   */
  close(options: { readonly graceMs?: number } = {}): Promise<void> {
    const graceMs = options.graceMs ?? 0;
    return new Promise<void>((resolve) => {
      if (graceMs > 0) {
        for (const c of this.open) c.close();
        setTimeout(() => {
          for (const c of this.open) c.destroy();
        }, graceMs).unref();
      } else {
        for (const c of this.open) c.destroy();
      }
      if (!this.server.listening) {
        if (this.open.size === 0) resolve();
        else {
          const left = new Set(this.open);
          for (const c of left)
            c.once('close', () => {
              left.delete(c);
              if (left.size === 0) resolve();
            });
        }
        return;
      }
      this.server.close(() => resolve());
    });
  }

  private accept(socket: Socket): void {
    const host = socket.remoteAddress ?? 'unknown';
    const perHost = this.config.maxConnectionsPerHost;
    if (perHost > 0 && (this.perHost.get(host) ?? 0) >= perHost) {
      // Refused before it can make room by eviction: one host never displaces the others' clients.
      const from = `${host}:${socket.remotePort}`;
      this.logger?.debug(
        { peer: from, max: perHost },
        'connection refused: too many connections from its host',
      );
      socket.on('error', () => {});
      socket.destroy();
      this.emit('rejected', from, 'host-limit');
      return;
    }
    const untrusted = () => this.silent.size + this.quiet.size;
    if (untrusted() >= this.config.maxConnections && this.config.evictWhenFull) {
      // Strangers that never said anything go first; then the client that has been quiet longest.
      const victim = this.silent.values().next().value ?? this.quiet.values().next().value;
      if (victim) {
        this.silent.delete(victim);
        this.quiet.delete(victim);
        this.open.delete(victim);
        this.logger?.debug({ peer: victim.remoteAddress }, 'closing the quietest connection to make room');
        victim.destroy(
          new UnavailableError({
            reason: `the server is at its connection limit (${this.config.maxConnections}) and this connection was the quietest`,
          }),
        );
        this.emit('evicted', victim.remoteAddress);
      }
    }
    if (untrusted() >= this.config.maxConnections) {
      const from = `${socket.remoteAddress}:${socket.remotePort}`;
      this.logger?.warn(
        { peer: from, max: this.config.maxConnections },
        'connection refused: too many connections',
      );
      socket.on('error', () => {});
      socket.destroy();
      this.emit('rejected', from, 'connection-limit');
      return;
    }
    const conn = new FramedConnection(socket, this.config, {
      ...(this.codec ? { codec: this.codec } : {}),
      ...(this.logger ? { logger: this.logger } : {}),
      ...(this.budget ? { inboundBudget: this.budget } : {}),
      ...(this.tls ? { tlsSide: 'accept' as const } : {}),
      inboundLimits: this.unidentifiedLimits,
    });
    this.open.add(conn);
    this.silent.add(conn);
    if (perHost > 0) {
      this.hostOf.set(conn, host);
      this.perHost.set(host, (this.perHost.get(host) ?? 0) + 1);
    }
    conn.on('close', () => {
      this.exemptFromHostLimit(conn);
      this.open.delete(conn);
      this.silent.delete(conn);
      this.quiet.delete(conn);
      if (conn.trusted) this.trustedCount--;
    });
    conn.on('message', () => {
      if (conn.trusted) return;
      if (!this.silent.delete(conn) && !this.quiet.delete(conn)) return;
      this.quiet.add(conn);
    });
    const hook = this.handshake;
    if (!hook) {
      this.deliver(conn);
      return;
    }
    conn.runHandshake(hook, 'server').then(
      () => {
        if (!conn.isOpen) return;
        this.deliver(conn);
        conn.releaseHeld();
      },
      (e: unknown) => this.logger?.warn({ err: e, peer: conn.remoteAddress }, 'handshake failed'),
    );
  }

  private deliver(conn: FramedConnection): void {
    try {
      this.emit('connection', conn);
    } catch (e) {
      this.logger?.error({ err: e }, "a 'connection' listener threw; closing the connection");
      conn.destroy();
    }
  }
}
