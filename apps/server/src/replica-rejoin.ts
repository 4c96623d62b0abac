/**
 * The member side of a rejoin: a local replica that could not read its stored state at start (see
 * `UnreadableGroupStateError`) is reported to the metadata leader (`member.rejoin`), which removes it
 * from its group and records the configuration that decided the removal (the fence, see
 * `ReplicaMover`); the replica then discards its state and rejoins as a new replica, joining only
 * configurations above the fence, so it never acts on promises it lost.
 *
 * Each request carries a token the member draws per unreadable replica, once per process: the fence
 * is used only when it was taken for this token, read from the move while it runs or, once it is done,
 * from the metadata's `rejoined` record (kept after the move, so a member that pulled no metadata
 * version while the move was fenced cannot miss it). A fence of another token (an earlier rejoin, after
 * which this replica may have joined configurations above that fence) is never used.
 */
import { randomBytes } from 'node:crypto';
import type { ClusterMetadata, MemberOk, MemberRejoinRequest, NodeId } from '@paxkv/common';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';

/**
 * Test-only mutation (`PAXKV_UNSAFE_REJOIN_WITHOUT_FENCE=1`): a replica that could not read its state
 * rejoins at once, without waiting for the metadata leader to remove it from its group, and may join a
 * configuration whose promises it lost. Never set outside tests.
 */
export const UNSAFE_REJOIN_WITHOUT_FENCE = process.env.PAXKV_UNSAFE_REJOIN_WITHOUT_FENCE === '1';

/** What {@link RejoinRequester} needs. */
export interface RejoinRequesterDeps {
  readonly groups: GroupHost;
  /** Sends a `member.rejoin` to the metadata group's leader. */
  readonly route: (request: MemberRejoinRequest) => Promise<MemberOk>;
}

/** See the module comment. */
export class RejoinRequester {
  /** Per partition waiting to rejoin: when its rejoin was last asked for (ctx clock). */
  private readonly asked = new Map<number, number>();
  /** Per partition waiting to rejoin: the token of this process's request. */
  private readonly tokens = new Map<number, string>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: RejoinRequesterDeps,
  ) {}

  /**
   * Local replicas that could not read their state at start: asks the metadata leader for their rejoin
   * (`member.rejoin`, every 2 s until recorded), and rejoins once the move records its fence (the
   * configuration that removed this server from the group): only configurations above it are joined.
   */
  heartbeat(m: ClusterMetadata): void {
    const me = this.ctx.nodeId;
    if (me === null) return;
    const now = this.ctx.now();
    for (const partition of this.deps.groups.unreadablePartitions()) {
      const g = m.table.groups.find((x) => x.partition === partition);
      if (!g?.replicas.includes(me)) continue;
      const token = this.tokenOf(partition);
      const mv = m.moving.find((x) => x.partition === partition);
      const fence = fenceFor(m, partition, me, token);
      if (fence !== undefined || UNSAFE_REJOIN_WITHOUT_FENCE) {
        const from = UNSAFE_REJOIN_WITHOUT_FENCE ? 0 : (fence ?? 0) + 1;
        this.deps.groups
          .rejoin(partition, g.replicas, from)
          .catch((e: unknown) =>
            this.ctx.log.error({ partition, err: (e as Error).message }, 'cannot rejoin the group'),
          );
        continue;
      }
      const recorded = mv?.reason === 'rejoin' && mv.to === me && (mv.token ?? token) === token;
      if (recorded || now - (this.asked.get(partition) ?? -Infinity) < 2000) continue;
      this.asked.set(partition, now);
      this.deps
        .route({ type: 'member.rejoin', id: 0, partition, node: me, token })
        .catch((e: unknown) =>
          this.ctx.log.debug(
            { partition, err: (e as Error).message },
            'rejoin request not taken yet; retrying',
          ),
        );
    }
  }

  private tokenOf(partition: number): string {
    let t = this.tokens.get(partition);
    if (t === undefined) {
      t = randomBytes(12).toString('hex');
      this.tokens.set(partition, t);
    }
    return t;
  }
}

/**
 * The fence of `node`'s rejoin of `partition` for request `token` in `m`: from the move while it runs
 * (fenced), else from the finished rejoin's record; undefined when neither is there for this token. A
 * move without a token (recorded by an older metadata leader) counts as this request's.
 */
export function fenceFor(
  m: ClusterMetadata,
  partition: number,
  node: NodeId,
  token: string,
): number | undefined {
  const mv = m.moving.find((x) => x.partition === partition);
  if (mv?.reason === 'rejoin' && mv.to === node && mv.fence !== undefined && (mv.token ?? token) === token)
    return mv.fence;
  return m.rejoined?.find((r) => r.partition === partition && r.node === node && r.token === token)?.fence;
}
