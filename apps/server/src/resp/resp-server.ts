/**
 * The RESP listener (`--resp-port`): accepts Redis clients and hands each socket to a
 * {@link RespConnection}. A translation layer only: every command runs through the backend (the server's
 * request path), so any server answers any key, forwarding to the key's group leader like the native port.
 * @module
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { type TlsOptions, tlsMaterial } from '@paxkv/common';
import type { RespBackend } from './backend.js';
import { RespConnection, type RespConnectionDeps } from './connection.js';
import { type RespLimits, resolveRespLimits } from './limits.js';

/** Options of {@link RespServer.start}. */
export interface RespServerOptions {
  readonly host: string;
  /** Port to listen on; 0 picks a free one. */
  readonly port: number;
  readonly backend: RespBackend;
  /** Limits; defaults in {@link DEFAULT_RESP_LIMITS}. */
  readonly limits?: Partial<RespLimits>;
  /** Called for each protocol error or half-sent command timeout (metrics, logs). */
  readonly onBadInput?: (why: string) => void;
  /**
   * Serve RESP over TLS (`redis-cli --tls --cacert ca.pem`) with this certificate and key; client
   * certificates are not asked for. Default: plain TCP.
   */
  readonly tls?: TlsOptions;
  /** Test-only mutation, see {@link RespConnectionDeps.unsafeMutation}. Never set it. */
  readonly unsafeMutation?: 'noKeyOrdering';
}

/** A listening RESP port. */
export class RespServer {
  private readonly connections = new Set<RespConnection>();
  private nextId = 1;
  private readonly startedAt = Date.now();

  private constructor(
    private readonly listener: Server,
    private readonly options: RespServerOptions,
    private readonly limits: RespLimits,
  ) {}

  /** Listens on `host:port`. Rejects if the port cannot be bound. */
  static async start(options: RespServerOptions): Promise<RespServer> {
    const limits = resolveRespLimits(options.limits);
    const t = options.tls;
    const listener: Server =
      t?.cert !== undefined && t.key !== undefined
        ? createTlsServer({
            cert: tlsMaterial(t.cert),
            key: tlsMaterial(t.key),
            minVersion: 'TLSv1.2',
            noDelay: true,
          })
        : createServer({ noDelay: true });
    const server = new RespServer(listener, options, limits);
    listener.on(t ? 'secureConnection' : 'connection', (s: Socket) => server.accept(s));
    await new Promise<void>((resolveListen, reject) => {
      listener.once('error', reject);
      listener.listen(options.port, options.host, () => {
        listener.off('error', reject);
        resolveListen();
      });
    });
    listener.on('error', () => {});
    return server;
  }

  /** The bound port. */
  get port(): number {
    const a = this.listener.address();
    return typeof a === 'object' && a ? a.port : this.options.port;
  }

  /** Connections open now. */
  get connectedClients(): number {
    return this.connections.size;
  }

  private accept(socket: Socket): void {
    if (this.connections.size >= this.limits.maxConnections) {
      socket.on('error', () => {});
      socket.end('-ERR max number of clients reached\r\n');
      return;
    }
    const id = this.nextId++;
    const server = this;
    const conn = new RespConnection(socket, id, {
      backend: this.options.backend,
      limits: this.limits,
      server: {
        get connectedClients() {
          return server.connections.size;
        },
        startedAt: this.startedAt,
        port: this.port,
      },
      onClose: () => this.connections.delete(conn),
      onBadInput: (why) => this.options.onBadInput?.(why),
      ...(this.options.unsafeMutation ? { unsafeMutation: this.options.unsafeMutation } : {}),
    });
    this.connections.add(conn);
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.listener.close(() => r()));
    for (const c of this.connections) c.destroy();
    this.connections.clear();
    await closed;
  }
}
