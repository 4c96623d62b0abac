/**
 * Bounds at ingress (issue 14, "validate before you persist"): every round, index and length of a paxos
 * message from the wire is bounded before it reaches a replica's state or storage, and Ballot Leader
 * Election never raises its own round past {@link MAX_ROUND}. The attack this replays: a forged
 * `Prepare` with ballot 2^53 - 1 made followers promise it, BLE then raised its round to 2^53 (not a
 * safe integer) and the WAL wrote a round its own decoder rejected.
 */
import { describe, expect, it } from 'vitest';
import type { Ballot, NodeId } from './ballot.js';
import {
  isPaxosMessage,
  MAX_LOG_INDEX,
  MAX_ROUND,
  type PaxosMessage,
  validatePaxosMessage,
} from './messages.js';
import { SequencePaxos } from './sequence-paxos.js';
import { MemoryStorage } from './storage.js';

const b = (n: number, pid = 2): Ballot => ({ n, pid });

/** A storage that records every round and index it is asked to persist. */
class RecordingStorage extends MemoryStorage<string> {
  readonly rounds: number[] = [];
  readonly indexes: number[] = [];
  override setPromise(ballot: Ballot): void {
    this.rounds.push(ballot.n);
    super.setPromise(ballot);
  }
  override setAcceptedRound(ballot: Ballot): void {
    this.rounds.push(ballot.n);
    super.setAcceptedRound(ballot);
  }
  override setBallotRound(round: number): void {
    this.rounds.push(round);
    super.setBallotRound(round);
  }
  override setDecidedIndex(index: number): void {
    this.indexes.push(index);
    super.setDecidedIndex(index);
  }
}

function cluster(size = 3) {
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const nodes = new Map<NodeId, { node: SequencePaxos<string>; storage: RecordingStorage }>();
  for (const pid of ids) {
    const storage = new RecordingStorage();
    const node = new SequencePaxos<string>({
      pid,
      peers: ids.filter((p) => p !== pid),
      storage,
      config: { heartbeatTicks: 2, electionTimeoutTicks: 4, resendTicks: 5 },
    });
    nodes.set(pid, { node, storage });
  }
  /** Delivers every queued message (FIFO, no loss) until the outboxes are empty. */
  const deliver = () => {
    for (let guard = 0; guard < 10_000; guard++) {
      let moved = false;
      for (const [from, { node }] of nodes) {
        for (const m of node.drainOutbox()) {
          moved = true;
          nodes.get(m.to)?.node.handle(from, m.message);
        }
      }
      if (!moved) return;
    }
    throw new Error('messages never settled');
  };
  const step = (ticks: number) => {
    for (let i = 0; i < ticks; i++) {
      for (const { node } of nodes.values()) node.tick();
      deliver();
    }
  };
  const leader = () => [...nodes.values()].find((x) => x.node.role === 'leader')?.node;
  return { nodes, deliver, step, leader };
}

describe('validatePaxosMessage', () => {
  const prepare = (n: Ballot, over: Partial<Record<string, unknown>> = {}) => ({
    type: 'Prepare',
    n,
    decidedIndex: 0,
    acceptedRound: b(0, 0),
    logLength: 0,
    ...over,
  });

  it('accepts rounds and indexes at their bounds', () => {
    expect(validatePaxosMessage(2, prepare(b(MAX_ROUND))).ok).toBe(true);
    expect(
      validatePaxosMessage(2, prepare(b(1), { decidedIndex: MAX_LOG_INDEX, logLength: MAX_LOG_INDEX })).ok,
    ).toBe(true);
    expect(
      validatePaxosMessage(2, {
        type: 'Accept',
        n: b(1),
        start: MAX_LOG_INDEX - 2,
        entries: ['a', 'b'],
        decidedIndex: 0,
      }).ok,
    ).toBe(true);
  });

  it.each([
    ['a round one past MAX_ROUND', prepare(b(MAX_ROUND + 1))],
    ['the round of the attack (2^53 - 1)', prepare(b(Number.MAX_SAFE_INTEGER))],
    ['an accepted round past MAX_ROUND', prepare(b(1), { acceptedRound: b(MAX_ROUND + 1, 3) })],
    ['a log length past MAX_LOG_INDEX', prepare(b(1), { logLength: MAX_LOG_INDEX + 1 })],
    ['a decided index past MAX_LOG_INDEX', { type: 'Decide', n: b(1), decidedIndex: MAX_LOG_INDEX + 1 }],
    ['a heartbeat round past MAX_ROUND', { type: 'HeartbeatRequest', round: MAX_ROUND + 1 }],
    [
      'a heartbeat reply naming a leader past MAX_ROUND',
      { type: 'HeartbeatReply', round: 1, ballot: b(1), quorumConnected: true, leader: b(MAX_ROUND + 1, 3) },
    ],
    [
      'entries that would end past MAX_LOG_INDEX',
      { type: 'Accept', n: b(1), start: MAX_LOG_INDEX - 1, entries: ['a', 'b'], decidedIndex: 0 },
    ],
    [
      'a snapshot index past MAX_LOG_INDEX',
      {
        type: 'AcceptSync',
        n: b(1),
        syncIndex: 0,
        entries: [],
        snapshot: { index: MAX_LOG_INDEX + 1, data: new Uint8Array(1) },
        decidedIndex: 0,
      },
    ],
    ['a Nack promising past MAX_ROUND', { type: 'Nack', n: b(1), promise: b(MAX_ROUND + 1, 3) }],
  ])('refuses %s as out-of-bounds (and isPaxosMessage agrees)', (_what, m) => {
    const v = validatePaxosMessage(2, m);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.problem).toBe('out-of-bounds');
    expect(isPaxosMessage(m)).toBe(false);
  });

  it('refuses a leader message or a heartbeat reply that speaks for another replica', () => {
    for (const m of [
      prepare(b(5, 3)),
      { type: 'Accept', n: b(5, 3), start: 0, entries: [], decidedIndex: 0 },
      { type: 'Decide', n: b(5, 3), decidedIndex: 0 },
      { type: 'HeartbeatReply', round: 1, ballot: b(5, 3), quorumConnected: true, leader: b(0, 0) },
    ]) {
      const v = validatePaxosMessage(2, m);
      expect(v).toMatchObject({ ok: false, problem: 'sender-mismatch' });
      expect(validatePaxosMessage(3, m).ok).toBe(true);
    }
  });

  it('refuses malformed input without throwing', () => {
    for (const m of [null, 7, 'Prepare', {}, { type: 'Prepare' }, { type: 'Nope' }, prepare(b(-1))]) {
      expect(validatePaxosMessage(2, m)).toMatchObject({ ok: false, problem: 'malformed' });
    }
  });
});

describe('a replica under a forged maximum ballot', () => {
  it('drops a Prepare whose round is past MAX_ROUND: nothing is promised or persisted', () => {
    const c = cluster();
    c.step(40);
    const leader = c.leader();
    expect(leader).toBeDefined();
    const follower = [...c.nodes.values()].find((x) => x.node !== leader)!;
    const before = follower.storage.getPromise();
    const forged: PaxosMessage<string> = {
      type: 'Prepare',
      n: { n: Number.MAX_SAFE_INTEGER, pid: leader!.pid },
      decidedIndex: 0,
      acceptedRound: { n: 0, pid: 0 },
      logLength: 0,
    };
    follower.node.handle(leader!.pid, forged);
    expect(follower.storage.getPromise()).toEqual(before);
    expect(follower.node.drainOutbox().filter((m) => m.message.type === 'Promise')).toEqual([]);
  });

  it('never persists a round past MAX_ROUND, even after promising a ballot at the bound', () => {
    const c = cluster();
    c.step(40);
    const leader = c.leader()!;
    const followers = [...c.nodes.values()].filter((x) => x.node !== leader);
    // The strongest forgery the bounds let through: a Prepare at MAX_ROUND, in the name of the leader.
    for (const f of followers) {
      f.node.handle(leader.pid, {
        type: 'Prepare',
        n: { n: MAX_ROUND, pid: leader.pid },
        decidedIndex: 0,
        acceptedRound: { n: 0, pid: 0 },
        logLength: 0,
      });
    }
    c.deliver();
    c.step(200);
    for (const { storage } of c.nodes.values()) {
      expect(Math.max(...storage.rounds)).toBeLessThanOrEqual(MAX_ROUND);
      for (const r of storage.rounds) expect(Number.isSafeInteger(r)).toBe(true);
      expect(storage.getBallotRound()).toBeLessThanOrEqual(MAX_ROUND);
    }
  });

  it('keeps electing leaders under normal operation (bounds do not get in the way)', () => {
    const c = cluster(5);
    c.step(60);
    expect(c.leader()).toBeDefined();
  });
});
