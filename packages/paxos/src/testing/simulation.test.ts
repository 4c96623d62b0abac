/**
 * The deterministic simulation suite: thousands of seeded runs with faults, the partial-connectivity
 * scenarios of the OmniPaxos paper with a stated liveness bound, and mutation sanity checks.
 *
 * Set PAXOS_SIM_SEEDS to run more seeds per configuration (default 1000).
 */
import { describe, expect, it } from 'vitest';
import { isPaxosMessage } from '../messages.js';
import { PaxosCluster } from './paxos-cluster.js';
import { runPartitionScenario, runSeed } from './run-seed.js';
import { buildScenario, type ScenarioName } from './scenarios.js';
import { BOUND, SEEDS, sweep } from './sweep.test-helper.js';

describe(`random faults, safety after every event, liveness within ${BOUND} ticks of healing`, () => {
  const chunk = Math.ceil(SEEDS / 4);
  for (let from = 0; from < SEEDS; from += chunk) {
    const count = Math.min(chunk, SEEDS - from);
    it(`3 replicas, seeds ${1 + from}..${from + count}`, { timeout: 120_000 }, () =>
      sweep('3 replicas', 1 + from, count, { replicas: 3 }),
    );
  }
  it('200 seeds per size with heavy faults (crashes of any number of replicas, partitions, breaks)', {
    timeout: 120_000,
  }, () => {
    const nemesis = { crashProbability: 0.05, linkBreakProbability: 0.1, partitionProbability: 0.03 };
    sweep('heavy 3', 200_001, 200, { replicas: 3, nemesis });
    sweep('heavy 5', 300_001, 200, { replicas: 5, nemesis });
  });
  it('200 seeds per size where a minority stays crashed after healing (the rest must stay live)', {
    timeout: 120_000,
  }, () => {
    sweep('minority down 3', 600_001, 200, { replicas: 3, permanentlyDown: 1 });
    sweep('minority down 5', 700_001, 200, { replicas: 5, permanentlyDown: 2 });
  });
  it('200 seeds per size where messages are also lost without a session break and duplicated', {
    timeout: 120_000,
  }, () => {
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

describe('stability under partial connectivity: no leader flapping once a quorum-connected leader leads', () => {
  const scenarios: ScenarioName[] = ['quorum-loss', 'constrained-election', 'chained', 'full'];
  for (const name of scenarios) {
    it.each([3, 5])(
      `${name}, %i replicas: no leader change in 600 ticks after settling (20 seeds)`,
      (replicas) => {
        for (let seed = 1; seed <= 20; seed++) {
          const c = new PaxosCluster({ seed, replicas, network: { maxDelay: 1 } });
          expect(c.sim.runUntil(() => c.leader() !== undefined, 500)).toBeGreaterThanOrEqual(0);
          c.sim.setConnectivity(buildScenario(name, c.ids, c.leader()!.pid).connectivity);
          c.sim.run(BOUND + 40);
          const before = c.leaderChanges;
          const chosenBefore = c.checker.chosenLength;
          for (let t = 0; t < 600; t++) {
            if (t % 7 === 0) c.propose(c.leader()?.pid ?? 1, `s${seed}-t${t}`);
            c.sim.step();
          }
          expect(c.leaderChanges - before, `seed ${seed}`).toBe(0);
          expect(c.checker.chosenLength - chosenBefore, `seed ${seed}: progress`).toBeGreaterThan(50);
        }
      },
    );
  }
});

describe('regression: a candidate that prepared a follower and died must not stall the survivors', () => {
  it.each([3, 5])(
    '%i replicas: the old leader learns of the higher promise (Nack), re-elects, decides',
    (replicas) => {
      const cluster = new PaxosCluster({ seed: 1, replicas, network: { maxDelay: 1 } });
      const sim = cluster.sim;
      expect(sim.runUntil(() => cluster.leader() !== undefined, 500)).toBeGreaterThanOrEqual(0);
      const leader = cluster.leader()!.pid;
      const others = cluster.ids.filter((p) => p !== leader);
      const dead = others[0]!;
      // `dead` prepares every other follower with a high ballot, then crashes for good.
      for (const f of others.slice(1)) {
        const r = cluster.replica(f)!;
        sim.withNode(f, () =>
          r.handle(dead, {
            type: 'Prepare',
            n: { n: 1000, pid: dead },
            decidedIndex: 0,
            acceptedRound: { n: 0, pid: 0 },
            logLength: 0,
          }),
        );
      }
      sim.crash(dead);
      const start = sim.now;
      let decidedAt = -1;
      while (sim.now - start <= BOUND && decidedAt < 0) {
        if ((sim.now - start) % 5 === 0) cluster.propose(leader, 'after-stall');
        sim.step();
        if (cluster.checker.chosen.includes('after-stall')) decidedAt = sim.now - start;
      }
      expect(decidedAt).toBeGreaterThanOrEqual(0);
      expect(decidedAt).toBeLessThanOrEqual(BOUND);
    },
  );
});

describe('wire shape of real traffic', () => {
  it('every message the cores send passes isPaxosMessage and survives structuredClone unchanged', () => {
    const c = new PaxosCluster({ seed: 77, replicas: 3, network: { maxDelay: 3 } });
    let seen = 0;
    const types = new Set<string>();
    for (let t = 0; t < 400; t++) {
      if (t % 3 === 0) c.propose(1 + (t % 3), `cmd-${t}`);
      if (t % 50 === 25) c.compact(1 + (t % 3));
      if (t === 100) c.sim.disconnect(1, 2);
      if (t === 140) c.sim.connect(1, 2);
      if (t % 20 === 0) {
        const l = c.leader();
        if (l) c.readIndex(l.pid, t);
      }
      c.sim.step();
      for (const a of c.ids) {
        for (const b of c.ids) {
          for (const m of c.sim.pending(a, b)) {
            seen++;
            types.add(m.type);
            expect(isPaxosMessage(m)).toBe(true);
            expect(structuredClone(m)).toEqual(m);
            expect(Object.values(m)).not.toContain(undefined);
          }
        }
      }
    }
    expect(seen).toBeGreaterThan(1000);
    expect(types.size).toBeGreaterThanOrEqual(9);
  });
});

describe('read rounds that ask a quorum of peers first', () => {
  it('serve no stale read at any replica that believes it leads, 3 and 5 replicas', () => {
    for (const replicas of [3, 5]) {
      for (let seed = 1; seed <= 40; seed++) {
        const r = runSeed(seed, { replicas, readAt: 'any-leader', readProbability: 0.3 });
        expect(r.violations, `seed ${seed}, ${replicas} replicas`).toEqual([]);
      }
    }
  });
});

describe('mutation sanity: the simulator catches a broken rule', () => {
  const mutants = [
    ['acceptLowerBallot', /lower than its promise/, {}],
    ['decideWithoutQuorum', /agreement|read index/, {}],
    // The read round asks a subset of the peers first: the quorum must still be a majority of the
    // replicas. Reads also go to deposed leaders that have not noticed (where a stale read comes from).
    ['readQuorumOfAsked', /read index/, { readAt: 'any-leader', readProbability: 0.3 }],
  ] as const;
  for (const [mutation, pattern, extra] of mutants) {
    it(`catches ${mutation}, and the failing seed replays identically`, () => {
      let caught: { seed: number; violation: string } | undefined;
      for (let seed = 1; seed <= 100 && !caught; seed++) {
        // Only replica 1 is broken: one faulty replica must be enough to be caught.
        const r = runSeed(seed, {
          ...extra,
          replicas: 3,
          configOf: (pid) => (pid === 1 ? { unsafeMutation: mutation } : undefined),
        });
        if (r.violations.length > 0) caught = { seed, violation: r.violations[0] as string };
      }
      expect(caught, `${mutation} went unnoticed in 100 seeds`).toBeDefined();
      expect(caught?.violation).toMatch(pattern);
      expect(caught?.violation).toContain(`seed ${caught?.seed}`);
      const replay = runSeed(caught!.seed, {
        ...extra,
        replicas: 3,
        configOf: (pid) => (pid === 1 ? { unsafeMutation: mutation } : undefined),
      });
      expect(replay.violations[0]).toBe(caught?.violation);
    });
  }
});

describe('campaign: a gentle leadership transfer', () => {
  it('moves leadership to the replica that campaigns, every decided entry kept, invariants checked', () => {
    const c = new PaxosCluster({ seed: 5, replicas: 3, network: { maxDelay: 2 } });
    c.sim.runUntil(() => c.leader() !== undefined, 2000);
    const first = c.leader()?.pid as number;
    for (let i = 0; i < 20; i++) c.propose(first, `before-${i}`);
    c.sim.runUntil(() => (c.replica(first)?.decidedIndex ?? 0) >= 20, 2000);
    const target = c.ids.find((p) => p !== first) as number;
    // The leader and a replica that knows no leader cannot campaign.
    expect(c.replica(first)?.campaign()).toBe(false);
    expect(c.replica(target)?.campaign()).toBe(true);
    c.sim.runUntil(() => c.leader()?.pid === target && c.replica(target)?.role === 'leader', 2000);
    expect(c.leader()?.pid).toBe(target);
    for (let i = 0; i < 5; i++) c.propose(target, `after-${i}`);
    c.sim.runUntil(() => c.live().every((r) => r.decidedIndex >= 25), 4000);
    expect(c.live().every((r) => r.decidedIndex >= 25)).toBe(true);
    // Leadership stays with the new leader while it is healthy.
    c.sim.run(500);
    expect(c.leader()?.pid).toBe(target);
  });
});
