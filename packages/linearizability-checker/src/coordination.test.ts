import { describe, expect, it } from 'vitest';
import {
  type CommittedChange,
  checkLeaseHistory,
  checkLockHistory,
  checkWatchStreams,
  type LeaseEvent,
  type ObservedEvent,
} from './coordination.js';

const put = (key: string, value: string, revision: number, partition = 0): CommittedChange => ({
  type: 'put',
  key,
  value,
  revision,
  partition,
});
const del = (key: string, revision: number, partition = 0): CommittedChange => ({
  type: 'delete',
  key,
  revision,
  partition,
});

describe('checkWatchStreams', () => {
  const committed = [put('a', '1', 1), put('b', '1', 2), put('a', '2', 3), del('a', 4), put('x', '9', 1, 1)];
  const stream = (events: ObservedEvent[], from: Record<number, number> = { 0: 1 }) => ({
    id: 'w',
    filter: { key: 'a' },
    from,
    events,
  });

  it('accepts a complete stream, a prefix over partitions, and a resumed one', () => {
    const ok = checkWatchStreams(committed, [
      stream([committed[0], committed[2], committed[3]] as ObservedEvent[]),
      { id: 'p', filter: { prefix: '' }, from: { 0: 1, 1: 1 }, events: committed },
      stream([committed[2], committed[3]] as ObservedEvent[], { 0: 3 }),
    ]);
    expect(ok).toEqual({ ok: true, violations: [] });
  });

  it.each([
    ['a gap', [committed[0], committed[3]], /missed put 'a'='2' @0\/3/],
    ['a duplicate', [committed[0], committed[2], committed[2], committed[3]], /delivered twice/],
    ['out of order', [committed[2], committed[0], committed[3]], /revision goes back from 3/],
    [
      'a phantom',
      [committed[0], put('a', 'zzz', 3), committed[3]],
      /committed change at that revision is put 'a'='2'/,
    ],
    ['a never-written event', [committed[0], put('a', '2', 5)], /phantom/],
    ['a key outside the filter', [committed[0], committed[1]], /outside the watched key 'a'/],
  ] as [string, ObservedEvent[], RegExp][])('fails %s', (_what, events, message) => {
    const r = checkWatchStreams(committed, [stream(events)]);
    expect(r.ok).toBe(false);
    expect(r.violations.join('\n')).toMatch(message);
  });

  it('a stream must reach `through`; unrecorded deletes only when allowed; uncertain writes are no phantoms', () => {
    const short = { ...stream([committed[0] as ObservedEvent]), through: { 0: 4 } };
    expect(checkWatchStreams(committed, [short]).violations).toHaveLength(2);
    const expiry: ObservedEvent = { type: 'delete', key: 'a', revision: 5, partition: 0 };
    const s = stream([committed[0], committed[2], committed[3], expiry] as ObservedEvent[]);
    expect(checkWatchStreams(committed, [s]).ok).toBe(false);
    expect(checkWatchStreams(committed, [s], { allowUnrecordedDeletes: true }).ok).toBe(true);
    const maybe: ObservedEvent = { type: 'put', key: 'a', value: '?', revision: 5, partition: 0 };
    const u = stream([committed[0], committed[2], committed[3], maybe] as ObservedEvent[]);
    expect(checkWatchStreams(committed, [u], { uncertain: [{ type: 'put', key: 'a', value: '?' }] }).ok).toBe(
      true,
    );
  });
});

describe('checkLeaseHistory', () => {
  const ttlMs = 2_000;
  const base: LeaseEvent[] = [
    { kind: 'grant', invokedAt: 0, completedAt: 10 },
    { kind: 'put', invokedAt: 10, completedAt: 20 },
    { kind: 'keepalive', ok: true, invokedAt: 1_000, completedAt: 1_010 },
    { kind: 'read', present: true, invokedAt: 2_500, completedAt: 2_510 },
    { kind: 'keepalive', ok: true, invokedAt: 2_600, completedAt: 2_610 },
    // keep-alives stop: gone between 4 600 and 4 610 + TTL + grace + slack
    { kind: 'read', present: false, invokedAt: 7_000, completedAt: 7_010 },
    { kind: 'deleted', invokedAt: 6_000, completedAt: 6_000 },
  ];

  it('accepts a key kept alive then expired in time', () => {
    expect(checkLeaseHistory({ id: 'k', ttlMs, events: base })).toEqual({ ok: true, violations: [] });
  });

  it('fails a key that disappeared while kept alive', () => {
    const early: LeaseEvent = { kind: 'read', present: false, invokedAt: 3_000, completedAt: 3_010 };
    const r = checkLeaseHistory({ id: 'k', ttlMs, events: [...base, early] });
    expect(r.ok).toBe(false);
    expect(r.violations[0]).toMatch(/disappeared early/);
  });

  it('fails a key still there long after the last keep-alive', () => {
    const late: LeaseEvent = { kind: 'read', present: true, invokedAt: 9_000, completedAt: 9_010 };
    const r = checkLeaseHistory({ id: 'k', ttlMs, events: base.slice(0, 5).concat(late) });
    expect(r.violations.join('\n')).toMatch(/did not expire/);
    // A keep-alive without an answer may have renewed it: then the same read is fine.
    const maybe: LeaseEvent = { kind: 'keepalive', ok: 'unknown', invokedAt: 5_000, completedAt: 5_500 };
    expect(checkLeaseHistory({ id: 'k', ttlMs, events: [...base.slice(0, 5), maybe, late] }).ok).toBe(true);
  });

  it('fails a read of the key after its revoke was observed', () => {
    const events: LeaseEvent[] = [
      ...base.slice(0, 3),
      { kind: 'revoke', invokedAt: 1_100, completedAt: 1_200 },
      { kind: 'read', present: true, invokedAt: 1_300, completedAt: 1_310 },
    ];
    expect(checkLeaseHistory({ id: 'k', ttlMs, events }).violations.join('\n')).toMatch(
      /after the lease's end/,
    );
  });
});

describe('checkLockHistory', () => {
  it('accepts ordered, disjoint holdings and non-decreasing fenced writes', () => {
    const r = checkLockHistory(
      [
        { client: 'a', token: 3, acquiredAt: 0, releasedAt: 10 },
        { client: 'b', token: 7, acquiredAt: 11, releasedAt: 20 },
        { client: 'c', token: 9, acquiredAt: 30 },
      ],
      [
        { client: 'a', token: 3 },
        { client: 'b', token: 7 },
        { client: 'b', token: 7 },
      ],
    );
    expect(r).toEqual({ ok: true, violations: [] });
  });

  it('fails overlapping holders, tokens that go backwards, and a stale fenced write', () => {
    const overlap = checkLockHistory([
      { client: 'a', token: 3, acquiredAt: 0, releasedAt: 10 },
      { client: 'b', token: 7, acquiredAt: 5, releasedAt: 20 },
    ]);
    expect(overlap.violations.join('\n')).toMatch(/while client a held the lock/);
    const backwards = checkLockHistory([
      { client: 'a', token: 7, acquiredAt: 0, releasedAt: 10 },
      { client: 'b', token: 3, acquiredAt: 11, releasedAt: 20 },
    ]);
    expect(backwards.violations.join('\n')).toMatch(/token 3 of client b .* is not above token 7/);
    const stale = checkLockHistory(
      [],
      [
        { client: 'paused', token: 3 },
        { client: 'taker', token: 7 },
        { client: 'paused', token: 3 },
      ],
    );
    expect(stale.violations.join('\n')).toMatch(/stale holder's write/);
  });
});

describe('checkLeaseHistory and revokes', () => {
  it('a key may vanish once a revoke was sent, even within the TTL of a keep-alive', () => {
    const events: LeaseEvent[] = [
      { kind: 'grant', invokedAt: 0, completedAt: 10 },
      { kind: 'put', invokedAt: 10, completedAt: 20 },
      { kind: 'keepalive', ok: true, invokedAt: 100, completedAt: 110 },
      { kind: 'revoke', invokedAt: 200, completedAt: 400 },
      { kind: 'read', present: false, invokedAt: 150, completedAt: 300 },
    ];
    expect(checkLeaseHistory({ id: 'k', ttlMs: 2_000, events }).ok).toBe(true);
    // ... but not before it was sent.
    const early: LeaseEvent = { kind: 'read', present: false, invokedAt: 120, completedAt: 150 };
    expect(checkLeaseHistory({ id: 'k', ttlMs: 2_000, events: [...events, early] }).ok).toBe(false);
  });
});
