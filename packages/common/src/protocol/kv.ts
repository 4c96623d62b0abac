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

/** Any KV operation, tagged by `op`. */
export const KvOpSchema = z.discriminatedUnion('op', [GetOpSchema, PutOpSchema, CasOpSchema, DeleteOpSchema]);

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

/** Any KV result, tagged by `op` like the operation it answers. */
export const KvResultSchema = z.discriminatedUnion('op', [
  GetResultSchema,
  PutResultSchema,
  CasResultSchema,
  DeleteResultSchema,
]);

/** A KV operation. */
export type KvOp = z.infer<typeof KvOpSchema>;
/** The name of a KV operation. */
export type KvOpName = KvOp['op'];
/** A KV result. */
export type KvResult = z.infer<typeof KvResultSchema>;
/** The outcome of a CAS. */
export type CasOutcome = z.infer<typeof CasResultSchema>['outcome'];
