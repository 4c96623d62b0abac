/**
 * The outgoing links of one server to its peers, and requests forwarded over them.
 *
 * One self-reconnecting link per peer carries this server's paxos messages and the requests it forwards
 * to a group leader; the peer's replies to forwarded requests come back on the same link and are matched
 * to the waiting request by a link-local id. A link that breaks fails every request forwarded over it
 * (their outcome is unknown: see {@link ForwardOutcome}).
 */
import type { ClientRequest, LookupTable, NodeId, ServerResponse } from '@paxkv/common';
import { parseServerResponse } from '@paxkv/common';
import type { ServerContext } from './context.js';
import { Link } from './link.js';

/** Outcome of forwarding one request: the reply, or why there is none. */
export type ForwardOutcome =
  | { readonly kind: 'reply'; readonly reply: ServerResponse }
  /** Never left this server (no link, link down): retrying is always safe. */
  | { readonly kind: 'not-sent' }
  /** Sent, but no reply came (timeout, or the link broke): the outcome is unknown. */
  | { readonly kind: 'lost' };

interface PendingForward {
  readonly target: NodeId;
  readonly resolve: (outcome: ForwardOutcome) => void;
  readonly timer: NodeJS.Timeout;
}

/** What {@link PeerLinks} needs from the rest of the server. */
export interface PeerLinksDeps {
  /** The address of a node (from the lookup table or the bootstrap coordinator). */
  readonly addressOf: (node: NodeId) => string | undefined;
  /** A link to `node` was (re-)established: the groups shared with it must re-synchronise. */
  readonly onPeerConnected: (node: NodeId) => void;
}

/** See the module comment. */
export class PeerLinks {
  private readonly links = new Map<NodeId, Link>();
  private readonly pending = new Map<number, PendingForward>();
  private nextForwardId = 1;

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: PeerLinksDeps,
  ) {}

  /** The link to `node`, dialled on first use; undefined for this server itself or an unknown node. */
  link(node: NodeId): Link | undefined {
    const existing = this.links.get(node);
    if (existing) return existing;
    if (node === this.ctx.nodeId || this.ctx.stopping) return undefined;
    const address = this.deps.addressOf(node);
    if (!address) return undefined;
    const link = new Link(address, {
      maxFrameBytes: this.ctx.config.maxFrameBytes,
      hello: () => ({ type: 'peer.hello', from: this.ctx.nodeId }),
      onConnected: () => this.deps.onPeerConnected(node),
      onDisconnected: () => this.failForwards(node),
      onMessage: (v) => this.onForwardReply(v),
    });
    this.links.set(node, link);
    return link;
  }

  /** Sends `message` to `node` (best effort: dropped while the link is down). */
  send(node: NodeId, message: unknown): void {
    this.link(node)?.send(message);
  }

  /** A new table may move nodes: re-dial the links whose address changed. */
  updateAddresses(table: LookupTable): void {
    for (const n of table.nodes) this.links.get(n.id)?.setAddress(n.address);
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
      this.pending.set(id, { target, resolve: resolveOutcome, timer });
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

  /** The link to `target` broke: requests forwarded over it will get no reply. */
  private failForwards(target: NodeId): void {
    for (const [id, p] of this.pending) {
      if (p.target !== target) continue;
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
