/**
 * The reconfiguration harness: a universe of replicas running {@link ReconfigurablePaxos} under the
 * {@link Simulator}, with membership changes racing crashes, partitions and leader changes, and the
 * cross-configuration safety checker.
 * @module
 */
import type { NodeId } from '../ballot.js';
import type { PaxosConfig } from '../config.js';
import { DEFAULT_PAXOS_CONFIG } from '../config.js';
import { NoLeaderError, NotLeaderError, OverloadedError, StoppedError } from '../errors.js';
import {
  type ConfigRecord,
  type HeldConfig,
  type ReconfigMessage,
  ReconfigurablePaxos,
} from '../reconfiguration.js';
import type { LogEntry } from '../stop-sign.js';
import { CheckedStorage } from './checked-storage.js';
import { Nemesis, type NemesisStats } from './nemesis.js';
import { HashApp, harnessEntryBytes, InvariantChecker } from './paxos-cluster.js';
import { type SeedRunOptions, SIM_BATCHING } from './run-seed.js';
import { type SimNode, type SimStats, SimulationError, Simulator } from './simulator.js';

type Msg = ReconfigMessage<string>;

/** Options of {@link ReconfigCluster}. */
export interface ReconfigClusterOptions {
  readonly seed: number;
  /** Number of servers that exist (ids `1..universe`). Default `6`. */
  readonly universe?: number;
  /** The first configuration: replicas `1..initial`. Default `3`. */
  readonly initial?: number;
  /** Config of every replica. */
  readonly config?: Partial<PaxosConfig>;
  /** Per-replica config overrides (mutation tests). */
  readonly configOf?: (pid: NodeId) => Partial<PaxosConfig> | undefined;
  /** Largest message delay. Default `2`. */
  readonly maxDelay?: number;
  /** Chance a message is duplicated on its link. Default `0.005`. */
  readonly duplicateProbability?: number;
  /** Chance a message is lost without a session break (non-FIFO: tests the resend paths). Default `0`. */
  readonly lossProbability?: number;
}

/** One server: its reconfigurable replica, one app per configuration stream and the merged app. */
class ReconfigNode implements SimNode<Msg> {
  /** The app fed by the merged log (what a real host applies). */
  readonly merged = new HashApp();
  private readonly apps = new Map<number, HashApp>();
  replica!: ReconfigurablePaxos<string>;
  constructor(private readonly onMessage: (message: Msg) => void) {}
  appOf(config: number): HashApp {
    let a = this.apps.get(config);
    if (!a) {
      a = new HashApp();
      this.apps.set(config, a);
    }
    return a;
  }
  handle(from: NodeId, message: Msg): void {
    this.onMessage(message);
    this.replica.handle(from, message);
  }
  tick(): void {
    this.replica.tick();
  }
  drainOutbox() {
    return this.replica.drainOutbox();
  }
  reconnected(peer: NodeId): void {
    this.replica.reconnected(peer);
  }
  disconnected(peer: NodeId): void {
    this.replica.disconnected(peer);
  }
}

/** Counters of membership changes. */
export interface ReconfigStats {
  /** Stop-signs proposed (some are lost with their leader, or refused while another is in progress). */
  proposed: number;
  /** Configurations started by a replica that did not hold the previous one (state transfers). */
  joins: number;
  /** Configurations a replica started from its own log. */
  selfStarts: number;
  /** Old configurations dropped by a replica. */
  retired: number;
  /**
   * `JoinState` messages delivered to a replica that held the configuration before the one they start:
   * a whole state sent where its own log would do once the stop-sign is decided (waste, not an error).
   */
  joinStatesToHolders: number;
}

/**
 * A universe of servers, some of which form the group's current configuration, each running
 * {@link ReconfigurablePaxos} over {@link CheckedStorage} (one per configuration it holds, kept across
 * crashes as a disk would be). The {@link InvariantChecker} sees every configuration's decided stream
 * of every replica (agreement across configurations, nothing decided after a stop-sign, a
 * configuration starts only from its decided stop-sign) and every merged stream.
 */
export class ReconfigCluster {
  readonly sim: Simulator<Msg>;
  readonly ids: readonly NodeId[];
  readonly checker = new InvariantChecker();
  readonly stats: ReconfigStats = {
    proposed: 0,
    joins: 0,
    selfStarts: 0,
    retired: 0,
    joinStatesToHolders: 0,
  };
  /** Each server's held configurations (its disk). */
  readonly disks = new Map<NodeId, Map<number, HeldConfig<string>>>();
  /** Each server's persisted `minConfigId` (raised when it retires a configuration). */
  readonly minConfigIds = new Map<NodeId, number>();
  /** The first configuration's replicas. */
  readonly initial: readonly NodeId[];
  private readonly nodes = new Map<NodeId, ReconfigNode>();
  private readonly pendingStarts: { pid: NodeId; record: ConfigRecord }[] = [];

  constructor(opts: ReconfigClusterOptions) {
    const universe = opts.universe ?? 6;
    this.ids = Array.from({ length: universe }, (_, i) => i + 1);
    this.initial = this.ids.slice(0, opts.initial ?? 3);
    const first: ConfigRecord = { configId: 0, members: this.initial, base: 0 };
    for (const pid of this.ids) {
      const disk = new Map<number, HeldConfig<string>>();
      if (this.initial.includes(pid)) disk.set(0, { record: first, storage: new CheckedStorage(pid) });
      this.disks.set(pid, disk);
    }
    this.sim = new Simulator<Msg>({
      seed: opts.seed,
      nodeIds: this.ids,
      maxDelay: opts.maxDelay ?? 2,
      duplicateProbability: opts.duplicateProbability ?? 0.005,
      lossProbability: opts.lossProbability ?? 0,
      factory: (pid) => {
        const disk = this.disks.get(pid) as Map<number, HeldConfig<string>>;
        const node = new ReconfigNode((m) => {
          if (m.type === 'JoinState' && disk.has(m.config - 1)) this.stats.joinStatesToHolders++;
        });
        this.nodes.set(pid, node);
        node.replica = new ReconfigurablePaxos<string>({
          pid,
          configs: [...disk.values()],
          minConfigId: this.minConfigIds.get(pid) ?? 0,
          config: { ...(opts.config ?? {}), ...(opts.configOf?.(pid) ?? {}) },
          entryBytes: harnessEntryBytes,
          createStorage: (record) => {
            const storage = new CheckedStorage<LogEntry<string>>(pid);
            disk.set(record.configId, { record, storage });
            return storage;
          },
          onConfigDecided: (config, items) => this.checker.onDecided(pid, node.appOf(config), items, config),
          onConfigStart: (record) => {
            const held = [...disk.keys()].some((c) => c < record.configId && c === record.configId - 1);
            if (held) this.stats.selfStarts++;
            else this.stats.joins++;
            // Checked once this event's decided items are drained (the stop-sign may be decided by it).
            this.pendingStarts.push({ pid, record });
            if (node.replica !== undefined) this.checkStarts();
          },
        });
        return node;
      },
    });
    this.sim.onEvent((e) => {
      if (e.kind === 'deliver') this.observe(e.to);
      else if (e.kind === 'tick' || e.kind === 'restart' || e.kind === 'crash') this.observe(e.pid);
      else this.observe(e.a);
    });
  }

  /** The live replica of `pid`, or `undefined` while crashed. */
  replica(pid: NodeId): ReconfigurablePaxos<string> | undefined {
    return this.sim.isUp(pid) ? this.nodes.get(pid)?.replica : undefined;
  }

  /** The live replica that leads the highest configuration in the accept phase, if any. */
  leader(): ReconfigurablePaxos<string> | undefined {
    let best: ReconfigurablePaxos<string> | undefined;
    for (const pid of this.ids) {
      const r = this.replica(pid);
      if (r?.role !== 'leader' || r.phase !== 'accept') continue;
      if (!best || r.configId > best.configId) best = r;
    }
    return best;
  }

  /** The configuration the chosen log ends in: the last decided stop-sign's, or the first. */
  finalConfig(): { configId: number; members: readonly NodeId[] } {
    const chosen = this.checker.chosen;
    for (let i = chosen.length - 1; i >= 0; i--) {
      const e = chosen[i] as string;
      if (e.startsWith('\u0000stop->c')) {
        const configId = Number(e.slice('\u0000stop->c'.length, e.indexOf('{')));
        const members = e
          .slice(e.indexOf('{') + 1, -1)
          .split(',')
          .map(Number);
        return { configId, members };
      }
    }
    return { configId: 0, members: this.initial };
  }

  private run<R>(pid: NodeId, fn: (r: ReconfigurablePaxos<string>) => R): R | false {
    const r = this.replica(pid);
    if (!r) return false;
    try {
      // Observed right away: an input may decide (a one-replica configuration decides on append).
      return this.sim.withNode(pid, () => {
        const out = fn(r);
        this.observe(pid);
        return out;
      }) as R;
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      if (
        cause instanceof NoLeaderError ||
        cause instanceof NotLeaderError ||
        cause instanceof OverloadedError ||
        cause instanceof StoppedError
      )
        return false;
      throw err;
    }
  }

  /** Proposes `command` at `pid`; `false` if it is down, knows no leader or its configuration stops. */
  propose(pid: NodeId, command: string): boolean {
    return this.run(pid, (r) => r.propose(command)) !== false;
  }

  /** Proposes a move of the group to `members` at `pid`; `false` if refused. */
  reconfigure(pid: NodeId, members: readonly NodeId[]): boolean {
    const ok = this.run(pid, (r) => r.reconfigure(members)) !== false;
    if (ok) this.stats.proposed++;
    return ok;
  }

  /** Compacts `pid` at what its merged app applied. */
  compact(pid: NodeId): void {
    const node = this.nodes.get(pid);
    if (!node || !this.sim.isUp(pid)) return;
    this.run(pid, (r) => r.compact(node.merged.applied, node.merged.snapshot()));
  }

  /** Drops, at `pid`, every configuration it may retire (and deletes it from its disk). */
  retireOld(pid: NodeId): void {
    const r = this.replica(pid);
    if (!r) return;
    for (const c of r.configurations()) {
      if (r.canRetire(c.configId)) {
        const min = this.sim.withNode(pid, () => {
          const m = r.retire(c.configId);
          this.observe(pid);
          return m;
        }) as number;
        this.minConfigIds.set(pid, min);
        this.disks.get(pid)?.delete(c.configId);
        this.stats.retired++;
      }
    }
  }

  /**
   * Whether every replica of the final configuration is up, runs it, has decided every chosen
   * entry in it, and applied them all through its merged log.
   */
  converged(): boolean {
    const fin = this.finalConfig();
    const target = this.checker.chosenLength;
    for (const pid of fin.members) {
      const r = this.replica(pid);
      const node = this.nodes.get(pid);
      if (!r || !node || r.configId !== fin.configId) return false;
      if (r.decidedIndex !== target || node.merged.applied !== target) return false;
    }
    return true;
  }

  private observe(pid: NodeId): void {
    const node = this.nodes.get(pid);
    if (!node || !this.sim.isUp(pid)) return;
    const items = node.replica.drainDecided();
    // The merged log is checked too: one sequence, agreeing with the chosen log.
    this.checker.onDecided(pid, node.merged, items, null);
    node.replica.drainReads();
    this.checkStarts();
  }

  /**
   * Checks pending configuration starts (at once when a replica starts one; during a restart, once
   * the replica exists) against everything decided anywhere so far.
   */
  private checkStarts(): void {
    if (this.pendingStarts.length === 0) return;
    for (const p of this.ids) if (this.sim.isUp(p)) this.drain(p);
    for (const s of this.pendingStarts.splice(0))
      this.checker.onStart(s.pid, s.record.configId, s.record.base);
  }

  private drain(pid: NodeId): void {
    const node = this.nodes.get(pid);
    if (node?.replica === undefined) return;
    this.checker.onDecided(pid, node.merged, node.replica.drainDecided(), null);
  }
}

/**
 * Options of {@link runReconfigSeed}. The fields shared with {@link SeedRunOptions} mean the same and
 * have the same defaults.
 */
export interface ReconfigSeedOptions
  extends Pick<
    SeedRunOptions,
    | 'faultTicks'
    | 'proposeProbability'
    | 'config'
    | 'configOf'
    | 'nemesis'
    | 'lossProbability'
    | 'duplicateProbability'
  > {
  /** Servers that exist. Default `6`. */
  readonly universe?: number;
  /** Replicas of the first configuration. Default `3`. */
  readonly initial?: number;
  /** Chance per tick of a membership change at the current leader. Default `0.03`. */
  readonly reconfigProbability?: number;
  /** Chance per tick that a random server drops the configurations it may retire. Default `0.02`. */
  readonly retireProbability?: number;
  /** Chance per tick of a compaction at a random server. Default `0.02`. */
  readonly compactProbability?: number;
  /** Largest configuration size. Default `5`. */
  readonly maxMembers?: number;
  /** Ticks after healing for a proposal to be decided and the final configuration to converge. Default `10 * electionTimeoutTicks`. */
  readonly livenessBound?: number;
  /** Turn the early-start check off (to show the other invariants catch an early start). Default `true`. */
  readonly checkStarts?: boolean;
}

/** The outcome of {@link runReconfigSeed}. */
export interface ReconfigSeedResult {
  readonly seed: number;
  readonly decided: number;
  /** Configurations decided (stop-signs in the chosen log). */
  readonly configurations: number;
  readonly reconfig: ReconfigStats;
  readonly faults: number;
  readonly faultDetail: NemesisStats;
  /** Ticks from healing to a proposal decided and the final configuration converged (`-1`: never). */
  readonly recoveryTicks: number;
  readonly violations: readonly string[];
  readonly network: Readonly<SimStats>;
}

/** Picks the next membership: add, remove, replace one replica, or a new replica set of any size. */
function nextMembers(
  rng: Simulator<Msg>['rng'],
  universe: readonly NodeId[],
  cur: readonly NodeId[],
  maxMembers: number,
): NodeId[] {
  const outside = universe.filter((p) => !cur.includes(p));
  const kind = rng.int(4);
  if (kind === 0 && outside.length > 0 && cur.length < maxMembers) return [...cur, rng.pick(outside)];
  if (kind === 1 && cur.length > 1) {
    const drop = rng.pick(cur);
    return cur.filter((p) => p !== drop);
  }
  if (kind === 2 && outside.length > 0) {
    const drop = rng.pick(cur);
    return [...cur.filter((p) => p !== drop), rng.pick(outside)];
  }
  const size = 1 + rng.int(Math.min(maxMembers, universe.length));
  return rng.shuffle(universe).slice(0, size);
}

/**
 * One seeded run: `faultTicks` ticks of crashes, partitions, session breaks, client proposals,
 * compactions and membership changes (add, remove, replace, any new replica set) issued at whoever
 * leads; old configurations are retired at random. Then every fault heals; a proposal must be
 * decided and every replica of the final configuration must hold the whole chosen log within
 * `livenessBound` ticks. Safety is checked after every event. Never throws.
 */
export function runReconfigSeed(seed: number, opts: ReconfigSeedOptions = {}): ReconfigSeedResult {
  const config: Partial<PaxosConfig> = { ...SIM_BATCHING, ...(opts.config ?? {}) };
  const cluster = new ReconfigCluster({
    seed,
    ...(opts.universe !== undefined ? { universe: opts.universe } : {}),
    ...(opts.initial !== undefined ? { initial: opts.initial } : {}),
    config,
    ...(opts.configOf ? { configOf: opts.configOf } : {}),
    ...(opts.lossProbability !== undefined ? { lossProbability: opts.lossProbability } : {}),
    ...(opts.duplicateProbability !== undefined ? { duplicateProbability: opts.duplicateProbability } : {}),
  });
  cluster.checker.checkStarts = opts.checkStarts ?? true;
  const sim = cluster.sim;
  const rng = sim.rng;
  const nemesis = new Nemesis(sim, () => cluster.leader()?.pid, opts.nemesis ?? {});
  const electionTimeout = config.electionTimeoutTicks ?? DEFAULT_PAXOS_CONFIG.electionTimeoutTicks;
  const bound = opts.livenessBound ?? 10 * electionTimeout;
  const maxMembers = opts.maxMembers ?? 5;
  const violations: string[] = [];
  let recoveryTicks = -1;
  let seq = 0;
  try {
    const faultTicks = opts.faultTicks ?? 300;
    const pP = opts.proposeProbability ?? 0.3;
    const rcP = opts.reconfigProbability ?? 0.03;
    const retP = opts.retireProbability ?? 0.02;
    const cP = opts.compactProbability ?? 0.02;
    for (let t = 0; t < faultTicks; t++) {
      nemesis.step();
      if (rng.chance(pP)) {
        const pid = rng.pick(cluster.ids);
        const k = 1 + rng.int(3);
        for (let i = 0; i < k; i++) cluster.propose(pid, `s${seed}-c${seq++}`);
      }
      if (rng.chance(rcP)) {
        const l = cluster.leader();
        if (l) cluster.reconfigure(l.pid, nextMembers(rng, cluster.ids, l.members, maxMembers));
      }
      if (rng.chance(retP)) cluster.retireOld(rng.pick(cluster.ids));
      if (rng.chance(cP)) cluster.compact(rng.pick(cluster.ids));
      sim.step();
    }
    nemesis.healAll();
    const marker = `s${seed}-after-heal`;
    const start = sim.now;
    while (sim.now - start <= bound) {
      const decided = cluster.checker.chosen.includes(marker);
      if (decided && cluster.converged()) {
        recoveryTicks = sim.now - start;
        break;
      }
      if (!decided && (sim.now - start) % 5 === 0)
        cluster.propose(rng.pick(cluster.finalConfig().members), marker);
      sim.step();
    }
    if (recoveryTicks < 0) {
      const fin = cluster.finalConfig();
      const state = fin.members
        .map((p) => {
          const r = cluster.replica(p);
          return `${p}:c${r?.configId}/d${r?.decidedIndex}`;
        })
        .join(' ');
      violations.push(
        `seed ${seed}: liveness: configuration ${fin.configId} {${fin.members.join(',')}} did not decide a proposal and converge within ${bound} ticks after healing (chosen ${cluster.checker.chosenLength}; ${state})`,
      );
    }
  } catch (err) {
    violations.push(err instanceof SimulationError ? err.message : `seed ${seed}: ${String(err)}`);
  }
  return {
    seed,
    decided: cluster.checker.chosenLength,
    configurations: cluster.checker.chosen.filter((e) => e.startsWith('\u0000stop->c')).length,
    reconfig: { ...cluster.stats },
    faults: nemesis.total,
    faultDetail: nemesis.stats,
    recoveryTicks,
    violations,
    network: { ...sim.stats },
  };
}
