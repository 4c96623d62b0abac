/**
 * Revision numbers and the revision fields that results carry (see the `kv` module notes).
 * @module
 */
import { z } from 'zod';

/** A revision or version number: a non-negative safe integer. */
export const RevisionSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** A partition number: a non-negative integer (bounded by the table's partition count where it is used). */
export const PartitionSchema = z.number().int().nonnegative().max(0xffff);

/** The revisions of one key (all 0 when the key is absent); see the module notes. */
export const KeyMetaShape = {
  /** Revision of the write that created the key (0 if absent). */
  createRevision: RevisionSchema,
  /** Revision of the key's last change (0 if absent). */
  modRevision: RevisionSchema,
  /** Writes to the key since its creation (1 after the creating write, 0 if absent). */
  version: RevisionSchema,
} as const;

/** The partition's revision after the operation and the partition that served it. */
export const ResultHeaderShape = {
  /** The partition's revision after the operation (for a read: at which it was served). */
  revision: RevisionSchema,
  /** The partition that served the operation. */
  partition: PartitionSchema,
} as const;

/** The revisions of one key (all 0 when absent). */
export interface KeyMeta {
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
}
