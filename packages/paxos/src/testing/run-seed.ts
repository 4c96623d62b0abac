/**
 * One randomized simulation run: faults, client load, healing, a liveness check, convergence.
 * @module
 */
import type { PaxosConfig } from '../config.js';
import { DEFAULT_PAXOS_CONFIG } from '../config.js';
import { Nemesis, type NemesisOptions, type NemesisStats } from './nemesis.js';
import { PaxosCluster } from './paxos-cluster.js';
import { buildScenario, type ScenarioName } from './scenarios.js';
import { type SimStats, SimulationError } from './simulator.js';

/**
 * Batch bounds of the simulations: 8 entries or 48 bytes of `harnessEntryBytes` (4-6 of the
 * harness's commands), so that leaders cut batches by count and by size, and a follower catching up
 * receives many consecutive `Accept`s.
 */
export const SIM_BATCHING: Readonly<Partial<PaxosConfig>> = Object.freeze({
  maxBatchSize: 8,
  maxBatchBytes: 48,
});

/** Options of {@link runSeed}. */
export interface SeedRunOptions {
  /** Number of replicas. Default `3`. */
  readonly replicas?: number;
  /** Ticks with faults and client load. Default `300`. */
  readonly faultTicks?: number;
  /** Chance per tick that a client proposes at a random replica. Default `0.3`. */
  readonly proposeProbability?: number;
  /** Chance per tick that a client issues a read-index at the leader. Default `0.05`. */
  readonly readProbability?: number;
  /**
   * Where reads go: `leader` (default) the replica with the highest ballot that leads; `any-leader` a
   * random replica that believes it leads, a deposed leader that has not noticed included (the replica
   * a stale read would come from).
   */
  readonly readAt?: 'leader' | 'any-leader';
  /** Chance per tick that a random replica compacts its log. Default `0.01`. */
  readonly compactProbability?: number;
  /** Replica config. Default: {@link DEFAULT_PAXOS_CONFIG} with {@link SIM_BATCHING} (small batches). */
  readonly config?: Partial<PaxosConfig>;
  /** Per-replica config overrides (mutation tests). */
  readonly configOf?: (pid: number) => Partial<PaxosConfig> | undefined;
  /** Fault probabilities and durations. */
  readonly nemesis?: NemesisOptions;
  /** Largest message delay in ticks. Default `2`. */
  readonly maxDelay?: number;
  /** Chance that a message is duplicated right after itself on its link. Default `0.005`. */
  readonly duplicateProbability?: number;
  /** Chance that a message is lost without a session break (non-FIFO!). Default `0`. */
  readonly lossProbability?: number;
  /**
   * Liveness bound: after healing, a leader must be elected and a proposal decided at every replica
   * within this many ticks. Default `4 * electionTimeoutTicks`.
   */
  readonly livenessBound?: number;
  /** Ticks to wait for all replicas to converge after the liveness check. Default `200`. */
  readonly convergeTicks?: number;
  /**
   * Replicas (a minority, chosen at random) that stay crashed when the faults heal: liveness and
   * convergence are then required of the others. Default `0`.
   */
  readonly permanentlyDown?: number;
}

/** The outcome of one run. */
export interface SeedRunResult {
  readonly seed: number;
  readonly replicas: number;
  /** Entries decided (the length of the chosen log). */
  readonly decided: number;
  /** Distinct leader ballots that reached the accept phase. */
  readonly leaderChanges: number;
  /** Faults injected by the nemesis. */
  readonly faults: number;
  readonly faultDetail: NemesisStats;
  /** Ticks from healing to a proposal decided at every replica (`-1` if it never happened). */
  readonly recoveryTicks: number;
  /** Invariant violations and liveness failures (empty when the run is clean). */
  readonly violations: readonly string[];
  readonly network: Readonly<SimStats>;
}

/**
 * Runs one seeded simulation: `faultTicks` ticks of random faults with client proposals, reads and
 * compactions; then every fault heals and every crashed replica restarts; then a proposal must be
 * decided at every replica within `livenessBound` ticks; then all replicas must converge on the same
 * decided log. Safety is checked after every event. Never throws: failures are in `violations`.
 */
export function runSeed(seed: number, opts: SeedRunOptions = {}): SeedRunResult {
  const replicas = opts.replicas ?? 3;
  const config: Partial<PaxosConfig> = { ...SIM_BATCHING, ...(opts.config ?? {}) };
  const electionTimeout = config.electionTimeoutTicks ?? DEFAULT_PAXOS_CONFIG.electionTimeoutTicks;
  const bound = opts.livenessBound ?? 4 * electionTimeout;
  const cluster = new PaxosCluster({
    seed,
    replicas,
    config,
    ...(opts.configOf ? { configOf: opts.configOf } : {}),
    network: {
      maxDelay: opts.maxDelay ?? 2,
      duplicateProbability: opts.duplicateProbability ?? 0.005,
      lossProbability: opts.lossProbability ?? 0,
    },
  });
  const sim = cluster.sim;
  const rng = sim.rng;
  const nemesis = new Nemesis(sim, () => cluster.leader()?.pid, opts.nemesis ?? {});
  const violations: string[] = [];
  let recoveryTicks = -1;
  let seq = 0;
  let token = 0;
  try {
    const faultTicks = opts.faultTicks ?? 300;
    const pP = opts.proposeProbability ?? 0.3;
    const rP = opts.readProbability ?? 0.05;
    const cP = opts.compactProbability ?? 0.01;
    for (let t = 0; t < faultTicks; t++) {
      nemesis.step();
      if (rng.chance(pP)) {
        const pid = rng.pick(cluster.ids);
        const k = 1 + rng.int(3);
        for (let i = 0; i < k; i++) cluster.propose(pid, `s${seed}-c${seq++}`);
      }
      if (rng.chance(rP)) {
        if (opts.readAt === 'any-leader') {
          const leaders = cluster.live().filter((r) => r.role === 'leader' && r.phase === 'accept');
          if (leaders.length > 0) cluster.readIndex(rng.pick(leaders).pid, token++);
        } else {
          const l = cluster.leader();
          if (l) cluster.readIndex(l.pid, token++);
        }
      }
      if (rng.chance(cP)) cluster.compact(rng.pick(cluster.ids));
      sim.step();
    }
    nemesis.healAll();
    const down = Math.min(opts.permanentlyDown ?? 0, Math.floor((replicas - 1) / 2));
    for (const pid of rng.shuffle(cluster.ids).slice(0, down)) sim.crash(pid);
    const live = cluster.ids.filter((p) => sim.isUp(p));
    // Liveness: a proposal made after healing is decided at every replica within the bound.
    const marker = `s${seed}-after-heal`;
    const start = sim.now;
    let markerAt = -1;
    while (sim.now - start <= bound) {
      if (markerAt < 0) {
        markerAt = cluster.checker.chosen.indexOf(marker);
        if (markerAt < 0 && (sim.now - start) % 5 === 0) cluster.propose(rng.pick(live), marker);
      }
      if (markerAt >= 0 && cluster.live().every((r) => r.decidedIndex > markerAt)) {
        recoveryTicks = sim.now - start;
        break;
      }
      sim.step();
    }
    if (recoveryTicks < 0) {
      violations.push(
        `liveness: no proposal decided at every live replica within ${bound} ticks after healing`,
      );
    } else if (cluster.runUntilConverged(opts.convergeTicks ?? 200) < 0) {
      violations.push('convergence: replicas did not decide the same log after healing');
    }
  } catch (err) {
    violations.push(err instanceof SimulationError ? err.message : `seed ${seed}: ${String(err)}`);
  }
  return {
    seed,
    replicas,
    decided: cluster.checker.chosenLength,
    leaderChanges: cluster.leaderChanges,
    faults: nemesis.total,
    faultDetail: nemesis.stats,
    recoveryTicks,
    violations,
    network: { ...sim.stats },
  };
}

/** Options of {@link runPartitionScenario}. */
export interface ScenarioRunOptions {
  readonly replicas?: number;
  readonly config?: Partial<PaxosConfig>;
  /** Largest message delay in ticks. Default `1`. */
  readonly maxDelay?: number;
  /** Ticks allowed for recovery. Default `4 * electionTimeoutTicks`. */
  readonly bound?: number;
}

/** The outcome of {@link runPartitionScenario}. */
export interface ScenarioRunResult {
  readonly scenario: ScenarioName;
  readonly seed: number;
  /** The leader before the partition. */
  readonly oldLeader: number;
  /** The leader that decided the proposal, if any. */
  readonly newLeader: number | undefined;
  /** Replicas allowed to lead under the partition. */
  readonly eligible: readonly number[];
  /** Ticks from the partition to a proposal decided (`-1` if not within the bound). */
  readonly ticks: number;
  readonly bound: number;
}

/**
 * Liveness under partial connectivity: elects a leader, applies the named scenario around it
 * (OmniPaxos paper: quorum-loss, constrained election, chained; or a full partition), and measures
 * the ticks until a proposal made at an eligible (quorum-connected) replica is decided. Safety is
 * checked throughout; a violation throws a `SimulationError`.
 */
export function runPartitionScenario(
  scenario: ScenarioName,
  seed: number,
  opts: ScenarioRunOptions = {},
): ScenarioRunResult {
  const config = opts.config ?? {};
  const bound = opts.bound ?? 4 * (config.electionTimeoutTicks ?? DEFAULT_PAXOS_CONFIG.electionTimeoutTicks);
  const cluster = new PaxosCluster({
    seed,
    replicas: opts.replicas ?? 3,
    config,
    network: { maxDelay: opts.maxDelay ?? 1 },
  });
  const sim = cluster.sim;
  if (sim.runUntil(() => cluster.leader() !== undefined, 1000) < 0) {
    throw new SimulationError(seed, sim.now, new Error('no leader before the partition'));
  }
  const oldLeader = (cluster.leader() as { pid: number }).pid;
  for (let i = 0; i < 5; i++) cluster.propose(oldLeader, `before-${i}`);
  sim.run(10);
  const sc = buildScenario(scenario, cluster.ids, oldLeader);
  sim.setConnectivity(sc.connectivity);
  const start = sim.now;
  const marker = `s${seed}-${scenario}`;
  let ticks = -1;
  while (sim.now - start <= bound) {
    if ((sim.now - start) % 5 === 0) cluster.propose(sim.rng.pick(sc.eligible), marker);
    sim.step();
    if (cluster.checker.chosen.includes(marker)) {
      ticks = sim.now - start;
      break;
    }
  }
  const l = cluster.leader();
  return { scenario, seed, oldLeader, newLeader: l?.pid, eligible: sc.eligible, ticks, bound };
}
