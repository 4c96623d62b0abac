/**
 * Table tests per message handler. Each block cites the protocol step of DESIGN.md's "Sequence Paxos
 * in one page" (and its pitfalls list) that it checks.
 */
import { describe, expect, it } from 'vitest';
import type { Ballot, NodeId } from './ballot.js';
import type { PaxosConfig } from './config.js';
import { NoLeaderError, NotLeaderError } from './errors.js';
import type { PaxosMessage, PromiseMessage } from './messages.js';
import { SequencePaxos } from './sequence-paxos.js';
import type { LogEntry } from './stop-sign.js';
import { MemoryStorage } from './storage.js';

type Msg = PaxosMessage<LogEntry<string>>;

function mk(
  pid: NodeId = 1,
  opts: {
    peers?: NodeId[];
    storage?: MemoryStorage<string>;
    config?: Partial<PaxosConfig>;
    entryBytes?: (entry: LogEntry<string>) => number;
  } = {},
) {
  const storage = opts.storage ?? new MemoryStorage<string>();
  const node = new SequencePaxos<string>({
    pid,
    peers: opts.peers ?? [1, 2, 3].filter((p) => p !== pid),
    storage,
    config: { heartbeatTicks: 2, electionTimeoutTicks: 4, resendTicks: 5, ...(opts.config ?? {}) },
    ...(opts.entryBytes ? { entryBytes: opts.entryBytes } : {}),
  });
  return { node, storage };
}

/** Drains the outbox without BLE traffic. */
function out(node: SequencePaxos<string>): Array<{ to: NodeId; message: Msg }> {
  return node.drainOutbox().filter((m) => !m.message.type.startsWith('Heartbeat'));
}

/** Runs BLE rounds where every peer answers "not quorum-connected", so `node` elects itself. */
function electSelf(node: SequencePaxos<string>): Array<{ to: NodeId; message: Msg }> {
  const sent: Array<{ to: NodeId; message: Msg }> = [];
  const leading = (): boolean => node.role === 'leader';
  for (let i = 0; i < 50 && !leading(); i++) {
    for (const m of node.drainOutbox()) {
      if (m.message.type === 'HeartbeatRequest') {
        node.handle(m.to, {
          type: 'HeartbeatReply',
          round: m.message.round,
          ballot: { n: 0, pid: m.to },
          quorumConnected: false,
          leader: { n: 0, pid: 0 },
        });
      } else sent.push(m);
    }
    if (!leading()) node.tick();
  }
  expect(node.role).toBe('leader');
  return [...sent, ...out(node)];
}

function promise(n: Ballot, over: Partial<PromiseMessage<string>> = {}): PromiseMessage<string> {
  return {
    type: 'Promise',
    n,
    acceptedRound: { n: 0, pid: 0 },
    logLength: 0,
    decidedIndex: 0,
    suffixStart: 0,
    suffix: [],
    snapshot: null,
    ...over,
  };
}

/** A leader (pid 1, peers 2 and 3) in the accept phase of its ballot, with follower 2 promised. */
function leaderInAccept(entries: string[] = [], opts: Parameters<typeof mk>[1] = {}) {
  const { node, storage } = mk(1, opts);
  storage.appendEntries(entries);
  const prepares = electSelf(node);
  expect(prepares.filter((m) => m.message.type === 'Prepare').map((m) => m.to)).toEqual([2, 3]);
  const n = node.ballot;
  node.handle(2, promise(n, { acceptedRound: { n: 0, pid: 0 }, logLength: 0 }));
  expect(node.phase).toBe('accept');
  return { node, storage, n };
}

/** A follower (pid 2) that promised and synced with leader 1 at ballot `n`. */
function followerInAccept(n: Ballot = { n: 1, pid: 1 }, entries: string[] = []) {
  const { node, storage } = mk(2);
  node.handle(1, { type: 'Prepare', n, decidedIndex: 0, acceptedRound: { n: 0, pid: 0 }, logLength: 0 });
  node.handle(1, { type: 'AcceptSync', n, syncIndex: 0, entries, snapshot: null, decidedIndex: 0 });
  expect(node.phase).toBe('accept');
  out(node);
  return { node, storage, n };
}

describe('Prepare → Promise (prepare phase, follower side)', () => {
  const b = (n: number, pid: number): Ballot => ({ n, pid });
  it.each([
    {
      name: 'follower accepted a higher ballot: suffix from the leader decided index',
      acc: b(3, 3),
      log: ['a', 'b', 'c', 'd'],
      prep: { decidedIndex: 1, acceptedRound: b(2, 2), logLength: 9 },
      want: { suffixStart: 1, suffix: ['b', 'c', 'd'] },
    },
    {
      name: 'same accepted ballot, longer log: suffix from the leader log length',
      acc: b(2, 2),
      log: ['a', 'b', 'c', 'd'],
      prep: { decidedIndex: 0, acceptedRound: b(2, 2), logLength: 2 },
      want: { suffixStart: 2, suffix: ['c', 'd'] },
    },
    {
      name: 'leader is more up to date: empty suffix',
      acc: b(1, 1),
      log: ['a', 'b'],
      prep: { decidedIndex: 0, acceptedRound: b(2, 2), logLength: 1 },
      want: { suffixStart: 2, suffix: [] },
    },
  ])('$name', ({ acc, log, prep, want }) => {
    const storage = new MemoryStorage<string>();
    storage.setPromise(acc);
    storage.setAcceptedRound(acc);
    storage.appendEntries(log);
    const { node } = mk(2, { storage });
    const n = b(5, 1);
    node.handle(1, { type: 'Prepare', n, ...prep });
    // Persistence order: the promise is in storage before the Promise message is drained.
    expect(storage.getPromise()).toEqual(n);
    const [m] = out(node);
    expect(m?.to).toBe(1);
    expect(m?.message).toMatchObject({
      type: 'Promise',
      n,
      acceptedRound: acc,
      logLength: log.length,
      ...want,
    });
    expect(node.phase).toBe('prepare');
    expect(node.leader).toBe(1);
  });

  it('sends the snapshot when the suffix the leader needs is compacted', () => {
    const storage = new MemoryStorage<string>();
    storage.setPromise(b(3, 3));
    storage.setAcceptedRound(b(3, 3));
    storage.appendEntries(['a', 'b', 'c', 'd']);
    storage.setDecidedIndex(3);
    storage.setSnapshot({ index: 2, data: new Uint8Array([9]) });
    const { node } = mk(2, { storage });
    node.handle(1, { type: 'Prepare', n: b(5, 1), decidedIndex: 0, acceptedRound: b(1, 1), logLength: 0 });
    const [m] = out(node);
    expect(m?.message).toMatchObject({
      type: 'Promise',
      suffixStart: 2,
      suffix: ['c', 'd'],
      snapshot: { index: 2 },
    });
  });

  it('rejects a Prepare below its promise with a Nack, state unchanged', () => {
    const storage = new MemoryStorage<string>();
    storage.setPromise(b(4, 3));
    const { node } = mk(2, { storage });
    node.handle(1, { type: 'Prepare', n: b(3, 1), decidedIndex: 0, acceptedRound: b(0, 0), logLength: 0 });
    expect(out(node)).toEqual([{ to: 1, message: { type: 'Nack', n: b(3, 1), promise: b(4, 3) } }]);
    expect(storage.getPromise()).toEqual(b(4, 3));
    expect(node.phase).toBe('none');
  });

  it('ignores a Prepare whose ballot is not the sender’s', () => {
    const { node, storage } = mk(2);
    node.handle(1, { type: 'Prepare', n: b(3, 3), decidedIndex: 0, acceptedRound: b(0, 0), logLength: 0 });
    expect(out(node)).toEqual([]);
    expect(storage.getPromise()).toEqual(b(0, 0));
  });
});

describe('AcceptSync (prepare phase → accept phase, follower side)', () => {
  it('pitfall: after AcceptSync the follower log is exactly the leader prefix (it truncates its own suffix)', () => {
    const storage = new MemoryStorage<string>();
    storage.setPromise({ n: 1, pid: 3 });
    storage.setAcceptedRound({ n: 1, pid: 3 });
    storage.appendEntries(['a', 'b', 'x', 'y', 'z']);
    storage.setDecidedIndex(2);
    const { node } = mk(2, { storage });
    const n = { n: 2, pid: 1 };
    node.handle(1, { type: 'Prepare', n, decidedIndex: 2, acceptedRound: { n: 1, pid: 1 }, logLength: 3 });
    out(node);
    node.handle(1, { type: 'AcceptSync', n, syncIndex: 2, entries: ['c'], snapshot: null, decidedIndex: 2 });
    expect(storage.getEntries(0, storage.getLogLength())).toEqual(['a', 'b', 'c']);
    expect(storage.getAcceptedRound()).toEqual(n);
    expect(out(node)).toEqual([{ to: 1, message: { type: 'Accepted', n, logLength: 3 } }]);
  });

  it('never truncates decided entries, even if asked to sync from below them', () => {
    const storage = new MemoryStorage<string>();
    storage.appendEntries(['a', 'b', 'c']);
    storage.setDecidedIndex(3);
    const { node } = mk(2, { storage });
    const n = { n: 2, pid: 1 };
    node.handle(1, { type: 'Prepare', n, decidedIndex: 0, acceptedRound: { n: 0, pid: 0 }, logLength: 0 });
    node.handle(1, {
      type: 'AcceptSync',
      n,
      syncIndex: 1,
      entries: ['b', 'c', 'd'],
      snapshot: null,
      decidedIndex: 0,
    });
    expect(storage.getEntries(0, 4)).toEqual(['a', 'b', 'c', 'd']);
    expect(storage.getDecidedIndex()).toBe(3);
  });

  it('regression: a second AcceptSync of the same ballot never shrinks the log (sent Accepted stay true)', () => {
    const { node, storage, n } = followerInAccept({ n: 1, pid: 1 }, ['a']);
    node.handle(1, { type: 'Accept', n, start: 1, entries: ['b', 'c'], decidedIndex: 0 });
    expect(out(node)).toEqual([{ to: 1, message: { type: 'Accepted', n, logLength: 3 } }]);
    // A stale duplicate of the first AcceptSync arrives.
    node.handle(1, { type: 'AcceptSync', n, syncIndex: 0, entries: ['a'], snapshot: null, decidedIndex: 0 });
    expect(storage.getLogLength()).toBe(3);
  });

  it('installs a snapshot and reports it as a decided item', () => {
    const { node } = mk(2);
    const n = { n: 1, pid: 1 };
    node.handle(1, { type: 'Prepare', n, decidedIndex: 5, acceptedRound: n, logLength: 6 });
    const snap = { index: 5, data: new Uint8Array([7]) };
    node.handle(1, { type: 'AcceptSync', n, syncIndex: 5, entries: ['f'], snapshot: snap, decidedIndex: 6 });
    expect(node.drainDecided()).toEqual([
      { kind: 'snapshot', index: 5, data: snap.data },
      { kind: 'entry', index: 5, entry: 'f' },
    ]);
    expect(node.compactedIndex).toBe(5);
  });

  it('ignores an AcceptSync of a ballot it did not promise', () => {
    const { node, storage } = followerInAccept({ n: 2, pid: 1 }, ['a']);
    node.handle(3, {
      type: 'AcceptSync',
      n: { n: 1, pid: 3 },
      syncIndex: 0,
      entries: ['q'],
      snapshot: null,
      decidedIndex: 1,
    });
    expect(storage.getEntries(0, 1)).toEqual(['a']);
    expect(out(node).map((m) => m.message.type)).toEqual(['Nack']);
  });
});

describe('Accept → Accepted (accept phase, follower side)', () => {
  it.each([
    {
      name: 'appends a contiguous batch',
      start: 1,
      entries: ['b', 'c'],
      log: ['a', 'b', 'c'],
      reply: 'Accepted',
    },
    {
      name: 'skips the overlap of a resent batch',
      start: 0,
      entries: ['a', 'b'],
      log: ['a', 'b'],
      reply: 'Accepted',
    },
    { name: 'asks for a re-sync on a gap', start: 3, entries: ['d'], log: ['a'], reply: 'PrepareReq' },
  ])('$name', ({ start, entries, log, reply }) => {
    const { node, storage, n } = followerInAccept({ n: 1, pid: 1 }, ['a']);
    node.handle(1, { type: 'Accept', n, start, entries, decidedIndex: 0 });
    expect(storage.getEntries(0, storage.getLogLength())).toEqual(log);
    expect(out(node).map((m) => m.message.type)).toEqual([reply]);
  });

  it('persistence order: the entries are in storage before the Accepted message is drained', () => {
    const { node, storage, n } = followerInAccept();
    node.handle(1, { type: 'Accept', n, start: 0, entries: ['a'], decidedIndex: 0 });
    expect(storage.getLogLength()).toBe(1);
    expect(out(node)[0]?.message).toEqual({ type: 'Accepted', n, logLength: 1 });
  });

  it('pitfall: ignores Accept from a ballot other than the promised one', () => {
    const { node, storage } = followerInAccept({ n: 2, pid: 1 });
    node.handle(3, { type: 'Accept', n: { n: 1, pid: 3 }, start: 0, entries: ['old'], decidedIndex: 1 });
    expect(storage.getLogLength()).toBe(0);
    // The stale leader is told, so it steps down instead of waiting for a quorum it cannot get.
    expect(out(node)).toEqual([
      { to: 3, message: { type: 'Nack', n: { n: 1, pid: 3 }, promise: { n: 2, pid: 1 } } },
    ]);
  });
});

describe('Decide (accept phase, follower side)', () => {
  it('pitfall: applies Decide only for the promised ballot, bounded by its log', () => {
    const { node, n } = followerInAccept({ n: 2, pid: 1 }, ['a', 'b']);
    node.handle(3, { type: 'Decide', n: { n: 1, pid: 3 }, decidedIndex: 2 });
    expect(node.decidedIndex).toBe(0);
    node.handle(1, { type: 'Decide', n, decidedIndex: 9 });
    expect(node.decidedIndex).toBe(2);
    expect(node.drainDecided().map((d) => (d.kind === 'entry' ? d.entry : '?'))).toEqual(['a', 'b']);
  });
});

describe('leader: Promise, Accepted, Decide', () => {
  it('adopts the most up-to-date log: higher accepted ballot beats a longer log', () => {
    const { node, storage } = mk(1);
    storage.appendEntries(['l1', 'l2', 'l3', 'l4']);
    electSelf(node);
    const n = node.ballot;
    node.handle(
      2,
      promise(n, { acceptedRound: { n: 0, pid: 3 }, logLength: 2, suffixStart: 0, suffix: ['p1', 'p2'] }),
    );
    expect(node.phase).toBe('accept');
    expect(storage.getEntries(0, storage.getLogLength())).toEqual(['p1', 'p2']);
    const [sync] = out(node);
    expect(sync?.message).toMatchObject({ type: 'AcceptSync', n, syncIndex: 2, entries: [] });
  });

  it('decides only with a majority of Accepted for its own ballot (pitfall: stale Accepted ignored)', () => {
    const { node, n } = leaderInAccept();
    node.propose('x');
    out(node);
    expect(node.decidedIndex).toBe(0);
    node.handle(2, { type: 'Accepted', n: { n: n.n + 1, pid: 2 }, logLength: 1 }); // another ballot
    expect(node.decidedIndex).toBe(0);
    node.handle(2, { type: 'Accepted', n, logLength: 1 });
    expect(node.decidedIndex).toBe(1);
    expect(out(node)).toContainEqual({ to: 2, message: { type: 'Decide', n, decidedIndex: 1 } });
  });

  it('a promise that arrives in the accept phase gets its own AcceptSync', () => {
    const { node, n } = leaderInAccept(['a', 'b']);
    out(node);
    node.handle(3, promise(n, { acceptedRound: { n: 0, pid: 0 }, logLength: 0 }));
    const msgs = out(node);
    expect(msgs).toEqual([
      {
        to: 3,
        message: {
          type: 'AcceptSync',
          n,
          syncIndex: 0,
          entries: ['a', 'b'],
          snapshot: null,
          decidedIndex: 0,
        },
      },
    ]);
  });

  it('batches proposals into one Accept per follower', () => {
    const { node } = leaderInAccept();
    out(node);
    for (const c of ['a', 'b', 'c']) node.propose(c);
    const accepts = out(node).filter((m) => m.message.type === 'Accept');
    expect(accepts).toHaveLength(1);
    expect(accepts[0]?.message).toMatchObject({ start: 0, entries: ['a', 'b', 'c'] });
  });

  it('cuts Accept batches at maxBatchBytes by entryBytes; an entry over the budget goes alone', () => {
    const sized = { entryBytes: (e: LogEntry<string>) => (typeof e === 'string' ? e.length : 32) };
    const { node } = leaderInAccept([], { ...sized, config: { maxBatchBytes: 10 } });
    out(node);
    for (const c of ['aaaa', 'bbbb', 'cc', 'd'.repeat(16), 'e', 'ffffffff', 'ggg']) node.propose(c);
    const accepts = out(node).filter((m) => m.message.type === 'Accept' && m.to === 2);
    expect(accepts.map((m) => m.message)).toEqual([
      expect.objectContaining({ start: 0, entries: ['aaaa', 'bbbb', 'cc'] }),
      expect.objectContaining({ start: 3, entries: ['d'.repeat(16)] }),
      expect.objectContaining({ start: 4, entries: ['e', 'ffffffff'] }),
      expect.objectContaining({ start: 6, entries: ['ggg'] }),
    ]);
  });

  it.each([
    ['NaN', Number.NaN],
    ['a negative size', -100],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('a sizer that returns %s puts that entry alone instead of lifting the budget', (_, bad) => {
    const sized = { entryBytes: (e: LogEntry<string>) => (e === 'bad' ? bad : 1) };
    const { node } = leaderInAccept([], { ...sized, config: { maxBatchBytes: 10 } });
    out(node);
    for (const c of ['a', 'b', 'bad', 'c', 'd']) node.propose(c);
    const accepts = out(node).filter((m) => m.message.type === 'Accept' && m.to === 2);
    expect(accepts.map((m) => m.message)).toEqual([
      expect.objectContaining({ start: 0, entries: ['a', 'b'] }),
      expect.objectContaining({ start: 2, entries: ['bad'] }),
      expect.objectContaining({ start: 3, entries: ['c', 'd'] }),
    ]);
  });

  it('an AcceptSync carries the adopted log whole, whatever its size, and the rest follows in sized Accepts', () => {
    const sized = { entryBytes: (e: LogEntry<string>) => (typeof e === 'string' ? e.length : 32) };
    const { node, n } = leaderInAccept(['x'.repeat(8), 'y'.repeat(8), 'z'.repeat(8)], {
      ...sized,
      config: { maxBatchBytes: 10 },
    });
    node.propose('p1');
    node.propose('p2');
    out(node);
    node.handle(3, promise(n, { acceptedRound: { n: 0, pid: 0 }, logLength: 0 }));
    expect(out(node).map((m) => m.message)).toEqual([
      expect.objectContaining({
        type: 'AcceptSync',
        syncIndex: 0,
        entries: ['x'.repeat(8), 'y'.repeat(8), 'z'.repeat(8)],
      }),
      expect.objectContaining({ type: 'Accept', start: 3, entries: ['p1', 'p2'] }),
    ]);
  });

  it('re-prepares a follower that asks with PrepareReq, and one whose session came back', () => {
    const { node, n } = leaderInAccept();
    out(node);
    node.handle(2, { type: 'PrepareReq', n });
    expect(out(node).map((m) => [m.to, m.message.type])).toEqual([[2, 'Prepare']]);
    node.reconnected(3);
    expect(out(node).map((m) => [m.to, m.message.type])).toEqual([[3, 'Prepare']]);
  });

  it('steps down on a Nack (a replica promised a higher ballot) and adopts that promise', () => {
    const { node, storage, n } = leaderInAccept();
    node.readIndex(5);
    const higher = { n: n.n + 7, pid: 3 };
    node.handle(2, { type: 'Nack', n: { n: n.n, pid: 2 }, promise: higher }); // names another ballot: ignored
    expect(node.role).toBe('leader');
    node.handle(2, { type: 'Nack', n, promise: higher });
    expect(node.role as string).toBe('follower');
    expect(storage.getPromise()).toEqual(higher);
    expect(node.drainReads()).toEqual([{ token: 5, error: expect.any(NotLeaderError) }]);
  });

  it('steps down on a Prepare of a higher ballot, failing pending reads', () => {
    const { node } = leaderInAccept();
    node.readIndex(7);
    node.handle(3, {
      type: 'Prepare',
      n: { n: 99, pid: 3 },
      decidedIndex: 0,
      acceptedRound: { n: 0, pid: 0 },
      logLength: 0,
    });
    expect(node.role).toBe('follower');
    const [r] = node.drainReads();
    expect(r && 'error' in r && r.error).toBeInstanceOf(NotLeaderError);
    expect(r && 'error' in r && r.error.leaderHint).toBe(3);
  });
});

describe('follower: forwarding and re-sync', () => {
  it('forwards proposals to the leader it follows', () => {
    const { node } = followerInAccept();
    node.propose('p');
    expect(out(node)).toEqual([{ to: 1, message: { type: 'Forward', entries: ['p'] } }]);
  });
  it('rejects a proposal with NoLeaderError when no leader is known', () => {
    const { node } = mk(2);
    expect(() => node.propose('p')).toThrow(NoLeaderError);
  });
  it('rejects readIndex off the leader with NotLeaderError carrying the hint', () => {
    const { node } = followerInAccept();
    expect(() => node.readIndex(1)).toThrow(NotLeaderError);
    try {
      node.readIndex(1);
    } catch (e) {
      expect((e as NotLeaderError).leaderHint).toBe(1);
    }
  });
  it('sends PrepareReq to its leader when the session comes back', () => {
    const { node, n } = followerInAccept();
    node.reconnected(1);
    expect(out(node)).toEqual([{ to: 1, message: { type: 'PrepareReq', n } }]);
  });
  it('ignores malformed messages and unknown senders without throwing', () => {
    const { node, storage } = followerInAccept();
    for (const bad of [null, 7, {}, { type: 'Accept' }, { type: 'Accept', n: 1, start: 0, entries: [] }]) {
      expect(() => node.handle(1, bad as never)).not.toThrow();
    }
    node.handle(9, { type: 'Accept', n: { n: 1, pid: 9 }, start: 0, entries: ['x'], decidedIndex: 0 });
    expect(storage.getLogLength()).toBe(0);
  });
});

describe('read index', () => {
  it('batches pending reads into one quorum round and reports the index', () => {
    const { node, n } = leaderInAccept(['a', 'b']);
    out(node);
    node.readIndex(1);
    node.readIndex(2);
    const reqs = out(node).filter((m) => m.message.type === 'ReadIndexRequest');
    expect(reqs.map((m) => m.to)).toEqual([2, 3]);
    const round = (reqs[0]!.message as { round: number }).round;
    node.handle(3, { type: 'ReadIndexReply', n, round });
    // The adopted log (2 entries) may hold writes decided by an earlier leader: the read waits for them.
    expect(node.drainReads()).toEqual([
      { token: 1, index: 2 },
      { token: 2, index: 2 },
    ]);
  });
  it('asks first only the peer that answered the last round first, and the others when it is slow', () => {
    const { node, n } = leaderInAccept();
    out(node);
    const round = (): { to: NodeId[]; id: number } => {
      const reqs = out(node).filter((m) => m.message.type === 'ReadIndexRequest');
      return {
        to: reqs.map((m) => m.to),
        id: (reqs[0]?.message as { round: number } | undefined)?.round ?? -1,
      };
    };
    // A new leader asks everyone; peer 3 answers first.
    node.readIndex(1);
    const r1 = round();
    expect(r1.to).toEqual([2, 3]);
    node.handle(3, { type: 'ReadIndexReply', n, round: r1.id });
    node.handle(2, { type: 'ReadIndexReply', n, round: r1.id });
    expect(node.drainReads()).toEqual([{ token: 1, index: 0 }]);
    // The next round asks peer 3 only (one answer is all a majority of 3 needs).
    node.readIndex(2);
    const r2 = round();
    expect(r2.to).toEqual([3]);
    node.handle(3, { type: 'ReadIndexReply', n, round: r2.id });
    expect(node.drainReads()).toEqual([{ token: 2, index: 0 }]);
    // Peer 3 stays silent: after readFallbackTicks (2) peer 2 is asked too, and its answer completes the round.
    node.readIndex(3);
    expect(round().to).toEqual([3]);
    node.tick();
    expect(round().to).toEqual([]);
    node.tick();
    const r3w = round();
    expect(r3w.to).toEqual([2]);
    node.handle(2, { type: 'ReadIndexReply', n, round: r3w.id });
    expect(node.drainReads()).toEqual([{ token: 3, index: 0 }]);
    // Peer 2 answered first, so it is asked first; when its session breaks, peer 3 is asked at once.
    node.readIndex(4);
    const r4 = round();
    expect(r4.to).toEqual([2]);
    node.disconnected(2);
    expect(round().to).toEqual([3]);
    node.handle(3, { type: 'ReadIndexReply', n, round: r4.id });
    expect(node.drainReads()).toEqual([{ token: 4, index: 0 }]);
  });
  it('asks every peer at once with readFallbackTicks 0', () => {
    const { node, storage } = mk(1, { config: { readFallbackTicks: 0 } });
    void storage;
    electSelf(node);
    const n = node.ballot;
    node.handle(2, promise(n));
    out(node);
    for (let token = 1; token <= 3; token++) {
      node.readIndex(token);
      const reqs = out(node).filter((m) => m.message.type === 'ReadIndexRequest');
      expect(reqs.map((m) => m.to)).toEqual([2, 3]);
      node.handle(2, { type: 'ReadIndexReply', n, round: (reqs[0]!.message as { round: number }).round });
      expect(node.drainReads()).toEqual([{ token, index: 0 }]);
    }
  });
  it('ignores replies of another ballot', () => {
    const { node } = leaderInAccept();
    out(node);
    node.readIndex(1);
    const round = (out(node).find((m) => m.message.type === 'ReadIndexRequest')!.message as { round: number })
      .round;
    node.handle(3, { type: 'ReadIndexReply', n: { n: 0, pid: 3 }, round });
    expect(node.drainReads()).toEqual([]);
  });
});

describe('compaction', () => {
  it('refuses to compact beyond what was drained, and trims the log', () => {
    const { node, n } = leaderInAccept();
    node.propose('a');
    node.propose('b');
    out(node);
    node.handle(2, { type: 'Accepted', n, logLength: 2 });
    expect(() => node.compact(1, new Uint8Array())).toThrow(/drained/);
    expect(node.drainDecided()).toHaveLength(2);
    node.compact(2, new Uint8Array([1]));
    expect(node.compactedIndex).toBe(2);
    expect(node.logLength).toBe(2);
  });
});

describe('Ballot Leader Election', () => {
  it('pitfall: elects only quorum-connected candidates', () => {
    const { node } = mk(1);
    // Peer 3 has a higher ballot but is not quorum-connected; peer 2 is, with a lower ballot than 3.
    for (let i = 0; i < 3; i++) {
      for (const m of node.drainOutbox()) {
        if (m.message.type !== 'HeartbeatRequest') continue;
        const round = m.message.round;
        node.handle(m.to, {
          type: 'HeartbeatReply',
          round,
          ballot: { n: m.to === 3 ? 50 : 0, pid: m.to },
          quorumConnected: m.to === 2,
          leader: { n: 0, pid: 0 },
        });
      }
      node.tick();
      node.tick();
    }
    expect(node.leader).toBe(2);
  });

  it('pitfall: a replica ballot only grows, also across restarts', () => {
    const storage = new MemoryStorage<string>();
    const a = mk(1, { storage }).node;
    electSelf(a);
    const b1 = a.ballot;
    const b = mk(1, { storage }).node; // restart over the same storage
    electSelf(b);
    expect(b.ballot.n).toBeGreaterThan(b1.n);
    expect(storage.getBallotRound()).toBeGreaterThanOrEqual(b.ballot.n);
  });

  it('a single-replica group elects itself and decides alone', () => {
    const node = new SequencePaxos<string>({
      pid: 1,
      peers: [],
      storage: new MemoryStorage(),
      config: { heartbeatTicks: 1, electionTimeoutTicks: 1 },
    });
    node.tick();
    expect(node.role).toBe('leader');
    node.propose('solo');
    node.drainOutbox();
    expect(node.drainDecided()).toEqual([{ kind: 'entry', index: 0, entry: 'solo' }]);
  });
});

describe('restart recovery', () => {
  it('recovers promise, accepted ballot, log, decided index and snapshot, and replays decided items', () => {
    const { node, storage, n } = followerInAccept({ n: 1, pid: 1 }, ['a', 'b', 'c']);
    node.handle(1, { type: 'Decide', n, decidedIndex: 3 });
    node.drainDecided();
    node.compact(2, new Uint8Array([42]));
    const again = mk(2, { storage }).node;
    expect(again.ballot).toEqual(n);
    expect(again.acceptedRound).toEqual(n);
    expect(again.logLength).toBe(3);
    expect(again.decidedIndex).toBe(3);
    expect(again.drainDecided()).toEqual([
      { kind: 'snapshot', index: 2, data: new Uint8Array([42]) },
      { kind: 'entry', index: 2, entry: 'c' },
    ]);
    expect(again.phase).toBe('none');
  });
});
