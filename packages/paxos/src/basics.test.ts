import { describe, expect, it } from 'vitest';
import { BALLOT_ZERO, compareBallots, isBallot } from './ballot.js';
import { DEFAULT_PAXOS_CONFIG, resolveConfig } from './config.js';
import { PaxosConfigError } from './errors.js';
import { isPaxosMessage } from './messages.js';
import { MemoryStorage } from './storage.js';

describe('compareBallots', () => {
  it.each([
    [{ n: 1, pid: 1 }, { n: 1, pid: 1 }, 0],
    [{ n: 1, pid: 2 }, { n: 1, pid: 1 }, 1],
    [{ n: 1, pid: 9 }, { n: 2, pid: 1 }, -1],
    [BALLOT_ZERO, { n: 0, pid: 1 }, -1],
  ])('%o vs %o -> %i', (a, b, sign) => {
    expect(Math.sign(compareBallots(a, b))).toBe(sign);
  });
  it('rejects malformed ballots', () => {
    expect(isBallot({ n: 1, pid: 2 })).toBe(true);
    for (const bad of [null, {}, { n: -1, pid: 1 }, { n: 1.5, pid: 1 }, { n: '1', pid: 1 }, { n: 1 }]) {
      expect(isBallot(bad)).toBe(false);
    }
  });
});

describe('isPaxosMessage', () => {
  const b = { n: 1, pid: 2 };
  const valid: unknown[] = [
    { type: 'HeartbeatRequest', round: 3 },
    { type: 'HeartbeatReply', round: 3, ballot: b, quorumConnected: true, leader: b },
    { type: 'PrepareReq', n: b },
    { type: 'Prepare', n: b, decidedIndex: 0, acceptedRound: BALLOT_ZERO, logLength: 0 },
    {
      type: 'Promise',
      n: b,
      acceptedRound: b,
      logLength: 2,
      decidedIndex: 1,
      suffixStart: 1,
      suffix: ['x'],
      snapshot: { index: 1, data: new Uint8Array(2) },
    },
    { type: 'AcceptSync', n: b, syncIndex: 0, entries: [], snapshot: null, decidedIndex: 0 },
    { type: 'Accept', n: b, start: 4, entries: ['a', 'b'], decidedIndex: 2 },
    { type: 'Accepted', n: b, logLength: 6 },
    { type: 'Decide', n: b, decidedIndex: 6 },
    { type: 'Forward', entries: ['z'] },
    { type: 'ReadIndexRequest', n: b, round: 1 },
    { type: 'ReadIndexReply', n: b, round: 1 },
  ];
  it.each(valid.map((m) => [(m as { type: string }).type, m]))('accepts a well-formed %s', (_t, m) => {
    expect(isPaxosMessage(m)).toBe(true);
  });
  const invalid: unknown[] = [
    null,
    undefined,
    42,
    'Prepare',
    [],
    {},
    { type: 'Nope' },
    { type: 'Accept', n: b, start: -1, entries: [], decidedIndex: 0 },
    { type: 'Accept', n: b, start: 0, entries: 'abc', decidedIndex: 0 },
    { type: 'Accepted', n: { n: 1 }, logLength: 1 },
    { type: 'Decide', n: b, decidedIndex: Number.POSITIVE_INFINITY },
    { type: 'HeartbeatReply', round: 1, ballot: b, quorumConnected: 'yes', leader: b },
    { type: 'HeartbeatReply', round: 1, ballot: b, quorumConnected: true },
    {
      type: 'AcceptSync',
      n: b,
      syncIndex: 0,
      entries: [],
      snapshot: { index: 1, data: [1, 2] },
      decidedIndex: 0,
    },
    { type: 'Promise', n: b, acceptedRound: b, logLength: 0, decidedIndex: 0, suffixStart: 0, suffix: [] },
  ];
  it.each(invalid.map((m, i) => [i, m]))('rejects malformed input #%i without throwing', (_i, m) => {
    expect(isPaxosMessage(m)).toBe(false);
  });
});

describe('resolveConfig', () => {
  it('fills defaults', () => {
    expect(resolveConfig(undefined)).toEqual(DEFAULT_PAXOS_CONFIG);
    expect(resolveConfig({ maxBatchSize: 7 }).maxBatchSize).toBe(7);
  });
  it.each([
    [{ heartbeatTicks: 0 }],
    [{ maxInflight: 1.5 }],
    [{ resendTicks: -3 }],
    [{ electionTimeoutTicks: 2, heartbeatTicks: 5 }],
    [{ unsafeMutation: 'bogus' as never }],
  ])('rejects %o with a typed error', (cfg) => {
    expect(() => resolveConfig(cfg)).toThrow(PaxosConfigError);
  });
});

describe('MemoryStorage', () => {
  it('appends, truncates and reads with absolute indexes', () => {
    const s = new MemoryStorage<string>();
    s.appendEntries(['a', 'b', 'c', 'd']);
    s.appendOnPrefix(2, ['x']);
    expect(s.getEntries(0, 3)).toEqual(['a', 'b', 'x']);
    expect(s.getLogLength()).toBe(3);
  });
  it('compacts a prefix and keeps counting indexes', () => {
    const s = new MemoryStorage<string>();
    s.appendEntries(['a', 'b', 'c', 'd']);
    s.setDecidedIndex(3);
    s.setSnapshot({ index: 2, data: new Uint8Array([1]) });
    expect(s.getCompactedIndex()).toBe(2);
    expect(s.getLogLength()).toBe(4);
    expect(s.getEntries(2, 4)).toEqual(['c', 'd']);
    expect(() => s.getEntries(1, 3)).toThrow();
    s.appendOnPrefix(3, ['z']);
    expect(s.getEntries(2, 4)).toEqual(['c', 'z']);
  });
  it('installs a snapshot beyond the log end', () => {
    const s = new MemoryStorage<string>();
    s.appendEntries(['a']);
    s.setSnapshot({ index: 5, data: new Uint8Array() });
    expect(s.getLogLength()).toBe(5);
    expect(s.getDecidedIndex()).toBe(5);
    expect(s.getEntries(5, 5)).toEqual([]);
  });
});
