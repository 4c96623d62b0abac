/**
 * The metadata leader's replica moves: which replicas move where (`planMoves` of `@paxkv/bootstrap`:
 * members suspected for longer than `--replace-after` and draining members lose their replicas; a
 * member that stayed reachable for `--replace-after` receives them; replica counts are evened out),
 * at most `--max-moves-in-flight` at once and one started per `--move-interval-ms` (pacing), each
 * recorded in the metadata (`moving`), run as a
 * stop-sign reconfiguration of the group through a {@link GroupReconfigurer}, then recorded done with
 * the configuration id (or abandoned, and planned again later).
 */
import {
  abandonMove,
  applyMove,
  fenceRejoin,
  finishRejoin,
  movedReplicas,
  partitionsOf,
  planLeaderBalance,
  planMoves,
  preferLeader,
  sameMove,
  startMove,
} from '@paxkv/bootstrap';
import {
  BadRequestError,
  type ClusterMetadata,
  METADATA_PARTITION,
  type NodeId,
  type ReplicaMove,
  UnavailableError,
} from '@paxkv/common';
import type { ServerContext } from './context.js';
import type { GroupConfiguration, ReplicaGroupPort } from './group-port.js';
import type { MemberWatch } from './member-watch.js';
import type { MetadataChange } from './metadata-store.js';
import { confirmMove, expectedConfiguration, repairRecord, without } from './move-steps.js';
import type { RequestPath } from './request-path.js';

/**
 * Changes the replicas of one data group: the port through which the metadata leader moves a replica
 * (a stop-sign reconfiguration of that group, run by the group's leader). Resolves once the new
 * configuration runs; rejects with a typed error otherwise (the move is then abandoned and planned
 * again later).
 */
export interface GroupReconfigurer {
  /**
   * `expect`: the configuration the change replaces, as the mover read it from the metadata
   * (compare-and-set: the group refuses with `CONFIGURATION_CHANGED` when it runs another one).
   */
  reconfigure(
    partition: number,
    replicas: readonly NodeId[],
    expect: GroupConfiguration,
  ): Promise<{ readonly configId: number }>;
}

/** What {@link ReplicaMover} needs from the metadata service. */
export interface ReplicaMoverDeps {
  readonly requests: () => RequestPath;
  readonly watch: MemberWatch;
  /** Moves replicas; null: the server's own (routed to each group's leader) when groups can be reconfigured. */
  readonly reconfigurer: GroupReconfigurer | null;
  /** The newest metadata this server has seen. */
  readonly metadata: () => ClusterMetadata | null;
  /**
   * TESTING ONLY: `heldMetadata` breaks the re-read rule of `move-steps.ts`: each step of a move
   * trusts the metadata this server held when it planned (no linearizable re-read); `noRepair` never
   * repairs a metadata record that fell behind its group (`repairRecord`): every move of such a group
   * is refused forever. Default `'none'`.
   */
  readonly unsafeMoveSteps?: 'none' | 'heldMetadata' | 'noRepair';
  /** Proposes a change of the metadata on the local replica (the leader); serialised. */
  readonly change: <T extends MetadataChange>(
    group: ReplicaGroupPort,
    fn: (m: ClusterMetadata) => T,
  ) => Promise<T>;
}

/** See the module comment. */
export class ReplicaMover {
  /** Moves this leader is running. */
  private readonly running = new Set<number>();
  private lastBlockedLog = Number.NEGATIVE_INFINITY;
  /** A preferred-leader change is being proposed. */
  private balancing = false;
  /** When (ctx clock, ms) this leader last started a move (pacing: `--move-interval-ms`). */
  private lastStart = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: ReplicaMoverDeps,
  ) {}

  /**
   * Runs the reconfiguration of `partition`'s group to `members` on the group's leader: the local
   * replica when it leads, else forwarded (`group.reconfigure`) with the request path's retry policy.
   * Idempotent: members that already run resolve with the current configuration. `expect` (absent only
   * from older senders): the configuration the change must replace (compare-and-set).
   */
  async reconfigureGroup(
    partition: number,
    members: readonly NodeId[],
    expect: GroupConfiguration | undefined,
    forwarded: boolean,
  ): Promise<{ configId: number; members: NodeId[] }> {
    const metaReplicas = this.deps.metadata()?.metaReplicas;
    const c = await this.deps.requests().routeToPartition<{ configId: number; replicas: readonly NodeId[] }>({
      partition,
      ...(partition === METADATA_PARTITION && metaReplicas ? { replicas: metaReplicas } : {}),
      name: 'group.reconfigure',
      retrySafe: true,
      forwarded,
      wire: {
        type: 'group.reconfigure',
        id: 0,
        partition,
        members: [...members],
        ...(expect ? { expect: { configId: expect.configId, members: [...expect.replicas] } } : {}),
      },
      runLocal: async (group) => {
        if (!group.reconfigure) {
          throw new UnavailableError({
            reason: `partition ${partition}'s replica group cannot be reconfigured`,
          });
        }
        return group.reconfigure(members, expect);
      },
      fromReply: (reply) =>
        reply.type === 'group.reconfigure.ok'
          ? { configId: reply.configId, replicas: reply.members }
          : undefined,
    });
    return { configId: c.configId, members: [...c.replicas] };
  }

  /** The held metadata when the test-only `unsafeMoveSteps: 'heldMetadata'` is on, else null. */
  private unsafeHeld(): ClusterMetadata | null {
    return this.deps.unsafeMoveSteps === 'heldMetadata' ? this.deps.metadata() : null;
  }

  /** The reconfigurer in use: the server's own (routed to each group's leader) unless one was given. */
  private reconfigurer(group: ReplicaGroupPort): GroupReconfigurer | null {
    if (this.deps.reconfigurer) return this.deps.reconfigurer;
    // Reconfigurable groups come from a factory whose groups can be reconfigured (the metadata group's
    // replica tells); otherwise moves are planned and logged only.
    if (!group.reconfigure) return null;
    return {
      reconfigure: (partition, replicas, expect) => this.reconfigureGroup(partition, replicas, expect, false),
    };
  }

  /** Plans and starts the moves due (on the metadata leader, whose replica is `group`). */
  moveReplicas(group: ReplicaGroupPort): void {
    const m = this.deps.metadata();
    if (!m) return;
    const c = this.ctx.config;
    const watch = this.deps.watch;
    const replaceAfterMs = c.replaceAfter * 1000;
    const replace = new Set<NodeId>();
    if (replaceAfterMs > 0) {
      // A replica of the metadata group counts too (a lost server whose data replicas moved first).
      for (const n of m.table.nodes) {
        const holds = partitionsOf(m.table, n.id).length > 0 || m.metaReplicas.includes(n.id);
        if (watch.suspectedForMs(n.id) > replaceAfterMs && holds) replace.add(n.id);
      }
    }
    // Only a member reached without a break for `--replace-after` receives replicas: a listed address
    // may never answer, and a server that just joined (or flaps) may leave again at once.
    const alive = (node: NodeId) => watch.upForMs(node) >= replaceAfterMs;
    // Moves recorded by an earlier leader and not running here: run them (or drop them). A rejoin of a
    // member that is being replaced or removed is dropped: its replicas move elsewhere instead.
    for (const mv of m.moving) {
      if (this.running.has(mv.partition)) continue;
      if (mv.reason === 'rejoin' && (replace.has(mv.from) || m.draining.includes(mv.from))) {
        this.abandon(group, mv);
        continue;
      }
      this.runMove(group, mv, false);
    }
    const moves = planMoves(m, {
      alive,
      replace,
      inFlight: this.running,
      maxInFlight: c.maxMovesInFlight,
      rebalance: true,
    });
    if (moves.length === 0) {
      if (m.moving.length === 0 && this.running.size === 0) this.balanceLeaders(group, m, alive);
      return;
    }
    if (!this.reconfigurer(group)) {
      const now = this.ctx.now();
      if (now - this.lastBlockedLog > 60_000) {
        this.lastBlockedLog = now;
        this.ctx.log.warn(
          { moves },
          `replica moves are due (${moves.map((x) => `partition ${x.partition}: ${x.from} -> ${x.to} (${x.reason})`).join('; ')}) but this build cannot reconfigure a replica group yet`,
        );
      }
      return;
    }
    for (const mv of moves) {
      // Paced: at most one new move per `--move-interval-ms` (the next heartbeat tries again).
      const now = this.ctx.now();
      if (now - this.lastStart < c.moveIntervalMs) break;
      this.lastStart = now;
      this.runMove(group, mv, true);
    }
  }

  /** Records `mv` in the metadata (when `record`), reconfigures the group, then records the outcome. */
  private runMove(group: ReplicaGroupPort, mv: ReplicaMove, record: boolean): void {
    const reconfigurer = this.reconfigurer(group);
    if (!reconfigurer || this.running.has(mv.partition)) return;
    this.running.add(mv.partition);
    const log = this.ctx.log;
    const change = this.deps.change;
    if (mv.reason === 'rejoin') {
      this.runRejoin(group, mv, reconfigurer).finally(() => this.running.delete(mv.partition));
      return;
    }
    void (async () => {
      let decided = false;
      let expect: GroupConfiguration | null = null;
      try {
        // The move as recorded now, read through the metadata group (this server still leads it): the
        // configuration to replace comes from this read, never from a copy held since planning.
        const fresh = record
          ? (await change(group, (m) => ({ metadata: startMove(m, mv), changed: true }))).metadata
          : await confirmMove(change, group, mv, undefined, this.unsafeHeld());
        expect = expectedConfiguration(fresh, mv.partition);
        if (!expect)
          throw new BadRequestError({ field: 'partition', problem: `partition ${mv.partition} is gone` });
        const replicas = movedReplicas(expect.replicas, mv.from, mv.to, fresh.table);
        log.info(
          { ...mv, expect },
          `moving partition ${mv.partition}'s replica from node ${mv.from} to node ${mv.to} (${mv.reason})`,
        );
        const c = await reconfigurer.reconfigure(mv.partition, replicas, expect);
        decided = true;
        await change(group, (m) => {
          const cur = m.moving.find((x) => x.partition === mv.partition);
          if (!cur || !sameMove(cur, mv)) {
            throw new BadRequestError({
              field: 'move',
              problem: `the move of partition ${mv.partition} left the metadata while it ran; the current leader re-plans`,
            });
          }
          return { metadata: applyMove(m, mv, c.configId, replicas), changed: true };
        });
        log.info({ ...mv }, `partition ${mv.partition} now on ${replicas.join(', ')}`);
      } catch (e) {
        if (!decided && expect && (await this.repaired(group, mv, expect, e))) return;
        // The group runs the new configuration but the metadata did not record it: keep the move
        // recorded, so the next run (here or on the next leader) finds the change done (the group's
        // compare-and-set answers a change already made with its configuration) and records it.
        // Dropping it would leave the metadata behind the group, and every later move of the group
        // refused.
        log.warn(
          { ...mv, err: (e as Error).message },
          decided
            ? `move of partition ${mv.partition} ran but was not recorded; it will be recorded on the next run`
            : `move of partition ${mv.partition} failed; it will be planned again`,
        );
        if (!decided) await this.abandonNow(group, mv);
      } finally {
        this.running.delete(mv.partition);
      }
    })();
  }

  /**
   * A step of `mv` that expected `expect` failed with `e`: repairs a metadata record that fell behind
   * the group (`repairRecord`: the move is dropped, planned again). True when it did.
   */
  private repaired(group: ReplicaGroupPort, mv: ReplicaMove, expect: GroupConfiguration, e: unknown) {
    if (this.deps.unsafeMoveSteps === 'noRepair') return Promise.resolve(false);
    const warn = (fields: Record<string, unknown>, message: string) => this.ctx.log.warn(fields, message);
    return repairRecord(this.deps.change, warn, group, mv, expect, e);
  }

  /**
   * Evens out the preferred leaders (the first replica of each group) over the live servers, one group
   * per call (each server then takes over the leaderships it is preferred for: `leader-balancer.ts`).
   */
  private balanceLeaders(group: ReplicaGroupPort, m: ClusterMetadata, alive: (n: NodeId) => boolean): void {
    const next = planLeaderBalance(m, alive);
    if (!next || this.balancing) return;
    this.balancing = true;
    this.deps
      .change(group, (cur) => {
        const after =
          cur.table.version === m.table.version ? preferLeader(cur, next.partition, next.leader) : cur;
        return { metadata: after, changed: after !== cur };
      })
      .then(
        (out) => {
          if (out.changed) {
            this.ctx.log.info(
              { partition: next.partition, leader: next.leader },
              `partition ${next.partition}: preferred leader is now node ${next.leader} (leadership rebalancing)`,
            );
          }
        },
        () => {},
      )
      .finally(() => {
        this.balancing = false;
      });
  }

  /** Drops `mv` from the metadata's moves (in the background). */
  private abandon(group: ReplicaGroupPort, mv: ReplicaMove): void {
    this.running.add(mv.partition);
    this.abandonNow(group, mv).finally(() => this.running.delete(mv.partition));
  }

  private abandonNow(group: ReplicaGroupPort, mv: ReplicaMove): Promise<void> {
    return this.deps
      .change(group, (m) => {
        // Only this move: a stale mover must not drop the move another leader recorded since.
        const cur = m.moving.find((x) => x.partition === mv.partition);
        const next = cur && sameMove(cur, mv) ? abandonMove(m, mv.partition) : m;
        return { metadata: next, changed: next !== m };
      })
      .then(
        () => {},
        () => {},
      );
  }

  /**
   * Runs the rejoin of `mv.from` in `mv.partition` (its replica could not read its state): removes it
   * from the group (the configuration that decides this is the fence, recorded in the metadata), then
   * adds it back as a new replica; the member opens its replica only once it sees the fence, and joins
   * only configurations above it. A failure leaves the move recorded: it is run again later (the member
   * still needs it), unless the member is replaced or removed meanwhile.
   */
  private async runRejoin(
    group: ReplicaGroupPort,
    mv: ReplicaMove,
    reconfigurer: GroupReconfigurer,
  ): Promise<void> {
    const log = this.ctx.log;
    const change = this.deps.change;
    let expect: GroupConfiguration | null = null;
    try {
      // Each step re-reads the move through the metadata group (only while this server leads it) and
      // replaces only the configuration that read names (compare-and-set in the group).
      const fresh = await confirmMove(change, group, mv, mv.fence, this.unsafeHeld());
      const g = expectedConfiguration(fresh, mv.partition);
      if (!g) throw new BadRequestError({ field: 'partition', problem: `partition ${mv.partition} is gone` });
      const fenced = without(g.replicas, mv.from);
      let fence = mv.fence;
      if (fence === undefined) {
        log.info(
          { ...mv, expect: g },
          `partition ${mv.partition}: removing node ${mv.from}'s unreadable replica before it rejoins`,
        );
        expect = g;
        const removed = await reconfigurer.reconfigure(mv.partition, fenced, g);
        fence = removed.configId;
        const f = fence;
        await change(group, (m) => {
          const next = fenceRejoin(m, mv.partition, f);
          return { metadata: next, changed: next !== m };
        });
        // The member may pull no metadata version while the move is fenced (re-adding it takes ~0.2 s):
        // `finishRejoin` keeps the fence in the metadata's `rejoined` record for the member's token.
        await confirmMove(change, group, mv, fence, this.unsafeHeld());
      }
      expect = { configId: fence, replicas: fenced };
      const added = await reconfigurer.reconfigure(mv.partition, g.replicas, expect);
      expect = null;
      await change(group, (m) => ({
        metadata: finishRejoin(m, mv.partition, added.configId),
        changed: true,
      }));
      log.info(
        { ...mv, fence, configId: added.configId },
        `partition ${mv.partition}: node ${mv.from} rejoined as a new replica (configuration ${added.configId})`,
      );
    } catch (e) {
      if (expect && (await this.repaired(group, mv, expect, e))) return;
      log.warn(
        { ...mv, err: (e as Error).message },
        `rejoin of node ${mv.from} in partition ${mv.partition} failed; it will be run again`,
      );
    }
  }
}
