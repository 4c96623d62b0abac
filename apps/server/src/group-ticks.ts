/**
 * The server's timer and its groups (see `GroupHost.tick`): when a new group gets its first tick
 * ({@link TickRounds}), and what is recorded about each group after its tick ({@link GroupObserver}:
 * leader changes, since when it is isolated).
 */
import type { NodeId } from '@paxkv/common';
import { DEFAULT_PAXOS_CONFIG } from '@paxkv/paxos';
import type { ServerContext } from './context.js';
import type { ReplicaGroupPort } from './group-port.js';

/**
 * Which groups get the current tick. A new group starts ticking on the tick after a multiple of the
 * BLE round (`heartbeatTicks`), so that its rounds end on the same ticks as every other group's: their
 * heartbeats then leave in the same turn and are coalesced (BLE keeps its rounds on that schedule).
 * The wait is at most one round.
 */
export class TickRounds {
  /** Timer ticks so far. */
  private ticks = 0;
  /** Groups that got their first tick. */
  private readonly ticking = new WeakSet<ReplicaGroupPort>();

  /** Counts one timer tick; call before asking {@link TickRounds.due} for this tick's groups. */
  next(): void {
    this.ticks++;
  }

  /** Whether `g` gets this tick. */
  due(g: ReplicaGroupPort): boolean {
    if (this.ticking.has(g)) return true;
    const round = DEFAULT_PAXOS_CONFIG.heartbeatTicks;
    if (this.ticks % round !== 1 % round) return false;
    this.ticking.add(g);
    return true;
  }
}

/**
 * Per group, after each tick: leader changes (metric and debug line), since when it is isolated, and
 * who waits for its leader or role to change ({@link GroupObserver.changeOrTimeout}).
 */
export class GroupObserver {
  private readonly lastLeader = new Map<number, NodeId | null>();
  private readonly lastRole = new Map<number, ReplicaGroupPort['role']>();
  /** Per partition: the callbacks of the requests waiting for its leader or role to change. */
  private readonly waiters = new Map<number, Set<() => void>>();
  private readonly isolatedAt = new Map<number, number>();

  constructor(private readonly ctx: ServerContext) {}

  /** Since when (ctx clock, ms) the local replica of `partition` has been isolated, if it is. */
  isolatedSince(partition: number): number | undefined {
    return this.isolatedAt.get(partition);
  }

  /** Records `g`'s state after its tick. */
  observe(g: ReplicaGroupPort): void {
    const { log, metrics } = this.ctx;
    if (!g.isolated) this.isolatedAt.delete(g.partition);
    else if (!this.isolatedAt.has(g.partition)) {
      this.isolatedAt.set(g.partition, this.ctx.now());
      log.warn(
        { partition: g.partition },
        `partition ${g.partition}: cannot reach a majority of its replicas`,
      );
    }
    const leader = g.leader;
    const before = this.lastLeader.get(g.partition);
    let changed = false;
    if (before !== leader) {
      if (before !== undefined) metrics.leaderChanges.inc({ partition: String(g.partition) });
      this.lastLeader.set(g.partition, leader);
      log.debug({ partition: g.partition, leader }, 'leader changed');
      changed = true;
    }
    const role = g.role;
    if (this.lastRole.get(g.partition) !== role) {
      this.lastRole.set(g.partition, role);
      changed = true;
    }
    if (changed) this.wake(g.partition);
  }

  /**
   * Resolves when the local replica of `partition` is next seen (after a tick) with another leader or
   * role, or after `ms`, whichever comes first. A request that found no usable leader retries then:
   * at once when an election ends, instead of at the end of its backoff (up to 200 ms later).
   */
  changeOrTimeout(partition: number, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.waiters.get(partition);
      if (set === undefined) {
        set = new Set();
        this.waiters.set(partition, set);
      }
      const waiting = set;
      const done = (): void => {
        clearTimeout(timer);
        waiting.delete(done);
        if (waiting.size === 0 && this.waiters.get(partition) === waiting) this.waiters.delete(partition);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiting.add(done);
    });
  }

  /** Requests waiting on `partition` (tests: nothing is left behind). */
  waiting(partition: number): number {
    return this.waiters.get(partition)?.size ?? 0;
  }

  private wake(partition: number): void {
    const set = this.waiters.get(partition);
    if (set === undefined) return;
    for (const done of [...set]) done();
  }

  /** Forgets `partition` (its local replica was closed). */
  forget(partition: number): void {
    this.lastLeader.delete(partition);
    this.lastRole.delete(partition);
    this.isolatedAt.delete(partition);
    this.wake(partition);
  }
}
