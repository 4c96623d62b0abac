/**
 * Failover from broken sessions: a follower told that its session to the leader broke
 * (`SequencePaxos.disconnected`) elects a new leader within a few round trips instead of one election
 * timeout, and a broken link to a leader that a peer still hears never moves leadership (mutation
 * check: `raiseOnLeaderSessionBreak`).
 */
import { describe, expect, it } from 'vitest';
import type { UnsafeMutation } from '../config.js';
import { PaxosCluster } from './paxos-cluster.js';

const HEARTBEAT = 5;
const ELECTION = 15;

function steadyCluster(seed: number, mutation: UnsafeMutation = 'none'): PaxosCluster {
  const c = new PaxosCluster({
    seed,
    replicas: 3,
    network: { minDelay: 0, maxDelay: 1 },
    config: { heartbeatTicks: HEARTBEAT, electionTimeoutTicks: ELECTION, unsafeMutation: mutation },
  });
  const steps = c.sim.runUntil(() => c.leader() !== undefined, 500);
  expect(steps, `seed ${seed}: no first leader`).toBeGreaterThanOrEqual(0);
  // Let the followers learn the leader and settle (several rounds).
  c.run(4 * ELECTION);
  return c;
}

describe('a crashed leader whose sessions break', () => {
  it('is replaced in fewer ticks than one election timeout (40 seeds)', () => {
    let worst = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const c = steadyCluster(seed);
      const old = c.leader();
      if (!old) throw new Error(`seed ${seed}: no leader`);
      const oldPid = old.pid;
      c.sim.crash(oldPid);
      const took = c.sim.runUntil(() => {
        const l = c.leader();
        return l !== undefined && l.pid !== oldPid;
      }, 10 * ELECTION);
      expect(took, `seed ${seed}: no new leader`).toBeGreaterThanOrEqual(0);
      // Without the session signal the followers wait for the election timeout (15 ticks) and then
      // for the end of a round before anyone raises: never fewer than 15 ticks.
      expect(took, `seed ${seed}: failover took ${took} ticks`).toBeLessThan(ELECTION);
      worst = Math.max(worst, took);
      expect(c.propose(c.leader()?.pid ?? 0, `after-${seed}`)).toBe(true);
      expect(c.runUntilConverged(20 * ELECTION)).toBeGreaterThanOrEqual(0);
    }
    expect(worst).toBeLessThan(ELECTION);
  });
});

describe('a broken session between a follower and a healthy leader', () => {
  function run(mutation: UnsafeMutation): number {
    let moved = 0;
    for (let seed = 101; seed <= 120; seed++) {
      const c = steadyCluster(seed, mutation);
      const leader = c.leader();
      if (!leader) throw new Error(`seed ${seed}: no leader`);
      const follower = c.ids.find((p) => p !== leader.pid) as number;
      const before = c.leaderChanges;
      c.sim.disconnect(follower, leader.pid);
      c.run(10 * ELECTION);
      if (c.leaderChanges !== before || c.leader()?.pid !== leader.pid) moved++;
    }
    return moved;
  }

  it('keeps the leader: the other follower still hears it and vouches for it', () => {
    expect(run('none')).toBe(0);
  });

  it('mutation check: raising at once despite the vouch deposes healthy leaders (caught)', () => {
    expect(run('raiseOnLeaderSessionBreak')).toBeGreaterThan(0);
  });
});
