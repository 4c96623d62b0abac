/**
 * Copies of decoded strings and bytes that keep only their own memory.
 *
 * msgpackr's native string extractor decodes every string of a message at once into one string, and
 * hands out *slices* of it. A slice keeps its whole source alive: one value kept from a follower's
 * batch of entries (or from a snapshot) keeps the strings of the whole batch (or snapshot). Decoded
 * binary values are views over the whole received buffer, with the same effect. Everything the
 * partition keeps for long (the keys and values of its state, its watch history, its log until the
 * next snapshot) is therefore copied once with these functions. Measured by `bench/memory.ts`.
 * @module
 */
import type { Value } from '@paxkv/common';

/** Strings shorter than this are never slices in V8 (it copies them instead). */
const MIN_SLICED_STRING = 13;

/** How deep {@link ownStrings} descends (log entries are a few levels deep; a txn's branches five). */
const MAX_OWN_DEPTH = 8;

/**
 * A copy of `s` that shares no memory with any other string. Joining two parts builds a new
 * sequential string: 120 bytes for a 100-character value, against 32 bytes of slice plus its whole
 * source string.
 */
export function ownString(s: string): string {
  return s.length < MIN_SLICED_STRING ? s : [s.slice(0, 1), s.slice(1)].join('');
}

/** A value that shares no memory with the message it was decoded from (see {@link ownString}). */
export function ownValue(v: Value): Value {
  if (typeof v === 'string') return ownString(v);
  return v.byteOffset === 0 && v.byteLength === v.buffer.byteLength ? v : new Uint8Array(v);
}

/**
 * Replaces, in place, every string and byte array inside `x` (plain objects and arrays, up to {@link
 * MAX_OWN_DEPTH} levels) by its own copy ({@link ownValue}). Frozen objects are left as they are. The
 * contents do not change, only the memory they keep alive. Runs for every entry a replica logs, so it
 * walks with index and `for...in` loops: no key arrays or iterators to collect.
 */
export function ownStrings(x: unknown, depth = 0): void {
  if (typeof x !== 'object' || x === null || depth > MAX_OWN_DEPTH || Object.isFrozen(x)) return;
  if (x instanceof Uint8Array) return;
  if (Array.isArray(x)) {
    for (let i = 0; i < x.length; i++) ownAt(x as unknown as Record<number, unknown>, i, depth);
    return;
  }
  const o = x as Record<string, unknown>;
  for (const k in o) if (Object.hasOwn(o, k)) ownAt(o, k, depth);
}

/** Makes `o[k]` own its memory: a string or byte array replaced by its copy, an object walked. */
function ownAt<K extends string | number>(o: Record<K, unknown>, k: K, depth: number): void {
  const v = o[k];
  if (typeof v === 'string') {
    if (v.length >= MIN_SLICED_STRING) o[k] = ownString(v);
  } else if (v instanceof Uint8Array) o[k] = ownValue(v);
  else if (typeof v === 'object' && v !== null) ownStrings(v, depth + 1);
}
