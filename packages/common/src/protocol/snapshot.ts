/**
 * Backup and restore of one partition's state (what `paxkv snapshot save|restore` is made of).
 *
 * - `snapshot` (a read, served after a read-index round by the partition's leader) returns the
 *   partition's whole state at one revision: every key with its value and revisions, and its leases.
 *   Client sessions are left out: they belong to the clients of the cluster that took the snapshot.
 *   Taken after the request arrived, it holds every write acknowledged before the request was sent.
 * - `restore` (a write through the log) loads such a state into an **empty** partition (no key, no
 *   lease, revision 0): every replica applies it at the same log index, so the restored partition is
 *   replicated and durable like any write. A partition that holds anything refuses it (nothing changes),
 *   so a restore never mixes two histories.
 *
 * The state travels in one message, so a partition's state is bounded by
 * {@link MAX_PARTITION_STATE_BYTES} (8 MiB, half the default frame limit, leaving room for the paxos
 * frame that replicates a `restore`); a larger partition answers `snapshot` with outcome `too-large`.
 * @module
 */
import { z } from 'zod';
import { PartitionSchema, ResultHeaderShape } from './revisions.js';

/** Largest serialized state of one partition that `snapshot` returns and `restore` accepts: 8 MiB. */
export const MAX_PARTITION_STATE_BYTES = 8 * 1024 * 1024;

/** A partition's serialized state: bytes, at most {@link MAX_PARTITION_STATE_BYTES}. */
export const PartitionStateSchema = z.custom<Uint8Array>(
  (v) => v instanceof Uint8Array && v.byteLength <= MAX_PARTITION_STATE_BYTES,
  { message: `expected the partition state as bytes, at most ${MAX_PARTITION_STATE_BYTES} bytes` },
);

/** `snapshot`: the whole state of `partition` at one revision (a read). */
export const SnapshotOpSchema = z.object({ op: z.literal('snapshot'), partition: PartitionSchema });

/** `restore`: load `state` (a `snapshot` result's state) into the empty `partition` (a write). */
export const RestoreOpSchema = z.object({
  op: z.literal('restore'),
  partition: PartitionSchema,
  state: PartitionStateSchema,
});

/**
 * Result of `snapshot`: `ok` with the state, its number of keys and leases, at the result's `revision`;
 * or `too-large` (empty `state`) when the state's `bytes` exceed {@link MAX_PARTITION_STATE_BYTES}.
 */
export const SnapshotResultSchema = z.object({
  op: z.literal('snapshot'),
  outcome: z.enum(['ok', 'too-large']),
  bytes: z.number().int().nonnegative(),
  state: PartitionStateSchema,
  keys: z.number().int().nonnegative(),
  leases: z.number().int().nonnegative(),
  ...ResultHeaderShape,
});

/**
 * Result of `restore`: `restored` with the keys and leases loaded (the partition's revision is then the
 * snapshot's), or `not-empty` when the partition already held something (nothing changed).
 */
export const RestoreResultSchema = z.object({
  op: z.literal('restore'),
  outcome: z.enum(['restored', 'not-empty']),
  keys: z.number().int().nonnegative(),
  leases: z.number().int().nonnegative(),
  ...ResultHeaderShape,
});

/** The names of the backup operations (they carry a partition instead of a key). */
export type SnapshotOpName = 'snapshot' | 'restore';
/** A `snapshot` operation. */
export type SnapshotOp = z.infer<typeof SnapshotOpSchema>;
/** A `restore` operation. */
export type RestoreOp = z.infer<typeof RestoreOpSchema>;
/** The result of `snapshot`. */
export type SnapshotResult = z.infer<typeof SnapshotResultSchema>;
/** The result of `restore`. */
export type RestoreResult = z.infer<typeof RestoreResultSchema>;
