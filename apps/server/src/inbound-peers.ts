/**
 * The peer and bootstrap side of the server's inbound port (see `inbound.ts`, which owns the port and
 * the client side): `peer.hello` (a peer link, then watched by liveness), paxos envelopes and batches
 * (coalesced heartbeats expanded; every message bounded by `checkPaxosMessage` before a replica sees
 * it), check-ins and heartbeats of bootstrap members, table and member pushes, and who may send them
 * (cluster token, TLS certificates: {@link PeerTraffic.authorized}).
 * @module
 */
import {
  errorMessage,
  type FramedConnection,
  type InboundIdentity,
  type NodeId,
  type PaxkvError,
  parseBootstrapReply,
  parseBootstrapRequest,
  parsePaxosFrame,
  parsePeerMessage,
  type TransportServer,
  UnauthenticatedError,
  UnavailableError,
  UnknownTypeError,
} from '@paxkv/common';
import type { Principal } from './access-control.js';
import { BOOTSTRAP_NODE_ID, type BootstrapRole } from './bootstrap-role.js';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';
import type { PaxosMessageCheck } from './group-port.js';
import { fromBeat } from './heartbeats.js';
import type { MetadataService } from './metadata-group.js';
import { hostOf, type RateLimitedLog } from './rate-limited-log.js';
import { certificateCovers, serverCertificate } from './tls-setup.js';

/**
 * Test-only mutation (`PAXKV_UNSAFE_PEER_AUTH_OFF=1`): {@link PeerTraffic.authorized} lets every peer and
 * bootstrap message through, token and TLS notwithstanding. It exists so the hostile suites can show that
 * their availability check catches a forged Prepare that gets in; never set it.
 */
export const UNSAFE_PEER_AUTH_OFF = process.env.PAXKV_UNSAFE_PEER_AUTH_OFF === '1';

/** What an inbound connection turned out to be (from its first message). */
export type ConnKind = 'unknown' | 'client' | 'peer' | 'member';

/** One inbound connection and what is known about it. */
export interface InboundConn {
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

/** Messages only an authenticated peer may send when the cluster has a token. */
type PeerOnlyType = 'peer.hello' | 'paxos' | 'checkin' | 'heartbeat' | 'table.push' | 'members';

/** What the handshake hook proved about a connection. */
export function identityOf(result: unknown): InboundIdentity | null {
  if (typeof result !== 'object' || result === null) return null;
  const r = result as { kind?: unknown; from?: unknown };
  if (r.kind === 'peer' && (r.from === null || typeof r.from === 'number')) {
    return { kind: 'peer', from: r.from };
  }
  return r.kind === 'anonymous' ? { kind: 'anonymous' } : null;
}

/** What {@link PeerTraffic} hands messages to. */
export interface PeerTrafficDeps {
  readonly groups: GroupHost;
  readonly bootstrap: BootstrapRole;
  /** Takes check-ins once the bootstrap coordinator handed over (or on any other server). */
  readonly metadata: MetadataService;
  readonly checkPaxosMessage: PaxosMessageCheck;
  /** The address of a node (from the lookup table), to match a TLS peer's certificate. Default: none. */
  readonly addressOf?: (node: NodeId) => string | undefined;
}

/** See the module comment. */
export class PeerTraffic {
  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: PeerTrafficDeps,
    private readonly transport: TransportServer,
    private readonly rejections: RateLimitedLog,
    private readonly reject: (conn: InboundConn, error: PaxkvError, id: number | null) => void,
  ) {}

  /**
   * Handles `value` (its `type` already read) when it is peer or bootstrap traffic; returns false for
   * anything else (client requests), which the caller handles.
   */
  handle(conn: InboundConn, type: unknown, value: unknown): boolean {
    switch (type) {
      case 'checkin':
      case 'heartbeat': {
        const parsed = parseBootstrapRequest(value);
        if (!parsed.ok) {
          this.reject(conn, parsed.error, parsed.id);
          return true;
        }
        if (
          !this.authorized(
            conn,
            parsed.value.type,
            undefined,
            parsed.value.type === 'checkin' ? parsed.value.address : undefined,
          )
        )
          return true;
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
          return true;
        }
        conn.kind = 'member';
        return true;
      }
      case 'table.push':
      case 'members': {
        const parsed = parseBootstrapReply(value);
        if (!parsed.ok) {
          this.reject(conn, parsed.error, parsed.id);
          return true;
        }
        if (!this.authorized(conn, type)) return true;
        this.deps.bootstrap.applyMemberUpdate(parsed.value);
        return true;
      }
      case 'peer.hello': {
        const parsed = parsePeerMessage(value);
        if (!parsed.ok || parsed.value.type !== 'peer.hello') {
          this.reject(
            conn,
            parsed.ok ? new UnknownTypeError({ type: 'peer.hello', expected: [] }) : parsed.error,
            null,
          );
          return true;
        }
        if (!this.authorized(conn, 'peer.hello', parsed.value.from)) return true;
        if (!this.trustPeer(conn)) return true;
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
        // A peer that proved who it is (`authorized` required the token or the certificate) sends its
        // small frames unscanned (`trustedPeerFrameBytes`); without either, every frame is scanned.
        if (!UNSAFE_PEER_AUTH_OFF && (this.ctx.authRequired || this.ctx.tls !== undefined))
          conn.socket.trustPayloads(this.ctx.config.trustedPeerFrameBytes);
        return true;
      }
      case 'paxos':
      case 'paxos.batch': {
        // Checked by hand on the hot path (same rules as the schemas: see parsePaxosFrame).
        const parsed = parsePaxosFrame(value);
        if (!parsed.ok || (parsed.value.type !== 'paxos' && parsed.value.type !== 'paxos.batch')) {
          this.reject(
            conn,
            parsed.ok ? new UnknownTypeError({ type: String(type), expected: [] }) : parsed.error,
            null,
          );
          return true;
        }
        const env = parsed.value;
        if (!this.authorized(conn, 'paxos')) return true;
        if (conn.kind !== 'peer' || conn.peerId !== env.from) {
          this.ctx.metrics.peerDropped.inc({ reason: 'not-from-this-peer' });
          return true;
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
        return true;
      }
      case 'auth.hello': {
        // A peer with a token dialled a server without one (a handshake would have consumed it).
        this.reject(
          conn,
          new UnauthenticatedError({ reason: `the server at ${this.ctx.advertised} has no cluster token` }),
          null,
        );
        return true;
      }
      default:
        return false;
    }
  }

  /** Moves `conn` to the peer budget; closes it when `maxPeerConnections` are already open. */
  trustPeer(conn: InboundConn): boolean {
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
    if (UNSAFE_PEER_AUTH_OFF) return true;
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

  /** Bounds every round, index and length of a peer's paxos message before a replica sees it. */
  private deliverPaxos(from: NodeId, partition: number, msg: unknown): void {
    const problem = this.deps.checkPaxosMessage(from, msg);
    if (problem !== null) {
      this.ctx.metrics.peerDropped.inc({ reason: problem });
      return;
    }
    this.deps.groups.deliver(partition, from, msg);
  }
}
