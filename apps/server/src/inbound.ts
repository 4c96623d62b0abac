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
  type InboundIdentity,
  type NodeId,
  PaxkvError,
  parseBootstrapReply,
  parseBootstrapRequest,
  parseClientRequest,
  parsePeerMessage,
  requestIdOf,
  TransportServer,
  UnauthenticatedError,
  UnavailableError,
  UnknownTypeError,
  type WatchRequest,
} from '@paxkv/common';
import type { AccessControl, Principal } from './access-control.js';
import { BOOTSTRAP_NODE_ID, type BootstrapRole } from './bootstrap-role.js';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';
import type { PaxosMessageCheck } from './group-port.js';
import { fromBeat } from './heartbeats.js';
import type { MetadataService } from './metadata-group.js';
import { LINK_HIGH_WATER_MARK_BYTES } from './peers.js';
import { hostOf, RateLimitedLog } from './rate-limited-log.js';
import type { RequestPath } from './request-path.js';
import { certificateCovers, serverCertificate } from './tls-setup.js';
import type { WatchStreams } from './watch-streams.js';

type ConnKind = 'unknown' | 'client' | 'peer' | 'member';

interface InboundConn {
  readonly socket: FramedConnection;
  kind: ConnKind;
  peerId: NodeId | null;
  inflight: number;
  /** What the handshake proved: a peer holding the cluster token (and its claimed id), or nothing. */
  readonly identity: InboundIdentity | null;
  /** The user this client connection logged in as (see `AccessControl`), or null. */
  principal: Principal | null;
  /** Failed logins on this connection; at {@link MAX_FAILED_LOGINS} it is closed. */
  failedLogins: number;
}

/** Failed logins one connection may make before it is closed (each costs a scrypt computation). */
export const MAX_FAILED_LOGINS = 5;

/** Messages only an authenticated peer may send when the cluster has a token. */
type PeerOnlyType = 'peer.hello' | 'paxos' | 'checkin' | 'heartbeat' | 'table.push' | 'members';

function identityOf(result: unknown): InboundIdentity | null {
  if (typeof result !== 'object' || result === null) return null;
  const r = result as { kind?: unknown; from?: unknown };
  if (r.kind === 'peer' && (r.from === null || typeof r.from === 'number')) {
    return { kind: 'peer', from: r.from };
  }
  return r.kind === 'anonymous' ? { kind: 'anonymous' } : null;
}

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
  private readonly transport: TransportServer;
  private readonly rejections: RateLimitedLog;

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
      evictWhenFull: true,
      inboundBudgetBytes: c.inboundBudgetBytes,
      handshakeTimeoutMs: c.headerTimeoutMs,
      // Until its first message: see `accept`.
      idleTimeoutMs: c.headerTimeoutMs,
      // A reader this slow is treated as dead: the connection is closed rather than buffered without bound.
      highWaterMark: LINK_HIGH_WATER_MARK_BYTES,
      onBackpressure: 'disconnect',
      ...(deps.handshake ? { handshake: deps.handshake } : {}),
      ...(ctx.tls ? { tls: ctx.tls } : {}),
    });
    this.transport.on('tlsError', (error, remote) => {
      ctx.metrics.authFailures.inc({ reason: 'tls' });
      if (this.rejections.shouldLog(hostOf(remote))) {
        ctx.log.warn(
          { remote },
          `${error.message} (further failures from this host are counted in paxkv_auth_failures_total{reason="tls"} and logged at most once a minute)`,
        );
      }
    });
    this.transport.on('connection', (conn) => this.accept(conn));
    this.transport.on('evicted', () => ctx.metrics.connectionsEvicted.inc({ reason: 'connection-limit' }));
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
      this.trustPeer(conn);
    socket.on('message', (v) => {
      if (conn.kind === 'unknown' && !socket.trusted) socket.setIdleTimeout(ctx.config.clientIdleTimeoutMs);
      this.dispatch(conn, v);
    });
    socket.on('protocolError', (error) => {
      ctx.metrics.badInput.inc({ code: error.code });
      // An oversized frame is answered by the transport itself before it closes the connection.
      // A stream cut inside a frame has ended: nothing to answer.
      if (error.code !== 'FRAME_TOO_LARGE' && error.code !== 'TRUNCATED_FRAME' && socket.isOpen)
        socket.send(errorMessage(error, null));
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

  /** Moves `conn` to the peer budget; closes it when `maxPeerConnections` are already open. */
  private trustPeer(conn: InboundConn): boolean {
    const socket = conn.socket;
    if (this.transport.trust(socket)) {
      socket.setIdleTimeout(0);
      return true;
    }
    this.ctx.metrics.connectionsEvicted.inc({ reason: 'peer-limit' });
    socket.send(
      errorMessage(
        new UnavailableError({
          reason: `more than ${this.ctx.config.maxPeerConnections} peer connections are open (maxPeerConnections)`,
        }),
        null,
      ),
    );
    socket.close();
    return false;
  }

  private reject(conn: InboundConn, error: PaxkvError, id: number | null): void {
    this.ctx.metrics.badInput.inc({ code: error.code });
    conn.socket.send(errorMessage(error, id));
  }

  /**
   * Whether `conn` may send a peer or bootstrap message of `type`. With a cluster token the connection
   * must have proved it (a `peer.hello` must also claim the id it proved); with TLS it must present a
   * server certificate of the cluster CA that names the host of what it claims (see `tls-setup.ts`):
   * the table's address of the node a `peer.hello` claims, a `checkin`'s address, the `--join` host for
   * `table.push`/`members`. `table.push` and `members` must come from the metadata owner (the bootstrap
   * server) in any case: a member adopts tables from its own link to the bootstrap server, so without
   * authentication they are never accepted on an inbound connection. A refusal is answered with
   * UNAUTHENTICATED, counted, and logged once per host a minute.
   * @param claimed the node a `peer.hello` claims; `claimedAddress` the address a `checkin` claims.
   */
  private authorized(
    conn: InboundConn,
    type: PeerOnlyType,
    claimed?: NodeId,
    claimedAddress?: string,
  ): boolean {
    const id = conn.identity;
    const tokenPeer = id?.kind === 'peer';
    const tlsOn = this.ctx.tls !== undefined;
    const cert = tlsOn ? serverCertificate(conn.socket) : null;
    const tokenOn = this.ctx.authRequired;
    let problem: string | undefined;
    if (tlsOn && cert === null) {
      const p = conn.socket.tlsPeer;
      problem = `${type} from a connection without a server certificate of the cluster CA (${p === undefined ? 'no TLS' : !p.authorized ? `certificate not accepted: ${p.authorizationError}` : 'a client certificate, not a server one'})`;
    } else if (tokenOn && !tokenPeer) {
      problem = `${type} on a connection that did not prove the cluster token`;
    } else if (type === 'table.push' || type === 'members') {
      const join = this.ctx.config.join;
      if (tokenPeer ? id.from !== BOOTSTRAP_NODE_ID : cert === null) {
        problem = `${type} is accepted only from the bootstrap server over an authenticated connection`;
      } else if (cert !== null && (join === undefined || !certificateCovers(cert, join))) {
        problem = `${type} from a certificate that does not name the bootstrap server's host (${join ?? 'none: this server is the bootstrap server'})`;
      }
    } else if (type === 'peer.hello' && tokenPeer && id.from !== null && id.from !== claimed) {
      problem = `peer.hello claims node ${claimed} but the handshake proved node ${id.from}`;
    } else if (type === 'peer.hello' && cert !== null && claimed !== undefined) {
      const address = this.deps.addressOf?.(claimed);
      if (address === undefined)
        problem = `peer.hello claims node ${claimed}, which this server does not know yet`;
      else if (!certificateCovers(cert, address))
        problem = `peer.hello claims node ${claimed} at ${address} but the certificate names ${cert.hosts.join(', ') || 'no host'}`;
    } else if (type === 'checkin' && cert !== null && claimedAddress !== undefined) {
      if (!certificateCovers(cert, claimedAddress))
        problem = `checkin claims address ${claimedAddress} but the certificate names ${cert.hosts.join(', ') || 'no host'}`;
    }
    if (problem === undefined) return true;
    this.ctx.metrics.unauthenticated.inc({ type });
    const remote = conn.socket.remoteAddress;
    if (this.rejections.shouldLog(hostOf(remote))) {
      this.ctx.log.warn(
        { remote, type },
        `refused ${type} from ${remote}: ${problem} (further refusals from this host are counted in paxkv_unauthenticated_messages_total and logged at most once a minute)`,
      );
    }
    conn.socket.send(errorMessage(new UnauthenticatedError({ reason: problem }), null));
    return false;
  }

  private dispatch(conn: InboundConn, value: unknown): void {
    try {
      const type =
        typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
          ? (value as { type?: unknown }).type
          : undefined;
      switch (type) {
        case 'kv':
        case 'lookup':
        case 'status':
        case 'member.list':
        case 'member.add':
        case 'member.remove':
        case 'member.seed':
        case 'group.reconfigure': {
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
        case 'checkin':
        case 'heartbeat': {
          const parsed = parseBootstrapRequest(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          if (
            !this.authorized(
              conn,
              parsed.value.type,
              undefined,
              parsed.value.type === 'checkin' ? parsed.value.address : undefined,
            )
          )
            return;
          if (
            !this.deps.bootstrap.handleRequest(conn.socket, parsed.value) &&
            !this.deps.metadata.handleBootstrap(conn.socket, parsed.value)
          ) {
            this.reject(
              conn,
              new UnavailableError({
                reason: `this server cannot take check-ins yet (it is not the bootstrap server, and the cluster metadata is not replicated yet); retry, or check in with ${this.ctx.config.join ?? 'the bootstrap server'}`,
              }),
              null,
            );
            return;
          }
          conn.kind = 'member';
          return;
        }
        case 'table.push':
        case 'members': {
          const parsed = parseBootstrapReply(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          if (!this.authorized(conn, type)) return;
          this.deps.bootstrap.applyMemberUpdate(parsed.value);
          return;
        }
        case 'peer.hello': {
          const parsed = parsePeerMessage(value);
          if (!parsed.ok || parsed.value.type !== 'peer.hello') {
            this.reject(
              conn,
              parsed.ok ? new UnknownTypeError({ type: 'peer.hello', expected: [] }) : parsed.error,
              null,
            );
            return;
          }
          if (!this.authorized(conn, 'peer.hello', parsed.value.from)) return;
          if (!this.trustPeer(conn)) return;
          conn.kind = 'peer';
          conn.peerId = parsed.value.from;
          this.ctx.log.info(
            { peer: parsed.value.from, remote: conn.socket.remoteAddress },
            `peer ${parsed.value.from} connected from ${conn.socket.remoteAddress}`,
          );
          // A peer link: both ends check liveness and send keepalives when idle.
          conn.socket.setLiveness({
            livenessTimeoutMs: this.ctx.config.linkLivenessMs,
            keepaliveIntervalMs: this.ctx.config.linkKeepaliveMs,
          });
          return;
        }
        case 'paxos':
        case 'paxos.batch': {
          const parsed = parsePeerMessage(value);
          if (!parsed.ok || (parsed.value.type !== 'paxos' && parsed.value.type !== 'paxos.batch')) {
            this.reject(
              conn,
              parsed.ok ? new UnknownTypeError({ type: String(type), expected: [] }) : parsed.error,
              null,
            );
            return;
          }
          const env = parsed.value;
          if (!this.authorized(conn, 'paxos')) return;
          if (conn.kind !== 'peer' || conn.peerId !== env.from) {
            this.ctx.metrics.peerDropped.inc({ reason: 'not-from-this-peer' });
            return;
          }
          if (env.type === 'paxos') this.deliverPaxos(env.from, env.partition, env.msg);
          else {
            for (const m of env.msgs) this.deliverPaxos(env.from, m.partition, m.msg);
            // Coalesced heartbeats become paxos messages again, checked like the others.
            for (const b of env.beats ?? []) {
              const m = fromBeat(b);
              this.deliverPaxos(env.from, m.partition, m.msg);
            }
          }
          return;
        }
        case 'auth.hello': {
          // A peer with a token dialled a server without one (a handshake would have consumed it).
          this.reject(
            conn,
            new UnauthenticatedError({ reason: `the server at ${this.ctx.advertised} has no cluster token` }),
            null,
          );
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

  /** Bounds every round, index and length of a peer's paxos message before a replica sees it. */
  private deliverPaxos(from: NodeId, partition: number, msg: unknown): void {
    const problem = this.deps.checkPaxosMessage(from, msg);
    if (problem !== null) {
      this.ctx.metrics.peerDropped.inc({ reason: problem });
      return;
    }
    this.deps.groups.deliver(partition, from, msg);
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
      // A forwarded request was checked at the server its client connected to.
      const checked = forwarded ? request : await this.deps.access.authorize(conn.principal, request);
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
      await this.deps.access.authorize(conn.principal, request);
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
      await access.authorize(conn.principal, request);
      conn.socket.send(await access.manage(request));
    } catch (e) {
      this.ctx.metrics.accessDenied.inc({ code: e instanceof PaxkvError ? e.code : 'INTERNAL' });
      conn.socket.send(errorMessage(e, request.id));
    }
  }
}
