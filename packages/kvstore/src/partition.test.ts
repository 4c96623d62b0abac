import type { LookupTable } from '@paxkv/common';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PARTITIONS, defaultPartitionOf, partitionOf, routeKey } from './partition.js';

describe('partitioning', () => {
  it('uses FNV-1a over UTF-8 with 16 partitions by default', () => {
    expect(DEFAULT_PARTITIONS).toBe(16);
    expect(partitionOf('foobar', 16)).toBe(8);
    expect(defaultPartitionOf('foobar')).toBe(8);
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[defaultPartitionOf(`key-${i}`)]++;
    for (const c of counts) expect(c).toBeGreaterThan(700);
  });

  it('routes a key to its group through the lookup table', () => {
    const table: LookupTable = {
      version: 3,
      partitions: 16,
      replication: 3,
      nodes: [
        { id: 1, address: '127.0.0.1:7001' },
        { id: 2, address: '127.0.0.1:7002' },
        { id: 3, address: '127.0.0.1:7003' },
      ],
      groups: [{ partition: 8, replicas: [1, 2, 3] }],
    };
    expect(routeKey(table, 'foobar')).toEqual({
      partition: 8,
      replicas: [
        { node: 1, address: '127.0.0.1:7001' },
        { node: 2, address: '127.0.0.1:7002' },
        { node: 3, address: '127.0.0.1:7003' },
      ],
    });
    expect(routeKey(table, 'key-0')).toMatchObject({ code: 'NOT_READY' });
  });
});
