/**
 * Key-value operations and their results.
 *
 * Revisions (as in etcd): every partition has a revision counter, 0 before its first write, raised
 * by one by each operation that changes its state (a put, a delete of a present key, an applied CAS;
 * a failed CAS and a delete of an absent key change nothing and keep the revision). Every key
 * carries `createRevision` (the revision that created it), `modRevision` (the revision of its last
 * change) and `version` (writes since its creation, 1 after the creating write); an absent key has
 * all three equal to 0. Every result carries the partition's `revision` after the operation and the
 * `partition` that served it. Revisions of different partitions are unrelated.
 * @module
 */
import { z } from 'zod';
import {
  LeaseExpireOpSchema,
  LeaseExpireResultSchema,
  LeaseGrantOpSchema,
  LeaseGrantResultSchema,
  LeaseIdSchema,
  LeaseKeepAliveOpSchema,
  LeaseKeepAliveResultSchema,
  LeaseListOpSchema,
  LeaseListResultSchema,
  type LeaseOpName,
  LeaseRevokeOpSchema,
  LeaseRevokeResultSchema,
  LeaseTimeToLiveOpSchema,
  LeaseTimeToLiveResultSchema,
} from './lease.js';
import { KeySchema, ValueSchema } from './primitives.js';
import { KeyMetaShape, ResultHeaderShape, RevisionSchema } from './revisions.js';
import {
  RestoreOpSchema,
  RestoreResultSchema,
  type SnapshotOpName,
  SnapshotOpSchema,
  SnapshotResultSchema,
} from './snapshot.js';
import { RangeOpSchema, RangeResultSchema, TxnOpSchema, TxnResultSchema } from './txn.js';

/** `get(key)`: read a key. */
export const GetOpSchema = z.object({ op: z.literal('get'), key: KeySchema });
/** `put(key, value)`: write a key unconditionally. */
export const PutOpSchema = z.object({
  op: z.literal('put'),
  key: KeySchema,
  value: ValueSchema,
  /** Attach the key to this lease (of the key's partition): it is deleted when the lease ends. */
  lease: LeaseIdSchema.optional(),
});
/**
 * `cas(key, ..., value)`: write `value` only if the key's current state matches exactly one of:
 * - `expected`: the current value equals it (bytewise); `expected: null` means "only if absent";
 * - `expectedModRevision`: the key's `modRevision` equals it (0: only if absent);
 * - `expectedVersion`: the key's `version` equals it (0: only if absent).
 */
export const CasOpSchema = z
  .object({
    op: z.literal('cas'),
    key: KeySchema,
    expected: ValueSchema.nullable().optional(),
    expectedModRevision: RevisionSchema.optional(),
    expectedVersion: RevisionSchema.optional(),
    value: ValueSchema,
  })
  .superRefine((o, ctx) => {
    const n =
      (o.expected !== undefined ? 1 : 0) +
      (o.expectedModRevision !== undefined ? 1 : 0) +
      (o.expectedVersion !== undefined ? 1 : 0);
    if (n !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['expected'],
        message: 'give exactly one of expected, expectedModRevision, expectedVersion',
      });
    }
  });
/** `delete(key)`: remove a key. */
export const DeleteOpSchema = z.object({ op: z.literal('delete'), key: KeySchema });

/** A signed 64-bit integer in decimal (`-9223372036854775808` .. `9223372036854775807`), as Redis counts. */
export const Int64StringSchema = z
  .string()
  .regex(/^-?(0|[1-9][0-9]{0,18})$/, 'expected a decimal 64-bit integer')
  .refine((s) => {
    const n = BigInt(s);
    return n >= -(2n ** 63n) && n < 2n ** 63n;
  }, 'out of the signed 64-bit range');

/**
 * `incr(key, by)`: atomically add `by` to the decimal integer stored at `key` (absent counts as 0) and
 * store the sum as its decimal text, as Redis `INCRBY` does.
 */
export const IncrOpSchema = z.object({ op: z.literal('incr'), key: KeySchema, by: Int64StringSchema });
/** `append(key, value)`: atomically append bytes to the value at `key` (absent counts as empty). */
export const AppendOpSchema = z.object({ op: z.literal('append'), key: KeySchema, value: ValueSchema });
/** `getdel(key)`: atomically read and delete `key`. */
export const GetDelOpSchema = z.object({ op: z.literal('getdel'), key: KeySchema });
/**
 * `set(key, value, condition)`: a conditional write that can return the previous value, as Redis `SET`
 * with `NX` (`condition: 'absent'`), `XX` (`'present'`), `IFEQ` (`'equal'`, with `expected`) and `GET`
 * (`get: true`). A plain write is `put`.
 */
export const SetOpSchema = z
  .object({
    op: z.literal('set'),
    key: KeySchema,
    value: ValueSchema,
    condition: z.enum(['always', 'absent', 'present', 'equal']),
    expected: ValueSchema.optional(),
    get: z.boolean().optional(),
  })
  .refine((o) => (o.condition === 'equal') === (o.expected !== undefined), {
    message: "set needs 'expected' exactly when its condition is 'equal'",
    path: ['expected'],
  });

/**
 * `size(key)`: the number of keys in the partition of `key` (a read ordered through the group's log).
 * Summed over one key per partition it is Redis `DBSIZE`.
 */
export const SizeOpSchema = z.object({ op: z.literal('size'), key: KeySchema });

/** Any KV operation, tagged by `op`. */
export const KvOpSchema = z.discriminatedUnion('op', [
  GetOpSchema,
  PutOpSchema,
  CasOpSchema,
  DeleteOpSchema,
  IncrOpSchema,
  AppendOpSchema,
  GetDelOpSchema,
  SetOpSchema,
  SizeOpSchema,
  TxnOpSchema,
  RangeOpSchema,
  LeaseGrantOpSchema,
  LeaseRevokeOpSchema,
  LeaseExpireOpSchema,
  LeaseKeepAliveOpSchema,
  LeaseListOpSchema,
  LeaseTimeToLiveOpSchema,
  SnapshotOpSchema,
  RestoreOpSchema,
]);

/** Result of `get`: the value (null if the key is absent) and the key's revisions. */
export const GetResultSchema = z.object({
  op: z.literal('get'),
  value: ValueSchema.nullable(),
  ...KeyMetaShape,
  ...ResultHeaderShape,
});
/**
 * Result of `put`: whether the key was created (true) or overwritten (false), and its revisions after
 * the write (`modRevision` equals `revision`).
 */
export const PutResultSchema = z.object({
  op: z.literal('put'),
  created: z.boolean(),
  ...KeyMetaShape,
  ...ResultHeaderShape,
});
/**
 * Result of `cas`: `applied` if the value was written; `mismatch` if the key's state does not match;
 * `not-found` if the key is absent and the compare asked for a present key. `current` is the value
 * after the operation (the new value when applied, the unchanged one otherwise, null if absent), and
 * the revisions are the key's after the operation.
 */
export const CasResultSchema = z.object({
  op: z.literal('cas'),
  outcome: z.enum(['applied', 'mismatch', 'not-found']),
  current: ValueSchema.nullable(),
  ...KeyMetaShape,
  ...ResultHeaderShape,
});
/** Result of `delete`: whether the key existed (if it did, the partition's revision was raised). */
export const DeleteResultSchema = z.object({
  op: z.literal('delete'),
  existed: z.boolean(),
  ...ResultHeaderShape,
});

/**
 * Result of `incr`: `applied` with the new value (decimal text); `not-integer` if the stored value is not
 * a decimal 64-bit integer; `overflow` if the sum leaves the 64-bit range. Nothing is written unless
 * applied. `value` is the new value when applied, the unchanged one on overflow, null when not an integer.
 */
export const IncrResultSchema = z.object({
  op: z.literal('incr'),
  outcome: z.enum(['applied', 'not-integer', 'overflow']),
  value: z.string().nullable(),
  ...KeyMetaShape,
  ...ResultHeaderShape,
});
/**
 * Result of `append`: `applied` with the new length in bytes; `too-large` (nothing written) if the
 * result would exceed the largest value (`DEFAULT_MAX_VALUE_BYTES`, 1 MiB).
 */
export const AppendResultSchema = z.object({
  op: z.literal('append'),
  outcome: z.enum(['applied', 'too-large']),
  length: z.number().int().nonnegative(),
  ...KeyMetaShape,
  ...ResultHeaderShape,
});
/** Result of `getdel`: the value the key held (now deleted), or null if it was absent. */
export const GetDelResultSchema = z.object({
  op: z.literal('getdel'),
  value: ValueSchema.nullable(),
  ...ResultHeaderShape,
});
/**
 * Result of `set`: whether the value was written, and (only when the operation asked with `get`) the
 * value the key held before, null if absent.
 */
export const SetResultSchema = z.object({
  op: z.literal('set'),
  applied: z.boolean(),
  previous: ValueSchema.nullable().optional(),
  ...KeyMetaShape,
  ...ResultHeaderShape,
});

/** Result of `size`: the number of keys in the partition. */
export const SizeResultSchema = z.object({
  op: z.literal('size'),
  keys: z.number().int().nonnegative(),
  ...ResultHeaderShape,
});

/** Any KV result, tagged by `op` like the operation it answers. */
export const KvResultSchema = z.discriminatedUnion('op', [
  GetResultSchema,
  PutResultSchema,
  CasResultSchema,
  DeleteResultSchema,
  IncrResultSchema,
  AppendResultSchema,
  GetDelResultSchema,
  SetResultSchema,
  SizeResultSchema,
  TxnResultSchema,
  RangeResultSchema,
  LeaseGrantResultSchema,
  LeaseRevokeResultSchema,
  LeaseExpireResultSchema,
  LeaseKeepAliveResultSchema,
  LeaseListResultSchema,
  LeaseTimeToLiveResultSchema,
  SnapshotResultSchema,
  RestoreResultSchema,
]);

/** A KV operation. */
export type KvOp = z.infer<typeof KvOpSchema>;
/** The name of a KV operation. */
export type KvOpName = KvOp['op'];
/** A KV result. */
export type KvResult = z.infer<typeof KvResultSchema>;
/** The outcome of a CAS. */
export type CasOutcome = z.infer<typeof CasResultSchema>['outcome'];
/** A KV operation on one key (every operation but `txn`, `range`, the lease and the backup operations). */
export type SingleKeyOp = Exclude<KvOp, { op: 'txn' | 'range' | LeaseOpName | SnapshotOpName }>;

/**
 * Whether `op` only reads: a `get`, a `range`, a `size`, a `snapshot`, or a `txn` with no `put` or `delete` in
 * either branch.
 * Reads need no session and are served by a read-index round instead of the log.
 */
export function isReadOnlyOp(op: KvOp): boolean {
  switch (op.op) {
    case 'get':
    case 'range':
    case 'size':
    case 'lease-list':
    case 'lease-keepalive':
    case 'lease-timetolive':
    case 'snapshot':
      return true;
    case 'txn':
      return op.success.every((o) => 'get' in o) && op.failure.every((o) => 'get' in o);
    default:
      return false;
  }
}
