/**
 * A TCP server accepting framed connections.
 * @module
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { formatAddress, type HostPort, parseAddress } from '../address.js';
import type { Codec } from '../codec/msgpack.js';
import { ConfigError, InvalidAddressError, UnavailableError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { FramedConnection } from './framed-connection.js';
import { type ServerConfig, ServerConfigSchema } from './options.js';

/** Events of a {@link TransportServer}. */
export interface TransportServerEvents {
  /** A client connected. Attach `message` / `close` listeners right away. */
  connection: [connection: FramedConnection];
  /** A connection was refused because `maxConnections` were open. */
  rejected: [remoteAddress: string];
}

/** Options of a {@link TransportServer}: any subset of {@link ServerConfig} plus wiring. */
export type TransportServerOptions = Partial<ServerConfig> & {
  /** Codec of the payloads. Default msgpack. */
  readonly codec?: Codec;
  /** Logger. Default: none. */
  readonly logger?: Logger;
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
  private bound: HostPort | undefined;

  /** @throws {@link ConfigError} if an option is invalid. */
  constructor(options: TransportServerOptions = {}) {
    super();
    const { codec, logger, ...rest } = options;
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
    this.server = createServer({ noDelay: this.config.noDelay }, (socket) => this.accept(socket));
    this.server.on('error', (e) => this.logger?.error({ err: e }, 'server socket error'));
  }

  /** The connections currently open. */
  get connections(): ReadonlySet<FramedConnection> {
    return this.open;
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

  /** Stops accepting, closes every open connection at once, and resolves when the server is closed. */
  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      for (const c of this.open) c.destroy();
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
    });
  }

  private accept(socket: Socket): void {
    if (this.open.size >= this.config.maxConnections) {
      const from = `${socket.remoteAddress}:${socket.remotePort}`;
      this.logger?.warn(
        { peer: from, max: this.config.maxConnections },
        'connection refused: too many connections',
      );
      socket.on('error', () => {});
      socket.destroy();
      this.emit('rejected', from);
      return;
    }
    const conn = new FramedConnection(socket, this.config, {
      ...(this.codec ? { codec: this.codec } : {}),
      ...(this.logger ? { logger: this.logger } : {}),
    });
    this.open.add(conn);
    conn.on('close', () => this.open.delete(conn));
    try {
      this.emit('connection', conn);
    } catch (e) {
      this.logger?.error({ err: e }, "a 'connection' listener threw; closing the connection");
      conn.destroy();
    }
  }
}
