/**
 * The ordered container of a partition's keys: a B+ tree (`sorted-btree`) in key order
 * (`compareKeys`: UTF-8 byte order). Chosen over a home-made tree: well kept, compact (keys and
 * values in arrays of up to {@link ORDERED_MAP_NODE_SIZE} per leaf, no per-entry node object), with
 * the ordered iteration that ranges need.
 * @module
 */
import { compareKeys } from '@paxkv/common';
import btreeModule from 'sorted-btree';

// sorted-btree is CommonJS with `exports.default = BTree`: Node's ESM loader hands over the exports
// object, while bundlers and vitest may hand over the class itself.
const BTree: typeof btreeModule.default =
  (btreeModule as unknown as { default?: typeof btreeModule.default }).default ??
  (btreeModule as unknown as typeof btreeModule.default);

/** Entries per B+ tree node (sorted-btree's default is 64; larger nodes cost less memory per key). */
export const ORDERED_MAP_NODE_SIZE = 64;

/** A map from string keys to `V`, iterated in key order. */
export class OrderedMap<V> extends BTree<string, V> {
  constructor() {
    super(undefined, compareKeys, ORDERED_MAP_NODE_SIZE);
  }
}
