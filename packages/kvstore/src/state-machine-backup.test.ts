import type { KvOp, KvResult, Session } from '@paxkv/common';
import { describe, expect, it } from 'vitest';
import { encode } from './codec.js';
import { KvStateMachine } from './state-machine.js';

let n = 0;
function run(m: KvStateMachine, op: KvOp, session?: Session): KvResult {
  const out = m.apply(m.appliedIndex, { id: `b${n++}`, op, ...(session ? { session } : {}) });
  if (!out.ok) throw out.error;
  return out.result;
}

function snapshotOf(m: KvStateMachine) {
  const r = m.query({ op: 'snapshot', partition: m.partition });
  if (r.op !== 'snapshot') throw new Error('not a snapshot result');
  return r;
}

/** A partition with keys, a deleted key, a binary value, a session and a lease with a key. */
function populated(partition = 3): { m: KvStateMachine; lease: number } {
  const m = new KvStateMachine({}, partition);
  run(m, { op: 'put', key: 'a', value: '1' }, { client: 'c1', seq: 1 });
  run(m, { op: 'put', key: 'a', value: '2' });
  run(m, { op: 'put', key: 'b', value: new Uint8Array([0, 255, 7]) });
  run(m, { op: 'put', key: 'gone', value: 'x' });
  run(m, { op: 'delete', key: 'gone' });
  const g = run(m, { op: 'lease-grant', partition, ttlMs: 60_000 });
  if (g.op !== 'lease-grant') throw new Error('no lease');
  run(m, { op: 'put', key: 'leased', value: 'v', lease: g.lease });
  return { m, lease: g.lease };
}

describe('partition backup: snapshot and restore operations', () => {
  it('restores every key with its value and revisions, the revision and the leases, without sessions', () => {
    const { m, lease } = populated();
    const snap = snapshotOf(m);
    expect(snap).toMatchObject({ outcome: 'ok', keys: 3, leases: 1, revision: m.revision, partition: 3 });
    expect(snap.bytes).toBe(snap.state.byteLength);

    const fresh = new KvStateMachine({}, 3);
    run(fresh, { op: 'get', key: 'a' }); // a read entry: the log index moves, the state stays empty
    const r = run(fresh, { op: 'restore', partition: 3, state: snap.state }, { client: 'restorer', seq: 1 });
    expect(r).toMatchObject({ op: 'restore', outcome: 'restored', keys: 3, leases: 1, revision: m.revision });
    for (const key of ['a', 'b', 'leased', 'gone']) expect(fresh.read(key)).toEqual(m.read(key));
    expect(fresh.lease(lease)).toEqual(m.lease(lease));
    expect(fresh.session('c1')).toBeUndefined(); // the old cluster's sessions stay behind
    expect(fresh.session('restorer')).toBeDefined();
    // The restored partition goes on like the original: same next revision, lease deletes its key.
    expect(run(fresh, { op: 'put', key: 'a', value: '3' })).toEqual(
      run(m, { op: 'put', key: 'a', value: '3' }),
    );
    run(fresh, { op: 'lease-revoke', lease });
    expect(fresh.read('leased').value).toBeNull();
  });

  it('survives the replicas own snapshots (a restored partition snapshots and recovers like any other)', () => {
    const { m } = populated();
    const fresh = new KvStateMachine({}, 3);
    run(fresh, { op: 'restore', partition: 3, state: snapshotOf(m).state });
    const again = KvStateMachine.fromSnapshot(fresh.snapshot(), {}, 3);
    if (!(again instanceof KvStateMachine)) throw again;
    expect(snapshotOf(again).state).toEqual(snapshotOf(m).state);
  });

  /** Restores a backup into a partition with a history of its own; returns what broke, or null. */
  function restoreOverHistory(config: ConstructorParameters<typeof KvStateMachine>[0] = {}): string | null {
    const { m } = populated();
    const state = snapshotOf(m).state;
    const target = new KvStateMachine(config, 3);
    run(target, { op: 'put', key: 'mine', value: 'keep' });
    run(target, { op: 'delete', key: 'mine' }); // empty of keys, but revision 2: a history of its own
    const before = target.revision;
    const r = run(target, { op: 'restore', partition: 3, state });
    if (r.op !== 'restore' || r.outcome !== 'not-empty')
      return `outcome ${r.op === 'restore' ? r.outcome : r.op}`;
    if (target.revision !== before || target.read('a').value !== null) return 'the partition changed';
    return null;
  }

  it('refuses a partition that holds anything, and changes nothing', () => {
    expect(restoreOverHistory()).toBeNull();
  });

  it('mutation check: with the rule broken on purpose, the refusal test sees it', () => {
    expect(restoreOverHistory({ unsafeMutation: 'restoreIntoNonEmpty' })).toBe('outcome restored');
  });

  it('refuses corrupt or foreign states with BAD_REQUEST, and changes nothing', () => {
    const { m } = populated(3);
    const good = snapshotOf(m).state;
    const flipped = good.slice();
    flipped[flipped.length - 3] = (flipped[flipped.length - 3] as number) ^ 0xff;
    const withSession = new KvStateMachine({}, 3);
    run(withSession, { op: 'put', key: 'k', value: 'v' }, { client: 'c', seq: 1 });
    const bad: Array<[string, Uint8Array]> = [
      ['random bytes', new Uint8Array([1, 2, 3, 4, 5])],
      ['truncated', good.subarray(0, good.length - 10)],
      ['flipped byte', flipped],
      ['not a state', encode({ v: 2, applied: 0, revision: 'x', data: [], sessions: [] })],
      ['an internal snapshot with sessions', withSession.snapshot()],
      [
        'expansion bomb',
        encode({ v: 2, applied: 0, revision: 0, data: new Array(200_000).fill(null), sessions: [] }),
      ],
    ];
    for (const [name, state] of bad) {
      const target = new KvStateMachine({}, 3);
      const out = target.apply(0, { id: `bad-${name}`, op: { op: 'restore', partition: 3, state } });
      expect(out.ok, name).toBe(false);
      if (!out.ok) expect(out.error.code, name).toBe('BAD_REQUEST');
      expect(target.revision, name).toBe(0);
      expect(target.size, name).toBe(0);
      expect(target.appliedIndex, name).toBe(1);
    }
    // Partition 3's leases cannot be loaded into partition 4 (lease ids name their partition).
    const other = new KvStateMachine({}, 4);
    const out = other.apply(0, { id: 'foreign', op: { op: 'restore', partition: 4, state: good } });
    expect(out.ok).toBe(false);
  });

  it('answers too-large with no state when the partition exceeds what one message carries', () => {
    const m = new KvStateMachine({}, 0);
    const mib = new Uint8Array(1024 * 1024 - 64);
    for (let i = 0; i < 9; i++) run(m, { op: 'put', key: `big${i}`, value: mib });
    const snap = snapshotOf(m);
    expect(snap.outcome).toBe('too-large');
    expect(snap.state.byteLength).toBe(0);
    expect(snap.bytes).toBeGreaterThan(8 * 1024 * 1024);
    expect(snap.keys).toBe(9);
  });
});
