/**
 * Inbound connections on the server's one TCP port. Clients, peers and bootstrap members all dial it;
 * the first message tells them apart (`peer.hello` makes a peer, `checkin`/`heartbeat` a member, a
 * request a client). This is the boundary: every message is validated here, once, against its schema
 * and size limits, then handed on: client requests to the {@link RequestPath}, paxos envelopes to the
 * {@link GroupHost}, bootstrap traffic to the {@link BootstrapRole}. Bad input is answered with an
 * `error` (and counted), never thrown.
 */
import {
  type ClientRequest,
  errorMessage,
  type FramedConnection,
  type Handshake,
  type HostPort,
  type NodeId,
  PaxkvError,
  parseClientRequest,
  parsePeerMessage,
  requestIdOf,
  TransportServer,
  UnavailableError,
  type WatchRequest,
} from '@paxkv/common';
import type { AccessControl, Principal } from './access-control.js';
import type { BootstrapRole } from './bootstrap-role.js';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';
import type { PaxosMessageCheck } from './group-port.js';
import { type InboundConn, identityOf, PeerTraffic } from './inbound-peers.js';
import { watchRefusals } from './inbound-refusals.js';
import type { MetadataService } from './metadata-group.js';
import { LINK_HIGH_WATER_MARK_BYTES } from './peers.js';
import { RateLimitedLog } from './rate-limited-log.js';
import type { RequestPath } from './request-path.js';
import { plainGetRequest } from './request-path-check.js';
import { serverCertificate } from './tls-setup.js';
import type { WatchStreams } from './watch-streams.js';

/** Failed logins one connection may make before it is closed (each costs a scrypt computation). */
export const MAX_FAILED_LOGINS = 5;

/** What {@link InboundConnections} hands messages to. */
export interface InboundDeps {
  readonly requests: RequestPath;
  readonly groups: GroupHost;
  readonly bootstrap: BootstrapRole;
  /** Takes check-ins once the bootstrap coordinator handed over (or on any other server). */
  readonly metadata: MetadataService;
  readonly checkPaxosMessage: PaxosMessageCheck;
  /** Watch streams opened on client connections. */
  readonly watches: WatchStreams;
  /** Run on every accepted connection before it is used (peer authentication). Default: none. */
  readonly handshake?: Handshake;
  /** The address of a node (from the lookup table), to match a TLS peer's certificate. Default: none. */
  readonly addressOf?: (node: NodeId) => string | undefined;
  /** Client logins and the check of every client request. */
  readonly access: AccessControl;
}

/** See the module comment. */
export class InboundConnections {
  private readonly open = new Set<InboundConn>();
  /** Connections whose inbound limits were raised (see `identify`). */
  private readonly identified = new WeakSet<InboundConn>();
  /** Logins by client certificate in progress or done (see `certificateLogin`). */
  private readonly certificateLogins = new WeakMap<InboundConn, Promise<void>>();
  private readonly transport: TransportServer;
  private readonly rejections: RateLimitedLog;
  private readonly peers: PeerTraffic;

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: InboundDeps,
  ) {
    const c = ctx.config;
    this.rejections = new RateLimitedLog(ctx.now);
    this.transport = new TransportServer({
      maxFrameBytes: c.maxFrameBytes,
      maxConnections: c.maxConnections,
      // Peers have their own budget, and a full server closes its quietest client connection rather than
      // refusing a newcomer: a flood of idle connections can never keep a peer out.
      maxTrustedConnections: c.maxPeerConnections,
      // One host cannot hold more (authenticated peers and clients that logged in do not count).
      maxConnectionsPerHost: c.maxConnectionsPerHost,
      evictWhenFull: true,
      inboundBudgetBytes: c.inboundBudgetBytes,
      // Strangers send small frames until they identify themselves (see `identify`).
      unidentifiedMaxFrameBytes: c.unidentifiedMaxFrameBytes,
      unidentifiedMaxItemsPerFrame: c.unidentifiedMaxItemsPerFrame,
      maxItemsPerFrame: c.clientMaxItemsPerFrame,
      handshakeTimeoutMs: c.headerTimeoutMs,
      // Until its first message: see `accept`.
      idleTimeoutMs: c.headerTimeoutMs,
      // A reader this slow is treated as dead: the connection is closed rather than buffered without bound.
      highWaterMark: LINK_HIGH_WATER_MARK_BYTES,
      onBackpressure: 'disconnect',
      ...(deps.handshake ? { handshake: deps.handshake } : {}),
      ...(ctx.tls ? { tls: ctx.tls } : {}),
    });
    watchRefusals(this.transport, ctx, this.rejections);
    this.peers = new PeerTraffic(ctx, deps, this.transport, this.rejections, (conn, error, id) =>
      this.reject(conn, error, id),
    );
    this.transport.on('connection', (conn) => this.accept(conn));
  }

  /** Starts listening on `host:port` (port 0 picks one); resolves with the bound address. */
  listen(host: string, port: number): Promise<HostPort> {
    return this.transport.listen({ host, port });
  }

  /** The bound address, once listening. */
  get address(): HostPort | undefined {
    return this.transport.address;
  }

  /** Stops accepting new connections (open ones keep being served). */
  stopAccepting(): void {
    this.transport.stopAccepting();
  }

  /** Ends every open connection (queued replies are flushed for up to `graceMs`) and closes the port. */
  /** Whether node `node` itself is connected to this server (an open connection it opened with `peer.hello`). */
  hasPeer(node: NodeId): boolean {
    for (const c of this.open) if (c.kind === 'peer' && c.peerId === node) return true;
    return false;
  }

  close(graceMs: number): Promise<void> {
    return this.transport.close({ graceMs });
  }

  private accept(socket: FramedConnection): void {
    const ctx = this.ctx;
    if (ctx.stopping) {
      socket.destroy();
      return;
    }
    const conn: InboundConn = {
      kind: 'unknown',
      peerId: null,
      inflight: 0,
      socket,
      identity: identityOf(socket.handshakeResult),
      principal: null,
      failedLogins: 0,
    };
    // An authenticated peer moves to the peer budget (never evicted for clients) and is watched by
    // liveness; anyone else keeps the header timeout until its first message (see `dispatch`).
    if (conn.identity?.kind === 'peer' || (ctx.tls !== undefined && serverCertificate(socket) !== null))
      this.peers.trustPeer(conn);
    else if (ctx.tls !== undefined && this.deps.access.enabled) this.certificateLogin(conn);
    socket.on('message', (v) => {
      if (conn.kind === 'unknown' && !socket.trusted) socket.setIdleTimeout(ctx.config.clientIdleTimeoutMs);
      this.dispatch(conn, v);
      if (!this.identified.has(conn)) this.identify(conn);
    });
    socket.on('protocolError', (error) => {
      ctx.metrics.badInput.inc({ code: error.code });
      const stranger = !socket.trusted && !this.identified.has(conn);
      if (stranger && error.code !== 'TRUNCATED_FRAME')
        ctx.metrics.unidentifiedRefused.inc({ code: error.code });
      // An oversized frame is answered by the transport itself before it closes the connection.
      // A stream cut inside a frame has ended: nothing to answer.
      if (error.code === 'FRAME_TOO_LARGE' || error.code === 'TRUNCATED_FRAME' || !socket.isOpen) return;
      // A frame that is not msgpack within the limits (refused while it arrived) closes any connection
      // but an authenticated peer's: no legitimate client sends one, and the rest of a hostile frame is
      // then never read (skipping 16 MiB frame after frame would still cost reading them).
      if (socket.trusted || error.code !== 'DECODE_FAILED') socket.send(errorMessage(error, null));
      else socket.refuse(errorMessage(error, null), error);
    });
    socket.on('close', () => {
      this.open.delete(conn);
      ctx.metrics.connections.dec();
      this.deps.bootstrap.channelClosed(socket);
      this.deps.watches.closed(socket);
    });
    this.open.add(conn);
    ctx.metrics.connections.inc();
  }

  /**
   * Raises the inbound limits of a connection that showed what it is (synchronously, from its message
   * listener, so they apply to its very next frame): a peer (`peer.hello`) gets full frames and no value
   * limit, a member or client `maxFrameBytes` and `clientMaxItemsPerFrame`. With `auth`, a client only
   * once it logged in (anyone may send `lookup` and `status`, which stay small). Until then the
   * `unidentified*` limits hold: a stranger can never make this server buffer, scan or decode a large
   * frame. Authenticated peers were raised at accept (`TransportServer.trust`).
   */
  private identify(conn: InboundConn): void {
    const kind = conn.kind;
    if (kind === 'peer') this.transport.identify(conn.socket, { maxItemsPerFrame: 0 });
    else if (
      kind === 'member' ||
      (kind === 'client' && (!this.deps.access.enabled || conn.principal !== null))
    )
      this.transport.identify(conn.socket);
    else return;
    if (conn.principal !== null) this.transport.exemptFromHostLimit(conn.socket);
    this.identified.add(conn);
    this.ctx.metrics.connectionsIdentified.inc({ kind });
  }

  /**
   * With `--auth` and TLS, a client certificate of the cluster CA for client authentication only, whose
   * common name is a user, logs the connection in as that user (`AccessControl.loginWithCertificate`).
   * Requests wait for the lookup (see `principalOf`); a `login` message still works and takes over.
   */
  private certificateLogin(conn: InboundConn): void {
    const peer = conn.socket.tlsPeer;
    if (!peer?.authorized || !peer.clientAuth || peer.serverAuth || peer.commonName === null) return;
    const pending = this.deps.access.loginWithCertificate(peer.commonName).then(
      (principal) => {
        if (principal === null || conn.principal !== null) return;
        conn.principal = principal;
        if (!this.identified.has(conn)) this.identify(conn);
      },
      (e: unknown) =>
        this.ctx.log.warn(
          { remote: conn.socket.remoteAddress, err: (e as Error).message },
          'the login by client certificate failed: the user store could not be read',
        ),
    );
    this.certificateLogins.set(conn, pending);
  }

  /** The user `conn` is logged in as, once a login by certificate in progress has finished. */
  private async principalOf(conn: InboundConn): Promise<Principal | null> {
    const pending = this.certificateLogins.get(conn);
    if (pending !== undefined) await pending;
    return conn.principal;
  }

  private reject(conn: InboundConn, error: PaxkvError, id: number | null): void {
    this.ctx.metrics.badInput.inc({ code: error.code });
    conn.socket.send(errorMessage(error, id));
  }

  private dispatch(conn: InboundConn, value: unknown): void {
    try {
      const type =
        typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
          ? (value as { type?: unknown }).type
          : undefined;
      if (this.peers.handle(conn, type, value)) return;
      switch (type) {
        case 'kv':
        case 'lookup':
        case 'status':
        case 'member.list':
        case 'member.add':
        case 'member.remove':
        case 'member.seed':
        case 'member.rejoin':
        case 'group.reconfigure': {
          // A plain get is checked by hand (same verdict as the schema: request-path-check.ts).
          const get = conn.kind === 'client' ? plainGetRequest(value) : undefined;
          if (get !== undefined) {
            void this.handleClient(conn, get);
            return;
          }
          const parsed = conn.kind === 'peer' ? parsePeerMessage(value) : parseClientRequest(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          if (conn.kind === 'unknown') conn.kind = 'client';
          void this.handleClient(conn, parsed.value as ClientRequest);
          return;
        }
        case 'watch':
        case 'watch.cancel': {
          const parsed = parseClientRequest(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          if (conn.kind === 'unknown') conn.kind = 'client';
          if (parsed.value.type === 'watch') void this.startWatch(conn, parsed.value);
          else if (parsed.value.type === 'watch.cancel') this.deps.watches.cancel(conn.socket, parsed.value);
          return;
        }
        case 'login':
        case 'user':
        case 'role': {
          const parsed = parseClientRequest(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          if (conn.kind === 'unknown') conn.kind = 'client';
          void this.handleAccess(conn, parsed.value);
          return;
        }
        default: {
          const parsed = parseClientRequest(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          return;
        }
      }
    } catch (e) {
      // Never let one bad message take the process down.
      this.ctx.log.error(
        { err: (e as Error).message, remote: conn.socket.remoteAddress },
        'error handling a message',
      );
      this.reject(
        conn,
        e instanceof PaxkvError
          ? e
          : new UnavailableError({ reason: 'internal error while handling the message' }),
        requestIdOf(value),
      );
    }
  }

  private async handleClient(conn: InboundConn, request: ClientRequest): Promise<void> {
    const ctx = this.ctx;
    const max = ctx.config.maxInflightPerConnection;
    if (conn.inflight >= max) {
      ctx.metrics.observeOp(request.type === 'kv' ? request.op.op : request.type, 'UNAVAILABLE', 0);
      conn.socket.send(
        errorMessage(
          new UnavailableError({
            reason: `more than ${max} requests in flight on one connection; wait for replies`,
          }),
          request.id,
        ),
      );
      return;
    }
    conn.inflight += 1;
    let reply: Awaited<ReturnType<RequestPath['execute']>>;
    try {
      const forwarded = conn.kind === 'peer';
      // A forwarded request was checked at the server its client connected to. Without access
      // control the principal plays no part: the synchronous checks only.
      const access = this.deps.access;
      const checked = forwarded
        ? request
        : access.enabled
          ? await access.authorize(await this.principalOf(conn), request)
          : access.guard(request);
      reply = await this.deps.requests.execute(checked, { forwarded });
    } catch (e) {
      ctx.metrics.accessDenied.inc({ code: e instanceof PaxkvError ? e.code : 'INTERNAL' });
      reply = errorMessage(e, request.id);
    } finally {
      conn.inflight -= 1;
    }
    conn.socket.send(reply);
  }

  /** Checks a watch against the connection's user, then opens it. */
  private async startWatch(conn: InboundConn, request: WatchRequest): Promise<void> {
    try {
      await this.deps.access.authorize(await this.principalOf(conn), request);
    } catch (e) {
      this.ctx.metrics.accessDenied.inc({ code: e instanceof PaxkvError ? e.code : 'INTERNAL' });
      conn.socket.send(errorMessage(e, request.id));
      return;
    }
    if (conn.socket.isOpen) this.deps.watches.start(conn.socket, request);
  }

  /** `login` binds the connection to a user; `user`/`role` manage them (admins only with `--auth`). */
  private async handleAccess(conn: InboundConn, request: ClientRequest): Promise<void> {
    const access = this.deps.access;
    try {
      if (request.type === 'login') {
        try {
          const { principal, reply } = await access.login(request);
          conn.principal = principal;
          if (!this.identified.has(conn)) this.identify(conn);
          conn.socket.send(reply);
        } catch (e) {
          conn.failedLogins += 1;
          this.ctx.metrics.accessDenied.inc({ code: 'LOGIN_FAILED' });
          conn.socket.send(errorMessage(e, request.id));
          if (conn.failedLogins >= MAX_FAILED_LOGINS) conn.socket.close();
        }
        return;
      }
      if (request.type !== 'user' && request.type !== 'role') return;
      await access.authorize(await this.principalOf(conn), request);
      conn.socket.send(await access.manage(request));
    } catch (e) {
      this.ctx.metrics.accessDenied.inc({ code: e instanceof PaxkvError ? e.code : 'INTERNAL' });
      conn.socket.send(errorMessage(e, request.id));
    }
  }
}
