/**
 * The outgoing links of one server to its peers, and requests forwarded over them.
 *
 * One self-reconnecting link per peer (`@paxkv/common`'s {@link ReconnectingConnection}) carries this
 * server's paxos messages and the requests it forwards to a group leader; the peer's replies to
 * forwarded requests come back on the same link and are matched to the waiting request by a link-local
 * id. A link that breaks fails every request forwarded over it (their outcome is unknown: see
 * {@link ForwardOutcome}). Links check liveness (see `linkLivenessMs`), send keepalives when idle,
 * redial with capped backoff, and leave from the server's advertised address.
 */
import { isIP } from 'node:net';
import {
  type ClientRequest,
  FrameTooLargeError,
  type Handshake,
  type LookupTable,
  MAX_PAXOS_BATCH,
  type NodeId,
  parseAddress,
  parseServerResponse,
  ReconnectingConnection,
  type ReconnectingConnectionOptions,
  type ServerResponse,
} from '@paxkv/common';
import type { ServerContext } from './context.js';
import { coalesce } from './heartbeats.js';

/** Outcome of forwarding one request: the reply, or why there is none. */
export type ForwardOutcome =
  | { readonly kind: 'reply'; readonly reply: ServerResponse }
  /** Never left this server (no link, link down): retrying is always safe. */
  | { readonly kind: 'not-sent' }
  /** Sent, but no reply came (timeout, or the link broke): the outcome is unknown. */
  | { readonly kind: 'lost' };

interface PendingForward {
  readonly link: ReconnectingConnection;
  readonly resolve: (outcome: ForwardOutcome) => void;
  readonly timer: NodeJS.Timeout;
}

/** Largest unsent backlog on one server-to-server connection before it is closed as stuck: 64 MiB. */
export const LINK_HIGH_WATER_MARK_BYTES = 64 * 1024 * 1024;
/** First redial delay of a server-to-server link, in ms. */
const LINK_RECONNECT_MIN_MS = 20;
/** Connect attempt timeout of a server-to-server link, in ms. */
const LINK_CONNECT_TIMEOUT_MS = 2000;

/** What {@link PeerLinks} needs from the rest of the server. */
export interface PeerLinksDeps {
  /** The address of a node (from the lookup table or the bootstrap coordinator). */
  readonly addressOf: (node: NodeId) => string | undefined;
  /** A link to `node` was (re-)established: the groups shared with it must re-synchronise. */
  readonly onPeerConnected: (node: NodeId) => void;
  /**
   * An established link to `node` broke (closed or reset by the peer, or declared dead by the liveness
   * check): the groups it leads may elect at once. Called once per broken session, not per failed redial.
   */
  readonly onPeerDisconnected: (node: NodeId) => void;
  /** Run on every new connection before it is used (peer authentication). Default: none. */
  readonly handshake?: Handshake;
}

/**
 * The transport options of every connection this server dials (peers and the bootstrap server): frame
 * limit, a bounded send queue that closes a stuck connection, liveness and keepalive (when `live`),
 * redial backoff, and the advertised host as the local address.
 */
export function linkOptions(
  ctx: ServerContext,
  live: boolean,
  handshake: Handshake | undefined,
): ReconnectingConnectionOptions {
  const c = ctx.config;
  const hp = parseAddress(ctx.advertised);
  const host = hp instanceof Error ? undefined : hp.host;
  const bindable = host !== undefined && isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::';
  return {
    maxFrameBytes: c.maxFrameBytes,
    highWaterMark: LINK_HIGH_WATER_MARK_BYTES,
    onBackpressure: 'disconnect',
    connectTimeoutMs: LINK_CONNECT_TIMEOUT_MS,
    backoff: { initialDelayMs: LINK_RECONNECT_MIN_MS, maxDelayMs: c.linkReconnectMaxMs },
    ...(live ? { livenessTimeoutMs: c.linkLivenessMs, keepaliveIntervalMs: c.linkKeepaliveMs } : {}),
    ...(bindable ? { localAddress: host } : {}),
    ...(handshake ? { handshake } : {}),
    // A server dials its peers with its own certificate (it allows client authentication) and checks
    // theirs against the cluster CA and the host it dials.
    ...(ctx.tls ? { tls: ctx.tls } : {}),
  };
}

/**
 * Sends `items` with `send` as one frame; when `send` throws `FrameTooLargeError` (a batch holding large
 * messages, e.g. the snapshots of big groups), as two halves, in order, recursively. A single item over
 * the limit goes to `onDropped` instead of being thrown: a throw out of the flush (a `setImmediate`)
 * would kill the server, while paxos resends what is not acknowledged.
 */
export function sendWithinFrameLimit<T>(
  items: readonly T[],
  send: (items: readonly T[]) => void,
  onDropped: (item: T, error: FrameTooLargeError) => void,
): void {
  try {
    send(items);
  } catch (e) {
    if (!(e instanceof FrameTooLargeError)) throw e;
    if (items.length === 1) {
      onDropped(items[0] as T, e);
      return;
    }
    const half = Math.ceil(items.length / 2);
    sendWithinFrameLimit(items.slice(0, half), send, onDropped);
    sendWithinFrameLimit(items.slice(half), send, onDropped);
  }
}

/** The paxos message type of a queued message (inside a reconfiguration envelope too), for logs. */
function messageType(msg: unknown): string {
  if (typeof msg !== 'object' || msg === null) return 'message';
  const m = msg as { type?: unknown; msg?: { type?: unknown } };
  const inner = m.type === 'Paxos' && typeof m.msg === 'object' && m.msg !== null ? m.msg.type : m.type;
  return typeof inner === 'string' ? inner.slice(0, 32) : 'message';
}

/** See the module comment. */
export class PeerLinks {
  private readonly links = new Map<NodeId, ReconnectingConnection>();
  private readonly pending = new Map<number, PendingForward>();
  private nextForwardId = 1;
  private readonly paxosOut = new Map<NodeId, Array<{ partition: number; msg: unknown }>>();
  private flushScheduled = false;

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: PeerLinksDeps,
  ) {}

  /** The link to `node`, dialled on first use; undefined for this server itself or an unknown node. */
  link(node: NodeId): ReconnectingConnection | undefined {
    const existing = this.links.get(node);
    if (existing) return existing;
    if (node === this.ctx.nodeId || this.ctx.stopping) return undefined;
    const address = this.deps.addressOf(node);
    if (!address) return undefined;
    let link: ReconnectingConnection;
    try {
      link = new ReconnectingConnection(address, linkOptions(this.ctx, true, this.deps.handshake));
    } catch (e) {
      this.ctx.log.warn({ node, address, err: (e as Error).message }, `cannot dial node ${node}`);
      return undefined;
    }
    let up = false;
    link.on('connect', () => {
      up = true;
      link.send({ type: 'peer.hello', from: this.ctx.nodeId });
      this.deps.onPeerConnected(node);
    });
    link.on('disconnect', (reason) => {
      this.failForwards(link);
      if (reason) this.ctx.log.debug({ node, err: reason.message }, `link to node ${node} down`);
      if (up && !this.ctx.stopping) {
        up = false;
        this.deps.onPeerDisconnected(node);
      }
    });
    link.on('message', (v) => this.onForwardReply(v));
    this.links.set(node, link);
    return link;
  }

  /**
   * Queues a paxos message of `partition`'s group for `node`. Everything queued for a peer in one
   * event-loop turn leaves as one frame (`paxos.batch`, or a plain `paxos` envelope when alone) at the
   * end of the turn, in the order queued: the link stays FIFO per group (BLE heartbeats, coalesced into
   * the batch's `beats`, keep their order among themselves; BLE never depends on their order relative
   * to the other paxos messages). Best effort, like `send`.
   */
  sendPaxos(node: NodeId, partition: number, msg: unknown): void {
    let queue = this.paxosOut.get(node);
    if (!queue) {
      queue = [];
      this.paxosOut.set(node, queue);
    }
    queue.push({ partition, msg });
    if (queue.length >= MAX_PAXOS_BATCH) this.flushPaxos(node);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushAllPaxos);
    }
  }

  private readonly flushAllPaxos = (): void => {
    this.flushScheduled = false;
    for (const node of [...this.paxosOut.keys()]) this.flushPaxos(node);
  };

  private flushPaxos(node: NodeId): void {
    const msgs = this.paxosOut.get(node);
    this.paxosOut.delete(node);
    if (!msgs || msgs.length === 0) return;
    const from = this.ctx.nodeId;
    if (from === null) return;
    this.ctx.metrics.paxosBatchSize.observe(msgs.length);
    this.sendPaxosFrames(node, from, msgs);
  }

  /** Sends `msgs` to `node`, split into frames under the frame limit (see {@link sendWithinFrameLimit}). */
  private sendPaxosFrames(
    node: NodeId,
    from: NodeId,
    msgs: Array<{ partition: number; msg: unknown }>,
  ): void {
    sendWithinFrameLimit(
      msgs,
      (part) => this.sendPaxosFrame(node, from, part),
      (dropped, e) => {
        this.ctx.metrics.paxosSendDropped.inc({ reason: 'frame-too-large' });
        const type = messageType(dropped.msg);
        this.ctx.log.error(
          {
            node,
            partition: dropped.partition,
            type,
            err: e.message,
            maxFrameBytes: this.ctx.config.maxFrameBytes,
          },
          `paxos ${type} of partition ${dropped.partition} to node ${node} dropped: it is larger than the frame limit ` +
            `(${this.ctx.config.maxFrameBytes} bytes), so that replica cannot catch up by snapshot; raise maxFrameBytes ` +
            'on every server (paxkv_paxos_messages_unsendable_total counts these)',
        );
      },
    );
  }

  private sendPaxosFrame(
    node: NodeId,
    from: NodeId,
    msgs: ReadonlyArray<{ partition: number; msg: unknown }>,
  ): void {
    const only = msgs.length === 1 ? msgs[0] : undefined;
    if (only) {
      this.send(node, { type: 'paxos', partition: only.partition, from, msg: only.msg });
      return;
    }
    // The heartbeats of every group travel coalesced, one tuple each (see heartbeats.ts).
    const c = coalesce(msgs);
    if (c.beats.length === 0) {
      this.send(node, { type: 'paxos.batch', from, msgs });
      return;
    }
    this.ctx.metrics.heartbeatsCoalesced.inc(c.beats.length);
    this.send(node, { type: 'paxos.batch', from, msgs: c.msgs, beats: c.beats });
  }

  /**
   * Milliseconds since `node` was last heard on this server's link to it (see
   * `ReconnectingConnection.silentForMs`); `undefined` when there is no link yet or it never connected.
   */
  silentForMs(node: NodeId): number | undefined {
    return this.links.get(node)?.silentForMs;
  }

  /** Sends `message` to `node` (best effort: dropped while the link is down). */
  send(node: NodeId, message: unknown): void {
    this.link(node)?.send(message);
  }

  /** A new table may move nodes: re-dial the links whose address changed. */
  updateAddresses(table: LookupTable): void {
    for (const n of table.nodes) {
      const link = this.links.get(n.id);
      if (!link || link.address === n.address) continue;
      this.links.delete(n.id);
      link.close();
      this.link(n.id);
    }
  }

  /**
   * Sends `request` to `target` and waits up to `timeoutMs` for its reply. Never rejects: see
   * {@link ForwardOutcome}.
   */
  forward(target: NodeId, request: ClientRequest, timeoutMs: number): Promise<ForwardOutcome> {
    const link = this.link(target);
    if (!link?.connected) return Promise.resolve({ kind: 'not-sent' });
    const id = this.nextForwardId++;
    return new Promise((resolveOutcome) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolveOutcome({ kind: 'lost' });
      }, timeoutMs);
      this.pending.set(id, { link, resolve: resolveOutcome, timer });
      const sent = link.send({ ...request, id });
      if (!sent) {
        clearTimeout(timer);
        this.pending.delete(id);
        resolveOutcome({ kind: 'not-sent' });
      }
    });
  }

  /** Fails every pending forward (outcome `lost`): the server is stopping. */
  failPending(): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ kind: 'lost' });
      this.pending.delete(id);
    }
  }

  /** Fails every pending forward and closes every link. */
  close(): void {
    this.failPending();
    for (const l of this.links.values()) l.close();
    this.links.clear();
  }

  /** `link` broke: requests forwarded over it will get no reply. */
  private failForwards(link: ReconnectingConnection): void {
    for (const [id, p] of this.pending) {
      if (p.link !== link) continue;
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.resolve({ kind: 'lost' });
    }
  }

  private onForwardReply(value: unknown): void {
    const parsed = parseServerResponse(value);
    if (!parsed.ok) return;
    const id = parsed.value.id;
    if (id === null) return;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve({ kind: 'reply', reply: parsed.value });
  }
}
