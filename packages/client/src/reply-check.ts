import type { KvOk } from '@paxkv/common';

/** A revision, version or request id as the protocol schemas accept it: a non-negative safe integer. */
function isCount(x: unknown): boolean {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Own enumerable keys of `o`, counted without allocating. */
function keyCount(o: object): number {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k)) n++;
  return n;
}

/**
 * The hot replies checked by hand: a `kv.ok` whose result is a `get` or a `put` result, with exactly
 * the fields `ServerResponses` accepts for it (no others: zod would strip them, so such a reply goes
 * through the schema). Returns the reply itself when `ServerResponses.parse` would return an equal
 * value, `undefined` for anything else (which the caller hands to the schema). The schema's verdict
 * without its cost; `reply-check.test.ts` checks it against the schema.
 */
export function plainKvReply(raw: unknown): KvOk | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const m = raw as { type?: unknown; id?: unknown; result?: unknown; stale?: unknown };
  if (m.type !== 'kv.ok' || !isCount(m.id)) return undefined;
  const stale = m.stale;
  if (stale !== undefined && typeof stale !== 'boolean') return undefined;
  if (keyCount(m) !== (stale === undefined ? 3 : 4)) return undefined;
  const r = m.result;
  if (typeof r !== 'object' || r === null) return undefined;
  const res = r as {
    op?: unknown;
    value?: unknown;
    created?: unknown;
    createRevision?: unknown;
    modRevision?: unknown;
    version?: unknown;
    revision?: unknown;
    partition?: unknown;
  };
  if (res.op === 'get') {
    const v = res.value;
    if (v !== null && typeof v !== 'string' && !(v instanceof Uint8Array)) return undefined;
  } else if (res.op === 'put') {
    if (typeof res.created !== 'boolean') return undefined;
  } else {
    return undefined;
  }
  const p = res.partition;
  if (
    !isCount(res.createRevision) ||
    !isCount(res.modRevision) ||
    !isCount(res.version) ||
    !isCount(res.revision) ||
    typeof p !== 'number' ||
    !Number.isInteger(p) ||
    p < 0 ||
    p > 0xffff ||
    keyCount(res) !== 7
  )
    return undefined;
  return raw as KvOk;
}
