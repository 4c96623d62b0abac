/**
 * Leadership rebalancing, the member side. The metadata leader evens out the preferred leaders (the
 * first replica of each group in the table, `planLeaderBalance` of `@paxkv/bootstrap`); every server
 * then asks its replicas that are preferred but do not lead to take over, gently: one group at a time
 * per server, once it has been up for `--replace-after`, only once no replica move has been in flight
 * and no member draining for {@link QUIET_HEARTBEATS} (a drain or a heal moves one group after another:
 * a transfer between two moves would add a leader change to each), only where the current leader is alive and this
 * replica is in its group's current configuration and not cut off, waiting for the transfer to finish
 * (or give up) and a pause before the next one. A transfer is an ordinary election (the preferred
 * replica's ballot is raised above the leader's): safe like any leader change, and brief.
 */
import type { ClusterMetadata, NodeId } from '@paxkv/common';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';

/** Heartbeats a transfer may take before the next group is tried. */
const TRANSFER_HEARTBEATS = 20;
/** Heartbeats between two transfers of one server. */
const PAUSE_HEARTBEATS = 4;
/** Heartbeats without a move in flight or a member draining before leaderships are taken over. */
export const QUIET_HEARTBEATS = 20;

/**
 * Test-only mutation switches (`skip`: also `PAXKV_UNSAFE_NO_LEADER_BALANCE=1`): a server never takes
 * over the leadership of the groups it is the preferred leader of, so leaderships stay wherever
 * elections put them. Never set outside tests.
 */
export const unsafeLeaderBalance = { skip: process.env.PAXKV_UNSAFE_NO_LEADER_BALANCE === '1' };

/** What {@link LeaderBalancer} needs. */
export interface LeaderBalancerDeps {
  readonly groups: GroupHost;
  /** How long a member has been suspected (0 when it is not). */
  readonly suspectedForMs: (node: NodeId) => number;
}

/** See the module comment. */
export class LeaderBalancer {
  private pending: { partition: number; until: number } | null = null;
  private pauseUntil = Number.NEGATIVE_INFINITY;
  /** When a move in flight or a draining member was last seen. */
  private busyAt = Number.NEGATIVE_INFINITY;
  private readonly startedAt: number;

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: LeaderBalancerDeps,
  ) {
    this.startedAt = ctx.now();
  }

  /** Runs every heartbeat (see the module comment). */
  heartbeat(m: ClusterMetadata): void {
    const me = this.ctx.nodeId;
    if (me === null) return;
    const now = this.ctx.now();
    const beat = this.ctx.config.heartbeatMs;
    const p = this.pending;
    if (p) {
      const g = this.deps.groups.get(p.partition);
      if (g?.role !== 'leader' && now < p.until) return;
      this.pending = null;
      this.pauseUntil = now + PAUSE_HEARTBEATS * beat;
      if (g?.role === 'leader') {
        this.ctx.log.info({ partition: p.partition }, `partition ${p.partition}: leadership moved here`);
      }
    }
    // Like a server that receives replicas, a server takes leaderships over only once it has been up
    // for `--replace-after`: one that just came back (or flaps) leaves the leaders where they are.
    if (m.moving.length > 0 || m.draining.length > 0) this.busyAt = now;
    if (now < this.pauseUntil || now - this.busyAt < QUIET_HEARTBEATS * beat) return;
    if (unsafeLeaderBalance.skip) return;
    if (now - this.startedAt < this.ctx.config.replaceAfter * 1000) return;
    for (const entry of m.table.groups) {
      if (entry.replicas[0] !== me) continue;
      const g = this.deps.groups.get(entry.partition);
      if (!g?.transferLeadership || g.role !== 'follower' || g.isolated) continue;
      const leader = g.leader;
      if (leader === null || leader === me || this.deps.suspectedForMs(leader) > 0) continue;
      if (!g.configuration?.replicas.includes(me)) continue;
      if (!g.transferLeadership()) continue;
      this.ctx.metrics.leadershipTransfers.inc({ partition: String(entry.partition) });
      this.ctx.log.info(
        { partition: entry.partition, from: leader },
        `partition ${entry.partition}: taking over leadership from node ${leader} (preferred leader)`,
      );
      this.pending = { partition: entry.partition, until: now + TRANSFER_HEARTBEATS * beat };
      return;
    }
  }
}
