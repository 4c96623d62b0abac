/**
 * Direct shape checks shared by the hand-written fast paths of the protocol (`paxos-frame.ts`,
 * `isTxnOp` in `txn.ts`), which must agree with their zod schemas. Internal: not exported by the package.
 * @module
 */

/** A non-negative safe integer (what `z.number().int().nonnegative()` accepts). */
export function isNat(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** An object that is neither an array nor bytes (what a `z.object` field of a message can be). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
