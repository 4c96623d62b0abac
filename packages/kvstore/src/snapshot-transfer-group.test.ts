/**
 * Replica groups catching up by chunked snapshot transfer, in the deterministic simulation (real
 * paxos, state machine, shared WAL on a simulated disk): a replica behind a compacted log catches up
 * over lossy, duplicating links; the leader crashes mid-transfer; the receiver crashes mid-transfer
 * (nothing of the transfer reached its disk: it reopens with its old state, then catches up).
 * Snapshots here are tens of KiB and chunks 2 KiB, so every catch-up takes dozens of chunks.
 */
import { checkSync, readHistory } from '@paxkv/linearizability-checker';
import type { NodeId } from '@paxkv/paxos';
import { describe, expect, it, vi } from 'vitest';
import type { ReplicaGroup } from './replica-group.js';
import { KvStateMachine } from './state-machine.js';
import {
  GroupCluster,
  type GroupClusterOptions,
  type GroupSimulationOptions,
  simulateGroup,
} from './testing/group-simulation.js';

const CHUNK = 2048;
const VALUE = 'v'.repeat(400);
const KEYS = 150;

function cluster(seed: number, extra: Partial<GroupClusterOptions> = {}): GroupCluster {
  return new GroupCluster({
    seed,
    replicas: 3,
    manualSync: false,
    group: {
      snapshotEveryEntries: 20,
      snapshotTransfer: { chunkBytes: CHUNK, windowChunks: 2, resendTicks: 5, idleTimeoutTicks: 200 },
    },
    ...extra,
  });
}

function pidOf(c: GroupCluster, g: ReplicaGroup | undefined): NodeId | undefined {
  return c.ids.find((p) => g !== undefined && c.group(p) === g);
}

/** Writes `count` keys through whichever replica leads (retrying), stepping the simulation meanwhile. */
async function writeKeys(c: GroupCluster, prefix: string, count: number): Promise<void> {
  let next = 0;
  let inFlight = 0;
  let failures = 0;
  const done = new Set<number>();
  const submit = (i: number) => {
    const leader = pidOf(c, c.leader());
    if (leader === undefined) return false;
    inFlight++;
    void c.submit(leader, { op: 'put', key: `${prefix}${i}`, value: VALUE }).then((r) => {
      inFlight--;
      if (r instanceof Error) {
        failures++;
        retry.push(i);
      } else done.add(i);
    });
    return true;
  };
  const retry: number[] = [];
  const steps = await c.runUntil(() => {
    while (inFlight < 8) {
      const i = retry.length > 0 ? (retry.shift() as number) : next < count ? next++ : -1;
      if (i < 0) break;
      if (!submit(i)) {
        retry.unshift(i);
        break;
      }
    }
    return done.size === count;
  }, 20_000);
  expect(steps, `wrote ${done.size}/${count} (${failures} failed attempts)`).toBeGreaterThanOrEqual(0);
}

/** Steps until every live replica holds the same state at the same applied index. */
async function converge(c: GroupCluster, pids: readonly NodeId[]): Promise<void> {
  const steps = await c.runUntil(() => {
    const gs = pids.map((p) => c.group(p));
    if (gs.some((g) => g === undefined)) return false;
    const first = gs[0] as ReplicaGroup;
    return gs.every(
      (g) =>
        g?.appliedIndex === first.appliedIndex &&
        Buffer.compare(g.exportState(), first.exportState()) === 0 &&
        g.keyCount === first.keyCount,
    );
  }, 20_000);
  const rows = pids.map((p) => `${p}: applied ${c.group(p)?.appliedIndex} keys ${c.group(p)?.keyCount}`);
  expect(steps, `replicas never converged (${rows.join(', ')})`).toBeGreaterThanOrEqual(0);
}

/** Crashes replica 3, writes {@link KEYS} keys (the others compact past it), restarts it. */
async function leaveBehind(c: GroupCluster): Promise<void> {
  expect(await c.runUntil(() => c.leader() !== undefined, 2000)).toBeGreaterThanOrEqual(0);
  await writeKeys(c, 'warm', 5);
  c.crash(3);
  await writeKeys(c, 'k', KEYS);
  const leader = c.leader() as ReplicaGroup;
  expect(leader.compactedIndex).toBeGreaterThan(KEYS / 2);
  c.restart(3);
}

describe('chunked snapshot transfer in replica groups', () => {
  it('a replica behind a compacted log catches up over lossy, duplicating links (5 seeds)', async () => {
    for (let seed = 1; seed <= 5; seed++) {
      const c = cluster(seed, { lossProbability: 0.02, duplicateProbability: 0.05 });
      await leaveBehind(c);
      await converge(c, [1, 2, 3]);
      const g3 = c.group(3) as ReplicaGroup;
      expect(g3.keyCount, `seed ${seed}`).toBe(KEYS + 5);
      expect(g3.transferStats.delivered, `seed ${seed}`).toBeGreaterThanOrEqual(1);
      // The state (~70 KiB) went in many chunks, never as one message.
      expect(g3.transferStats.chunksReceived, `seed ${seed}`).toBeGreaterThan(20);
    }
  }, 240_000);

  it('a received snapshot is decoded once: to check it, then that state is applied', async () => {
    const c = cluster(31);
    await leaveBehind(c);
    const decodes = vi.spyOn(KvStateMachine, 'fromSnapshot');
    try {
      await converge(c, [1, 2, 3]);
      const delivered = c.group(3)?.transferStats.delivered ?? 0;
      expect(delivered).toBeGreaterThanOrEqual(1);
      expect(decodes.mock.calls.length).toBe(delivered);
    } finally {
      decodes.mockRestore();
    }
  });

  it('a replica receiving a snapshot does not ask to lead (it is not synchronised yet)', async () => {
    const c = cluster(41);
    await leaveBehind(c);
    const midway = await c.runUntil(() => (c.group(3)?.transferStats.stagedBytes ?? 0) >= 4 * CHUNK, 5000);
    expect(midway).toBeGreaterThanOrEqual(0);
    const g3 = c.group(3) as ReplicaGroup;
    expect(g3.phase).not.toBe('accept');
    expect(g3.transferLeadership()).toBe(false);
    await converge(c, [1, 2, 3]);
    // Synchronised, it may: the next heartbeat rounds elect it.
    const asked = await c.runUntil(() => c.group(3)?.transferLeadership() === true, 500);
    expect(asked).toBeGreaterThanOrEqual(0);
    expect(await c.runUntil(() => c.leader() === c.group(3), 500)).toBeGreaterThanOrEqual(0);
  });

  it('the leader crashes mid-transfer: the replica catches up from the next leader', async () => {
    for (let seed = 11; seed <= 13; seed++) {
      const c = cluster(seed);
      await leaveBehind(c);
      const leader = pidOf(c, c.leader()) as NodeId;
      const midway = await c.runUntil(() => (c.group(3)?.transferStats.chunksReceived ?? 0) >= 6, 5000);
      expect(midway, `seed ${seed}: no transfer started`).toBeGreaterThanOrEqual(0);
      expect(c.group(3)?.transferStats.delivered, `seed ${seed}`).toBe(0);
      c.crash(leader);
      const survivors = c.ids.filter((p) => p !== leader);
      await writeKeys(c, 'after', 10);
      await converge(c, survivors);
      expect(c.group(3)?.keyCount, `seed ${seed}`).toBe(KEYS + 15);
      c.restart(leader);
      await converge(c, c.ids);
    }
  }, 240_000);

  it('the receiver crashes mid-transfer: it reopens with its old state (nothing half-installed), then catches up', async () => {
    for (let seed = 21; seed <= 23; seed++) {
      const c = cluster(seed);
      expect(await c.runUntil(() => c.leader() !== undefined, 2000)).toBeGreaterThanOrEqual(0);
      await writeKeys(c, 'warm', 5);
      await converge(c, c.ids);
      const before = { applied: c.group(3)?.appliedIndex, compacted: c.group(3)?.compactedIndex };
      c.crash(3);
      await writeKeys(c, 'k', KEYS);
      c.restart(3);
      const midway = await c.runUntil(() => (c.group(3)?.transferStats.stagedBytes ?? 0) >= 4 * CHUNK, 5000);
      expect(midway, `seed ${seed}: no transfer staged`).toBeGreaterThanOrEqual(0);
      expect(c.group(3)?.transferStats.delivered).toBe(0);
      c.crash(3, true);
      c.restart(3);
      expect(await c.runUntil(() => c.group(3) !== undefined, 2000)).toBeGreaterThanOrEqual(0);
      const g3 = c.group(3) as ReplicaGroup;
      // Reopened from its disk: at most the state it had before (its decided index is written lazily),
      // none of the interrupted transfer's.
      expect(g3.transferStats.delivered).toBe(0);
      expect(g3.compactedIndex, `seed ${seed}`).toBe(before.compacted);
      expect(g3.appliedIndex, `seed ${seed}`).toBeLessThanOrEqual(before.applied as number);
      expect(g3.keyCount, `seed ${seed}`).toBeLessThanOrEqual(5);
      await converge(c, c.ids);
      expect(c.group(3)?.keyCount, `seed ${seed}`).toBe(KEYS + 5);
      expect(c.group(3)?.transferStats.delivered).toBeGreaterThanOrEqual(1);
    }
  }, 240_000);
});

describe('a follower catching up on big entries', () => {
  it("is sent Accepts within the leader's byte budget, many entries each, never one message of the whole gap", async () => {
    const BUDGET = 8192;
    const sent: { entries: number; bytes: number }[] = [];
    let watching = false;
    const c = cluster(51, {
      group: { snapshotEveryEntries: 100_000, paxos: { maxBatchBytes: BUDGET } },
      onSend: (_from, to, _p, m, bytes) => {
        if (!watching || to !== 3 || m.type !== 'Paxos') return;
        if (m.msg.type === 'Accept' || m.msg.type === 'AcceptSync')
          sent.push({ entries: m.msg.entries.length, bytes });
      },
    });
    expect(await c.runUntil(() => c.leader() !== undefined, 2000)).toBeGreaterThanOrEqual(0);
    await writeKeys(c, 'warm', 5);
    await converge(c, c.ids);
    c.crash(3);
    await writeKeys(c, 'k', KEYS);
    expect((c.leader() as ReplicaGroup).compactedIndex).toBe(0);
    watching = true;
    c.restart(3);
    await converge(c, c.ids);
    expect(c.group(3)?.keyCount).toBe(KEYS + 5);
    // The whole gap (~150 entries of 400-byte values, ~70 KB) went in many budgeted messages.
    const carried = sent.reduce((n, m) => n + m.entries, 0);
    expect(carried).toBeGreaterThanOrEqual(KEYS);
    expect(Math.max(...sent.map((m) => m.bytes))).toBeLessThanOrEqual(BUDGET);
    expect(sent.filter((m) => m.entries >= 2).length).toBeGreaterThanOrEqual(KEYS / 10);
  });
});

describe('chunked snapshot transfer under the full fault mix', () => {
  it('seed 900125: a new leader collecting Promises from four peers at once (two staging slots) finishes', async () => {
    // Evicting a progressing staging for each new sender made four senders evict each other forever.
    const r = await simulateGroup({
      seed: 900_125,
      replicas: 3,
      ticks: 300,
      group: {
        snapshotEveryEntries: 10,
        snapshotTransfer: { chunkBytes: 64, windowChunks: 3, resendTicks: 4 },
      },
      spares: 2,
      reconfigProbability: 0.04,
    });
    expect(r.violations).toEqual([]);
  }, 120_000);

  it('40 seeds (20 with reconfigurations) with every snapshot sent in 64-byte chunks: linearizable, no acknowledged write lost', async () => {
    const failures: string[] = [];
    let delivered = 0;
    for (let i = 0; i < 40; i++) {
      const seed = 900_000 + i;
      const groups: ReplicaGroup[] = [];
      const options: GroupSimulationOptions = {
        seed,
        replicas: 3,
        ticks: 300,
        group: {
          snapshotEveryEntries: 10,
          snapshotTransfer: { chunkBytes: 64, windowChunks: 3, resendTicks: 4 },
        },
        ...(i % 2 === 1 ? { spares: 2, reconfigProbability: 0.04 } : {}),
        onOpened: (_pid, g) => groups.push(g),
      };
      const r = await simulateGroup(options);
      const check = checkSync(readHistory(r.history), { model: 'kv', timeoutMs: 20_000 });
      if (check.verdict !== 'linearizable' || r.violations.length > 0)
        failures.push(`seed ${seed}: ${check.verdict}; ${r.violations.slice(0, 3).join('; ')}`);
      for (const g of groups) delivered += g.transferStats.delivered;
    }
    expect(failures.join('\n')).toBe('');
    // Replicas did catch up by chunked transfers (snapshots, JoinStates of new members).
    expect(delivered).toBeGreaterThan(40);
  }, 600_000);
});
