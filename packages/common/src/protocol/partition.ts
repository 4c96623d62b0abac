/**
 * Routing of keys to partitions, shared by servers and clients.
 * @module
 */
import { BadRequestError } from '../errors.js';

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * FNV-1a 32-bit hash of the UTF-8 encoding of `s` (lone surrogates encode as U+FFFD, as in
 * `TextEncoder`), or of its code units `[start, end)` when given. Computed without allocating.
 * Example: `fnv1a32('foobar') === 0xbf9cf968`.
 */
export function fnv1a32(s: string, start = 0, end = s.length): number {
  let h = FNV_OFFSET_BASIS;
  for (let i = start; i < end; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < end ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        h = Math.imul(h ^ (0xf0 | (cp >> 18)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 12) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 6) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | (cp & 0x3f)), FNV_PRIME);
        continue;
      }
      c = 0xfffd; // a lone surrogate encodes as U+FFFD
    }
    h = Math.imul(h ^ (0xe0 | (c >> 12)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
  }
  return h >>> 0;
}

/**
 * The hash tag of `key`, as in Redis Cluster: the part between the first `{` and the next `}`
 * after it, when that part is not empty. Returns its code-unit bounds `[start, end)` in `key`, or
 * undefined when the key has no tag (no `{`, no `}` after it, or `{}`). Keys with the same tag land
 * in the same partition, so they can be read and changed together atomically (transactions, ranges).
 * Examples: `{user1}:name` -> `user1`; `a{b}c{d}` -> `b`; `{}x{y}` -> none (the first `{}` is empty).
 */
export function hashTagBounds(key: string): { readonly start: number; readonly end: number } | undefined {
  const open = key.indexOf('{');
  if (open < 0) return undefined;
  const close = key.indexOf('}', open + 1);
  if (close <= open + 1) return undefined;
  return { start: open + 1, end: close };
}

/** The hash tag of `key` (see {@link hashTagBounds}), or undefined when it has none. */
export function hashTagOf(key: string): string | undefined {
  const t = hashTagBounds(key);
  return t === undefined ? undefined : key.slice(t.start, t.end);
}

/**
 * The partition of `key`: FNV-1a 32-bit over the UTF-8 bytes of the key's hash tag when it has one
 * (see {@link hashTagBounds}), of the whole key otherwise, modulo `partitions`. Pure and stable across
 * versions and platforms: servers and clients must agree on it.
 * Test vectors: `partitionOf('foobar', 16) === 8` (hash 0xbf9cf968), and
 * `partitionOf('{foobar}:x', 16) === 8` (only the tag is hashed).
 * @throws {@link BadRequestError} if `partitions` is not a positive safe integer (a caller bug).
 */
export function partitionOf(key: string, partitions: number): number {
  if (!Number.isSafeInteger(partitions) || partitions <= 0) {
    throw new BadRequestError({
      field: 'partitions',
      problem: `must be a positive integer, got ${partitions}`,
    });
  }
  const tag = hashTagBounds(key);
  return (tag === undefined ? fnv1a32(key) : fnv1a32(key, tag.start, tag.end)) % partitions;
}
