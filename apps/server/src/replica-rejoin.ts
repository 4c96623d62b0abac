/**
 * The member side of a rejoin: a local replica that could not read its stored state at start (see
 * `UnreadableGroupStateError`) is reported to the metadata leader (`member.rejoin`), which removes it
 * from its group and records the configuration that decided the removal (the fence, see
 * `ReplicaMover`); the replica then discards its state and rejoins as a new replica, joining only
 * configurations above the fence, so it never acts on promises it lost.
 */
import type { ClusterMetadata, MemberOk, MemberRejoinRequest } from '@paxkv/common';
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
      const mv = m.moving.find((x) => x.partition === partition);
      if (
        (mv?.reason === 'rejoin' && mv.to === me && mv.fence !== undefined) ||
        UNSAFE_REJOIN_WITHOUT_FENCE
      ) {
        const from = UNSAFE_REJOIN_WITHOUT_FENCE ? 0 : (mv?.fence ?? 0) + 1;
        this.deps.groups
          .rejoin(partition, g.replicas, from)
          .catch((e: unknown) =>
            this.ctx.log.error({ partition, err: (e as Error).message }, 'cannot rejoin the group'),
          );
        continue;
      }
      if (mv?.reason === 'rejoin' || now - (this.asked.get(partition) ?? -Infinity) < 2000) continue;
      this.asked.set(partition, now);
      this.deps
        .route({ type: 'member.rejoin', id: 0, partition, node: me })
        .catch((e: unknown) =>
          this.ctx.log.debug(
            { partition, err: (e as Error).message },
            'rejoin request not taken yet; retrying',
          ),
        );
    }
  }
}
