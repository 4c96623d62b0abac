/**
 * Chunked transfer of the catch-up messages of a replica group (a snapshot plus a log suffix): the
 * `Promise` and `AcceptSync` of a re-synchronisation and the `JoinState` a joining replica starts from.
 * A partition's state can be far larger than one peer frame (16 MiB by default), so such a message is
 * never sent whole: it is encoded once, and streamed as chunks of {@link SnapshotTransferConfig.chunkBytes}
 * with a window of {@link SnapshotTransferConfig.windowChunks} unacknowledged chunks (Raft's
 * InstallSnapshot with offset and done, streamed like etcd's snapshots), so it never holds more than a
 * window of the link's queue ahead of the group's other traffic.
 *
 * The receiver stages the chunks of one transfer per sender in memory: every chunk must name the same
 * transfer (id, configuration, message kind, ballot, snapshot index, total size, SHA-256 of the whole),
 * offsets must be contiguous (a duplicate or out-of-order chunk is ignored and answered with the offset
 * expected), the total is capped by {@link SnapshotTransferConfig.maxBytes}. Only when every byte is in
 * and the SHA-256 matches is the message decoded (bounded) and handed to the group like any message
 * from that peer: the paxos core installs its snapshot in one step, durably and atomically (the snapshot
 * file is durable before the record that points at it). A transfer that stops making progress is
 * discarded on both sides; a restart loses the staging (nothing of it reached storage), and the core's
 * own resend asks for the state again. Dropping or delaying any of these messages is always safe: the
 * core tolerates loss, so a stale or superseded transfer is simply abandoned.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { resolveDecodeLimits, scanMsgpack } from '@paxkv/common';
import {
  type Ballot,
  isBallot,
  MAX_LOG_INDEX,
  MAX_ROUND,
  type NodeId,
  type ReconfigMessage,
  validateReconfigMessage,
} from '@paxkv/paxos';
import { decode, encode } from './codec.js';

/** Most bytes one chunk may carry on the wire, whatever the sender's configuration: 8 MiB (half a frame). */
export const MAX_TRANSFER_CHUNK_BYTES = 8 * 1024 * 1024;

/** Bytes of the SHA-256 digest every chunk carries. */
export const TRANSFER_DIGEST_BYTES = 32;

/** Most transfers a group stages at once (one per sender; an old leader's and a new leader's, say). */
export const MAX_INCOMING_TRANSFERS = 2;

/** Bounds of the decode of a reassembled message (its snapshot is a binary field, pre-scanned later). */
const REASSEMBLED_DECODE_LIMITS = resolveDecodeLimits({ maxExpansion: 32 });

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

/** One piece of a transfer: bytes `[offset, offset + data.length)` of the encoded message. */
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
  /** Bytes of the whole encoded message. */
  readonly total: number;
  /** SHA-256 of the whole encoded message. */
  readonly sum: Uint8Array;
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

function isCount(x: unknown, max = Number.MAX_SAFE_INTEGER): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x <= max;
}

/**
 * Whether `x` is a well-formed transfer message, every field bounded: ids and indexes within
 * `MAX_LOG_INDEX`, a chunk of 1 to {@link MAX_TRANSFER_CHUNK_BYTES} bytes inside `[0, total)`, a 32-byte
 * digest, a ballot within `MAX_ROUND` (or `null` only for a `JoinState`). Never throws.
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
  if (!(m.sum instanceof Uint8Array) || m.sum.length !== TRANSFER_DIGEST_BYTES) return false;
  if (!(m.data instanceof Uint8Array) || m.data.length === 0 || m.data.length > MAX_TRANSFER_CHUNK_BYTES)
    return false;
  return isCount(m.total) && isCount(m.offset) && m.offset + m.data.length <= m.total;
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
  if (m.type === 'JoinState') return { config: m.config, kind: 'JoinState', n: null, index: m.snapshot?.index ?? 0 };
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

/**
 * Upper estimate of the encoded size of `x` (strings at 3 bytes per UTF-16 unit), stopping once it
 * passes `limit`. Cheap: catch-up messages are rare and their big part is one binary field.
 */
function estimateBytes(x: unknown, limit: number): number {
  let total = 0;
  const stack: unknown[] = [x];
  while (stack.length > 0 && total <= limit) {
    const v = stack.pop();
    if (typeof v === 'string') total += 5 + v.length * 3;
    else if (v instanceof Uint8Array) total += 5 + v.length;
    else if (Array.isArray(v)) {
      total += 5;
      for (const e of v) stack.push(e);
    } else if (typeof v === 'object' && v !== null) {
      total += 5;
      for (const [k, e] of Object.entries(v)) {
        total += 1 + k.length;
        stack.push(e);
      }
    } else total += 9;
  }
  return total;
}

interface Outgoing extends TransferMeta {
  readonly id: number;
  readonly bytes: Uint8Array;
  readonly sum: Uint8Array;
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
  readonly sum: Uint8Array;
  readonly parts: Uint8Array[];
  readonly hash: Hash;
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
  /** Staged transfers dropped: idle, superseded, evicted, or failing the checksum or decode. */
  discarded: number;
  /** Chunks refused: a transfer over `maxBytes`. */
  refused: number;
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
    discarded: 0,
    refused: 0,
  };
  private readonly config: SnapshotTransferConfig;
  private readonly out = new Map<NodeId, Outgoing>();
  private readonly incoming = new Map<NodeId, Incoming>();
  /** Per sender, the last transfer delivered (its chunks are answered "done" again). */
  private readonly delivered = new Map<NodeId, { readonly id: number; readonly total: number }>();
  private nextId = 1;
  private now = 0;

  constructor(
    config: Partial<SnapshotTransferConfig> | undefined,
    private readonly send: (to: NodeId, message: SnapshotTransferMessage) => void,
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
    if (cur) this.stats.abandoned++;
    const bytes = encode(message);
    const sum = new Uint8Array(createHash('sha256').update(bytes).digest());
    this.out.set(to, {
      ...meta,
      id: this.nextId++,
      bytes,
      sum,
      acked: 0,
      sent: 0,
      lastProgress: this.now,
      lastSend: this.now,
    });
    this.stats.started++;
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
    const kind = m.type === 'Prepare' ? 'Promise' : m.type === 'PrepareReq' ? 'AcceptSync' : undefined;
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
    if (!t || t.id !== ack.id || ack.next > t.bytes.length) return;
    if (ack.done) {
      if (ack.next === t.bytes.length) {
        this.out.delete(from);
        this.stats.completed++;
      }
      return;
    }
    if (ack.next > t.acked) {
      t.acked = ack.next;
      if (t.sent < t.acked) t.sent = t.acked;
      t.lastProgress = this.now;
      t.lastSend = this.now;
    } else if (ack.next < t.acked) {
      // The receiver lost its staging (restart, timeout, eviction): start over from what it holds.
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
    if (done && done.id === c.id && done.total === c.total) {
      this.ack(from, c.id, c.total, true);
      return { kind: 'staged' };
    }
    let s = this.incoming.get(from);
    if (s && !(s.id === c.id && s.total === c.total && sameMeta(s, c) && equalBytes(s.sum, c.sum))) {
      if (c.offset !== 0) {
        // A chunk of a transfer we do not stage (ours is newer, or we lost its start): resend from 0.
        this.ack(from, c.id, 0, false);
        return { kind: 'staged' };
      }
      this.incoming.delete(from); // superseded by a new transfer from the same sender
      this.stats.discarded++;
      s = undefined;
    }
    if (!s) {
      if (c.offset !== 0 && !mutated) {
        this.ack(from, c.id, 0, false);
        return { kind: 'staged' };
      }
      this.evictFor(from);
      s = {
        id: c.id,
        config: c.config,
        kind: c.kind,
        n: c.n,
        index: c.index,
        total: c.total,
        sum: new Uint8Array(c.sum),
        parts: [],
        hash: createHash('sha256'),
        received: 0,
        lastChunk: this.now,
      };
      this.incoming.set(from, s);
    }
    if (c.offset !== s.received && !mutated) {
      // A duplicate, or a chunk after a lost one: keep the contiguous prefix, say where it ends.
      this.ack(from, s.id, s.received, false);
      return { kind: 'staged' };
    }
    const len = Math.min(c.data.length, s.total - s.received);
    // Copied (the constructor copies; a Buffer's slice would not): the chunk is a view of its frame.
    const part = new Uint8Array(c.data.subarray(0, len));
    s.parts.push(part);
    s.hash.update(part);
    s.received += len;
    s.lastChunk = this.now;
    if (s.received < s.total) {
      this.ack(from, s.id, s.received, false);
      return { kind: 'staged' };
    }
    this.incoming.delete(from);
    const sum = s.hash.digest();
    if (!mutated && !equalBytes(sum, s.sum)) return this.discard(from, s, 'its SHA-256 does not match');
    const bytes = concat(s.parts, s.total);
    if (scanMsgpack(bytes, REASSEMBLED_DECODE_LIMITS) !== null)
      return this.discard(from, s, 'it is not a well-formed message');
    const message = decode(bytes, 'a transferred message');
    const meta =
      typeof message === 'object' && message !== null && !(message instanceof Error)
        ? catchUpMeta(message as ReconfigMessage<unknown>)
        : undefined;
    if (!meta || !sameMeta(meta, s)) return this.discard(from, s, 'it is not the message its chunks named');
    this.delivered.set(from, { id: s.id, total: s.total });
    this.stats.delivered++;
    this.ack(from, s.id, s.total, true);
    return { kind: 'delivered', message: message as ReconfigMessage<unknown>, bytes: s.total };
  }

  /** One tick: resends unacknowledged chunks, drops transfers that stopped making progress. */
  tick(): void {
    this.now++;
    for (const [to, t] of this.out) {
      if (this.now - t.lastProgress >= this.config.idleTimeoutTicks) {
        this.out.delete(to);
        this.stats.abandoned++;
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
        this.incoming.delete(from);
        this.stats.discarded++;
      }
    }
  }

  /** The session to `peer` broke or came back: chunks in flight to it may be lost, resend from its ack. */
  peerReset(peer: NodeId): void {
    const t = this.out.get(peer);
    if (t) t.sent = t.acked;
  }

  /** Forgets every transfer (the group closed or stopped). */
  clear(): void {
    this.out.clear();
    this.incoming.clear();
    this.delivered.clear();
  }

  private pump(to: NodeId): void {
    const t = this.out.get(to);
    if (!t) return;
    const { chunkBytes, windowChunks } = this.config;
    const limit = Math.min(t.bytes.length, t.acked + windowChunks * chunkBytes);
    while (t.sent < limit) {
      const end = Math.min(t.bytes.length, t.sent + chunkBytes);
      const chunk: SnapshotChunk = {
        type: 'SnapshotChunk',
        id: t.id,
        config: t.config,
        kind: t.kind,
        n: t.n,
        index: t.index,
        total: t.bytes.length,
        sum: t.sum,
        offset: t.sent,
        data: t.bytes.subarray(t.sent, end),
      };
      this.stats.chunksSent++;
      this.send(to, chunk);
      t.sent = end;
    }
  }

  private ack(to: NodeId, id: number, next: number, done: boolean): void {
    this.send(to, { type: 'SnapshotAck', id, next, done });
  }

  /** Makes room for a new staging from `from`: at most {@link MAX_INCOMING_TRANSFERS}, the idlest goes. */
  private evictFor(from: NodeId): void {
    while (this.incoming.size >= MAX_INCOMING_TRANSFERS && !this.incoming.has(from)) {
      let idlest: NodeId | undefined;
      let at = Number.POSITIVE_INFINITY;
      for (const [p, s] of this.incoming) {
        if (s.lastChunk < at) {
          at = s.lastChunk;
          idlest = p;
        }
      }
      if (idlest === undefined) return;
      this.incoming.delete(idlest);
      this.stats.discarded++;
    }
  }

  private discard(from: NodeId, s: Incoming, why: string): ReceiveOutcome {
    this.stats.discarded++;
    this.ack(from, s.id, 0, false);
    return { kind: 'discarded', reason: `transfer ${s.id} from replica ${from} discarded: ${why}` };
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1 && parts[0]?.length === total) return parts[0] as Uint8Array;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p.subarray(0, Math.min(p.length, total - at)), at);
    at += p.length;
    if (at >= total) break;
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
