/**
 * Leases in a replica group (3 replicas on simulated disks and network, 20 ms per tick): expiry is
 * proposed by the leader through the log when keep-alives stop, never before the TTL; a leader change
 * gives every lease its TTL plus the grace period; revoking deletes the lease's keys in one entry; a put
 * on a lease that is gone is refused. Watchers see the deletes.
 */
import { describe, expect, it } from 'vitest';
import type { ReplicaGroup, SubmitResult } from './replica-group.js';
import { GroupCluster } from './testing/group-simulation.js';
import type { ChangeEvent } from './watch-hub.js';

const TICK_MS = 20;
const TTL_MS = 1_000;
const TTL_TICKS = TTL_MS / TICK_MS;
const GRACE_MS = 2_000;
const GRACE_TICKS = GRACE_MS / TICK_MS;

async function elect(c: GroupCluster): Promise<ReplicaGroup> {
  const agreed = () => {
    const l = c.leader();
    return l !== undefined && c.ids.every((p) => !c.group(p) || c.group(p)?.leader === l.pid);
  };
  expect(await c.runUntil(agreed, 400)).toBeGreaterThanOrEqual(0);
  return c.leader() as ReplicaGroup;
}

function cluster(seed: number): GroupCluster {
  return new GroupCluster({ seed, group: { tickMs: TICK_MS, leaseGraceMs: GRACE_MS } });
}

async function grant(c: GroupCluster, pid: number): Promise<number> {
  const r = await c.call(pid, { op: 'lease-grant', partition: 0, ttlMs: TTL_MS });
  expect(r).toMatchObject({ result: { op: 'lease-grant', granted: true } });
  return (r as SubmitResult & { result: { lease: number } }).result.lease;
}

/** Whether `key` is in `pid`'s applied state (a stale local read: takes no simulated time). */
async function present(c: GroupCluster, pid: number, key: string): Promise<boolean> {
  const g = c.group(pid);
  if (!g) throw new Error(`replica ${pid} is down`);
  const r = await g.submit({ op: 'get', key }, { consistency: 'stale' });
  return r.result.op === 'get' && r.result.value !== null;
}

describe('leases in a replica group', () => {
  it('keeps a key while kept alive, expires it through the log once keep-alives stop', async () => {
    const c = cluster(21);
    const leader = await elect(c);
    const lease = await grant(c, leader.pid);
    expect(await c.call(leader.pid, { op: 'put', key: 'svc', value: 'up', lease })).toMatchObject({
      result: { op: 'put' },
    });
    const deletes: ChangeEvent[] = [];
    const follower = c.ids.find((p) => p !== leader.pid) as number;
    c.group(follower)?.watch(
      { key: 'svc' },
      undefined,
      (es) => deletes.push(...es),
      () => {},
    );
    // Keep alive for four TTLs.
    for (let i = 0; i < 8; i++) {
      await c.runUntil(() => false, TTL_TICKS / 2);
      expect(await c.call(leader.pid, { op: 'lease-keepalive', lease })).toMatchObject({
        result: { found: true, ttlMs: TTL_MS },
      });
    }
    expect(await present(c, leader.pid, 'svc')).toBe(true);
    // Stop: the key survives most of a TTL, then goes, on every replica, as one delete event.
    await c.runUntil(() => false, TTL_TICKS - 10);
    expect(await present(c, leader.pid, 'svc')).toBe(true);
    const gone = await c.runUntil(() => c.ids.every((p) => c.group(p)?.keyCount === 0), 200);
    expect(gone).toBeGreaterThanOrEqual(0);
    await c.runUntil(() => deletes.some((e) => e.type === 'delete'), 50);
    // (the follower may still have been applying the put when the watch opened)
    expect(deletes.filter((e) => e.type === 'delete').map((e) => e.key)).toEqual(['svc']);
    // The lease is gone with it: keep-alive says so, a put on it is refused.
    expect(await c.call(leader.pid, { op: 'lease-keepalive', lease })).toMatchObject({
      result: { found: false },
    });
    const refused = await c.call(leader.pid, { op: 'put', key: 'svc', value: 'again', lease });
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toMatch(/expired or was revoked/);
  });

  it.each([
    { grace: true, seed: 33 },
    { grace: false, seed: 33 },
  ])(
    'gives every lease its TTL plus the grace period after a leader change (grace: $grace)',
    async ({ grace, seed }) => {
      // grace: false is the mutation check: the same run without the grace period loses the key.
      const c = grace
        ? cluster(seed)
        : new GroupCluster({ seed, group: { tickMs: TICK_MS, leaseGraceMs: 0 } });
      const first = await elect(c);
      const lease = await grant(c, first.pid);
      await c.call(first.pid, { op: 'put', key: 'lock', value: 'me', lease });
      await c.call(first.pid, { op: 'lease-keepalive', lease });
      // Most of the TTL passes, then the leader dies: the lease would be due during the election.
      await c.runUntil(() => false, TTL_TICKS - 5);
      c.crash(first.pid);
      const second = await elect(c);
      expect(second.pid).not.toBe(first.pid);
      // No keep-alive reached anyone since before the crash, yet the key outlives its TTL by the grace period.
      await c.runUntil(() => false, TTL_TICKS + GRACE_TICKS / 2);
      expect(await present(c, second.pid, 'lock')).toBe(grace);
      if (!grace) return;
      // Without keep-alives it still goes, within TTL + grace of the takeover.
      const gone = await c.runUntil(() => second.keyCount === 0, TTL_TICKS + GRACE_TICKS + 100);
      expect(gone).toBeGreaterThanOrEqual(0);
    },
  );

  it('follows a monotonic clock when given one: a late loop keeps TTLs real, a stall adds at most the per-tick bound', async () => {
    const clock = { ms: 0 };
    const MAX_ADVANCE_MS = 200;
    const c = new GroupCluster({
      seed: 21,
      group: {
        tickMs: TICK_MS,
        leaseGraceMs: GRACE_MS,
        monotonicNowMs: () => clock.ms,
        leaseMaxAdvancePerTickMs: MAX_ADVANCE_MS,
      },
    });
    /** A predicate for runUntil that moves the clock `ms` per tick (runUntil asks it once per tick). */
    const realTimePerTick =
      (ms: number, done: () => boolean = () => false) =>
      () => {
        if (done()) return true;
        clock.ms += ms;
        return false;
      };
    const leader = await elect(c);
    const lease = await grant(c, leader.pid);
    await c.call(leader.pid, { op: 'put', key: 'svc', value: 'up', lease });
    // A stall of 10 s in one tick (a paused process): lease time moves by the bound only, the key stays.
    await c.runUntil(realTimePerTick(10_000), 1);
    await c.runUntil(realTimePerTick(TICK_MS), 5);
    expect(await present(c, leader.pid, 'svc')).toBe(true);
    expect(await c.call(leader.pid, { op: 'lease-keepalive', lease })).toMatchObject({
      result: { found: true },
    });
    // The loop runs 5x late (100 ms of real time per tick): the lease still ends after its real TTL,
    // i.e. after ~TTL/100 ms ticks, not TTL_TICKS (what counting ticks would give).
    const slowTickMs = 5 * TICK_MS;
    const gone = await c.runUntil(
      realTimePerTick(slowTickMs, () => c.ids.every((p) => c.group(p)?.keyCount === 0)),
      TTL_TICKS,
    );
    expect(gone).toBeGreaterThanOrEqual(TTL_MS / slowTickMs - 1);
    expect(gone).toBeLessThan(TTL_TICKS / 2);
  });

  it('revokes a lease and all its keys in one entry at one revision', async () => {
    const c = cluster(5);
    const leader = await elect(c);
    const lease = await grant(c, leader.pid);
    for (const k of ['a', 'b', 'c']) await c.call(leader.pid, { op: 'put', key: k, value: k, lease });
    await c.call(leader.pid, { op: 'put', key: 'other', value: 'x' });
    const events: ChangeEvent[] = [];
    leader.watch(
      { prefix: '' },
      undefined,
      (es) => events.push(...es),
      () => {},
    );
    const r = await c.call(leader.pid, { op: 'lease-revoke', lease });
    expect(r).toMatchObject({ result: { op: 'lease-revoke', found: true, deleted: 3 } });
    expect(events.map((e) => [e.type, e.key])).toEqual([
      ['delete', 'a'],
      ['delete', 'b'],
      ['delete', 'c'],
    ]);
    expect(new Set(events.map((e) => e.revision)).size).toBe(1);
    expect(leader.keyCount).toBe(1);
    expect(await c.call(leader.pid, { op: 'lease-list', partition: 0 })).toMatchObject({
      result: { leases: [], more: false },
    });
  });

  it('a put without a lease detaches the key; incr keeps it', async () => {
    const c = cluster(8);
    const leader = await elect(c);
    const lease = await grant(c, leader.pid);
    await c.call(leader.pid, { op: 'put', key: 'n', value: '1', lease });
    await c.call(leader.pid, { op: 'incr', key: 'n', by: '1' });
    await c.call(leader.pid, { op: 'put', key: 'p', value: 'x', lease });
    await c.call(leader.pid, { op: 'put', key: 'p', value: 'y' });
    expect(await c.call(leader.pid, { op: 'lease-list', partition: 0 })).toMatchObject({
      result: { leases: [{ lease, ttlMs: TTL_MS, keys: 1 }] },
    });
    const r = await c.call(leader.pid, { op: 'lease-revoke', lease });
    expect(r).toMatchObject({ result: { deleted: 1 } });
    expect(await c.call(leader.pid, { op: 'get', key: 'p' })).toMatchObject({ result: { value: 'y' } });
    expect(await c.call(leader.pid, { op: 'get', key: 'n' })).toMatchObject({ result: { value: null } });
  });

  it('lease-timetolive tells the time left on the leader clock, by lease or by key', async () => {
    const c = cluster(13);
    const leader = await elect(c);
    const lease = await grant(c, leader.pid);
    await c.call(leader.pid, { op: 'put', key: 'a', value: '1', lease });
    await c.call(leader.pid, { op: 'put', key: 'b', value: '2', lease });
    await c.call(leader.pid, { op: 'put', key: 'plain', value: '3' });
    await c.call(leader.pid, { op: 'lease-keepalive', lease });
    await c.runUntil(() => false, TTL_TICKS / 2);
    const byLease = await c.call(leader.pid, { op: 'lease-timetolive', lease, keys: true });
    expect(byLease).toMatchObject({ result: { found: true, lease, ttlMs: TTL_MS, keys: ['a', 'b'] } });
    const left = (byLease as SubmitResult & { result: { remainingMs: number } }).result.remainingMs;
    // Half a TTL passed since the keep-alive (plus the read's own round trips).
    expect(left).toBeLessThanOrEqual(TTL_MS / 2);
    expect(left).toBeGreaterThan(TTL_MS / 4);
    const byKey = await c.call(leader.pid, { op: 'lease-timetolive', key: 'b' });
    expect(byKey).toMatchObject({ result: { found: true, lease, ttlMs: TTL_MS } });
    expect((byKey as SubmitResult & { result: { keys?: unknown } }).result.keys).toBeUndefined();
    for (const key of ['plain', 'absent'])
      expect(await c.call(leader.pid, { op: 'lease-timetolive', key })).toMatchObject({
        result: { found: false, lease: 0, ttlMs: 0, remainingMs: 0 },
      });
    // A new leader answers with the TTL plus the grace period it gave every lease.
    c.crash(leader.pid);
    const second = await elect(c);
    const after = await c.call(second.pid, { op: 'lease-timetolive', key: 'a' });
    const remaining = (after as SubmitResult & { result: { remainingMs: number } }).result.remainingMs;
    expect(remaining).toBeGreaterThan(TTL_MS);
    expect(remaining).toBeLessThanOrEqual(TTL_MS + GRACE_MS);
    await c.call(second.pid, { op: 'lease-revoke', lease });
    expect(await c.call(second.pid, { op: 'lease-timetolive', lease })).toMatchObject({
      result: { found: false, lease: 0 },
    });
  });
});
