/**
 * Chunked transfer of the catch-up messages of a replica group (a snapshot plus a log suffix): the
 * `Promise` and `AcceptSync` of a re-synchronisation and the `JoinState` a joining replica starts from.
 * A partition's state can be far larger than one peer frame (16 MiB by default), so such a message is
 * never sent whole when it is larger than one chunk: the snapshot's bytes, then the rest of the message
 * (the "head", encoded once per transfer), stream as chunks of {@link SnapshotTransferConfig.chunkBytes}
 * with a window of {@link SnapshotTransferConfig.windowChunks} unacknowledged chunks (Raft's
 * InstallSnapshot with offset and done, streamed like etcd's snapshots), so a transfer never holds more
 * than a window of the link's queue ahead of the group's other traffic.
 *
 * The receiver stages the chunks of one transfer per sender in memory: every chunk must name the same
 * transfer (id, configuration, message kind, ballot, snapshot index, sizes, SHA-256 of the snapshot and
 * of the head), offsets must be contiguous (a duplicate or out-of-order chunk is ignored and answered
 * with the offset expected), the total is capped by {@link SnapshotTransferConfig.maxBytes}. The
 * snapshot's digest is checked as soon as its last byte is in, the head's at the end; only then is the
 * message decoded (bounded) and handed to the group like any message from that peer: the paxos core
 * installs its snapshot in one step, durably and atomically (the snapshot file is durable before the
 * record that points at it). A new transfer of the same snapshot (a new ballot after a leader change or
 * a re-sync) goes on from the snapshot bytes already staged, and the sender hashes a snapshot once for
 * all its transfers, so repeated attempts cost little. A transfer that stops making progress is
 * discarded on both sides; a restart loses the staging (nothing of it reached storage), and the core's
 * own resend asks for the state again. Dropping or delaying any of these messages is always safe: the
 * core tolerates loss, so a stale or superseded transfer is simply abandoned.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { resolveDecodeLimits, scanMsgpack } from '@paxkv/common';
import {
  type Ballot,
  type Checked,
  isBallot,
  MAX_LOG_INDEX,
  MAX_ROUND,
  type NodeId,
  type ReconfigMessage,
  validateReconfigMessage,
} from '@paxkv/paxos';
import { decode, encode } from './codec.js';
import { estimateBytes } from './estimate-bytes.js';

/** Most bytes one chunk may carry on the wire, whatever the sender's configuration: 8 MiB (half a frame). */
export const MAX_TRANSFER_CHUNK_BYTES = 8 * 1024 * 1024;

/** Bytes of the SHA-256 digest every chunk carries. */
export const TRANSFER_DIGEST_BYTES = 32;

/** Most transfers a group stages at once (one per sender; an old leader's and a new leader's, say). */
export const MAX_INCOMING_TRANSFERS = 2;

/** Bounds of the decode of a reassembled message (its snapshot is a binary field, pre-scanned later). */
const REASSEMBLED_DECODE_LIMITS = resolveDecodeLimits({ maxExpansion: 32 });

/** Default of the staging budget a server's groups share ({@link TransferBudget}): 2 GiB. */
export const DEFAULT_TRANSFER_BUDGET_BYTES = 2 * 1024 * 1024 * 1024;

/**
 * The bytes every incoming transfer of a server's groups may stage together: one budget shared by the
 * groups bounds their memory as a whole (each group alone may stage up to two transfers of
 * `maxBytes`). A chunk that does not fit is refused unacknowledged; its sender resends it later.
 */
export class TransferBudget {
  private used = 0;
  /** @throws RangeError unless `maxBytes` is a positive integer. */
  constructor(readonly maxBytes: number = DEFAULT_TRANSFER_BUDGET_BYTES) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1)
      throw new RangeError(`transfer budget maxBytes must be a positive integer, got ${String(maxBytes)}`);
  }
  /** Bytes staged now. */
  get usedBytes(): number {
    return this.used;
  }
  /** Takes `n` bytes if they fit; false (nothing taken) otherwise. */
  take(n: number): boolean {
    if (this.used + n > this.maxBytes) return false;
    this.used += n;
    return true;
  }
  /** Gives `n` bytes back. */
  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/** Tunables of chunked snapshot transfer (see the module comment). Times are in group ticks. */
export interface SnapshotTransferConfig {
  /**
   * Bytes per chunk, and the size above which a catch-up message goes as chunks. Default 1 MiB; at
   * most {@link MAX_TRANSFER_CHUNK_BYTES}.
   */
  readonly chunkBytes: number;
  /** Unacknowledged chunks in flight per transfer (flow control). Default 4. */
  readonly windowChunks: number;
  /**
   * Largest transfer a receiver stages (the encoded message: snapshot + suffix). Larger ones are refused
   * and logged. Default 1 GiB.
   */
  readonly maxBytes: number;
  /** Chunks sent but not acknowledged within this many ticks are sent again. Default 10. */
  readonly resendTicks: number;
  /** A transfer that made no progress for this many ticks is dropped on both sides. Default 250. */
  readonly idleTimeoutTicks: number;
  /**
   * TESTING ONLY: `unverifiedChunks` makes the receiver append every chunk whatever its offset and skip
   * the checksum (to show the tests catch a broken staging rule). Default `'none'`.
   */
  readonly unsafeMutation: 'none' | 'unverifiedChunks';
}

/** Defaults of {@link SnapshotTransferConfig}. */
export const DEFAULT_SNAPSHOT_TRANSFER_CONFIG: Readonly<SnapshotTransferConfig> = Object.freeze({
  chunkBytes: 1024 * 1024,
  windowChunks: 4,
  maxBytes: 1024 * 1024 * 1024,
  resendTicks: 10,
  idleTimeoutTicks: 250,
  unsafeMutation: 'none',
});

/**
 * Merges `partial` over {@link DEFAULT_SNAPSHOT_TRANSFER_CONFIG} and checks it.
 * @throws RangeError naming the field that is out of range.
 */
export function resolveSnapshotTransferConfig(
  partial: Partial<SnapshotTransferConfig> | undefined,
): SnapshotTransferConfig {
  const c = { ...DEFAULT_SNAPSHOT_TRANSFER_CONFIG, ...(partial ?? {}) };
  for (const k of ['chunkBytes', 'windowChunks', 'maxBytes', 'resendTicks', 'idleTimeoutTicks'] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] < 1)
      throw new RangeError(`snapshot transfer config.${k} must be a positive integer, got ${String(c[k])}`);
  }
  if (c.chunkBytes > MAX_TRANSFER_CHUNK_BYTES)
    throw new RangeError(
      `snapshot transfer config.chunkBytes must be at most ${MAX_TRANSFER_CHUNK_BYTES}, got ${c.chunkBytes}`,
    );
  if (c.unsafeMutation !== 'none' && c.unsafeMutation !== 'unverifiedChunks')
    throw new RangeError(`snapshot transfer config.unsafeMutation is unknown: ${String(c.unsafeMutation)}`);
  return c;
}

/** The catch-up message kinds that may travel as a transfer. */
export type TransferKind = 'Promise' | 'AcceptSync' | 'JoinState';

/**
 * One piece of a transfer. A transfer streams the snapshot's bytes (`[0, dataBytes)`, identified by the
 * snapshot index, their size and SHA-256 `sum`: the same for every transfer of that snapshot) followed
 * by the carried message itself with an empty snapshot (`[dataBytes, total)`, the "head": ballot, log
 * suffix, ...; SHA-256 `headSum`). No chunk spans both parts.
 */
export interface SnapshotChunk {
  readonly type: 'SnapshotChunk';
  /** The sender's transfer id (a counter per incarnation; the other fields tell transfers apart too). */
  readonly id: number;
  /** Configuration of the carried message. */
  readonly config: number;
  readonly kind: TransferKind;
  /** Ballot of the carried Paxos message (`null` for a `JoinState`). */
  readonly n: Ballot | null;
  /** Index of the snapshot the message carries (0 without one). */
  readonly index: number;
  /** Bytes of the snapshot (0 without one). */
  readonly dataBytes: number;
  /** Bytes of the whole transfer: the snapshot's, then the head's. */
  readonly total: number;
  /** SHA-256 of the snapshot's bytes. */
  readonly sum: Uint8Array;
  /** SHA-256 of the head's bytes. */
  readonly headSum: Uint8Array;
  readonly offset: number;
  readonly data: Uint8Array;
}

/** Receiver → sender: "I hold bytes `[0, next)` of transfer `id`" (`done`: delivered). */
export interface SnapshotChunkAck {
  readonly type: 'SnapshotAck';
  readonly id: number;
  readonly next: number;
  readonly done: boolean;
}

/** A message of the transfer protocol. */
export type SnapshotTransferMessage = SnapshotChunk | SnapshotChunkAck;

/** Any message between the replicas of a group: a reconfiguration message or a transfer message. */
export type GroupMessage<T> = ReconfigMessage<T> | SnapshotTransferMessage;

/**
 * A {@link GroupMessage} that passed {@link checkGroupMessage} (a transfer message within its bounds, or
 * a reconfiguration message `validateReconfigMessage` accepted), for `ReplicaGroup.handleChecked`.
 */
export type CheckedGroupMessage<T> = Checked<ReconfigMessage<T>> | SnapshotTransferMessage;

function isCount(x: unknown, max = Number.MAX_SAFE_INTEGER): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x <= max;
}

function isDigest(x: unknown): boolean {
  return x instanceof Uint8Array && x.length === TRANSFER_DIGEST_BYTES;
}

/**
 * Whether `x` is a well-formed transfer message, every field bounded: ids and indexes within
 * `MAX_LOG_INDEX`, a chunk of 1 to {@link MAX_TRANSFER_CHUNK_BYTES} bytes inside `[0, total)` and
 * inside one part (snapshot or head), 32-byte digests, a ballot within `MAX_ROUND` (or `null` only for a
 * `JoinState`). Never throws.
 */
export function isSnapshotTransferMessage(x: unknown): x is SnapshotTransferMessage {
  if (typeof x !== 'object' || x === null) return false;
  // biome-ignore lint/suspicious/noExplicitAny: structural probing of unknown input
  const m = x as Record<string, any>;
  if (m.type === 'SnapshotAck')
    return isCount(m.id, MAX_LOG_INDEX) && isCount(m.next) && typeof m.done === 'boolean';
  if (m.type !== 'SnapshotChunk') return false;
  if (!isCount(m.id, MAX_LOG_INDEX) || !isCount(m.config, MAX_LOG_INDEX) || !isCount(m.index, MAX_LOG_INDEX))
    return false;
  if (m.kind !== 'Promise' && m.kind !== 'AcceptSync' && m.kind !== 'JoinState') return false;
  if (m.kind === 'JoinState' ? m.n !== null : !(isBallot(m.n) && m.n.n <= MAX_ROUND)) return false;
  if (!isDigest(m.sum) || !isDigest(m.headSum)) return false;
  if (!(m.data instanceof Uint8Array) || m.data.length === 0 || m.data.length > MAX_TRANSFER_CHUNK_BYTES)
    return false;
  if (!isCount(m.total) || !isCount(m.dataBytes) || !isCount(m.offset)) return false;
  const end = m.offset + m.data.length;
  if (m.dataBytes >= m.total || end > m.total) return false; // the head is never empty
  return m.offset >= m.dataBytes || end <= m.dataBytes;
}

/** What identifies the content of a transfer, besides its id. */
interface TransferMeta {
  readonly config: number;
  readonly kind: TransferKind;
  readonly n: Ballot | null;
  readonly index: number;
}

/** The transfer meta of a catch-up message that carries a snapshot or log entries, else undefined. */
function catchUpMeta(m: ReconfigMessage<unknown>): TransferMeta | undefined {
  if (m.type === 'JoinState')
    return { config: m.config, kind: 'JoinState', n: null, index: m.snapshot?.index ?? 0 };
  if (m.type !== 'Paxos') return undefined;
  const p = m.msg;
  if (p.type === 'Promise' || p.type === 'AcceptSync')
    return { config: m.config, kind: p.type, n: p.n, index: p.snapshot?.index ?? 0 };
  return undefined;
}

function sameMeta(a: TransferMeta, b: TransferMeta): boolean {
  const nEq = a.n === null || b.n === null ? a.n === b.n : a.n.n === b.n.n && a.n.pid === b.n.pid;
  return a.config === b.config && a.kind === b.kind && a.index === b.index && nEq;
}

const EMPTY = new Uint8Array(0);

/** The snapshot a catch-up message carries (its bytes are streamed first), if any. */
function snapshotOf(m: ReconfigMessage<unknown>): { index: number; data: Uint8Array } | null {
  if (m.type === 'JoinState') return m.snapshot;
  if (m.type === 'Paxos' && (m.msg.type === 'Promise' || m.msg.type === 'AcceptSync')) return m.msg.snapshot;
  return null;
}

/** `m` with its snapshot's bytes replaced (by nothing to send its head, by the staged bytes on arrival). */
function withSnapshotData(m: ReconfigMessage<unknown>, data: Uint8Array): ReconfigMessage<unknown> {
  if (m.type === 'JoinState') return m.snapshot ? { ...m, snapshot: { index: m.snapshot.index, data } } : m;
  if (m.type === 'Paxos' && (m.msg.type === 'Promise' || m.msg.type === 'AcceptSync') && m.msg.snapshot)
    return { ...m, msg: { ...m.msg, snapshot: { index: m.msg.snapshot.index, data } } };
  return m;
}

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

interface Outgoing extends TransferMeta {
  readonly id: number;
  /** Tick it started at. */
  readonly startedAt: number;
  readonly data: Uint8Array;
  readonly sum: Uint8Array;
  readonly head: Uint8Array;
  readonly headSum: Uint8Array;
  readonly total: number;
  /** Bytes the receiver holds. */
  acked: number;
  /** Bytes sent (from `acked` on, within the window). */
  sent: number;
  /** Tick of the last acknowledged progress (idle timeout). */
  lastProgress: number;
  /** Tick of the last (re)send from `acked` (resend timeout). */
  lastSend: number;
}

interface Incoming extends TransferMeta {
  readonly id: number;
  readonly total: number;
  readonly dataBytes: number;
  readonly sum: Uint8Array;
  readonly headSum: Uint8Array;
  /** Chunks of the snapshot part, then of the head part (none spans both). */
  readonly parts: Uint8Array[];
  /** Hash of the part being received (the snapshot's, then the head's). */
  hash: Hash;
  received: number;
  lastChunk: number;
}

/** Counters of one group's transfers (both directions), for tests, logs and metrics. */
export interface SnapshotTransferStats {
  /** Transfers started as sender. */
  started: number;
  /** Transfers the receiver acknowledged as delivered. */
  completed: number;
  /** Catch-up messages dropped because the same state was already on its way to that peer. */
  deduplicated: number;
  /** Sender transfers given up (no progress within `idleTimeoutTicks`) or superseded. */
  abandoned: number;
  chunksSent: number;
  chunksReceived: number;
  /** Transfers received whole and verified, handed to the group. */
  delivered: number;
  /** Transfers that went on from the snapshot bytes staged by an earlier transfer of the same snapshot. */
  resumed: number;
  /** Staged transfers dropped: idle, superseded, evicted, or failing a checksum or the decode. */
  discarded: number;
  /** Chunks refused: a transfer over `maxBytes`. */
  refused: number;
}

/**
 * A transfer this end sends started, completed (delivered), was superseded (a catch-up message of another
 * ballot, kind or snapshot for the same peer: the receiver keeps the snapshot bytes it staged when the
 * snapshot is the same), or was abandoned (no progress within `idleTimeoutTicks`).
 */
export interface SnapshotTransferEvent {
  readonly event: 'started' | 'completed' | 'superseded' | 'abandoned';
  readonly to: NodeId;
  readonly id: number;
  readonly type: TransferKind;
  readonly index: number;
  /** Bytes of the whole transfer (snapshot + head). */
  readonly bytes: number;
  /** Ticks since it started. */
  readonly ticks: number;
}

/** What {@link SnapshotTransfer.receive} did with a chunk. */
export type ReceiveOutcome =
  | { readonly kind: 'staged' }
  | { readonly kind: 'delivered'; readonly message: ReconfigMessage<unknown>; readonly bytes: number }
  | { readonly kind: 'refused' | 'discarded'; readonly reason: string };

/**
 * Both ends of chunked transfer for one replica group (sans-IO: the caller feeds it messages and ticks,
 * and gives it the function that sends). See the module comment.
 */
export class SnapshotTransfer {
  /** Counters (see {@link SnapshotTransferStats}). */
  readonly stats: SnapshotTransferStats = {
    started: 0,
    completed: 0,
    deduplicated: 0,
    abandoned: 0,
    chunksSent: 0,
    chunksReceived: 0,
    delivered: 0,
    resumed: 0,
    discarded: 0,
    refused: 0,
  };
  private readonly config: SnapshotTransferConfig;
  private readonly out = new Map<NodeId, Outgoing>();
  private readonly incoming = new Map<NodeId, Incoming>();
  /** Per sender, the last transfer delivered (its chunks are answered "done" again). */
  private readonly delivered = new Map<
    NodeId,
    { readonly id: number; readonly total: number; readonly sum: Uint8Array; readonly headSum: Uint8Array }
  >();
  /** The last snapshot sent and its digest (hashing a large snapshot is paid once, not per transfer). */
  private lastSent:
    | { readonly index: number; readonly data: Uint8Array; readonly sum: Uint8Array }
    | undefined;
  private nextId = 1;
  private now = 0;

  /**
   * @param send Sends a transfer message to a peer (best effort: the transfer resends what is lost).
   * @param onEvent Told when a transfer this end sends starts, completes or is given up (for logs).
   * @param budget Staging bytes shared with the server's other groups (default: this end's own).
   */
  constructor(
    config: Partial<SnapshotTransferConfig> | undefined,
    private readonly send: (to: NodeId, message: SnapshotTransferMessage) => void,
    private readonly onEvent?: (e: SnapshotTransferEvent) => void,
    private readonly budget: TransferBudget = new TransferBudget(),
  ) {
    this.config = resolveSnapshotTransferConfig(config);
  }

  /**
   * Offers an outgoing message. Returns true when the transfer took it: a catch-up message larger than
   * one chunk now streams as chunks (or was dropped because the same state is already on its way to
   * `to`); false when the caller must send it as it is.
   */
  offer(to: NodeId, message: ReconfigMessage<unknown>): boolean {
    const meta = catchUpMeta(message);
    if (!meta || estimateBytes(message, this.config.chunkBytes) <= this.config.chunkBytes) return false;
    const cur = this.out.get(to);
    if (cur && sameMeta(cur, meta)) {
      this.stats.deduplicated++;
      return true;
    }
    if (cur) {
      this.stats.abandoned++;
      this.tell('superseded', to, cur);
    }
    const snap = snapshotOf(message);
    const data = snap?.data ?? EMPTY;
    const { sum } = this.digestOf(snap?.index ?? 0, data);
    const head = encode(withSnapshotData(message, EMPTY));
    this.out.set(to, {
      ...meta,
      id: this.nextId++,
      data,
      sum,
      head,
      headSum: sha256(head),
      total: data.length + head.length,
      startedAt: this.now,
      acked: 0,
      sent: 0,
      lastProgress: this.now,
      lastSend: this.now,
    });
    this.stats.started++;
    this.tell('started', to, this.out.get(to) as Outgoing);
    this.pump(to);
    return true;
  }

  /**
   * Whether `request` (to `peer`) asks for what `peer` is streaming us right now, so sending it would
   * only make `peer` rebuild the same state: a `Prepare` of ballot `n` while its `Promise` for `n`
   * streams, a `PrepareReq` for `n` while the `AcceptSync` of `n` streams, a `JoinRequest` for a
   * configuration while its `JoinState` streams (progress within the last two `resendTicks`). The core
   * resends these on a timer; dropping one is always safe.
   */
  answersInFlight(peer: NodeId, request: ReconfigMessage<unknown>): boolean {
    const s = this.incoming.get(peer);
    if (s === undefined || this.now - s.lastChunk >= 2 * this.config.resendTicks) return false;
    if (request.type === 'JoinRequest') return s.kind === 'JoinState' && s.config === request.config;
    if (request.type !== 'Paxos' || request.config !== s.config || s.n === null) return false;
    const m = request.msg;
    if (m.type !== 'Prepare' && m.type !== 'PrepareReq') return false;
    const kind = m.type === 'Prepare' ? 'Promise' : 'AcceptSync';
    return kind === s.kind && m.n.n === s.n.n && m.n.pid === s.n.pid;
  }

  /** Bytes staged from every sender (memory held by incoming transfers). */
  get stagedBytes(): number {
    let n = 0;
    for (const s of this.incoming.values()) n += s.received;
    return n;
  }

  /** Handles an acknowledgement from `from`. */
  onAck(from: NodeId, ack: SnapshotChunkAck): void {
    const t = this.out.get(from);
    if (!t || t.id !== ack.id || ack.next > t.total) return;
    if (ack.done) {
      if (ack.next === t.total) {
        this.out.delete(from);
        this.stats.completed++;
        this.tell('completed', from, t);
      }
      return;
    }
    if (ack.next > t.acked) {
      t.acked = ack.next;
      if (t.sent < t.acked) t.sent = t.acked;
      t.lastProgress = this.now;
      t.lastSend = this.now;
    } else if (ack.next < t.acked) {
      // The receiver lost (part of) its staging (restart, timeout, eviction): go on from what it holds.
      t.acked = ack.next;
      t.sent = ack.next;
      t.lastSend = this.now;
    }
    this.pump(from);
  }

  /**
   * Handles a chunk from `from`; answers it with an acknowledgement. Returns the whole message once the
   * transfer is complete and verified (the caller hands it to the group as if `from` had sent it).
   */
  receive(from: NodeId, c: SnapshotChunk): ReceiveOutcome {
    this.stats.chunksReceived++;
    const mutated = this.config.unsafeMutation === 'unverifiedChunks';
    if (c.total > this.config.maxBytes) {
      this.stats.refused++;
      return {
        kind: 'refused',
        reason: `a transfer of ${c.total} bytes is over the limit of ${this.config.maxBytes} (snapshotTransfer.maxBytes)`,
      };
    }
    const done = this.delivered.get(from);
    // (A restarted sender counts ids from 1 again: the digest tells its transfers from the old ones.)
    if (
      done &&
      done.id === c.id &&
      done.total === c.total &&
      equalBytes(done.sum, c.sum) &&
      equalBytes(done.headSum, c.headSum)
    ) {
      this.ack(from, c.id, c.total, true);
      return { kind: 'staged' };
    }
    let s = this.incoming.get(from);
    if (s && !sameTransfer(s, c)) {
      if (s.index === c.index && s.dataBytes === c.dataBytes && equalBytes(s.sum, c.sum)) {
        // A new transfer of the snapshot we are staging (a new ballot, a re-sync): keep its bytes.
        s = this.resume(from, s, c);
      } else if (c.offset !== 0) {
        // A chunk of a transfer we do not stage (ours is newer, or we lost its start): resend from 0.
        this.ack(from, c.id, 0, false);
        return { kind: 'staged' };
      } else {
        this.drop(from); // superseded by a new transfer from the same sender
        this.stats.discarded++;
        s = undefined;
      }
    }
    if (!s) {
      if (c.offset !== 0 && !mutated) {
        this.ack(from, c.id, 0, false);
        return { kind: 'staged' };
      }
      if (!this.evictFor(from)) {
        this.ack(from, c.id, 0, false);
        return { kind: 'staged' };
      }
      s = { ...transferOf(c), parts: [], hash: createHash('sha256'), received: 0, lastChunk: this.now };
      this.incoming.set(from, s);
    }
    if (c.offset !== s.received && !mutated) {
      // A duplicate, or a chunk after a lost one: keep the contiguous prefix, say where it ends.
      this.ack(from, s.id, s.received, false);
      return { kind: 'staged' };
    }
    const len = Math.min(c.data.length, s.total - s.received);
    if (!this.budget.take(len)) {
      this.stats.refused++;
      return {
        kind: 'refused',
        reason: `the server's transfer staging budget (${this.budget.maxBytes} bytes) is full; the sender resends`,
      };
    }
    // Copied (the constructor copies; a Buffer's slice would not): the chunk is a view of its frame.
    const part = new Uint8Array(c.data.subarray(0, len));
    s.parts.push(part);
    s.hash.update(part);
    s.received += len;
    s.lastChunk = this.now;
    if (s.received === s.dataBytes && s.dataBytes > 0) {
      // The snapshot is complete: check it now (a corrupt one is resent before its head).
      if (!mutated && !equalBytes(s.hash.digest(), s.sum))
        return this.discard(from, s, "the snapshot's SHA-256 does not match");
      s.hash = createHash('sha256');
    }
    if (s.received < s.total) {
      this.ack(from, s.id, s.received, false);
      return { kind: 'staged' };
    }
    this.drop(from);
    if (!mutated && !equalBytes(s.hash.digest(), s.headSum))
      return this.discard(from, s, "the message's SHA-256 does not match");
    const data = concat(s.parts, 0, s.dataBytes);
    const head = concat(s.parts, s.dataBytes, s.total);
    if (scanMsgpack(head, REASSEMBLED_DECODE_LIMITS) !== null)
      return this.discard(from, s, 'it is not a well-formed message');
    const decoded = decode(head, 'a transferred message');
    const meta =
      typeof decoded === 'object' && decoded !== null && !(decoded instanceof Error)
        ? catchUpMeta(decoded as ReconfigMessage<unknown>)
        : undefined;
    if (!meta || !sameMeta(meta, s)) return this.discard(from, s, 'it is not the message its chunks named');
    const snap = snapshotOf(decoded as ReconfigMessage<unknown>);
    if ((snap === null ? 0 : snap.data.length) !== 0 || (snap === null && s.dataBytes > 0))
      return this.discard(from, s, 'its snapshot does not match the bytes streamed');
    this.delivered.set(from, { id: s.id, total: s.total, sum: s.sum, headSum: s.headSum });
    this.stats.delivered++;
    this.ack(from, s.id, s.total, true);
    const message = withSnapshotData(decoded as ReconfigMessage<unknown>, data);
    return { kind: 'delivered', message, bytes: s.total };
  }

  /** One tick: resends unacknowledged chunks, drops transfers that stopped making progress. */
  tick(): void {
    this.now++;
    for (const [to, t] of this.out) {
      if (this.now - t.lastProgress >= this.config.idleTimeoutTicks) {
        this.out.delete(to);
        this.stats.abandoned++;
        this.tell('abandoned', to, t);
        continue;
      }
      if (t.sent > t.acked && this.now - t.lastSend >= this.config.resendTicks) {
        t.sent = t.acked; // go back to the first unacknowledged chunk
        t.lastSend = this.now;
        this.pump(to);
      }
    }
    for (const [from, s] of this.incoming) {
      if (this.now - s.lastChunk >= this.config.idleTimeoutTicks) {
        this.drop(from);
        this.stats.discarded++;
      }
    }
  }

  /** The session to `peer` broke or came back: chunks in flight to it may be lost, resend from its ack. */
  peerReset(peer: NodeId): void {
    const t = this.out.get(peer);
    if (!t) return;
    t.sent = t.acked;
    t.lastSend = this.now;
    // Sent at once (lost if the link is still down; the resend timer then sends them again).
    this.pump(peer);
  }

  /** Forgets every transfer (the group closed or stopped). */
  clear(): void {
    this.out.clear();
    for (const from of [...this.incoming.keys()]) this.drop(from);
    this.delivered.clear();
    this.lastSent = undefined;
  }

  /** The digest of a snapshot's bytes, computed once per snapshot (every transfer of it reuses it). */
  private digestOf(index: number, data: Uint8Array): { readonly sum: Uint8Array } {
    const last = this.lastSent;
    if (
      last &&
      last.index === index &&
      last.data.length === data.length &&
      (last.data === data || Buffer.compare(last.data, data) === 0)
    )
      return last;
    const entry = { index, data, sum: sha256(data) };
    if (data.length > 0) this.lastSent = entry;
    return entry;
  }

  /**
   * Staging `s` holds bytes of the snapshot chunk `c`'s new transfer carries too: keep them (the snapshot
   * part only; a head belongs to one transfer) and go on under the new transfer.
   */
  private resume(from: NodeId, s: Incoming, c: SnapshotChunk): Incoming {
    let parts = s.parts;
    let received = s.received;
    // Within the snapshot part (or at its verified end) the running hash stays valid as it is.
    let hash = s.hash;
    if (received > s.dataBytes) {
      parts = [];
      received = 0;
      for (const p of s.parts) {
        if (received + p.length > s.dataBytes) break;
        parts.push(p);
        received += p.length;
      }
      hash = createHash('sha256'); // the snapshot part was verified: the hash runs over the new head
      this.budget.give(s.received - received);
    }
    const r: Incoming = { ...transferOf(c), parts, hash, received, lastChunk: this.now };
    this.incoming.set(from, r);
    this.stats.resumed++;
    return r;
  }

  private pump(to: NodeId): void {
    const t = this.out.get(to);
    if (!t) return;
    const { chunkBytes, windowChunks } = this.config;
    const limit = Math.min(t.total, t.acked + windowChunks * chunkBytes);
    const dataBytes = t.data.length;
    while (t.sent < limit) {
      // Chunks never span the snapshot and the head.
      const inData = t.sent < dataBytes;
      const end = Math.min(inData ? dataBytes : t.total, t.sent + chunkBytes);
      const data = inData
        ? t.data.subarray(t.sent, end)
        : t.head.subarray(t.sent - dataBytes, end - dataBytes);
      const chunk: SnapshotChunk = {
        type: 'SnapshotChunk',
        id: t.id,
        config: t.config,
        kind: t.kind,
        n: t.n,
        index: t.index,
        dataBytes,
        total: t.total,
        sum: t.sum,
        headSum: t.headSum,
        offset: t.sent,
        data,
      };
      this.stats.chunksSent++;
      this.send(to, chunk);
      t.sent = end;
    }
  }

  private tell(event: SnapshotTransferEvent['event'], to: NodeId, t: Outgoing): void {
    this.onEvent?.({
      event,
      to,
      id: t.id,
      type: t.kind,
      index: t.index,
      bytes: t.total,
      ticks: this.now - t.startedAt,
    });
  }

  private ack(to: NodeId, id: number, next: number, done: boolean): void {
    this.send(to, { type: 'SnapshotAck', id, next, done });
  }

  /**
   * Makes room for a new staging from `from`: at most {@link MAX_INCOMING_TRANSFERS}; the idlest goes,
   * but only if it made no progress within the last two `resendTicks`. Returns false when every
   * staging is progressing: the new transfer is refused (its sender resends from 0 later). Evicting a
   * progressing staging for a new one let three senders to one receiver evict each other forever
   * (kvstore snapshot-transfer-group seed 900125: a new leader collecting four Promises never finished).
   */
  private evictFor(from: NodeId): boolean {
    while (this.incoming.size >= MAX_INCOMING_TRANSFERS && !this.incoming.has(from)) {
      let idlest: NodeId | undefined;
      let at = Number.POSITIVE_INFINITY;
      for (const [p, s] of this.incoming) {
        if (s.lastChunk < at) {
          at = s.lastChunk;
          idlest = p;
        }
      }
      if (idlest === undefined || this.now - at < 2 * this.config.resendTicks) return false;
      this.drop(idlest);
      this.stats.discarded++;
    }
    return true;
  }

  /** Forgets the staging from `from` and gives its bytes back to the budget. */
  private drop(from: NodeId): void {
    const s = this.incoming.get(from);
    if (s === undefined) return;
    this.budget.give(s.received);
    this.incoming.delete(from);
  }

  private discard(from: NodeId, s: Incoming, why: string): ReceiveOutcome {
    this.drop(from);
    this.stats.discarded++;
    this.ack(from, s.id, 0, false);
    return { kind: 'discarded', reason: `transfer ${s.id} from replica ${from} discarded: ${why}` };
  }
}

/** The fields of `c` that name its transfer. */
function transferOf(c: SnapshotChunk) {
  return {
    id: c.id,
    config: c.config,
    kind: c.kind,
    n: c.n,
    index: c.index,
    total: c.total,
    dataBytes: c.dataBytes,
    sum: new Uint8Array(c.sum),
    headSum: new Uint8Array(c.headSum),
  };
}

function sameTransfer(s: Incoming, c: SnapshotChunk): boolean {
  return (
    s.id === c.id &&
    s.total === c.total &&
    s.dataBytes === c.dataBytes &&
    sameMeta(s, c) &&
    equalBytes(s.sum, c.sum) &&
    equalBytes(s.headSum, c.headSum)
  );
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Bytes `[from, to)` of the concatenated `parts`. */
function concat(parts: readonly Uint8Array[], from: number, to: number): Uint8Array {
  const out = new Uint8Array(to - from);
  let at = 0;
  for (const p of parts) {
    const lo = Math.max(from, at);
    const hi = Math.min(to, at + p.length);
    if (lo < hi) out.set(p.subarray(lo - at, hi - at), lo - from);
    at += p.length;
    if (at >= to) break;
  }
  return out;
}

/**
 * The server's check of a message for a replica group, before the group sees it: a transfer message
 * ({@link isSnapshotTransferMessage}) or a reconfiguration message as the paxos package validates it
 * (envelope, inner message's shape, bounds and sender). Returns the problem (a metric label), or null
 * when the message may be handed to `ReplicaGroup.handle`. Never throws.
 */
export function checkGroupMessage(from: NodeId, m: unknown): string | null {
  if (isSnapshotTransferMessage(m)) return null;
  if (typeof m === 'object' && m !== null) {
    const t = (m as { type?: unknown }).type;
    if (t === 'SnapshotChunk' || t === 'SnapshotAck') return 'malformed';
  }
  const v = validateReconfigMessage(from, m);
  return v.ok ? null : v.problem;
}
