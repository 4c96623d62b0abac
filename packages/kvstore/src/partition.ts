/**
 * Routing of keys to partitions. The hash itself lives in
 * `@paxkv/common` so that servers and clients share one implementation; it is re-exported here with
 * the store's default partition count.
 * @module
 */
import { partitionOf } from '@paxkv/common';

export { partitionOf };

/**
 * Number of partitions the key space is split into unless configured otherwise: 16. Each partition is
 * replicated by one group. It is fixed for the life of a cluster: changing it moves almost every key.
 */
export const DEFAULT_PARTITIONS = 16;

/** The partition of `key` with the default partition count ({@link DEFAULT_PARTITIONS}). */
export function defaultPartitionOf(key: string): number {
  return partitionOf(key, DEFAULT_PARTITIONS);
}
