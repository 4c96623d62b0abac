/**
 * Key-value operations and their results.
 * @module
 */
import { z } from 'zod';
import { KeySchema, ValueSchema } from './primitives.js';

/** A value: a UTF-8 string or bytes. */
export type Value = string | Uint8Array;

/** `get(key)`: read a key. */
export const GetOpSchema = z.object({ op: z.literal('get'), key: KeySchema });
/** `put(key, value)`: write a key unconditionally. */
export const PutOpSchema = z.object({ op: z.literal('put'), key: KeySchema, value: ValueSchema });
/**
 * `cas(key, expected, value)`: write `value` only if the current value equals `expected`;
 * `expected: null` means "only if the key is absent".
 */
export const CasOpSchema = z.object({
  op: z.literal('cas'),
  key: KeySchema,
  expected: ValueSchema.nullable(),
  value: ValueSchema,
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
]);

/** Result of `get`: the value, or null if the key is absent. */
export const GetResultSchema = z.object({ op: z.literal('get'), value: ValueSchema.nullable() });
/** Result of `put`: whether the key was created (true) or overwritten (false). */
export const PutResultSchema = z.object({ op: z.literal('put'), created: z.boolean() });
/**
 * Result of `cas`: `applied` if the value was written; `mismatch` if the key holds another value;
 * `not-found` if the key is absent and `expected` was not null. `current` is the value after the
 * operation (the new value when applied, the unchanged one otherwise, null if absent).
 */
export const CasResultSchema = z.object({
  op: z.literal('cas'),
  outcome: z.enum(['applied', 'mismatch', 'not-found']),
  current: ValueSchema.nullable(),
});
/** Result of `delete`: whether the key existed. */
export const DeleteResultSchema = z.object({ op: z.literal('delete'), existed: z.boolean() });

/**
 * Result of `incr`: `applied` with the new value (decimal text); `not-integer` if the stored value is not
 * a decimal 64-bit integer; `overflow` if the sum leaves the 64-bit range. Nothing is written unless
 * applied. `value` is the new value when applied, the unchanged one on overflow, null when not an integer.
 */
export const IncrResultSchema = z.object({
  op: z.literal('incr'),
  outcome: z.enum(['applied', 'not-integer', 'overflow']),
  value: z.string().nullable(),
});
/**
 * Result of `append`: `applied` with the new length in bytes; `too-large` (nothing written) if the
 * result would exceed the largest value (`DEFAULT_MAX_VALUE_BYTES`, 1 MiB).
 */
export const AppendResultSchema = z.object({
  op: z.literal('append'),
  outcome: z.enum(['applied', 'too-large']),
  length: z.number().int().nonnegative(),
});
/** Result of `getdel`: the value the key held (now deleted), or null if it was absent. */
export const GetDelResultSchema = z.object({ op: z.literal('getdel'), value: ValueSchema.nullable() });
/**
 * Result of `set`: whether the value was written, and (only when the operation asked with `get`) the
 * value the key held before, null if absent.
 */
export const SetResultSchema = z.object({
  op: z.literal('set'),
  applied: z.boolean(),
  previous: ValueSchema.nullable().optional(),
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
]);

/** A KV operation. */
export type KvOp = z.infer<typeof KvOpSchema>;
/** The name of a KV operation. */
export type KvOpName = KvOp['op'];
/** A KV result. */
export type KvResult = z.infer<typeof KvResultSchema>;
/** The outcome of a CAS. */
export type CasOutcome = z.infer<typeof CasResultSchema>['outcome'];
