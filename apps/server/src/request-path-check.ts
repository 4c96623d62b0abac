/**
 * The hot request checked by hand at the boundary: a plain linearizable `get` (`{ type: 'kv', id, op:
 * { op: 'get', key } }`, no other field) with a key within the size limit. The same verdict as
 * `parseClientRequest` (zod) for it, without its cost; anything else goes through the schema.
 * `request-path-check.test.ts` holds it against the schema.
 * @module
 */
import { checkKvOpLimits, DEFAULT_PROTOCOL_LIMITS, type KvRequest, type ProtocolLimits } from '@paxkv/common';

function ownKeys(o: object): number {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k)) n++;
  return n;
}

/**
 * `input` as a {@link KvRequest} when it is a plain `get` that `parseClientRequest(input, limits)` would
 * accept unchanged, else undefined (then parse it with the schema). Never throws.
 */
export function plainGetRequest(
  input: unknown,
  limits: ProtocolLimits = DEFAULT_PROTOCOL_LIMITS,
): KvRequest | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  const m = input as { type?: unknown; id?: unknown; op?: unknown };
  if (m.type !== 'kv') return undefined;
  const id = m.id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return undefined;
  const op = m.op;
  if (typeof op !== 'object' || op === null) return undefined;
  const o = op as { op?: unknown; key?: unknown };
  if (o.op !== 'get' || typeof o.key !== 'string' || o.key.length === 0) return undefined;
  if (ownKeys(m) !== 3 || ownKeys(op) !== 2) return undefined;
  const request = input as KvRequest;
  return checkKvOpLimits(request.op, limits) === undefined ? request : undefined;
}
