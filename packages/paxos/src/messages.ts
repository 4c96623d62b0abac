/**
 * The messages replicas exchange. Every message is a plain object of numbers, booleans, arrays,
 * `Uint8Array`, `null` and `T`, tagged by `type`: it round-trips through msgpack or structured clone.
 * Optional data is `null`, never a missing or `undefined` field.
 * @module
 */
import { type Ballot, isBallot } from './ballot.js';
import type { Snapshot } from './storage.js';

/** BLE: "send me your heartbeat for round `round`". */
export interface HeartbeatRequest {
  readonly type: 'HeartbeatRequest';
  readonly round: number;
}

/** BLE: answer to {@link HeartbeatRequest}, with the sender's election ballot and quorum connectivity. */
export interface HeartbeatReply {
  readonly type: 'HeartbeatReply';
  readonly round: number;
  /** The sender's own election ballot (its candidacy). */
  readonly ballot: Ballot;
  /** Whether the sender heard a majority (itself included) in its last completed round. */
  readonly quorumConnected: boolean;
  /** The leader ballot the sender currently follows (`BALLOT_ZERO` if none). */
  readonly leader: Ballot;
}

/** Follower → leader: "re-synchronise me" (sent after a reconnect, a gap, or a lost AcceptSync). */
export interface PrepareReq {
  readonly type: 'PrepareReq';
  /** The ballot the follower promised; the leader ignores requests for other ballots. */
  readonly n: Ballot;
}

/** Leader → follower: phase 1a of ballot `n`, with the leader's log summary. */
export interface Prepare {
  readonly type: 'Prepare';
  readonly n: Ballot;
  /** Leader's decided count. */
  readonly decidedIndex: number;
  /** Leader's accepted ballot. */
  readonly acceptedRound: Ballot;
  /** Leader's log length. */
  readonly logLength: number;
}

/** Follower → leader: phase 1b, with the part of the follower's log the leader may lack. */
export interface PromiseMessage<T> {
  readonly type: 'Promise';
  readonly n: Ballot;
  readonly acceptedRound: Ballot;
  readonly logLength: number;
  readonly decidedIndex: number;
  /** Index of `suffix[0]`. */
  readonly suffixStart: number;
  /** Entries `[suffixStart, logLength)` of the follower, or empty when the leader's log is at least as recent. */
  readonly suffix: readonly T[];
  /** Set when the follower compacted entries the leader may lack; then `suffixStart === snapshot.index`. */
  readonly snapshot: Snapshot | null;
}

/** Leader → follower: the log the follower must have from `syncIndex` on (it truncates the rest). */
export interface AcceptSync<T> {
  readonly type: 'AcceptSync';
  readonly n: Ballot;
  /** Index of `entries[0]`; the follower's log becomes its first `syncIndex` entries + `entries`. */
  readonly syncIndex: number;
  readonly entries: readonly T[];
  /** Set when the follower needs compacted entries; then `syncIndex === snapshot.index`. */
  readonly snapshot: Snapshot | null;
  readonly decidedIndex: number;
}

/** Leader → follower: entries `start, start+1, ...` of ballot `n`, plus the leader's decided count. */
export interface Accept<T> {
  readonly type: 'Accept';
  readonly n: Ballot;
  readonly start: number;
  readonly entries: readonly T[];
  readonly decidedIndex: number;
}

/** Follower → leader: "my log of ballot `n` has `logLength` entries, all of them the leader's". */
export interface Accepted {
  readonly type: 'Accepted';
  readonly n: Ballot;
  readonly logLength: number;
}

/** Leader → follower: entries `[0, decidedIndex)` are decided. */
export interface Decide {
  readonly type: 'Decide';
  readonly n: Ballot;
  readonly decidedIndex: number;
}

/** Follower → leader: proposals made at the follower. */
export interface Forward<T> {
  readonly type: 'Forward';
  readonly entries: readonly T[];
}

/** Leader → follower: "do you still follow ballot `n`?" (read-index quorum round). */
export interface ReadIndexRequest {
  readonly type: 'ReadIndexRequest';
  readonly n: Ballot;
  readonly round: number;
}

/** Follower → leader: "yes, my promise is still `n`" for read-index round `round`. */
export interface ReadIndexReply {
  readonly type: 'ReadIndexReply';
  readonly n: Ballot;
  readonly round: number;
}

/**
 * Any replica → the sender of a leader message (`Prepare`, `AcceptSync`, `Accept`, `Decide`,
 * `ReadIndexRequest`) whose ballot `n` is below the replica's promise: "ballot `n` is stale, I promised
 * `promise`". A leader of `n` steps down and takes the higher promise, so its next election ballot
 * goes above it.
 */
export interface Nack {
  readonly type: 'Nack';
  readonly n: Ballot;
  readonly promise: Ballot;
}

/** Every message of the protocol, discriminated by `type`. */
export type PaxosMessage<T> =
  | HeartbeatRequest
  | HeartbeatReply
  | PrepareReq
  | Prepare
  | PromiseMessage<T>
  | AcceptSync<T>
  | Accept<T>
  | Accepted
  | Decide
  | Forward<T>
  | ReadIndexRequest
  | ReadIndexReply
  | Nack;

/** The `type` tags of {@link PaxosMessage}. */
export type PaxosMessageType = PaxosMessage<unknown>['type'];

/**
 * Largest round a ballot from the wire may carry: 2^48 - 1. Rounds stay far below
 * `Number.MAX_SAFE_INTEGER` (2^53 - 1), so `round + 1` is always exact and every round a replica
 * persists is one its storage decodes again. A legitimate cluster raises its round by one or two per
 * election: at a thousand elections a second it would need thousands of years to get here. A message
 * above the bound is dropped, and Ballot Leader Election never raises its own round past it.
 */
export const MAX_ROUND = 2 ** 48 - 1;

/**
 * Largest log index or length a message may carry: 2^48 - 1 (entries, including compacted ones).
 * `index + count` checks stay exact, and no replica persists an index its storage would reject.
 */
export const MAX_LOG_INDEX = 2 ** 48 - 1;

/** Why {@link validatePaxosMessage} refused a message (a metric label). */
export type PaxosMessageProblem =
  /** Not an object, an unknown `type`, or a field of the wrong type. */
  | 'malformed'
  /** A round, index or length outside {@link MAX_ROUND} / {@link MAX_LOG_INDEX}. */
  | 'out-of-bounds'
  /** A ballot that must be the sender's names another replica (e.g. a Prepare for someone else). */
  | 'sender-mismatch';

declare const CHECKED: unique symbol;

/**
 * A message that passed validation ({@link validatePaxosMessage}, or `validateReconfigMessage` for a
 * reconfiguration envelope and the Paxos message it wraps): a mark in the type only, with no runtime
 * cost. The `handleChecked` entry points of `SequencePaxos` and `ReconfigurablePaxos` take it and skip
 * the checks the message already passed, so a peer's message is validated once, at the boundary,
 * instead of again at every layer it crosses.
 */
export type Checked<M> = M & { readonly [CHECKED]: true };

/** Outcome of {@link validatePaxosMessage}. */
export type PaxosMessageValidation =
  | { readonly ok: true; readonly message: Checked<PaxosMessage<unknown>> }
  | { readonly ok: false; readonly problem: PaxosMessageProblem; readonly detail: string };

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function isIndex(x: unknown): x is number {
  return isCount(x) && x <= MAX_LOG_INDEX;
}

function isWireBallot(x: unknown): x is Ballot {
  return isBallot(x) && x.n <= MAX_ROUND;
}

function isSnapshotOrNull(x: unknown): boolean {
  if (x === null) return true;
  if (typeof x !== 'object' || x === undefined) return false;
  const s = x as { index?: unknown; data?: unknown };
  return isCount(s.index) && s.data instanceof Uint8Array;
}

function snapshotIndexInBounds(x: unknown): boolean {
  return x === null || isIndex((x as { index: number }).index);
}

/** The type tag and the type of every field (entries are only checked to be an array). */
function hasPaxosShape(x: unknown): x is PaxosMessage<unknown> {
  if (typeof x !== 'object' || x === null) return false;
  // biome-ignore lint/suspicious/noExplicitAny: structural probing of unknown input
  const m = x as Record<string, any>;
  switch (m.type) {
    case 'HeartbeatRequest':
      return isCount(m.round);
    case 'HeartbeatReply':
      return (
        isCount(m.round) && isBallot(m.ballot) && typeof m.quorumConnected === 'boolean' && isBallot(m.leader)
      );
    case 'PrepareReq':
      return isBallot(m.n);
    case 'Prepare':
      return isBallot(m.n) && isCount(m.decidedIndex) && isBallot(m.acceptedRound) && isCount(m.logLength);
    case 'Promise':
      return (
        isBallot(m.n) &&
        isBallot(m.acceptedRound) &&
        isCount(m.logLength) &&
        isCount(m.decidedIndex) &&
        isCount(m.suffixStart) &&
        Array.isArray(m.suffix) &&
        isSnapshotOrNull(m.snapshot)
      );
    case 'AcceptSync':
      return (
        isBallot(m.n) &&
        isCount(m.syncIndex) &&
        Array.isArray(m.entries) &&
        isSnapshotOrNull(m.snapshot) &&
        isCount(m.decidedIndex)
      );
    case 'Accept':
      return isBallot(m.n) && isCount(m.start) && Array.isArray(m.entries) && isCount(m.decidedIndex);
    case 'Accepted':
      return isBallot(m.n) && isCount(m.logLength);
    case 'Decide':
      return isBallot(m.n) && isCount(m.decidedIndex);
    case 'Forward':
      return Array.isArray(m.entries);
    case 'ReadIndexRequest':
    case 'ReadIndexReply':
      return isBallot(m.n) && isCount(m.round);
    case 'Nack':
      return isBallot(m.n) && isBallot(m.promise);
    default:
      return false;
  }
}

/** Whether every round, index and length of a well-shaped message is within bounds. */
function inBounds(m: PaxosMessage<unknown>): boolean {
  switch (m.type) {
    case 'HeartbeatRequest':
      return m.round <= MAX_ROUND;
    case 'HeartbeatReply':
      return m.round <= MAX_ROUND && isWireBallot(m.ballot) && isWireBallot(m.leader);
    case 'PrepareReq':
      return isWireBallot(m.n);
    case 'Prepare':
      return (
        isWireBallot(m.n) && isWireBallot(m.acceptedRound) && isIndex(m.decidedIndex) && isIndex(m.logLength)
      );
    case 'Promise':
      return (
        isWireBallot(m.n) &&
        isWireBallot(m.acceptedRound) &&
        isIndex(m.logLength) &&
        isIndex(m.decidedIndex) &&
        isIndex(m.suffixStart) &&
        m.suffixStart + m.suffix.length <= MAX_LOG_INDEX &&
        snapshotIndexInBounds(m.snapshot)
      );
    case 'AcceptSync':
      return (
        isWireBallot(m.n) &&
        isIndex(m.syncIndex) &&
        m.syncIndex + m.entries.length <= MAX_LOG_INDEX &&
        isIndex(m.decidedIndex) &&
        snapshotIndexInBounds(m.snapshot)
      );
    case 'Accept':
      return (
        isWireBallot(m.n) &&
        isIndex(m.start) &&
        m.start + m.entries.length <= MAX_LOG_INDEX &&
        isIndex(m.decidedIndex)
      );
    case 'Accepted':
      return isWireBallot(m.n) && isIndex(m.logLength);
    case 'Decide':
      return isWireBallot(m.n) && isIndex(m.decidedIndex);
    case 'Forward':
      return true;
    case 'ReadIndexRequest':
    case 'ReadIndexReply':
      return isWireBallot(m.n) && m.round <= MAX_ROUND;
    case 'Nack':
      return isWireBallot(m.n) && isWireBallot(m.promise);
  }
}

/**
 * The ballot that must belong to the sender, if the message type has one: a leader speaks only for its
 * own ballot (`Prepare`, `AcceptSync`, `Accept`, `Decide`, `ReadIndexRequest`) and a heartbeat reply
 * carries its sender's own candidacy.
 */
function senderBallot(m: PaxosMessage<unknown>): Ballot | undefined {
  switch (m.type) {
    case 'Prepare':
    case 'AcceptSync':
    case 'Accept':
    case 'Decide':
    case 'ReadIndexRequest':
      return m.n;
    case 'HeartbeatReply':
      return m.ballot;
    default:
      return undefined;
  }
}

/**
 * Cheap check of an incoming message: the type tag, the type of every field (entries are only checked
 * to be an array; their elements are the application's), and the bounds of every round
 * ({@link MAX_ROUND}) and every index and length ({@link MAX_LOG_INDEX}). Never throws.
 * Use it on the peer hot path before {@link SequencePaxos.handle}; {@link validatePaxosMessage} also
 * says why a message was refused and checks it against its sender.
 */
export function isPaxosMessage(x: unknown): x is PaxosMessage<unknown> {
  return hasPaxosShape(x) && inBounds(x);
}

/**
 * Validates a message that arrived from replica `from` before it may reach a replica's state or storage:
 * its shape (as {@link isPaxosMessage}), the bounds of every round, index and length, and that a ballot
 * which must be the sender's (a leader's `n`, a heartbeat reply's candidacy) names `from`. Never throws.
 * A refused message must be dropped (and counted by the caller, labelled with `problem`).
 *
 * ```ts
 * const v = validatePaxosMessage(envelope.from, envelope.msg);
 * if (!v.ok) metrics.dropped.inc({ reason: v.problem });
 * else group.handle(envelope.from, v.message);
 * ```
 */
export function validatePaxosMessage(from: number, x: unknown): PaxosMessageValidation {
  if (!hasPaxosShape(x))
    return { ok: false, problem: 'malformed', detail: 'not a well-formed paxos message' };
  if (!inBounds(x)) {
    return {
      ok: false,
      problem: 'out-of-bounds',
      detail: `${x.type} carries a round above ${MAX_ROUND} or an index above ${MAX_LOG_INDEX}`,
    };
  }
  const own = senderBallot(x);
  if (own !== undefined && own.pid !== from) {
    return {
      ok: false,
      problem: 'sender-mismatch',
      detail: `${x.type} from replica ${from} carries the ballot of replica ${own.pid}`,
    };
  }
  return { ok: true, message: x as Checked<PaxosMessage<unknown>> };
}
