/**
 * Leases: keys that disappear when their owner stops renewing them, as etcd's leases and Redis's TTLs.
 *
 * Two halves, kept apart on purpose:
 * - {@link LeaseTable} is replicated state, part of the partition's state machine: which leases exist,
 *   their TTL, and which keys are attached. It changes only by applying log entries (grant, revoke,
 *   expire, a put that attaches a key), so every replica agrees on it.
 * - {@link LeaseClock} is the leader's private timekeeping: when each lease is due. It never changes
 *   replicated state by itself; when a lease is due the leader *proposes* an expiry through the log
 *   (replicas never expire anything on their own clocks). A new leader starts every lease afresh with
 *   its TTL plus a grace period, so no lease expires because of the election (etcd does the same).
 *
 * A lease belongs to one partition, the one it was granted in; its id encodes that partition
 * (`id % LEASE_PARTITION_SPACE`), so revoke and keep-alive are routed without a lookup. Keys attached
 * to a lease must live in its partition: revoking or expiring a lease deletes its keys atomically, in
 * one log entry, which only one partition's log can do. Use a hash tag (`{svc}:a`, `{svc}:b`) to put
 * related keys and their lease in one partition.
 * @module
 */

import { LEASE_PARTITION_SPACE, leasePartition, MAX_LEASE_TTL_MS, MIN_LEASE_TTL_MS } from '@paxkv/common';

/** Largest lease sequence number, so that every id is a safe integer. */
const MAX_LEASE_SEQUENCE = Math.floor(Number.MAX_SAFE_INTEGER / LEASE_PARTITION_SPACE) - 1;

/** Whether `lease` is a well-formed lease id (a positive safe integer). */
export function isLeaseId(lease: unknown): lease is number {
  return Number.isSafeInteger(lease) && (lease as number) >= LEASE_PARTITION_SPACE;
}

/** One granted lease, as the replicated state holds it. */
export interface LeaseInfo {
  /** The lease id. */
  readonly lease: number;
  /** Time to live granted, in ms. */
  readonly ttlMs: number;
  /** Keys attached to it, in attachment order. */
  readonly keys: readonly string[];
}

/** Why a grant was refused (nothing changed). */
export type GrantRefusal = 'too-many-leases' | 'bad-ttl' | 'ids-exhausted';

/**
 * The replicated lease state of one partition. Deterministic: a function of the applied log only.
 */
export class LeaseTable {
  private readonly leases = new Map<number, { ttlMs: number; keys: Set<string> }>();
  /** The lease of every attached key (keys without a lease are not here: most keys have none). */
  private readonly keyLeases = new Map<string, number>();
  private seq = 0;

  /**
   * @param partition the partition this table belongs to (encoded in every lease id)
   * @param maxLeases most leases alive at once; more grants are refused
   */
  constructor(
    readonly partition: number,
    readonly maxLeases: number,
  ) {}

  /** Number of live leases. */
  get size(): number {
    return this.leases.size;
  }

  /** Grants a new lease; returns its id, or why it was refused. */
  grant(ttlMs: number): number | GrantRefusal {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < MIN_LEASE_TTL_MS || ttlMs > MAX_LEASE_TTL_MS)
      return 'bad-ttl';
    if (this.leases.size >= this.maxLeases) return 'too-many-leases';
    if (this.seq >= MAX_LEASE_SEQUENCE) return 'ids-exhausted';
    const id = ++this.seq * LEASE_PARTITION_SPACE + this.partition;
    this.leases.set(id, { ttlMs, keys: new Set() });
    return id;
  }

  /** The lease, if it exists. */
  get(lease: number): LeaseInfo | undefined {
    const l = this.leases.get(lease);
    return l && { lease, ttlMs: l.ttlMs, keys: [...l.keys] };
  }

  /** Whether the lease exists. */
  has(lease: number): boolean {
    return this.leases.has(lease);
  }

  /** Every live lease, by id. */
  list(): LeaseInfo[] {
    return [...this.leases.keys()].sort((a, b) => a - b).map((id) => this.get(id) as LeaseInfo);
  }

  /** Ids and TTLs of every live lease (for the leader's clock). */
  ttls(): Iterable<[number, number]> {
    return [...this.leases].map(([id, l]): [number, number] => [id, l.ttlMs]);
  }

  /** Attaches `key` to `lease` (no-op if the lease is gone); a key has at most one lease. */
  attach(key: string, lease: number): void {
    const l = this.leases.get(lease);
    if (!l) return;
    const old = this.keyLeases.get(key);
    if (old !== undefined && old !== lease) this.detach(key, old);
    l.keys.add(key);
    this.keyLeases.set(key, lease);
  }

  /** Detaches `key` from `lease` (no-op if it is not attached to it). */
  detach(key: string, lease: number): void {
    this.leases.get(lease)?.keys.delete(key);
    if (this.keyLeases.get(key) === lease) this.keyLeases.delete(key);
  }

  /** The lease `key` is attached to, or 0 (none). */
  leaseOf(key: string): number {
    return this.keyLeases.get(key) ?? 0;
  }

  /** Every attached key with its lease. */
  attachments(): IterableIterator<[string, number]> {
    return this.keyLeases.entries();
  }

  /**
   * Removes the lease and detaches its keys; returns the keys that were attached (to be deleted by the
   * caller), or null if unknown.
   */
  remove(lease: number): string[] | null {
    const l = this.leases.get(lease);
    if (!l) return null;
    this.leases.delete(lease);
    for (const k of l.keys) this.keyLeases.delete(k);
    return [...l.keys];
  }

  /** Flat snapshot form: `[seq, id, ttl, id, ttl, ...]` (attachments are restored from the keys). */
  toSnapshot(): number[] {
    const out = [this.seq];
    for (const [id, l] of this.leases) out.push(id, l.ttlMs);
    return out;
  }

  /** Restores {@link LeaseTable.toSnapshot}; returns false if the data is malformed. */
  restore(flat: unknown): boolean {
    if (!Array.isArray(flat) || flat.length % 2 !== 1) return false;
    const [seq, ...rest] = flat as unknown[];
    if (!Number.isSafeInteger(seq) || (seq as number) < 0 || (seq as number) > MAX_LEASE_SEQUENCE)
      return false;
    this.seq = seq as number;
    for (let i = 0; i < rest.length; i += 2) {
      const id = rest[i];
      const ttl = rest[i + 1];
      if (!isLeaseId(id) || leasePartition(id) !== this.partition) return false;
      if (
        !Number.isSafeInteger(ttl) ||
        (ttl as number) < MIN_LEASE_TTL_MS ||
        (ttl as number) > MAX_LEASE_TTL_MS
      )
        return false;
      this.leases.set(id, { ttlMs: ttl as number, keys: new Set() });
    }
    return true;
  }
}

/**
 * The leader's timekeeping of leases (see the module comment). Time is whatever monotonic unit the
 * caller uses consistently (the replica group uses its tick count converted to ms).
 */
export class LeaseClock {
  private readonly deadlines = new Map<number, number>();
  /** Leases whose expiry was proposed, with when: not proposed again until `retryAfterMs` passed. */
  private readonly proposed = new Map<number, number>();

  /**
   * @param graceMs extra time every lease gets when a new leader takes over
   * @param retryAfterMs an expiry proposal that has not been applied after this long is proposed again
   * @param unsafeKeepStaleDeadlines TESTING ONLY (mutation check): keep deadlines across a step-down and
   *   reuse them on the next takeover, which expires leases that were kept alive through another leader
   */
  constructor(
    readonly graceMs: number,
    readonly retryAfterMs: number,
    readonly unsafeKeepStaleDeadlines = false,
  ) {}

  /** This replica became leader at `now`: every lease starts afresh with its TTL plus the grace period. */
  takeOver(now: number, leases: Iterable<[number, number]>): void {
    if (!this.unsafeKeepStaleDeadlines) this.deadlines.clear();
    this.proposed.clear();
    for (const [id, ttl] of leases)
      if (!this.deadlines.has(id)) this.deadlines.set(id, now + ttl + this.graceMs);
  }

  /** This replica stopped leading: it forgets every deadline (the next leader keeps time). */
  stepDown(): void {
    if (!this.unsafeKeepStaleDeadlines) this.deadlines.clear();
    this.proposed.clear();
  }

  /** A lease was granted or kept alive at `now`: it is due `ttlMs` later. */
  refresh(lease: number, ttlMs: number, now: number): void {
    this.deadlines.set(lease, now + ttlMs);
    this.proposed.delete(lease);
  }

  /** A lease is gone (revoked or expired through the log). */
  forget(lease: number): void {
    this.deadlines.delete(lease);
    this.proposed.delete(lease);
  }

  /**
   * Whether `lease` is due at `now` (its expiry is being, or about to be, proposed). A keep-alive must not
   * revive it: the expiry entry may already be in the log and would delete the key after the keep-alive
   * was answered (etcd's lessor answers such a renewal with "not found" too).
   */
  ending(lease: number, now: number): boolean {
    const d = this.deadlines.get(lease);
    return d !== undefined && d <= now;
  }

  /** Time left before `lease` is due, in the caller's unit (undefined if not tracked). */
  remaining(lease: number, now: number): number | undefined {
    const d = this.deadlines.get(lease);
    return d === undefined ? undefined : Math.max(0, d - now);
  }

  /** Leases due at `now` whose expiry should be proposed now; marks them proposed. */
  due(now: number): number[] {
    const out: number[] = [];
    for (const [id, deadline] of this.deadlines) {
      if (deadline > now) continue;
      const at = this.proposed.get(id);
      if (at !== undefined && now - at < this.retryAfterMs) continue;
      this.proposed.set(id, now);
      out.push(id);
    }
    return out;
  }
}
