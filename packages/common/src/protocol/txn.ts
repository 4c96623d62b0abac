/**
 * Transactions and ordered range reads.
 *
 * A transaction has etcd's shape: `compare` (all must hold), then `success` operations if they all
 * hold, `failure` operations otherwise. Its keys must all live in one partition (share a hash tag,
 * see `partitionOf`), where it is applied atomically through the log, exactly once with a session,
 * at one revision: every key it writes gets the same `modRevision`, the partition's revision after it.
 * A key may be written (put or deleted) at most once per branch. Operations run in order: a `get`
 * after a `put` of the same key sees the new value.
 *
 * A range reads the keys `start <= key < end` of one partition in key order (UTF-8 byte order, see
 * `compareKeys`), at one revision. A range spanning partitions is a merge of per-partition ranges that
 * the client performs; it is not one snapshot.
 * @module
 */
import { z } from 'zod';
import { LEASE_PARTITION_SPACE, LeaseIdSchema } from './lease.js';
import { KeySchema, ValueSchema } from './primitives.js';
import { KeyMetaShape, PartitionSchema, ResultHeaderShape, RevisionSchema } from './revisions.js';
import { isNat, isPlainObject } from './shape.js';

/**
 * Most entries a transaction's `compare`, `success` or `failure` list may hold on the wire, whatever
 * the configured `maxTxnOps` (which is lower by default): bounds the memory a request can take
 * before the configured limit is checked.
 */
export const MAX_TXN_OPS_HARD = 4096;

/** Comparison operators of a transaction compare. */
export const CompareOperatorSchema = z.enum(['=', '!=', '<', '>']);

const revisionCompare = <T extends 'version' | 'modRevision' | 'createRevision'>(target: T) =>
  z.object({ key: KeySchema, target: z.literal(target), op: CompareOperatorSchema, value: RevisionSchema });

/**
 * One compare of a transaction:
 * - `value`: the key's value against `value` (bytewise, lexicographic for `<` `>`); false when the key
 *   is absent, whatever the operator (as etcd);
 * - `version` / `modRevision` / `createRevision`: the key's number against `value` (0 when absent);
 * - `exists`: whether the key is present, `=` or `!=` a boolean.
 * @example { key: '{acct}:a', target: 'value', op: '=', value: '100' }
 */
export const CompareSchema = z.discriminatedUnion('target', [
  z.object({ key: KeySchema, target: z.literal('value'), op: CompareOperatorSchema, value: ValueSchema }),
  revisionCompare('version'),
  revisionCompare('modRevision'),
  revisionCompare('createRevision'),
  z.object({ key: KeySchema, target: z.literal('exists'), op: z.enum(['=', '!=']), value: z.boolean() }),
]);

/**
 * One operation of a transaction branch, in etcd's JSON shape: `{ get: { key } }`,
 * `{ put: { key, value, lease? } }` or `{ delete: { key } }`. A put with `lease` attaches the key to that
 * lease (of the transaction's partition; a lease that is gone refuses the whole transaction), a put
 * without it detaches the key from its lease, as a plain `put`.
 */
export const TxnRequestSchema = z.union([
  z.strictObject({ get: z.object({ key: KeySchema }) }),
  z.strictObject({ put: z.object({ key: KeySchema, value: ValueSchema, lease: LeaseIdSchema.optional() }) }),
  z.strictObject({ delete: z.object({ key: KeySchema }) }),
]);

/** The keys a branch writes (put or delete) must be distinct. */
function duplicateWrite(ops: readonly z.infer<typeof TxnRequestSchema>[]): string | undefined {
  const seen = new Set<string>();
  for (const o of ops) {
    const key = 'put' in o ? o.put.key : 'delete' in o ? o.delete.key : undefined;
    if (key === undefined) continue;
    if (seen.has(key)) return key;
    seen.add(key);
  }
  return undefined;
}

/**
 * `txn({ compare, success, failure })`: see the module notes. All keys must share a partition,
 * otherwise the request fails with `CROSS_PARTITION`.
 */
export const TxnOpSchema = z
  .object({
    op: z.literal('txn'),
    compare: z.array(CompareSchema).max(MAX_TXN_OPS_HARD),
    success: z.array(TxnRequestSchema).max(MAX_TXN_OPS_HARD),
    failure: z.array(TxnRequestSchema).max(MAX_TXN_OPS_HARD),
  })
  .superRefine((o, ctx) => {
    for (const branch of ['success', 'failure'] as const) {
      const dup = duplicateWrite(o[branch]);
      if (dup !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [branch],
          message: `key '${dup.slice(0, 64)}' is written more than once in one branch; write each key at most once per transaction branch`,
        });
      }
    }
  });

/** A non-empty string (a {@link KeySchema} key). */
function isKey(x: unknown): boolean {
  return typeof x === 'string' && x.length > 0;
}

/** A {@link ValueSchema} value. */
function isTxnValue(x: unknown): boolean {
  return typeof x === 'string' || x instanceof Uint8Array;
}

const REVISION_TARGETS: ReadonlySet<unknown> = new Set(['version', 'modRevision', 'createRevision']);
const COMPARE_OPERATORS: ReadonlySet<unknown> = new Set(CompareOperatorSchema.options);

function isPlainCompare(c: unknown): boolean {
  if (!isPlainObject(c) || !isKey(c.key)) return false;
  if (REVISION_TARGETS.has(c.target)) return COMPARE_OPERATORS.has(c.op) && isNat(c.value);
  if (c.target === 'value') return COMPARE_OPERATORS.has(c.op) && isTxnValue(c.value);
  if (c.target === 'exists') return (c.op === '=' || c.op === '!=') && typeof c.value === 'boolean';
  return false;
}

/** The key a plain branch operation writes ('' for a get), or `undefined` if it is not plain. */
function plainRequestWrite(o: unknown): string | undefined {
  if (!isPlainObject(o)) return undefined;
  const names = Object.keys(o);
  if (names.length !== 1) return undefined;
  const body = o[names[0] as string];
  if (!isPlainObject(body) || !isKey(body.key)) return undefined;
  switch (names[0]) {
    case 'get':
      return '';
    case 'delete':
      return body.key as string;
    case 'put': {
      const lease = body.lease;
      const leaseOk =
        lease === undefined || (Number.isSafeInteger(lease) && (lease as number) >= LEASE_PARTITION_SPACE);
      return leaseOk && isTxnValue(body.value) ? (body.key as string) : undefined;
    }
    default:
      return undefined;
  }
}

function isPlainBranch(ops: unknown): boolean {
  if (!Array.isArray(ops) || ops.length > MAX_TXN_OPS_HARD) return false;
  let written: Set<string> | undefined;
  for (const o of ops) {
    const key = plainRequestWrite(o);
    if (key === undefined) return false;
    if (key === '') continue;
    written ??= new Set();
    if (written.has(key)) return false;
    written.add(key);
  }
  return true;
}

/**
 * The direct half of {@link isTxnOp}: `true` only for a well-formed `txn` operation of the shapes it
 * fully understands (every shape a paxkv client sends), `false` for anything else, valid or not.
 */
export function isPlainTxnOp(x: unknown): boolean {
  return (
    isPlainObject(x) &&
    x.op === 'txn' &&
    Array.isArray(x.compare) &&
    x.compare.length <= MAX_TXN_OPS_HARD &&
    x.compare.every(isPlainCompare) &&
    isPlainBranch(x.success) &&
    isPlainBranch(x.failure)
  );
}

/**
 * Whether `x` is a well-formed `txn` operation: the same verdict as `TxnOpSchema.safeParse(x).success`,
 * about 15 times faster on the common shapes. Servers check every transaction that reaches their log,
 * from a peer or from disk, and again when they apply it (a restart re-reads thousands): the direct
 * check ({@link isPlainTxnOp}) answers the shapes it fully understands and leaves anything else to the
 * schema, so the schema stays the one definition. Never throws.
 */
export function isTxnOp(x: unknown): boolean {
  return isPlainTxnOp(x) || TxnOpSchema.safeParse(x).success;
}

/** Most keys one range read may return, whatever its `limit`; the rest comes with continuation. */
export const MAX_RANGE_LIMIT = 100_000;

/**
 * `range(start, end)`: the keys `start <= key < end` of one partition, in key order (`reverse`: in
 * descending order), at most `limit` of them, with values unless `keysOnly`. `end` absent: no upper
 * bound; `start: ''`: no lower bound. `partition` names the partition to read; without it, the keys
 * of the range must all share a hash tag (so one partition holds them all), otherwise the request
 * fails with `CROSS_PARTITION`. A server may return fewer keys than asked (response size limit):
 * `more` then says that keys remain, to read from just after the last one returned.
 */
export const RangeOpSchema = z.object({
  op: z.literal('range'),
  start: z.string(),
  end: z.string().optional(),
  limit: z.number().int().positive().max(MAX_RANGE_LIMIT).optional(),
  reverse: z.boolean().optional(),
  keysOnly: z.boolean().optional(),
  partition: PartitionSchema.optional(),
});

/** One key in a result of a transaction `get` or a range: its value (absent with `keysOnly`) and revisions. */
export const KeyValueSchema = z.object({
  key: z.string(),
  value: ValueSchema.optional(),
  ...KeyMetaShape,
});

/** The result of one transaction operation, tagged by `op`. */
export const TxnResponseSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('get'), key: KeySchema, value: ValueSchema.nullable(), ...KeyMetaShape }),
  z.object({ op: z.literal('put'), key: KeySchema, created: z.boolean(), ...KeyMetaShape }),
  z.object({ op: z.literal('delete'), key: KeySchema, existed: z.boolean() }),
]);

/**
 * Result of `txn`: whether every compare held (`succeeded`: the `success` branch ran, else the
 * `failure` branch), the result of each operation of that branch in order, and the partition's
 * revision after it (raised by one if the branch changed anything).
 */
export const TxnResultSchema = z.object({
  op: z.literal('txn'),
  succeeded: z.boolean(),
  results: z.array(TxnResponseSchema).max(MAX_TXN_OPS_HARD),
  ...ResultHeaderShape,
});

/**
 * Result of `range`: the keys found, in the order asked, read at `revision` of `partition`; `more`
 * when keys remain in the range after the last one returned (limit or response size reached).
 */
export const RangeResultSchema = z.object({
  op: z.literal('range'),
  kvs: z.array(KeyValueSchema).max(MAX_RANGE_LIMIT),
  more: z.boolean(),
  ...ResultHeaderShape,
});

/** A transaction compare. */
export type Compare = z.infer<typeof CompareSchema>;
/** A transaction branch operation (`{ get }`, `{ put }` or `{ delete }`). */
export type TxnRequest = z.infer<typeof TxnRequestSchema>;
/** A `txn` operation. */
export type TxnOp = z.infer<typeof TxnOpSchema>;
/** A `range` operation. */
export type RangeOp = z.infer<typeof RangeOpSchema>;
/** One key with its value and revisions. */
export type KeyValue = z.infer<typeof KeyValueSchema>;
/** The result of one transaction operation. */
export type TxnResponse = z.infer<typeof TxnResponseSchema>;
/** The result of a `txn`. */
export type TxnResult = z.infer<typeof TxnResultSchema>;
/** The result of a `range`. */
export type RangeResult = z.infer<typeof RangeResultSchema>;

/** The key a transaction operation touches. */
export function txnRequestKey(o: TxnRequest): string {
  return 'get' in o ? o.get.key : 'put' in o ? o.put.key : o.delete.key;
}

/** Every key a transaction names (compares and both branches), in order, duplicates included. */
export function txnKeys(op: TxnOp): string[] {
  const keys: string[] = [];
  for (const c of op.compare) keys.push(c.key);
  for (const o of op.success) keys.push(txnRequestKey(o));
  for (const o of op.failure) keys.push(txnRequestKey(o));
  return keys;
}
