/**
 * Routing of keys to partitions and of partitions to replica groups. The hash itself lives in
 * `@paxkv/common` so that servers and clients share one implementation; it is re-exported here with
 * the store's default partition count.
 * @module
 */
import { addressOf, type LookupTable, NotReadyError, partitionOf, replicasOf } from '@paxkv/common';

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

/** Where a key lives: its partition and the replicas (with addresses) of the group that owns it. */
export interface KeyRoute {
  readonly partition: number;
  readonly replicas: ReadonlyArray<{ readonly node: number; readonly address: string | undefined }>;
}

/**
 * Routes `key` through a lookup table: `partitionOf(key, table.partitions)`, then the group of that
 * partition. Returns a `NotReadyError` (never throws) if the table has no group for the partition.
 */
export function routeKey(table: LookupTable, key: string): KeyRoute | NotReadyError {
  const partition = partitionOf(key, table.partitions);
  const replicas = replicasOf(table, partition);
  if (!replicas || replicas.length === 0) {
    return new NotReadyError({
      reason: `lookup table v${table.version} has no group for partition ${partition}`,
    });
  }
  return { partition, replicas: replicas.map((node) => ({ node, address: addressOf(table, node) })) };
}
