/**
 * The failure detector of the membership layer: every server keeps a link to every member (see
 * `peers.ts`); a member whose link has been down for longer than {@link MemberWatch.suspectAfterMs} is
 * suspected. The watch also knows since when a member has been up without a break (this server's link
 * to it connected, and the member itself connected to this server under its id), so that only a member
 * that stayed reachable receives replicas.
 */
import type { ClusterMetadata, NodeId } from '@paxkv/common';
import type { ServerContext } from './context.js';
import type { PeerLinks } from './peers.js';

/** See the module comment. */
export class MemberWatch {
  /** Per member: when its link was last seen up (ctx clock). */
  private readonly lastSeen = new Map<NodeId, number>();
  /** Per member: since when its link has been up without a break (ctx clock); absent while down. */
  private readonly upSince = new Map<NodeId, number>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly peers: PeerLinks,
    /** Whether the member itself is connected to this server (see {@link detect}). */
    private readonly identified: (node: NodeId) => boolean,
  ) {}

  /** A member is suspected after its link has been down this long: 6 heartbeats or 3 link liveness periods. */
  get suspectAfterMs(): number {
    const c = this.ctx.config;
    return Math.max(c.heartbeatMs * 6, c.linkLivenessMs * 3);
  }

  /** Looks at every member's link (runs every heartbeat); dials the members not linked yet. */
  detect(m: ClusterMetadata): void {
    const now = this.ctx.now();
    for (const n of m.table.nodes) {
      if (n.id === this.ctx.nodeId) continue;
      const link = this.peers.link(n.id);
      // Up (to receive replicas) only while the member itself, running with its id, is connected to
      // this server too: a process at its address that never took the id (a check-in whose answer was
      // lost) accepts this server's link but never runs a replica.
      if (!link?.connected || !this.identified(n.id)) this.upSince.delete(n.id);
      else if (!this.upSince.has(n.id)) this.upSince.set(n.id, now);
      if (link?.connected || !this.lastSeen.has(n.id)) this.lastSeen.set(n.id, now);
    }
  }

  /** How long member `node` has been suspected (0 when it is not). */
  suspectedForMs(node: NodeId): number {
    if (node === this.ctx.nodeId) return 0;
    const seen = this.lastSeen.get(node);
    if (seen === undefined) return 0;
    const silent = this.ctx.now() - seen;
    return silent > this.suspectAfterMs ? silent : 0;
  }

  /** How long member `node`'s link has been up without a break (this server: forever; down: -1). */
  upForMs(node: NodeId): number {
    if (node === this.ctx.nodeId) return Number.POSITIVE_INFINITY;
    const since = this.upSince.get(node);
    return since === undefined ? -1 : this.ctx.now() - since;
  }
}
