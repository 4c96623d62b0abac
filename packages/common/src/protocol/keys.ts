/**
 * Key order and the routing of multi-key operations (transactions, ranges) to one partition.
 * @module
 */
import { BadRequestError, CrossPartitionError } from '../errors.js';
import type { KvOp } from './kv.js';
import { leasePartition } from './lease.js';
import { hashTagBounds, partitionOf } from './partition.js';
import { txnKeys } from './txn.js';

/**
 * The order of keys: by Unicode code point, which is the order of their UTF-8 bytes (etcd's order).
 * JavaScript's `<` compares UTF-16 code units instead, which puts U+E000..U+FFFF after the
 * supplementary planes; this function does not. Returns a negative number, 0 or a positive number.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800..DFFF, the supplementary planes) sort after E000..FFFF in code point order.
    if (x >= 0xd800 && y >= 0xd800) return fixup(x) - fixup(y);
    return x - y;
  }
  return a.length - b.length;
}

function fixup(c: number): number {
  return c >= 0xe000 ? c - 0x800 : c + 0x2000;
}

/**
 * The smallest key greater than every key that starts with `prefix` (the exclusive end of a prefix
 * range), or undefined when there is none (`prefix` is empty or made only of U+10FFFF).
 * Example: `prefixEnd('a/') === 'a0'`.
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix, (c) => c.codePointAt(0) as number);
  while (cps.length > 0) {
    const cp = cps.pop() as number;
    if (cp < 0x10ffff) {
      // The code point after U+D7FF is U+E000 (surrogates are not code points of UTF-8 text).
      cps.push(cp === 0xd7ff ? 0xe000 : cp + 1);
      return String.fromCodePoint(...cps);
    }
  }
  return undefined;
}

/**
 * The partition that holds every key of the range `[start, end)` when they must all share one hash
 * tag: `start` has a tag and `end` does not go past the keys that begin like `start` up to its tag's
 * closing `}`. Undefined when the range may hold keys of several partitions.
 */
export function rangeTagPartition(
  start: string,
  end: string | undefined,
  partitions: number,
): number | undefined {
  const tag = hashTagBounds(start);
  if (tag === undefined || end === undefined) return undefined;
  // Every key that begins with `start[0..close]` has the same first '{' and the same next '}'.
  const head = start.slice(0, tag.end); // up to, not including, the '}'
  const limit = `${head}~`; // prefixEnd(head + '}'): '}' + 1 is '~'
  return compareKeys(end, limit) <= 0 ? partitionOf(start, partitions) : undefined;
}

/**
 * The partition that must serve `op`: the key's partition for a single-key operation; for a `txn`,
 * the one partition all its keys share; for a `range`, its `partition` field, or the partition of
 * its hash tag when every key of the range shares one.
 * @throws {@link CrossPartitionError} when a `txn`'s keys, or a `range` without `partition`, span
 *   partitions; {@link BadRequestError} when a `range` names a partition out of the table.
 */
export function partitionOfOp(op: KvOp, partitions: number): number {
  switch (op.op) {
    case 'txn': {
      const keys = txnKeys(op);
      const first = keys[0];
      if (first === undefined) return 0;
      const p = partitionOf(first, partitions);
      for (let i = 1; i < keys.length; i++) {
        const k = keys[i] as string;
        const q = partitionOf(k, partitions);
        if (q !== p)
          throw new CrossPartitionError({ what: 'transaction', keys: [first, k], partitions: [p, q] });
      }
      return p;
    }
    case 'range': {
      if (op.partition !== undefined) {
        if (op.partition >= partitions) {
          throw new BadRequestError({
            field: 'op.partition',
            problem: `partition ${op.partition} does not exist (the table has ${partitions})`,
          });
        }
        return op.partition;
      }
      const p = rangeTagPartition(op.start, op.end, partitions);
      if (p !== undefined) return p;
      throw new CrossPartitionError({
        what: 'range',
        advice:
          "or send one range per partition with 'partition' set and merge them by key, as the client's range does (not one snapshot)",
      });
    }
    case 'lease-grant':
    case 'lease-list':
    case 'snapshot':
    case 'restore':
      return checkedPartition(op.partition, partitions, 'op.partition');
    case 'lease-revoke':
    case 'lease-expire':
    case 'lease-keepalive':
      return checkedPartition(leasePartition(op.lease), partitions, 'op.lease');
    case 'lease-timetolive':
      return op.lease !== undefined
        ? checkedPartition(leasePartition(op.lease), partitions, 'op.lease')
        : partitionOf(op.key ?? '', partitions);
    default:
      return partitionOf(op.key, partitions);
  }
}

function checkedPartition(p: number, partitions: number, field: string): number {
  if (p >= partitions)
    throw new BadRequestError({
      field,
      problem: `partition ${p} does not exist (the table has ${partitions}); a lease id names its partition: use an id that grant returned`,
    });
  return p;
}
