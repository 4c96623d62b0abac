import { parsePeerMessage } from '@paxkv/common';
import { describe, expect, it } from 'vitest';
import { coalesce, fromBeat, toBeat } from './heartbeats.js';

const bareRequest = { type: 'HeartbeatRequest', round: 7 };
const bareReply = {
  type: 'HeartbeatReply',
  round: 7,
  ballot: { n: 3, pid: 2 },
  quorumConnected: true,
  leader: { n: 3, pid: 1 },
};
/** Groups speak reconfiguration envelopes; configuration 0's heartbeats are coalesced. */
const wrap = (msg: object, config = 0) => ({ type: 'Paxos', config, msg });
const request = wrap(bareRequest);
const reply = wrap(bareReply);

describe('coalesced heartbeats', () => {
  it('turn every known heartbeat into a tuple and back into the same message', () => {
    for (const [partition, msg] of [
      [0, request],
      [15, reply],
      [3, wrap({ ...bareReply, quorumConnected: false, leader: { n: 0, pid: 0 } })],
    ] as const) {
      const beat = toBeat(partition, msg);
      expect(beat).toBeDefined();
      expect(fromBeat(beat!)).toEqual({ partition, msg });
    }
  });

  it('leave any other shape alone, so that no field is ever lost', () => {
    expect(toBeat(0, wrap({ ...bareRequest, extra: 1 }))).toBeUndefined();
    expect(toBeat(0, wrap({ ...bareReply, ballot: { n: 1, pid: 1, x: 2 } }))).toBeUndefined();
    expect(toBeat(0, wrap({ ...bareReply, quorumConnected: 1 }))).toBeUndefined();
    expect(toBeat(0, wrap({ type: 'Prepare', round: 1 }))).toBeUndefined();
    expect(toBeat(0, wrap({ ...bareRequest, round: -1 }))).toBeUndefined();
    expect(toBeat(0, null)).toBeUndefined();
    // Another configuration (a tuple carries none), an envelope with extra fields, a bare message.
    expect(toBeat(0, wrap(bareRequest, 1))).toBeUndefined();
    expect(toBeat(0, { ...request, extra: 1 })).toBeUndefined();
    expect(toBeat(0, bareRequest)).toBeUndefined();
    expect(toBeat(0, bareReply)).toBeUndefined();
  });

  it('split a queue into beats and the other messages in their order, from two heartbeats on', () => {
    const accept = { partition: 1, msg: { type: 'Accept', n: { n: 1, pid: 1 } } };
    const decide = { partition: 2, msg: { type: 'Decide' } };
    const q = [{ partition: 1, msg: request }, accept, { partition: 2, msg: reply }, decide];
    const c = coalesce(q);
    expect(c.msgs).toEqual([accept, decide]);
    expect(c.beats).toEqual([
      [1, 7],
      [2, 7, 3, 2, 1, 3, 1],
    ]);
    expect(coalesce([{ partition: 1, msg: request }, accept])).toEqual({
      msgs: [{ partition: 1, msg: request }, accept],
      beats: [],
    });
  });

  it('are bounded at the boundary: the schema refuses bad tuples, too many, or an empty batch', () => {
    const ok = parsePeerMessage({
      type: 'paxos.batch',
      from: 2,
      msgs: [],
      beats: [
        [0, 1],
        [1, 1, 2, 2, 1, 2, 2],
      ],
    });
    expect(ok.ok).toBe(true);
    for (const beats of [
      [[0]], // too short
      [[0, 1, 2]], // neither shape
      [[0, -1]], // negative
      [[0, 1.5]], // not an integer
      [[0, 1, 2, 2, 2, 2, 2]], // quorumConnected must be 0 or 1
      [[0, 2 ** 60]], // beyond a safe integer
      Array.from({ length: 4097 }, () => [0, 1]), // more than MAX_PAXOS_BATCH
    ]) {
      expect(
        parsePeerMessage({ type: 'paxos.batch', from: 2, msgs: [], beats }).ok,
        JSON.stringify(beats).slice(0, 40),
      ).toBe(false);
    }
    expect(parsePeerMessage({ type: 'paxos.batch', from: 2, msgs: [] }).ok).toBe(false);
    expect(parsePeerMessage({ type: 'paxos.batch', from: 2, msgs: [], beats: [] }).ok).toBe(false);
  });
});
