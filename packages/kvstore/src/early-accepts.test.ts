import type { Ballot, OutgoingReconfigMessage, PaxosMessage } from '@paxkv/paxos';
import { describe, expect, it } from 'vitest';
import type { KvCommand } from './command.js';
import { EarlyAccepts } from './early-accepts.js';

type Out = OutgoingReconfigMessage<KvCommand>;
const n: Ballot = { n: 3, pid: 1 } as unknown as Ballot;

function paxos(to: number, msg: PaxosMessage<never>, config = 0): Out {
  return { to, message: { type: 'Paxos', config, msg } } as Out;
}
const accept = (to: number, start: number, decidedIndex: number, config = 0) =>
  paxos(to, { type: 'Accept', n, start, entries: [], decidedIndex }, config);
const decide = (to: number, decidedIndex: number) => paxos(to, { type: 'Decide', n, decidedIndex });
const sync = (to: number) =>
  paxos(to, { type: 'AcceptSync', n, syncIndex: 0, entries: [], snapshot: null, decidedIndex: 0 });

function summary(out: readonly Out[]): string[] {
  return out.map((m) => {
    const msg = m.message.type === 'Paxos' ? m.message.msg : undefined;
    return `${m.to}:${msg?.type}:${msg && 'decidedIndex' in msg ? msg.decidedIndex : ''}`;
  });
}

describe('EarlyAccepts', () => {
  it('sends Accepts unchanged when every earlier write is durable, and remembers the index as safe', () => {
    const g = new EarlyAccepts();
    const s = g.split([accept(2, 0, 5), accept(3, 0, 5)], true);
    expect(summary(s.early)).toEqual(['2:Accept:5', '3:Accept:5']);
    expect(s.late.out).toEqual([]);
    expect(g.safeDecided(0)).toBe(5);
    expect(g.released(s.late)).toEqual([]);
  });

  it("clamps an Accept's decided index to the safe one while a flush is pending, and owes the rest as a Decide", () => {
    const g = new EarlyAccepts();
    g.split([accept(2, 0, 4)], true);
    const a = g.split([accept(2, 10, 9)], false);
    expect(summary(a.early)).toEqual(['2:Accept:4']);
    const b = g.split([accept(2, 12, 11)], false);
    expect(summary(b.early)).toEqual(['2:Accept:4']);
    // The first pump's Decide is superseded by the second pump's: only the last one is sent.
    expect(summary(g.released(a.late))).toEqual([]);
    expect(g.safeDecided(0)).toBe(9);
    expect(summary(g.released(b.late))).toEqual(['2:Decide:11']);
    expect(g.safeDecided(0)).toBe(11);
  });

  it('the mutation keeps the unsafe decided index', () => {
    const g = new EarlyAccepts(true);
    expect(summary(g.split([accept(2, 10, 9)], false).early)).toEqual(['2:Accept:9']);
  });

  it('never lets an Accept overtake a message to the same peer that waits for a flush', () => {
    const g = new EarlyAccepts();
    const a = g.split([sync(2), accept(2, 5, 0), accept(3, 5, 0)], true);
    // Within the pump: the Accept to 2 follows the AcceptSync; the one to 3 goes at once.
    expect(summary(a.early)).toEqual(['3:Accept:0']);
    expect(summary(a.late.out)).toEqual(['2:AcceptSync:0', '2:Accept:0']);
    // A later pump before that flush: still blocked for 2.
    const b = g.split([accept(2, 6, 0), accept(3, 6, 0)], false);
    expect(summary(b.early)).toEqual(['3:Accept:0']);
    expect(g.isBlocked(2)).toBe(true);
    g.released(a.late);
    expect(g.isBlocked(2)).toBe(true);
    g.released(b.late);
    expect(g.isBlocked(2)).toBe(false);
    expect(summary(g.split([accept(2, 7, 0)], false).early)).toEqual(['2:Accept:0']);
  });

  it('a Decide does not block the link; a heartbeat does', () => {
    const g = new EarlyAccepts();
    const a = g.split([decide(2, 3), accept(2, 5, 3)], false);
    expect(summary(a.early)).toEqual(['2:Accept:0']);
    expect(g.isBlocked(2)).toBe(false);
    expect(summary(g.released(a.late))).toEqual(['2:Decide:3', '2:Decide:3']);
    const hb = paxos(2, { type: 'HeartbeatRequest', round: 1 } as unknown as PaxosMessage<never>);
    const b = g.split([hb, accept(2, 6, 3)], false);
    expect(b.early).toEqual([]);
    expect(g.isBlocked(2)).toBe(true);
  });

  it('sends a Decide early when every earlier write is durable, or when it announces an index already safe', () => {
    const g = new EarlyAccepts();
    // No earlier release pending: its index counts only entries whose flushes are done.
    const a = g.split([decide(2, 4), decide(3, 4)], true);
    expect(summary(a.early)).toEqual(['2:Decide:4', '3:Decide:4']);
    expect(g.safeDecided(0)).toBe(4);
    // A flush pending: an index above the safe one may count the leader's unsynced copy, so it waits.
    const b = g.split([decide(2, 6), decide(3, 4)], false);
    expect(summary(b.early)).toEqual(['3:Decide:4']);
    expect(summary(b.late.out)).toEqual(['2:Decide:6']);
    expect(g.isBlocked(2)).toBe(false);
    expect(summary(g.released(b.late))).toEqual(['2:Decide:6']);
    expect(g.safeDecided(0)).toBe(6);
  });

  it('the mutation sends every Decide early', () => {
    const g = new EarlyAccepts(false, true);
    expect(summary(g.split([decide(2, 6)], false).early)).toEqual(['2:Decide:6']);
  });

  it('keeps the safe index per configuration', () => {
    const g = new EarlyAccepts();
    g.split([accept(2, 0, 7, 1)], true);
    expect(g.safeDecided(1)).toBe(7);
    expect(g.safeDecided(2)).toBe(0);
    expect(summary(g.split([accept(2, 0, 3, 2)], false).early)).toEqual(['2:Accept:0']);
  });
});
