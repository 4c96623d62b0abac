import { LEASE_PARTITION_SPACE, leasePartition, MAX_LEASE_TTL_MS, MIN_LEASE_TTL_MS } from '@paxkv/common';
import { describe, expect, it } from 'vitest';
import { isLeaseId, LeaseClock, LeaseTable } from './leases.js';

describe('LeaseTable', () => {
  it('encodes the partition in every lease id', () => {
    const t = new LeaseTable(7, 10);
    const a = t.grant(5_000) as number;
    const b = t.grant(5_000) as number;
    expect(isLeaseId(a)).toBe(true);
    expect(leasePartition(a)).toBe(7);
    expect(leasePartition(b)).toBe(7);
    expect(b).toBe(a + LEASE_PARTITION_SPACE);
  });

  it('refuses TTLs out of bounds and grants past the limit', () => {
    const t = new LeaseTable(0, 2);
    expect(t.grant(MIN_LEASE_TTL_MS - 1)).toBe('bad-ttl');
    expect(t.grant(MAX_LEASE_TTL_MS + 1)).toBe('bad-ttl');
    expect(t.grant(1.5)).toBe('bad-ttl');
    expect(typeof t.grant(MIN_LEASE_TTL_MS)).toBe('number');
    expect(typeof t.grant(MAX_LEASE_TTL_MS)).toBe('number');
    expect(t.grant(2_000)).toBe('too-many-leases');
  });

  it('tracks attached keys and returns them on removal', () => {
    const t = new LeaseTable(1, 10);
    const l = t.grant(2_000) as number;
    t.attach('a', l);
    t.attach('b', l);
    t.detach('a', l);
    expect(t.get(l)?.keys).toEqual(['b']);
    expect(t.remove(l)).toEqual(['b']);
    expect(t.remove(l)).toBeNull();
    expect(t.has(l)).toBe(false);
  });

  it('round-trips its snapshot and rejects malformed ones', () => {
    const t = new LeaseTable(3, 10);
    const l1 = t.grant(2_000) as number;
    t.grant(3_000);
    t.remove(l1);
    const copy = new LeaseTable(3, 10);
    expect(copy.restore(t.toSnapshot())).toBe(true);
    expect(copy.list()).toEqual(t.list());
    // the sequence continues: no id is ever reused
    expect(copy.grant(2_000)).toBe(t.grant(2_000));
    expect(new LeaseTable(4, 10).restore(t.toSnapshot())).toBe(false); // other partition
    expect(new LeaseTable(3, 10).restore([1, 2])).toBe(false);
    expect(new LeaseTable(3, 10).restore([0, LEASE_PARTITION_SPACE + 3, 5])).toBe(false); // ttl too small
    expect(new LeaseTable(3, 10).restore('x')).toBe(false);
  });
});

describe('LeaseClock', () => {
  it('proposes an expiry once when due, again only after retryAfter', () => {
    const c = new LeaseClock(500, 1_000);
    c.refresh(1, 2_000, 0);
    expect(c.due(1_999)).toEqual([]);
    expect(c.due(2_000)).toEqual([1]);
    expect(c.due(2_500)).toEqual([]);
    expect(c.due(3_000)).toEqual([1]);
    c.forget(1);
    expect(c.due(10_000)).toEqual([]);
  });

  it('a keep-alive pushes the deadline out', () => {
    const c = new LeaseClock(500, 1_000);
    c.refresh(1, 2_000, 0);
    c.refresh(1, 2_000, 1_500);
    expect(c.due(3_000)).toEqual([]);
    expect(c.remaining(1, 3_000)).toBe(500);
    expect(c.due(3_500)).toEqual([1]);
  });

  it('a new leader gives every lease its TTL plus the grace period', () => {
    const c = new LeaseClock(500, 1_000);
    c.takeOver(10_000, [
      [1, 2_000],
      [2, 4_000],
    ]);
    expect(c.due(12_499)).toEqual([]);
    expect(c.due(12_500)).toEqual([1]);
    expect(c.due(14_500)).toEqual([1, 2]); // 1 again: its expiry was not applied within retryAfter
    c.stepDown();
    expect(c.due(100_000)).toEqual([]);
  });
});

describe('LeaseClock.ending', () => {
  it('says a lease is ending once due, until a refresh', () => {
    const c = new LeaseClock(0, 1_000);
    c.refresh(7, 1_000, 0);
    expect(c.ending(7, 999)).toBe(false);
    expect(c.ending(7, 1_000)).toBe(true);
    expect(c.ending(8, 5_000)).toBe(false); // not tracked
    c.refresh(7, 1_000, 1_000);
    expect(c.ending(7, 1_500)).toBe(false);
  });
});

describe('leases in the state machine snapshot', () => {
  it('keeps leases and attachments across a snapshot round trip', async () => {
    const { KvStateMachine } = await import('./state-machine.js');
    const sm = new KvStateMachine({}, 2);
    let i = 0;
    const grant = sm.apply(i++, { id: 'g', op: { op: 'lease-grant', partition: 2, ttlMs: 5_000 } });
    const lease = grant.ok && grant.result.op === 'lease-grant' ? grant.result.lease : 0;
    expect(leasePartition(lease)).toBe(2);
    sm.apply(i++, { id: 'a', op: { op: 'put', key: 'a', value: '1', lease } });
    sm.apply(i++, { id: 'b', op: { op: 'put', key: 'b', value: '2' } });
    const copy = KvStateMachine.fromSnapshot(sm.snapshot(), {}, 2);
    if (copy instanceof Error) throw copy;
    expect(copy.lease(lease)).toEqual({ lease, ttlMs: 5_000, keys: ['a'] });
    const revoked = copy.apply(i, { id: 'r', op: { op: 'lease-revoke', lease } });
    expect(revoked).toMatchObject({ ok: true, result: { found: true, deleted: 1 } });
    expect(copy.size).toBe(1);
    // A lease of another partition cannot take keys here.
    const other = sm.apply(i, { id: 'x', op: { op: 'put', key: 'c', value: '3', lease: lease + 1 } });
    expect(other.ok).toBe(false);
  });
});

describe('leases in transactions', () => {
  it('a txn put attaches its key to a lease; a lease that is gone refuses the branch that would use it', async () => {
    const { KvStateMachine } = await import('./state-machine.js');
    const sm = new KvStateMachine({}, 1);
    let i = 0;
    const grant = sm.apply(i++, { id: 'g', op: { op: 'lease-grant', partition: 1, ttlMs: 5_000 } });
    const lease = grant.ok && grant.result.op === 'lease-grant' ? grant.result.lease : 0;
    // etcd's lock step: create the key with the lease only if it does not exist.
    const create = (id: string) =>
      sm.apply(i++, {
        id,
        op: {
          op: 'txn',
          compare: [{ key: 'lock', target: 'createRevision', op: '=', value: 0 }],
          success: [{ put: { key: 'lock', value: 'me', lease } }],
          failure: [{ get: { key: 'lock' } }],
        },
      });
    expect(create('t1')).toMatchObject({ ok: true, result: { succeeded: true } });
    expect(sm.lease(lease)?.keys).toEqual(['lock']);
    // Second try: the compare fails, the failure branch (no lease) runs.
    expect(create('t2')).toMatchObject({ ok: true, result: { succeeded: false } });
    // A txn put without a lease detaches the key, as a plain put.
    sm.apply(i++, {
      id: 'p',
      op: { op: 'txn', compare: [], success: [{ put: { key: 'lock', value: 'x' } }], failure: [] },
    });
    expect(sm.lease(lease)?.keys).toEqual([]);
    sm.apply(i++, { id: 'r', op: { op: 'lease-revoke', lease } });
    expect(sm.size).toBe(1);
    // The lease is gone: a txn that would attach to it is refused, nothing changes.
    const before = sm.revision;
    const refused = sm.apply(i++, {
      id: 'z',
      op: { op: 'txn', compare: [], success: [{ put: { key: 'n', value: '1', lease } }], failure: [] },
    });
    expect(refused.ok).toBe(false);
    expect(sm.revision).toBe(before);
    // ... but not when the branch that runs does not use it.
    const other = sm.apply(i++, {
      id: 'y',
      op: {
        op: 'txn',
        compare: [{ key: 'absent', target: 'exists', op: '=', value: true }],
        success: [{ put: { key: 'n', value: '1', lease } }],
        failure: [{ put: { key: 'n', value: '2' } }],
      },
    });
    expect(other).toMatchObject({ ok: true, result: { succeeded: false } });
  });
});
