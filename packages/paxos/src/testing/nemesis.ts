/**
 * Random fault injection over a {@link Simulator}.
 * @module
 */
import type { NodeId } from '../ballot.js';
import { buildScenario, type ScenarioName } from './scenarios.js';
import type { Simulator } from './simulator.js';

/** Probabilities (per tick) and durations (in ticks) of the faults a {@link Nemesis} injects. */
export interface NemesisOptions {
  /** Chance per tick to break one random session. Default `0.02`. */
  readonly linkBreakProbability?: number;
  /** Chance per tick to apply a partition scenario (when none is active). Default `0.01`. */
  readonly partitionProbability?: number;
  /** Chance per tick to crash one random live node. Default `0.01`. */
  readonly crashProbability?: number;
  /** Most nodes down at once; default: all of them (a whole-cluster crash is allowed: disks survive). */
  readonly maxCrashed?: number;
  /** A broken session heals after a duration in this range. Default `[1, 30]`. */
  readonly linkDownTicks?: readonly [number, number];
  /** A partition heals after a duration in this range. Default `[10, 80]`. */
  readonly partitionTicks?: readonly [number, number];
  /** A crashed node restarts after a duration in this range. Default `[1, 60]`. */
  readonly crashTicks?: readonly [number, number];
  /** Scenarios to draw partitions from. Default: all four. */
  readonly scenarios?: readonly ScenarioName[];
}

/** Counters of injected faults. */
export interface NemesisStats {
  linkBreaks: number;
  partitions: Record<ScenarioName, number>;
  crashes: number;
}

/**
 * Injects random faults into a simulation, each healing after a random duration: session breaks,
 * partition scenarios (full, quorum-loss, constrained election, chained; the last three placed
 * around the current leader), and crashes followed by restarts. Call {@link step} once per tick and
 * {@link healAll} to end every fault.
 */
export class Nemesis<M> {
  /** What was injected. */
  readonly stats: NemesisStats = {
    linkBreaks: 0,
    partitions: { full: 0, 'quorum-loss': 0, 'constrained-election': 0, chained: 0 },
    crashes: 0,
  };
  private readonly brokenUntil = new Map<string, number>();
  private partitionUntil = -1;
  private readonly crashedUntil = new Map<NodeId, number>();
  private readonly o: Required<NemesisOptions>;

  constructor(
    private readonly sim: Simulator<M>,
    /** Who leads now (scenarios are placed around it); any node if unknown. */
    private readonly leaderOf: () => NodeId | undefined,
    options: NemesisOptions = {},
  ) {
    this.o = {
      linkBreakProbability: options.linkBreakProbability ?? 0.02,
      partitionProbability: options.partitionProbability ?? 0.01,
      crashProbability: options.crashProbability ?? 0.01,
      maxCrashed: options.maxCrashed ?? sim.nodeIds.length,
      linkDownTicks: options.linkDownTicks ?? [1, 30],
      partitionTicks: options.partitionTicks ?? [10, 80],
      crashTicks: options.crashTicks ?? [1, 60],
      scenarios: options.scenarios ?? ['full', 'quorum-loss', 'constrained-election', 'chained'],
    };
  }

  /** Total faults injected. */
  get total(): number {
    const p = this.stats.partitions;
    return (
      this.stats.linkBreaks +
      this.stats.crashes +
      p.full +
      p['quorum-loss'] +
      p['constrained-election'] +
      p.chained
    );
  }

  /** Heals what is due, then maybe injects new faults. Call once per tick, before `sim.step()`. */
  step(): void {
    const sim = this.sim;
    const rng = sim.rng;
    const now = sim.now;
    for (const [k, until] of this.brokenUntil) {
      if (until <= now && this.partitionUntil < 0) {
        const [a, b] = k.split(':').map(Number) as [number, number];
        this.brokenUntil.delete(k);
        sim.connect(a, b);
      }
    }
    if (this.partitionUntil >= 0 && this.partitionUntil <= now) {
      this.partitionUntil = -1;
      this.brokenUntil.clear();
      sim.healAll();
    }
    for (const [pid, until] of this.crashedUntil) {
      if (until <= now) {
        this.crashedUntil.delete(pid);
        sim.restart(pid);
      }
    }
    const ids = sim.nodeIds;
    if (rng.chance(this.o.linkBreakProbability) && this.partitionUntil < 0) {
      const a = rng.pick(ids);
      const b = rng.pick(ids.filter((p) => p !== a));
      if (sim.isConnected(a, b)) {
        sim.disconnect(a, b);
        this.stats.linkBreaks++;
        this.brokenUntil.set(`${Math.min(a, b)}:${Math.max(a, b)}`, now + rng.range(...this.o.linkDownTicks));
      }
    }
    if (this.partitionUntil < 0 && rng.chance(this.o.partitionProbability)) {
      const name = rng.pick(this.o.scenarios);
      const leader = this.leaderOf() ?? rng.pick(ids);
      const sc = buildScenario(name, ids, leader);
      this.brokenUntil.clear();
      sim.setConnectivity(sc.connectivity);
      this.stats.partitions[name]++;
      this.partitionUntil = now + rng.range(...this.o.partitionTicks);
    }
    if (rng.chance(this.o.crashProbability) && this.crashedUntil.size < this.o.maxCrashed) {
      const up = ids.filter((p) => sim.isUp(p));
      if (up.length > 0) {
        const pid = rng.pick(up);
        sim.crash(pid);
        this.stats.crashes++;
        this.crashedUntil.set(pid, now + rng.range(...this.o.crashTicks));
      }
    }
  }

  /** Ends every fault: heals all sessions and restarts every crashed node. */
  healAll(): void {
    this.brokenUntil.clear();
    this.partitionUntil = -1;
    this.sim.healAll();
    for (const pid of this.crashedUntil.keys()) this.sim.restart(pid);
    this.crashedUntil.clear();
  }
}
