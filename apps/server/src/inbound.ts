/**
 * Inbound connections on the server's one TCP port. Clients, peers and bootstrap members all dial it;
 * the first message tells them apart (`peer.hello` makes a peer, `checkin`/`heartbeat` a member, a
 * request a client). This is the boundary: every message is validated here, once, against its schema
 * and size limits, then handed on: client requests to the {@link RequestPath}, paxos envelopes to the
 * {@link GroupHost}, bootstrap traffic to the {@link BootstrapRole}. Bad input is answered with an
 * `error` (and counted), never thrown.
 */
import type { Socket } from 'node:net';
import {
  type ClientRequest,
  errorMessage,
  type NodeId,
  PaxkvError,
  parseBootstrapReply,
  parseBootstrapRequest,
  parseClientRequest,
  parsePeerMessage,
  requestIdOf,
  UnavailableError,
  UnknownTypeError,
} from '@paxkv/common';
import type { BootstrapRole } from './bootstrap-role.js';
import type { ServerContext } from './context.js';
import { FramedSocket } from './framed-socket.js';
import type { GroupHost } from './group-lifecycle.js';
import type { PaxosMessageCheck } from './group-port.js';
import type { RequestPath } from './request-path.js';

type ConnKind = 'unknown' | 'client' | 'peer' | 'member';

interface InboundConn {
  readonly socket: FramedSocket;
  kind: ConnKind;
  peerId: NodeId | null;
  inflight: number;
}

/** What {@link InboundConnections} hands messages to. */
export interface InboundDeps {
  readonly requests: RequestPath;
  readonly groups: GroupHost;
  readonly bootstrap: BootstrapRole;
  readonly checkPaxosMessage: PaxosMessageCheck;
}

/** See the module comment. */
export class InboundConnections {
  private readonly open = new Set<InboundConn>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: InboundDeps,
  ) {}

  /** Takes over a freshly accepted socket. */
  accept(socket: Socket): void {
    const ctx = this.ctx;
    if (ctx.stopping) {
      socket.destroy();
      return;
    }
    const conn: InboundConn = {
      kind: 'unknown',
      peerId: null,
      inflight: 0,
      socket: undefined as unknown as FramedSocket,
    };
    (conn as { socket: FramedSocket }).socket = new FramedSocket(
      socket,
      { maxFrameBytes: ctx.config.maxFrameBytes },
      {
        onMessage: (v) => this.dispatch(conn, v),
        onFrameError: (error) => {
          ctx.metrics.badInput.inc({ code: error.code });
          conn.socket.send(errorMessage(error, null));
        },
        onClose: () => {
          this.open.delete(conn);
          ctx.metrics.connections.dec();
          this.deps.bootstrap.channelClosed(conn.socket);
        },
      },
    );
    this.open.add(conn);
    ctx.metrics.connections.inc();
  }

  /** Ends every open connection (graceful: queued replies are flushed). */
  closeAll(): void {
    for (const c of this.open) c.socket.end('server stopping');
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
      switch (type) {
        case 'kv':
        case 'lookup':
        case 'status': {
          const parsed = conn.kind === 'peer' ? parsePeerMessage(value) : parseClientRequest(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          if (conn.kind === 'unknown') conn.kind = 'client';
          void this.handleClient(conn, parsed.value as ClientRequest);
          return;
        }
        case 'checkin':
        case 'heartbeat': {
          const parsed = parseBootstrapRequest(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          if (!this.deps.bootstrap.handleRequest(conn.socket, parsed.value)) {
            this.reject(
              conn,
              new UnavailableError({
                reason: `this server is not the bootstrap server; check in with ${this.ctx.config.join} instead`,
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
          conn.kind = 'peer';
          conn.peerId = parsed.value.from;
          return;
        }
        case 'paxos': {
          const parsed = parsePeerMessage(value);
          if (!parsed.ok || parsed.value.type !== 'paxos') {
            this.reject(
              conn,
              parsed.ok ? new UnknownTypeError({ type: 'paxos', expected: [] }) : parsed.error,
              null,
            );
            return;
          }
          const env = parsed.value;
          if (conn.kind !== 'peer' || conn.peerId !== env.from) {
            this.ctx.metrics.peerDropped.inc({ reason: 'not-from-this-peer' });
            return;
          }
          // Bound every round, index and length before it can reach a replica's state or its WAL.
          const problem = this.deps.checkPaxosMessage(env.from, env.msg);
          if (problem !== null) {
            this.ctx.metrics.peerDropped.inc({ reason: problem });
            return;
          }
          this.deps.groups.deliver(env.partition, env.from, env.msg);
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
        { err: (e as Error).message, remote: conn.socket.remote },
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
      reply = await this.deps.requests.execute(request, { forwarded: conn.kind === 'peer' });
    } finally {
      conn.inflight -= 1;
    }
    conn.socket.send(reply);
  }
}
