import type { KvOp } from '@paxkv/common';

/**
 * True for the shapes of the hot calls that `KvOpSchema` accepts, checked by hand (a `get`, or a `put`
 * without a lease, of a non-empty string key): the schema's verdict without its cost. Anything else
 * goes through the schema.
 */
export function plainGetOrPut(op: KvOp): boolean {
  // Typed as a KvOp, but it comes from the caller: every field is checked.
  const o = op as {
    readonly op?: unknown;
    readonly key?: unknown;
    readonly value?: unknown;
    readonly lease?: unknown;
  };
  if (typeof o.key !== 'string' || o.key.length === 0) return false;
  if (o.op === 'get') return true;
  return (
    o.op === 'put' && o.lease === undefined && (typeof o.value === 'string' || o.value instanceof Uint8Array)
  );
}
