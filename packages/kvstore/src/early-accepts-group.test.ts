import type { NodeId } from '@paxkv/paxos';
import { describe, expect, it } from 'vitest';
import type { KvCommand } from './command.js';
import type { ReplicaGroup, ReplicaGroupConfig } from './replica-group.js';
import { GroupCluster } from './testing/group-simulation.js';

/**
 * A leader whose own log write of entry `w1` is not synced yet, a follower that synced it and said
 * so, and a new write: the leader's early `Accept` of the new write must not tell the followers that
 * `w1` is decided (only the leader's unsynced copy and one follower hold it). With the test-only
 * mutation `earlyAcceptUnclamped` it does: the follower applies `w1`, the leader crashes losing it,
 * and the other two replicas decide another command at that index.
 */
async function scenario(unsafeMutation: ReplicaGroupConfig['unsafeMutation'], secondWrite = true) {
  const applied = new Map<string, string>();
  const divergence: string[] = [];
  const c = new GroupCluster({
    seed: 7,
    // Slow election rounds: no heartbeat (which waits for the flush and blocks its link) in the window.
    group: { unsafeMutation, paxos: { heartbeatTicks: 40, electionTimeoutTicks: 120 } },
    onApplied: (pid, index, command: KvCommand) => {
      const seen = applied.get(`${index}`);
      if (seen === undefined) applied.set(`${index}`, command.id);
      else if (seen !== command.id)
        divergence.push(`replica ${pid} applied ${command.id} at ${index}, another replica ${seen}`);
    },
  });
  const leaderOf = () =>
    c.ids.map((p) => c.group(p)).find((g) => g?.role === 'leader' && g.phase === 'accept');
  expect(
    await c.runUntil(
      () => leaderOf() !== undefined && c.ids.every((p) => c.group(p)?.leader === leaderOf()?.pid),
      2000,
    ),
  ).toBeGreaterThanOrEqual(0);
  const leader = leaderOf() as ReplicaGroup;
  const [f1, f2] = c.ids.filter((p) => p !== leader.pid) as [NodeId, NodeId];
  const write = async (key: string) => {
    let done = false;
    void leader.submit({ op: 'put', key, value: key }).finally(() => {
      done = true;
    });
    expect(await c.runUntil(() => done, 200)).toBeGreaterThanOrEqual(0);
  };
  await write('w0');
  expect(
    await c.runUntil(() => c.ids.every((p) => c.group(p)!.appliedIndex === leader.appliedIndex), 100, 1),
  ).toBeGreaterThanOrEqual(0);
  const before = c.group(f1)!.appliedIndex;
  // w1: appended everywhere, synced only at f1 (whose Accepted reaches the leader).
  void leader.submit({ op: 'put', key: 'w1', value: 'w1' }).catch(() => {});
  // Only f1 syncs; its Accepted reaches the leader, which counts w1 as decided in memory (its own
  // copy is still unsynced).
  for (let i = 0; i < 20 && leader.decidedIndex < before + 1; i++) {
    await c.step(0);
    c.disks.get(f1)!.completeSyncs();
  }
  expect(leader.decidedIndex).toBe(before + 1);
  // w2 while the leader's flush of w1 is still pending: its Accept leaves early. Without it, the pump
  // that decided w1 owes the followers only a `Decide`.
  if (secondWrite) void leader.submit({ op: 'put', key: 'w2', value: 'w2' }).catch(() => {});
  for (let i = 0; i < 3; i++) {
    await c.step(0);
    c.disks.get(f1)!.completeSyncs();
  }
  const f1Applied = c.group(f1)!.appliedIndex;
  // The leader crashes (its unsynced w1 and w2 are lost), f2 too (w1 was never synced there); f1 is
  // cut off while the two restart and elect a leader that writes at w1's index.
  c.crash(leader.pid);
  c.crash(f2);
  c.sim.partition([[f1], [leader.pid, f2]]);
  c.restart(leader.pid);
  c.restart(f2);
  const other = () =>
    [leader.pid, f2].map((p) => c.group(p)).find((g) => g?.role === 'leader' && g.phase === 'accept');
  expect(await c.runUntil(() => other() !== undefined, 3000, 1)).toBeGreaterThanOrEqual(0);
  let done = false;
  void other()!
    .submit({ op: 'put', key: 'w3', value: 'w3' })
    .finally(() => {
      done = true;
    });
  expect(await c.runUntil(() => done, 400, 1)).toBeGreaterThanOrEqual(0);
  return { before, f1Applied, divergence };
}

describe('early Accepts while the leader flush is pending (releaseEarly)', () => {
  it("announce no decided index that counts the leader's unsynced copy", async () => {
    const r = await scenario('none');
    // f1 has not applied w1 (the leader's copy was never synced), and nothing diverged.
    expect(r.f1Applied).toBe(r.before);
    expect(r.divergence).toEqual([]);
  });

  it('mutation earlyAcceptUnclamped: a follower applies w1, which the other replicas then overwrite', async () => {
    const r = await scenario('earlyAcceptUnclamped');
    expect(r.divergence).toEqual([expect.stringMatching(/applied .* at 1, another replica/)]);
  });

  it("a Decide waits for the leader's flush when it counts the leader's unsynced copy", async () => {
    const r = await scenario('none', false);
    expect(r.f1Applied).toBe(r.before);
    expect(r.divergence).toEqual([]);
  });

  it('mutation earlyDecideUnclamped: the Decide of w1 leaves early, a follower applies w1, the others overwrite it', async () => {
    const r = await scenario('earlyDecideUnclamped', false);
    expect(r.divergence).toEqual([expect.stringMatching(/applied .* at 1, another replica/)]);
  });
});
