/**
 * Lease operations: keys that disappear when their owner stops renewing them (etcd leases, Redis TTLs).
 *
 * A lease belongs to one partition, the one it was granted in, and its id encodes it
 * (`id % LEASE_PARTITION_SPACE`): revoke and keep-alive are routed from the id alone. Keys attached to a
 * lease (`put` with `lease`) must be in the lease's partition, because revoking or expiring a lease
 * deletes its keys atomically in one log entry: grant the lease for a key of the same hash tag.
 *
 * - `lease-grant` (a write through the log) creates a lease with a TTL;
 * - `lease-keepalive` (served by the leader after a read-index round, not logged) restarts its TTL;
 * - `lease-revoke` (a write) deletes the lease and its keys; `lease-expire` is the same entry proposed by
 *   the leader when a lease's TTL ran out without a keep-alive (expiry is decided by the leader's clock
 *   only, never by the replicas' own clocks; a new leader gives every lease its TTL plus a grace period);
 * - `lease-list` (a read) lists the partition's leases;
 * - `lease-timetolive` (served by the leader after a read-index round, not logged) tells a lease's TTL,
 *   the time it has left on the leader's clock and optionally its keys; asked by `key`, it answers for
 *   the lease the key is attached to (what Redis `TTL`/`PTTL` needs), as etcd's `LeaseTimeToLive`.
 * @module
 */
import { z } from 'zod';
import { KeySchema } from './primitives.js';
import { PartitionSchema, ResultHeaderShape } from './revisions.js';

/** Lease ids are `sequence * LEASE_PARTITION_SPACE + partition`: the partition is recoverable from the id. */
export const LEASE_PARTITION_SPACE = 65_536;
/** Shortest lease TTL accepted, in ms: shorter leases could expire during an ordinary election. */
export const MIN_LEASE_TTL_MS = 1_000;
/** Longest lease TTL accepted, in ms: one year. */
export const MAX_LEASE_TTL_MS = 365 * 24 * 3_600_000;
/** Most leases one `lease-list` answer carries. */
export const MAX_LEASES_LISTED = 10_000;
/** Most keys one `lease-timetolive` answer lists (`more` says when there are more). */
export const MAX_LEASE_KEYS_LISTED = 10_000;

/** The partition a lease id belongs to. */
export function leasePartition(lease: number): number {
  return lease % LEASE_PARTITION_SPACE;
}

/** A lease id: a safe integer of at least {@link LEASE_PARTITION_SPACE}. */
export const LeaseIdSchema = z.number().int().min(LEASE_PARTITION_SPACE).max(Number.MAX_SAFE_INTEGER);
/** A lease TTL in ms, within [{@link MIN_LEASE_TTL_MS}, {@link MAX_LEASE_TTL_MS}]. */
export const LeaseTtlSchema = z.number().int().min(MIN_LEASE_TTL_MS).max(MAX_LEASE_TTL_MS);

/** `lease-grant`: a new lease with `ttlMs` in `partition`. */
export const LeaseGrantOpSchema = z.object({
  op: z.literal('lease-grant'),
  partition: PartitionSchema,
  ttlMs: LeaseTtlSchema,
});
/** `lease-revoke`: delete the lease and every key attached to it, atomically. */
export const LeaseRevokeOpSchema = z.object({ op: z.literal('lease-revoke'), lease: LeaseIdSchema });
/** `lease-expire`: what the leader proposes when a lease's TTL ran out (same effect as a revoke). */
export const LeaseExpireOpSchema = z.object({ op: z.literal('lease-expire'), lease: LeaseIdSchema });
/** `lease-keepalive`: restart the lease's TTL (served by the leader, not logged). */
export const LeaseKeepAliveOpSchema = z.object({ op: z.literal('lease-keepalive'), lease: LeaseIdSchema });
/** `lease-list`: the leases of `partition`. */
export const LeaseListOpSchema = z.object({ op: z.literal('lease-list'), partition: PartitionSchema });

/**
 * `lease-timetolive`: how long a lease has left. Give exactly one of `lease` (a lease id) or `key` (the
 * lease the key is attached to, in the key's partition); `keys: true` also lists the lease's keys.
 */
export const LeaseTimeToLiveOpSchema = z
  .object({
    op: z.literal('lease-timetolive'),
    lease: LeaseIdSchema.optional(),
    key: KeySchema.optional(),
    keys: z.boolean().optional(),
  })
  .refine((o) => (o.lease === undefined) !== (o.key === undefined), {
    message: 'give exactly one of lease or key',
    path: ['lease'],
  });

/** Result of `lease-grant`: the new lease's id, or `granted: false` (lease 0) when the partition holds its maximum. */
export const LeaseGrantResultSchema = z.object({
  op: z.literal('lease-grant'),
  granted: z.boolean(),
  lease: z.number().int().nonnegative(),
  ttlMs: LeaseTtlSchema,
  ...ResultHeaderShape,
});
const LeaseEndShape = {
  /** Whether the lease existed. */
  found: z.boolean(),
  /** Keys deleted with it. */
  deleted: z.number().int().nonnegative(),
  ...ResultHeaderShape,
} as const;
/** Result of `lease-revoke`: whether the lease existed and how many keys went with it. */
export const LeaseRevokeResultSchema = z.object({ op: z.literal('lease-revoke'), ...LeaseEndShape });
/** Result of `lease-expire` (same fields as a revoke). */
export const LeaseExpireResultSchema = z.object({ op: z.literal('lease-expire'), ...LeaseEndShape });
/** Result of `lease-keepalive`: whether the lease still exists, and its TTL (restarted now). */
export const LeaseKeepAliveResultSchema = z.object({
  op: z.literal('lease-keepalive'),
  found: z.boolean(),
  ttlMs: z.number().int().nonnegative(),
  ...ResultHeaderShape,
});
/**
 * Result of `lease-timetolive`. `found: false` when the lease does not exist (expired or revoked) or,
 * asked by key, when the key is absent or attached to no lease (`lease` is then 0, as are the times).
 * `remainingMs` is the time left on the leader's clock before the leader proposes the lease's expiry
 * (a new leader gives every lease its TTL plus a grace period, so it can exceed `ttlMs` just after an
 * election); the expiry itself is applied when that proposal commits, a little later.
 */
export const LeaseTimeToLiveResultSchema = z.object({
  op: z.literal('lease-timetolive'),
  found: z.boolean(),
  lease: z.number().int().nonnegative(),
  /** The TTL the lease was granted with (0 when not found). */
  ttlMs: z.number().int().nonnegative(),
  remainingMs: z.number().int().nonnegative(),
  /** The lease's keys (only when asked with `keys: true`; at most {@link MAX_LEASE_KEYS_LISTED}). */
  keys: z.array(KeySchema).max(MAX_LEASE_KEYS_LISTED).optional(),
  /** True when `keys` was cut at {@link MAX_LEASE_KEYS_LISTED}. */
  more: z.boolean().optional(),
  ...ResultHeaderShape,
});

/** One lease of a `lease-list` answer. */
export const LeaseInfoSchema = z.object({
  lease: LeaseIdSchema,
  ttlMs: LeaseTtlSchema,
  /** Keys attached. */
  keys: z.number().int().nonnegative(),
});
/** Result of `lease-list`: the partition's leases by id (at most {@link MAX_LEASES_LISTED}, `more` if cut). */
export const LeaseListResultSchema = z.object({
  op: z.literal('lease-list'),
  leases: z.array(LeaseInfoSchema).max(MAX_LEASES_LISTED),
  more: z.boolean(),
  ...ResultHeaderShape,
});

/** One lease as `lease-list` describes it. */
export type LeaseInfo = z.infer<typeof LeaseInfoSchema>;

/** The names of the lease operations (they carry a partition or a lease id instead of a key). */
export type LeaseOpName =
  | 'lease-grant'
  | 'lease-revoke'
  | 'lease-expire'
  | 'lease-keepalive'
  | 'lease-list'
  | 'lease-timetolive';

/** Whether `op` names a lease operation. */
export function isLeaseOpName(op: string): op is LeaseOpName {
  return op.startsWith('lease-');
}
