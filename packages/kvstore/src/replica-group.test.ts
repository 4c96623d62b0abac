import { type KvOp, NotLeaderError } from '@paxkv/common';
import { describe, expect, it, vi } from 'vitest';
import type { SubmitResult } from './replica-group.js';
import { type ApplyOutcome, KvStateMachine } from './state-machine.js';
import { GroupCluster } from './testing/group-simulation.js';

/** Runs until one replica leads in the accept phase and every running replica follows it. */
async function elect(c: GroupCluster) {
  const agreed = () => {
    const l = c.leader();
    return (
      l !== undefined &&
      c.ids.every((p) => !c.group(p) || (c.group(p)!.leader === l.pid && c.group(p)!.phase === 'accept'))
    );
  };
  const steps = await c.runUntil(agreed, 300);
  expect(steps).toBeGreaterThanOrEqual(0);
  return c.leader()!;
}

describe('ReplicaGroup', () => {
  it('applies a transaction through the log once and serves ranges and read-only transactions by read index', async () => {
    const applied: string[] = [];
    const c = new GroupCluster({ seed: 5, onApplied: (_pid, _i, command) => applied.push(command.op.op) });
    const leader = await elect(c);
    await c.call(leader.pid, { op: 'put', key: '{a}:1', value: '10' });
    await c.call(leader.pid, { op: 'put', key: '{a}:2', value: '0' });
    const move = {
      op: 'txn',
      compare: [{ key: '{a}:1', target: 'value', op: '=', value: '10' }],
      success: [{ put: { key: '{a}:1', value: '4' } }, { put: { key: '{a}:2', value: '6' } }],
      failure: [],
    } satisfies KvOp;
    const session = { client: 'bank', seq: 1 };
    const r1 = await c.call(leader.pid, move, { session });
    expect(r1).toMatchObject({ result: { op: 'txn', succeeded: true, revision: 3 }, stale: false });
    expect(await c.call(leader.pid, move, { session })).toEqual(r1);
    const before = applied.length;
    const range = await c.call(leader.pid, { op: 'range', start: '{a}', end: '{a~' });
    expect(range).toMatchObject({
      result: {
        op: 'range',
        kvs: [
          { key: '{a}:1', value: '4' },
          { key: '{a}:2', value: '6' },
        ],
        revision: 3,
      },
    });
    const readTxn: KvOp = { op: 'txn', compare: [], success: [{ get: { key: '{a}:2' } }], failure: [] };
    expect(await c.call(leader.pid, readTxn)).toMatchObject({
      result: { results: [{ value: '6', version: 2 }] },
    });
    // Reads and read-only transactions took no log entries (the leader applies only its own writes).
    await c.runUntil(() => false, 20);
    expect(applied.slice(before).filter((op) => op !== 'put' && op !== 'txn')).toEqual([]);
    expect(applied.filter((op) => op === 'txn').length).toBe(c.ids.length * 2);
  });

  it('applies a CAS retried after a leader change exactly once', async () => {
    const applied: Array<{ pid: number; index: number; id: string; outcome: ApplyOutcome }> = [];
    const c = new GroupCluster({
      seed: 11,
      onApplied: (pid, index, command, outcome) => applied.push({ pid, index, id: command.id, outcome }),
    });
    const first = await elect(c);
    expect(await c.call(first.pid, { op: 'put', key: 'k', value: 'v0' })).toMatchObject({
      result: { created: true },
    });
    const session = { client: 'alice', seq: 7 };
    const cas = { op: 'cas', key: 'k', expected: 'v0', value: 'v1' } as const;
    const r1 = await c.call(first.pid, cas, { session });
    expect(r1).toMatchObject({ result: { op: 'cas', outcome: 'applied', current: 'v1' }, stale: false });

    // The client never saw that answer (say); meanwhile the leader crashes and another takes over.
    c.crash(first.pid);
    const second = await elect(c);
    expect(second.pid).not.toBe(first.pid);
    // A different client moves the key on, then the original CAS is retried with the same session.
    // (BLE may change leader once more right after a failover, liveness only: ask the new leader, as
    // a client would; nothing was applied by a NOT_LEADER reply, and a write in flight when the
    // leadership moved fails at once with TIMEOUT: retried with the same session it applies once.)
    const atLeader = async (
      ...args: Parameters<GroupCluster['submit']> extends [number, ...infer R] ? R : never
    ) => {
      let r = await c.call((await elect(c)).pid, ...args);
      for (
        let again = 0;
        again < 3 &&
        (r instanceof NotLeaderError || (r instanceof Error && (r as { code?: string }).code === 'TIMEOUT'));
        again++
      )
        r = await c.call((await elect(c)).pid, ...args);
      return r;
    };
    expect(await atLeader({ op: 'put', key: 'k', value: 'v2' })).toMatchObject({
      result: { created: false },
    });
    const r2 = await atLeader(cas, { session });
    // Same answer as the first time, and the retry did not overwrite v2.
    expect(r2).toEqual(r1);
    expect(await atLeader({ op: 'get', key: 'k' })).toMatchObject({ result: { value: 'v2' } });
    c.restart(first.pid);
    await c.runUntil(() => c.group(first.pid)?.appliedIndex === second.appliedIndex, 300);
    // Every replica applied the CAS entry once and the retry entry as a duplicate.
    for (const pid of c.ids) {
      // A restarted replica re-applies its log from the start: keep the last application of each index.
      const last = new Map<number, ApplyOutcome>();
      for (const a of applied) if (a.pid === pid) last.set(a.index, a.outcome);
      const cases = [...last.values()].filter((o) => o.ok && o.result.op === 'cas');
      // (one retry entry per attempt: more than one when a retry itself timed out on a leader change)
      const dup = cases.map((o) => o.ok && o.duplicate);
      expect(dup[0]).toBe(false);
      expect(dup.length).toBeGreaterThanOrEqual(2);
      expect(dup.slice(1).every((d) => d === true)).toBe(true);
    }
  });

  it('redirects a write on a follower with a leader hint and serves stale reads anywhere', async () => {
    const c = new GroupCluster({ seed: 5 });
    const leader = await elect(c);
    await c.call(leader.pid, { op: 'put', key: 'a', value: '1' });
    await c.runUntil(() => c.ids.every((p) => c.group(p)?.appliedIndex === leader.appliedIndex), 100);
    const follower = c.ids.find((p) => p !== leader.pid)!;
    const err = await c.call(follower, { op: 'put', key: 'a', value: '2' });
    expect(err).toMatchObject({
      code: 'NOT_LEADER',
      leaderHint: { node: leader.pid, address: `10.0.0.${leader.pid}:7000` },
    });
    expect((err as Error).message).toMatch(/retry against node/);
    expect(await c.call(follower, { op: 'get', key: 'a' })).toMatchObject({ code: 'NOT_LEADER' });
    expect(await c.call(follower, { op: 'get', key: 'a' }, { consistency: 'stale' })).toMatchObject({
      result: { op: 'get', value: '1' },
      stale: true,
    });
    expect(await c.call(leader.pid, { op: 'get', key: 'a' })).toMatchObject({
      result: { op: 'get', value: '1' },
      stale: false,
    });
  });

  it('says there is no leader before an election and enforces size limits', async () => {
    const c = new GroupCluster({ seed: 3, group: { limits: { maxKeyBytes: 8, maxValueBytes: 16 } } });
    await c.runUntil(() => c.group(1) !== undefined, 10);
    expect(await c.submit(1, { op: 'put', key: 'k', value: 'v' })).toMatchObject({ code: 'NO_LEADER' });
    const leader = await elect(c);
    expect(await c.submit(leader.pid, { op: 'put', key: 'k'.repeat(9), value: 'v' })).toMatchObject({
      code: 'KEY_TOO_LARGE',
    });
    expect(await c.submit(leader.pid, { op: 'put', key: 'k', value: new Uint8Array(17) })).toMatchObject({
      code: 'VALUE_TOO_LARGE',
    });
    expect(
      await c.submit(leader.pid, { op: 'cas', key: 'k', expected: 'x'.repeat(17), value: 'v' }),
    ).toMatchObject({ code: 'VALUE_TOO_LARGE' });
  });

  it('times out a write whose leader lost its quorum (outcome unknown)', async () => {
    const c = new GroupCluster({ seed: 9, group: { requestTimeoutTicks: 30 } });
    const leader = await elect(c);
    c.sim.partition([[leader.pid], c.ids.filter((p) => p !== leader.pid)]);
    const r = await c.call(leader.pid, { op: 'put', key: 'k', value: 'v' });
    expect(r).toBeInstanceOf(Error);
    expect(['TIMEOUT', 'NOT_LEADER', 'NO_LEADER']).toContain((r as { code?: string }).code);
  });

  it('a leader cut off from its majority stops acting as leader within one election timeout', async () => {
    const c = new GroupCluster({ seed: 21, group: { requestTimeoutTicks: 10_000 } });
    const leader = await elect(c);
    const old = leader.pid;
    const others = c.ids.filter((p) => p !== old);
    c.sim.partition([[old], others]);
    // A write submitted just after the cut waits for a majority that never answers.
    let pending: SubmitResult | Error | undefined;
    void c.submit(old, { op: 'put', key: 'k', value: 'lost?' }).then((r) => {
      pending = r;
    });
    const electionTimeoutTicks = 15;
    const steps = await c.runUntil(() => pending !== undefined, 10 * electionTimeoutTicks);
    // It fails (outcome unknown) within one election timeout, not after requestTimeoutTicks.
    expect(steps).toBeGreaterThan(0);
    expect(steps).toBeLessThanOrEqual(electionTimeoutTicks);
    expect((pending as { code?: string }).code).toBe('TIMEOUT');
    const g = c.group(old)!;
    expect(g.isolated).toBe(true);
    expect(g.role).toBe('follower');
    expect(g.leader).toBeUndefined();
    // New requests are refused at once (no tick needed), so clients go elsewhere.
    const refused = await c.submit(old, { op: 'get', key: 'k' });
    expect((refused as { code?: string }).code).toBe('UNAVAILABLE');
    // The majority side elects a new leader and serves.
    await c.runUntil(() => c.leader() !== undefined && c.leader()!.pid !== old, 300);
    const fresh = c.leader()!;
    expect(fresh.pid).not.toBe(old);
    expect(await c.call(fresh.pid, { op: 'put', key: 'k', value: 'new' })).toMatchObject({
      result: { op: 'put' },
    });
    // Healed: the old leader hears a majority again and follows the new leader.
    c.sim.healAll();
    await c.runUntil(() => !c.group(old)!.isolated && c.group(old)!.leader === fresh.pid, 300);
    expect(c.group(old)!.isolated).toBe(false);
    expect(c.group(old)!.leader).toBe(fresh.pid);
  });

  it('a leader that hears its majority again in time keeps leading (no spurious step-down)', async () => {
    // Silent links (no reset: a black hole the liveness check has not caught yet). A break that is
    // reported makes the followers elect at once, by design (paxos `disconnected`).
    const c = new GroupCluster({ seed: 23, silentBreaks: true });
    const leader = await elect(c);
    const others = c.ids.filter((p) => p !== leader.pid);
    // One silent heartbeat round is not isolation.
    c.sim.partition([[leader.pid], others]);
    await c.runUntil(() => false, 4);
    c.sim.healAll();
    await c.runUntil(() => false, 20);
    expect(c.leader()?.pid).toBe(leader.pid);
    expect(leader.isolated).toBe(false);
  });

  it('snapshots by the ratio of log to keys before snapshotEveryEntries (bounded replay on restart)', async () => {
    const run = async (snapshotLogRatio: number) => {
      const c = new GroupCluster({
        seed: 23,
        group: { snapshotEveryEntries: 1_000, snapshotMinEntries: 10, snapshotLogRatio },
      });
      const leader = await elect(c);
      for (let i = 0; i < 30; i++) {
        const r = await c.call(leader.pid, { op: 'put', key: `key${i % 4}`, value: `value${i}` });
        expect(r, `put #${i}`).toMatchObject({ result: { op: 'put' } });
      }
      return leader;
    };
    // 4 keys: 10 entries since the last snapshot are past both bounds, well before 1 000.
    const leader = await run(0.5);
    expect(leader.compactedIndex).toBeGreaterThanOrEqual(10);
    expect(leader.logLength - leader.compactedIndex).toBeLessThan(12);
    expect(leader.keyCount).toBe(4);
    // Off: only snapshotEveryEntries, never reached here.
    expect((await run(0)).compactedIndex).toBe(0);
  });

  it('staggers its replicas snapshots within the jitter around the thresholds', async () => {
    const every = 20;
    /** Each replica's snapshot indices while 200 puts are applied one at a time everywhere. */
    const run = async (snapshotJitter: number) => {
      const c = new GroupCluster({
        seed: 29,
        group: { snapshotEveryEntries: every, snapshotLogRatio: 0, snapshotJitter },
      });
      const leader = await elect(c);
      const seen = new Map<number, number[]>(c.ids.map((p) => [p, [c.group(p)!.compactedIndex]]));
      for (let i = 0; i < 200; i++) {
        const r = await c.call(leader.pid, { op: 'put', key: `key${i % 8}`, value: `value${i}` });
        expect(r, `put #${i}`).toMatchObject({ result: { op: 'put' } });
        await c.runUntil(() => c.ids.every((p) => c.group(p)!.appliedIndex === leader.appliedIndex), 100);
        for (const p of c.ids) {
          const at = c.group(p)!.compactedIndex;
          const list = seen.get(p)!;
          if (list.at(-1) !== at) list.push(at);
        }
      }
      return [...seen.values()].map((list) => list.slice(1).map((at, i) => at - list[i]!));
    };
    // Off: every replica snapshots exactly every `every` entries.
    for (const gaps of await run(0)) expect(gaps).toEqual(new Array(gaps.length).fill(every));
    // On: each gap is within [1 - j, 1 + j] of `every`, and the replicas do not snapshot in step.
    const jittered = await run(0.5);
    for (const gaps of jittered) {
      expect(gaps.length).toBeGreaterThanOrEqual(6);
      for (const g of gaps) {
        expect(g).toBeGreaterThanOrEqual(every / 2);
        expect(g).toBeLessThanOrEqual((every * 3) / 2);
      }
      expect(new Set(gaps).size).toBeGreaterThan(2);
    }
    expect(new Set(jittered.map((gaps) => gaps[0])).size).toBeGreaterThan(1);
  });

  it('recovers its state from the WAL and snapshots after every replica restarts', async () => {
    const c = new GroupCluster({ seed: 21, group: { snapshotEveryEntries: 10 } });
    let leader = await elect(c);
    for (let i = 0; i < 45; i++) {
      const r = await c.call(
        leader.pid,
        { op: 'put', key: `key${i % 15}`, value: `value${i}` },
        {
          session: { client: 'bulk', seq: i + 1 },
        },
      );
      expect(r, `put #${i}`).toMatchObject({ result: { op: 'put' } });
    }
    expect(leader.compactedIndex).toBeGreaterThan(0);
    await c.runUntil(() => c.ids.every((p) => c.group(p)?.appliedIndex === leader.appliedIndex), 100);
    for (const pid of c.ids) c.crash(pid, true);
    for (const pid of c.ids) c.restart(pid);
    leader = await elect(c);
    for (let i = 30; i < 45; i++) {
      let r = await c.call(leader.pid, { op: 'get', key: `key${i % 15}` });
      // The first election after a restart of every replica may still change leader once (BLE is
      // liveness only): ask the new leader, as a client would.
      for (let again = 0; again < 3 && r instanceof NotLeaderError; again++) {
        leader = await elect(c);
        r = await c.call(leader.pid, { op: 'get', key: `key${i % 15}` });
      }
      expect(r).toMatchObject({ result: { value: `value${i}` } });
    }
    expect(leader.sessionOf('bulk')?.seq).toBe(45);
    expect(leader.keyCount).toBe(15);
  });

  it('drops malformed peer messages without crashing or persisting them', async () => {
    const c = new GroupCluster({ seed: 8 });
    const leader = await elect(c);
    const follower = c.ids.find((p) => p !== leader.pid)!;
    const g = c.group(follower)!;
    const before = g.logLength;
    const junk: unknown[] = [
      null,
      42,
      { type: 'Accept' },
      {
        type: 'Accept',
        n: { n: 99, pid: leader.pid },
        start: before,
        entries: [{ nope: true }],
        decidedIndex: 0,
      },
      { type: 'Forward', entries: [{ id: 1, op: { op: 'put', key: 'k' } }] },
      {
        type: 'AcceptSync',
        n: { n: 99, pid: leader.pid },
        syncIndex: 5,
        entries: [],
        snapshot: { index: 5, data: new Uint8Array([1, 2, 3]) },
        decidedIndex: 5,
      },
      { type: 'NoSuchType' },
    ];
    for (const m of junk) g.handle(leader.pid, m as never);
    await c.runUntil(() => false, 20);
    expect(g.failure).toBeUndefined();
    expect(g.logLength).toBe(before);
    expect(await c.call(leader.pid, { op: 'put', key: 'k', value: 'v' })).toMatchObject({
      result: { created: true },
    });
  });

  it('refuses a snapshot whose decoded form would expand beyond its bound, without decoding it', async () => {
    const c = new GroupCluster({ seed: 9 });
    const leader = await elect(c);
    const follower = c.ids.find((p) => p !== leader.pid)!;
    const g = c.group(follower)!;
    const bomb = new Uint8Array(5 + (1 << 22)).fill(0x80); // an array of 4 M empty maps
    bomb[0] = 0xdd;
    new DataView(bomb.buffer).setUint32(1, 1 << 22);
    const decode = vi.spyOn(KvStateMachine, 'fromSnapshot');
    g.handle(leader.pid, {
      type: 'AcceptSync',
      n: { n: 99, pid: leader.pid },
      syncIndex: 5,
      entries: [],
      snapshot: { index: 5, data: bomb },
      decidedIndex: 5,
    } as never);
    expect(decode).not.toHaveBeenCalled();
    decode.mockRestore();
    expect(g.failure).toBeUndefined();
  });

  it("brings a wiped replica back through the leader's snapshot", async () => {
    const installed: number[] = [];
    const c = new GroupCluster({
      seed: 31,
      group: { snapshotEveryEntries: 10 },
      onOpened: () => {},
    });
    const first = await elect(c);
    const lagging = c.ids.find((p) => p !== first.pid)!;
    c.crash(lagging);
    const disk = c.disks.get(lagging)!;
    for (const p of disk.paths()) await disk.remove(p);
    for (let i = 0; i < 40; i++) {
      // A write in flight when the leadership moves fails at once (outcome unknown): retried with the
      // same session, as a client does, it is applied once.
      let out: Awaited<ReturnType<GroupCluster['call']>> | undefined;
      for (let attempt = 0; attempt < 5; attempt++) {
        const l = await elect(c);
        out = await c.call(
          l.pid,
          { op: 'put', key: `k${i % 7}`, value: `v${i}` },
          { session: { client: 'w', seq: i + 1 } },
        );
        if (!(out instanceof Error && (out as { retryable?: boolean }).retryable === true)) break;
      }
      expect(out).toMatchObject({ result: { op: 'put' } });
    }
    const leader = await elect(c);
    expect(leader.compactedIndex).toBeGreaterThan(0);
    c.restart(lagging);
    await c.runUntil(() => c.group(lagging)?.appliedIndex === leader.appliedIndex, 300);
    const g = c.group(lagging)!;
    installed.push(g.compactedIndex);
    expect(g.appliedIndex).toBe(leader.appliedIndex);
    expect(g.compactedIndex).toBeGreaterThan(0);
    expect(Buffer.from(g.exportState())).toEqual(Buffer.from(leader.exportState()));
    expect(installed[0]).toBeGreaterThan(0);
  });
});
