/**
 * The deterministic simulation suite: thousands of seeded runs with faults, the partial-connectivity
 * scenarios of the OmniPaxos paper with a stated liveness bound, and mutation sanity checks.
 *
 * Set PAXOS_SIM_SEEDS to run more seeds per configuration (default 1000).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_PAXOS_CONFIG } from '../config.js';
import { runPartitionScenario, runSeed, type SeedRunOptions } from './run-seed.js';
import type { ScenarioName } from './scenarios.js';

const SEEDS = Number(process.env.PAXOS_SIM_SEEDS ?? 1000);
/** The liveness bound every run is held to: 4 election timeouts (OmniPaxos paper's recovery claim). */
const BOUND = 4 * DEFAULT_PAXOS_CONFIG.electionTimeoutTicks;

function sweep(label: string, from: number, count: number, opts: SeedRunOptions): void {
  const failures: string[] = [];
  let decided = 0;
  let faults = 0;
  let maxRecovery = 0;
  for (let seed = from; seed < from + count; seed++) {
    const r = runSeed(seed, opts);
    decided += r.decided;
    faults += r.faults;
    maxRecovery = Math.max(maxRecovery, r.recoveryTicks);
    if (r.violations.length > 0) failures.push(`seed ${seed}: ${r.violations.join('; ')}`);
  }
  expect(failures, `${label}: failing seeds (replay with runSeed(seed, opts))`).toEqual([]);
  // The runs did real work: entries were decided and faults were injected.
  expect(decided / count).toBeGreaterThan(20);
  expect(faults / count).toBeGreaterThan(1);
  expect(maxRecovery).toBeLessThanOrEqual(BOUND);
}

describe(`random faults, safety after every event, liveness within ${BOUND} ticks of healing`, () => {
  it(`${SEEDS} seeds, 3 replicas`, () => sweep('3 replicas', 1, SEEDS, { replicas: 3 }));
  it(`${SEEDS} seeds, 5 replicas`, () => sweep('5 replicas', 100_001, SEEDS, { replicas: 5 }));
  it('200 seeds per size with heavy faults (crashes of any number of replicas, partitions, breaks)', () => {
    const nemesis = { crashProbability: 0.05, linkBreakProbability: 0.1, partitionProbability: 0.03 };
    sweep('heavy 3', 200_001, 200, { replicas: 3, nemesis });
    sweep('heavy 5', 300_001, 200, { replicas: 5, nemesis });
  });
  it('200 seeds per size where messages are also lost without a session break and duplicated', () => {
    const opts = { lossProbability: 0.03, duplicateProbability: 0.05 };
    sweep('lossy 3', 400_001, 200, { replicas: 3, ...opts });
    sweep('lossy 5', 500_001, 200, { replicas: 5, ...opts });
  });
});

describe(`partial connectivity (OmniPaxos paper): a quorum-connected replica leads and decides within ${BOUND} ticks`, () => {
  const scenarios: ScenarioName[] = ['quorum-loss', 'constrained-election', 'chained', 'full'];
  for (const name of scenarios) {
    for (const replicas of [3, 5]) {
      it(`${name}, ${replicas} replicas, 50 seeds`, () => {
        for (let seed = 1; seed <= 50; seed++) {
          const r = runPartitionScenario(name, seed, { replicas });
          expect(r.ticks, `seed ${seed}: no decision within ${r.bound} ticks`).toBeGreaterThanOrEqual(0);
          expect(r.ticks).toBeLessThanOrEqual(BOUND);
          expect(r.eligible).toContain(r.newLeader);
        }
      });
    }
  }
});

describe('mutation sanity: the simulator catches a broken rule', () => {
  const mutants = [
    ['acceptLowerBallot', /lower than its promise/],
    ['decideWithoutQuorum', /agreement|read index/],
  ] as const;
  for (const [mutation, pattern] of mutants) {
    it(`catches ${mutation}, and the failing seed replays identically`, () => {
      let caught: { seed: number; violation: string } | undefined;
      for (let seed = 1; seed <= 100 && !caught; seed++) {
        // Only replica 1 is broken: one faulty replica must be enough to be caught.
        const r = runSeed(seed, {
          replicas: 3,
          configOf: (pid) => (pid === 1 ? { unsafeMutation: mutation } : undefined),
        });
        if (r.violations.length > 0) caught = { seed, violation: r.violations[0] as string };
      }
      expect(caught, `${mutation} went unnoticed in 100 seeds`).toBeDefined();
      expect(caught?.violation).toMatch(pattern);
      expect(caught?.violation).toContain(`seed ${caught?.seed}`);
      const replay = runSeed(caught!.seed, {
        replicas: 3,
        configOf: (pid) => (pid === 1 ? { unsafeMutation: mutation } : undefined),
      });
      expect(replay.violations[0]).toBe(caught?.violation);
    });
  }
});
