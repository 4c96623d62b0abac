/**
 * Coalesced heartbeats: the Ballot Leader Election heartbeats of every group to one peer travel as
 * positional tuples in the `beats` field of one `paxos.batch` (see `PaxosBatchSchema` in
 * `@paxkv/common`), instead of one enveloped message per group, as CockroachDB coalesces the
 * heartbeats of its ranges. The sender coalesces only messages whose shape it knows exactly (any other
 * field would be lost: such a message travels as a plain one); the receiver turns every tuple back into
 * the paxos message, which is then checked like any other (`checkPaxosMessage`).
 *
 * Groups speak reconfiguration envelopes (`{ type: 'Paxos', config, msg }` of `@paxkv/paxos`'s
 * `ReconfigurablePaxos`). A tuple carries no configuration id, so only the heartbeats of configuration
 * {@link COALESCED_CONFIG} (every group until its first membership change) are coalesced; a group past
 * a reconfiguration sends its heartbeats as plain messages (correct, just not merged).
 * @module
 */
import type { PaxosBatch } from '@paxkv/common';
import type { HeartbeatReply, HeartbeatRequest } from '@paxkv/paxos';

/** The configuration whose heartbeats are coalesced (a group's first configuration). */
export const COALESCED_CONFIG = 0;

/** One coalesced heartbeat, as on the wire. */
export type Beat = NonNullable<PaxosBatch['beats']>[number];

/** One queued paxos message of a partition's group. */
export interface QueuedPaxos {
  readonly partition: number;
  readonly msg: unknown;
}

function hasExactKeys(o: object, keys: readonly string[]): boolean {
  const own = Object.keys(o);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(o, k));
}

function isBallotLike(b: unknown): b is { n: number; pid: number } {
  return (
    typeof b === 'object' &&
    b !== null &&
    hasExactKeys(b, ['n', 'pid']) &&
    Number.isSafeInteger((b as { n: unknown }).n) &&
    Number.isSafeInteger((b as { pid: unknown }).pid) &&
    (b as { n: number }).n >= 0 &&
    (b as { pid: number }).pid >= 0
  );
}

/**
 * The tuple of `msg` if it is a configuration-{@link COALESCED_CONFIG} envelope around a heartbeat of a
 * shape this module knows exactly, else `undefined`.
 */
export function toBeat(partition: number, msg: unknown): Beat | undefined {
  if (typeof msg !== 'object' || msg === null) return undefined;
  const envelope = msg as Record<string, unknown>;
  // Every message a group sends passes here: tell the (rare) heartbeats from the rest by their type
  // before any check that collects keys.
  const inner = envelope.msg as { type?: unknown } | null | undefined;
  if (typeof inner !== 'object' || inner === null) return undefined;
  if (inner.type !== 'HeartbeatRequest' && inner.type !== 'HeartbeatReply') return undefined;
  if (
    envelope.type !== 'Paxos' ||
    !hasExactKeys(envelope, ['type', 'config', 'msg']) ||
    envelope.config !== COALESCED_CONFIG ||
    typeof envelope.msg !== 'object' ||
    envelope.msg === null
  ) {
    return undefined;
  }
  const m = envelope.msg as Record<string, unknown>;
  const round = m.round;
  if (typeof round !== 'number' || !Number.isSafeInteger(round) || round < 0) return undefined;
  if (m.type === 'HeartbeatRequest' && hasExactKeys(m, ['type', 'round'])) return [partition, round];
  if (
    m.type === 'HeartbeatReply' &&
    hasExactKeys(m, ['type', 'round', 'ballot', 'quorumConnected', 'leader']) &&
    isBallotLike(m.ballot) &&
    isBallotLike(m.leader) &&
    typeof m.quorumConnected === 'boolean'
  ) {
    return [partition, round, m.ballot.n, m.ballot.pid, m.quorumConnected ? 1 : 0, m.leader.n, m.leader.pid];
  }
  return undefined;
}

/** A heartbeat in the envelope of configuration {@link COALESCED_CONFIG}, as groups receive it. */
export interface BeatEnvelope {
  readonly type: 'Paxos';
  readonly config: typeof COALESCED_CONFIG;
  readonly msg: HeartbeatRequest | HeartbeatReply;
}

/** The paxos message of a (schema-checked) tuple, with its partition. */
export function fromBeat(beat: Beat): { partition: number; msg: BeatEnvelope } {
  const wrap = (msg: HeartbeatRequest | HeartbeatReply): BeatEnvelope => ({
    type: 'Paxos',
    config: COALESCED_CONFIG,
    msg,
  });
  if (beat.length === 2) {
    return { partition: beat[0], msg: wrap({ type: 'HeartbeatRequest', round: beat[1] }) };
  }
  const [partition, round, n, pid, qc, leaderN, leaderPid] = beat;
  return {
    partition,
    msg: wrap({
      type: 'HeartbeatReply',
      round,
      ballot: { n, pid },
      quorumConnected: qc === 1,
      leader: { n: leaderN, pid: leaderPid },
    }),
  };
}

/**
 * Splits the messages queued for one peer into heartbeats (as tuples) and the rest (in their order).
 * Coalescing only pays with two or more heartbeats: with fewer, everything stays as it is.
 */
export function coalesce(queued: readonly QueuedPaxos[]): { msgs: QueuedPaxos[]; beats: Beat[] } {
  const msgs: QueuedPaxos[] = [];
  const beats: Beat[] = [];
  for (const q of queued) {
    const beat = toBeat(q.partition, q.msg);
    if (beat === undefined) msgs.push(q);
    else beats.push(beat);
  }
  if (beats.length < 2) return { msgs: [...queued], beats: [] };
  return { msgs, beats };
}
