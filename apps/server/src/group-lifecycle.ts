/**
 * The replica groups one server hosts, from birth to close: a lookup table names the partitions whose
 * replica set includes this server; each gets a group (built, and recovered from disk, by the
 * {@link GroupFactory}). Replicas are also opened as joiners (a move here), closed when they leave their
 * group, and rejoin when their state cannot be read. The one timer drives every group's `tick()`
 * through {@link GroupHost.tick}; leadership changes and per-group gauges are recorded here.
 */
import { join } from 'node:path';
import type { LookupTable, NodeId } from '@paxkv/common';
import type { ServerContext } from './context.js';
import {
  type GroupFactory,
  type GroupStatusRow,
  type ReplicaGroupPort,
  UnreadableGroupStateError,
} from './group-port.js';
import { GroupObserver, TickRounds } from './group-ticks.js';
import type { PeerLinks } from './peers.js';

/** What {@link GroupHost} needs from the rest of the server. */
export interface GroupHostDeps {
  readonly groupFactory: GroupFactory;
  readonly peers: PeerLinks;
  /** The address of a node, for leader hints. */
  readonly addressOf: (node: NodeId) => string | undefined;
  /** Writes the identity file (node id, table, spares) after the table changed (in the background). */
  readonly persistIdentity: () => void;
  /**
   * A replica group could not be opened (unreadable WAL or snapshot, unwritable dir). `main.ts` exits with
   * code 1: a server that cannot open its data must not half-run. Default: logged only.
   */
  readonly onGroupOpenFailed?: (partition: number, error: Error) => void;
}

/** See the module comment. */
export class GroupHost {
  private readonly groups = new Map<number, ReplicaGroupPort>();
  /** Per partition being opened here: settles (never rejects) when its open ended; the entry is gone by then. */
  private readonly openings = new Map<number, Promise<void>>();
  private readonly rounds = new TickRounds();
  private readonly observer: GroupObserver;
  /** Partitions whose replica left its group (the configuration without it): a stale table does not reopen it. */
  private readonly left = new Map<number, number>();
  /** Replicas being closed, by partition (a new replica of the partition waits for it). */
  private readonly closing = new Map<number, Promise<void>>();
  /** Partitions whose local replica could not read its state at start: why (they wait to rejoin). */
  private readonly unreadable = new Map<number, string>();
  /** Groups outside the lookup table (the metadata group), with their replicas. */
  private readonly extra = new Map<number, { group: ReplicaGroupPort; replicas: readonly NodeId[] }>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: GroupHostDeps,
  ) {
    this.observer = new GroupObserver(ctx);
  }

  /** The local replica of `partition`, if this server hosts it (and it is open). */
  get(partition: number): ReplicaGroupPort | undefined {
    return this.groups.get(partition) ?? this.extra.get(partition)?.group;
  }

  /**
   * Hosts a group that is not in the lookup table (the metadata group, see `metadata-group.ts`): it is
   * ticked, gets its peers' messages and reconnections, and is closed with the others; it is not in
   * the status rows or the health count.
   */
  hostExtra(group: ReplicaGroupPort, replicas: readonly NodeId[]): void {
    this.extra.set(group.partition, { group, replicas });
  }

  /** Stops hosting the extra group of `partition` (it left its group, see `metadata-replica.ts`). */
  dropExtra(partition: number): void {
    this.extra.delete(partition);
  }

  /** Since when (ctx clock, ms) the local replica of `partition` has been isolated, if it is. */
  isolatedSince(partition: number): number | undefined {
    return this.observer.isolatedSince(partition);
  }

  /** Resolves when the local replica of `partition` changes leader or role, or after `ms` (GroupObserver). */
  changeOrTimeout(partition: number, ms: number): Promise<void> {
    return this.observer.changeOrTimeout(partition, ms);
  }

  /**
   * While this server's replica of `partition` is being opened (a restarted server replays its groups
   * one at a time, see `kvstore-groups.ts`; a move or a rejoin opens one too): a promise that settles
   * when that open ended, whether the group opened or not. Undefined when none is being opened.
   */
  opening(partition: number): Promise<void> | undefined {
    return this.openings.get(partition);
  }

  /**
   * A client waits for `partition`, whose replica is queued to be opened: open it next (after the open
   * in progress) instead of in table order. Returns whether its open moved ahead.
   */
  prioritize(partition: number): boolean {
    const moved = this.openings.has(partition) && this.deps.groupFactory.prioritize?.(partition) === true;
    if (moved) this.ctx.log.debug({ partition }, `partition ${partition} opens next: a request waits for it`);
    return moved;
  }

  /** Number of open groups. */
  get size(): number {
    return this.groups.size;
  }

  /** The open groups, by partition. */
  sorted(): ReplicaGroupPort[] {
    return [...this.groups.values()].sort((a, b) => a.partition - b.partition);
  }

  /** The groups' rows of the status report. */
  statusRows(): GroupStatusRow[] {
    return this.sorted().map((g) => ({
      partition: g.partition,
      leader: g.leader,
      role: g.role,
      decidedIndex: g.decidedIndex,
      appliedIndex: g.appliedIndex,
      ...(g.ballot ? { ballot: { n: g.ballot.n, pid: g.ballot.pid } } : {}),
      ...(g.configuration
        ? { configId: g.configuration.configId, members: [...g.configuration.replicas] }
        : {}),
    }));
  }

  /** Adopts `table` (if newer) in the background; failures are logged. */
  adoptTableInBackground(table: LookupTable): void {
    this.adoptTable(table).catch((e: unknown) =>
      this.ctx.log.error(
        { version: table.version, err: (e as Error).message },
        'cannot adopt the lookup table',
      ),
    );
  }

  /**
   * Adopts `table` if it is newer than the one in use: persists it, re-dials moved peers, and opens a
   * group for every partition whose replicas include this server and that is not open yet.
   */
  async adoptTable(table: LookupTable): Promise<void> {
    const ctx = this.ctx;
    if (ctx.table && table.version <= ctx.table.version) return;
    ctx.table = table;
    this.deps.persistIdentity();
    ctx.log.info(
      { version: table.version, nodes: table.nodes.length },
      `adopted lookup table v${table.version}`,
    );
    this.deps.peers.updateAddresses(table);
    const me = ctx.nodeId;
    if (me === null) return;
    const creations: Promise<void>[] = [];
    for (const g of table.groups) {
      if (
        !g.replicas.includes(me) ||
        this.groups.has(g.partition) ||
        this.openings.has(g.partition) ||
        this.unreadable.has(g.partition) ||
        (g.config ?? 0) <= (this.left.get(g.partition) ?? -1)
      )
        continue;
      // A group past its first configuration is joined by state transfer, never created afresh.
      creations.push(this.createGroup(g.partition, g.replicas, me, (g.config ?? 0) > 0));
    }
    await Promise.all(creations);
  }

  /**
   * Opens this server's replica of `partition` as a joiner (a replica is being moved here, see
   * `metadata-group.ts`), unless it is open already. `replicas`: the group's replicas after the move.
   */
  async openJoiner(partition: number, replicas: readonly NodeId[]): Promise<void> {
    const me = this.ctx.nodeId;
    if (me === null || this.groups.has(partition) || this.openings.has(partition)) return;
    if (this.unreadable.has(partition)) return;
    this.left.delete(partition);
    await this.createGroup(partition, replicas, me, true);
  }

  /**
   * Closes the joiners (replicas that never started a configuration) of partitions this server is no
   * longer meant to hold: not in `keep` (the table's groups that list it, and the moves to it). A move
   * that was abandoned leaves such a joiner behind, idle.
   */
  closeStrayJoiners(keep: ReadonlySet<number>): void {
    for (const g of [...this.groups.values()]) {
      if (keep.has(g.partition) || g.configuration !== null || this.openings.has(g.partition)) continue;
      this.ctx.log.info(
        { partition: g.partition },
        `partition ${g.partition}: the move to this server was dropped; closing its joining replica`,
      );
      this.closeGroup(g);
    }
  }

  /** Partitions whose local replica could not read its state at start (waiting to rejoin), ascending. */
  unreadablePartitions(): number[] {
    return [...this.unreadable.keys()].sort((a, b) => a - b);
  }

  /**
   * Rejoins the group of `partition` as a new replica after its state could not be read: discards the
   * state and opens a joiner that never joins a configuration below `minConfigId` (see
   * `GroupSpec.rejoin`). No-op unless the partition is waiting to rejoin.
   */
  async rejoin(partition: number, replicas: readonly NodeId[], minConfigId: number): Promise<void> {
    const me = this.ctx.nodeId;
    if (me === null || !this.unreadable.has(partition) || this.openings.has(partition)) return;
    await this.createGroup(partition, replicas, me, true, minConfigId);
  }

  /** {@link GroupHost.openGroup}, announced in {@link GroupHost.opening} until it ends. */
  private createGroup(...args: Parameters<GroupHost['openGroup']>): Promise<void> {
    const partition = args[0];
    const open = this.openGroup(...args);
    const ended = open.then(
      () => {
        if (this.openings.get(partition) === ended) this.openings.delete(partition);
      },
      () => {
        if (this.openings.get(partition) === ended) this.openings.delete(partition);
      },
    );
    this.openings.set(partition, ended);
    return open;
  }

  private async openGroup(
    partition: number,
    replicas: readonly NodeId[],
    me: NodeId,
    joining: boolean,
    rejoinFrom?: number,
  ): Promise<void> {
    const ctx = this.ctx;
    try {
      // A replica of this partition closing here finishes first (it releases its storage).
      await this.closing.get(partition);
      const group = await this.deps.groupFactory({
        partition,
        pid: me,
        peers: replicas.filter((r) => r !== me),
        preferredLeader: replicas[0] === me,
        join: joining,
        ...(rejoinFrom !== undefined ? { rejoin: { minConfigId: rejoinFrom } } : {}),
        onConfigChange: (event) => {
          if (event.kind !== 'removed') return;
          this.left.set(partition, event.configuration.configId);
          // Not from inside the group's own step: close it on the next turn.
          setImmediate(() => {
            const g = this.groups.get(partition);
            if (g) this.closeRemoved(g);
          });
        },
        dataDir: join(ctx.config.dataDir, `partition-${partition}`),
        fsync: ctx.config.fsync,
        send: (to, message) => this.deps.peers.sendPaxos(to, partition, message),
        addressOf: this.deps.addressOf,
        onFlush: (seconds) => ctx.metrics.fsyncLatency.observe(seconds),
      });
      if (ctx.stopping) {
        await group.close();
        return;
      }
      this.groups.set(partition, group);
      if (rejoinFrom !== undefined) {
        this.unreadable.delete(partition);
        ctx.metrics.replicaRejoins.inc({ partition: String(partition) });
      }
      for (const peer of replicas) if (peer !== me) this.deps.peers.link(peer);
    } catch (e) {
      if (e instanceof UnreadableGroupStateError) {
        if (!this.unreadable.has(partition))
          ctx.metrics.unreadableReplicas.inc({ partition: String(partition) });
        this.unreadable.set(partition, e.problem.message);
        ctx.log.error(
          { partition, err: e.problem.message },
          `partition ${partition}: this replica's stored state cannot be read (${e.problem.message}); reported: the replica is removed from its group, its state discarded, and it rejoins as a new replica that catches up from its peers`,
        );
        return;
      }
      ctx.log.error(
        { partition, err: (e as Error).message },
        `cannot open the replica group of partition ${partition}`,
      );
      this.deps.onGroupOpenFailed?.(partition, e as Error);
    }
  }

  /** The session to `node` was re-established: every group shared with it re-synchronises. */
  peerConnected(node: NodeId): void {
    for (const g of this.groupsSharedWith(node)) g.reconnected(node);
  }

  /** The session to `node` broke: every group led by it starts its election at once. */
  peerDisconnected(node: NodeId): void {
    for (const g of this.groupsSharedWith(node)) g.disconnected(node);
  }

  private groupsSharedWith(node: NodeId): ReplicaGroupPort[] {
    const out: ReplicaGroupPort[] = [];
    for (const x of this.extra.values()) {
      if ((x.group.configuration?.replicas ?? x.replicas).includes(node)) out.push(x.group);
    }
    for (const g of this.groups.values()) {
      const members =
        g.configuration?.replicas ??
        this.ctx.table?.groups.find((x) => x.partition === g.partition)?.replicas;
      if (members?.includes(node)) out.push(g);
    }
    return out;
  }

  /** A paxos message from peer `from` for `partition` that passed `checkPaxosMessage` (see `PaxosMessageCheck`). */
  deliver(partition: number, from: NodeId, message: unknown): void {
    this.get(partition)?.handle(from, message);
  }

  /** One tick for every group (see {@link TickRounds}); records leader changes and isolation. */
  tick(): void {
    this.rounds.next();
    for (const x of this.extra.values()) this.tickOne(x.group);
    for (const g of this.groups.values()) if (this.tickOne(g)) this.observer.observe(g);
  }

  /** Ticks `g` if it is due; whether it was. */
  private tickOne(g: ReplicaGroupPort): boolean {
    if (!this.rounds.due(g)) return false;
    try {
      g.tick();
    } catch (e) {
      this.ctx.log.error({ partition: g.partition, err: (e as Error).message }, 'tick failed');
    }
    return true;
  }

  /**
   * `g` is out of its group (its replica was moved to another server) and retired its data: close it.
   * Its partition's requests are then forwarded like those of any partition this server does not host.
   */
  private closeRemoved(g: ReplicaGroupPort): void {
    this.ctx.log.info(
      { partition: g.partition },
      `partition ${g.partition}: this replica left the group; closed`,
    );
    this.closeGroup(g);
  }

  private closeGroup(g: ReplicaGroupPort): void {
    this.groups.delete(g.partition);
    this.observer.forget(g.partition);
    const closed = g
      .close()
      .catch((e: unknown) =>
        this.ctx.log.error({ partition: g.partition, err: (e as Error).message }, 'close failed'),
      )
      .finally(() => {
        if (this.closing.get(g.partition) === closed) this.closing.delete(g.partition);
      });
    this.closing.set(g.partition, closed);
  }

  /** Refreshes the per-group gauges (role, log size, decided index). */
  recordGauges(): void {
    const { metrics } = this.ctx;
    for (const g of this.groups.values()) {
      const p = String(g.partition);
      metrics.isLeader.set({ partition: p }, g.role === 'leader' ? 1 : 0);
      metrics.logSize.set({ partition: p }, g.logLength);
      metrics.decidedIndex.set({ partition: p }, g.decidedIndex);
    }
  }

  /** Number of groups this server should host under the table in use. */
  expectedCount(): number {
    const me = this.ctx.nodeId;
    return this.ctx.table?.groups.filter((g) => me !== null && g.replicas.includes(me)).length ?? 0;
  }

  /** Waits for groups being created, then flushes and closes every group (fsync). */
  async close(): Promise<void> {
    while (this.openings.size > 0) await Promise.all(this.openings.values());
    await Promise.all(
      [...this.groups.values(), ...[...this.extra.values()].map((x) => x.group)].map((g) =>
        g
          .close()
          .catch((e: unknown) =>
            this.ctx.log.error({ partition: g.partition, err: (e as Error).message }, 'close failed'),
          ),
      ),
    );
    this.groups.clear();
    this.extra.clear();
  }
}
