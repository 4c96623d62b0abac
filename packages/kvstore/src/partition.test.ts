import { describe, expect, it } from 'vitest';
import { DEFAULT_PARTITIONS, defaultPartitionOf, partitionOf } from './partition.js';

describe('partitioning', () => {
  it('uses FNV-1a over UTF-8 with 16 partitions by default', () => {
    expect(DEFAULT_PARTITIONS).toBe(16);
    expect(partitionOf('foobar', 16)).toBe(8);
    expect(defaultPartitionOf('foobar')).toBe(8);
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 16_000; i++) counts[defaultPartitionOf(`key-${i}`)]++;
    for (const c of counts) expect(c).toBeGreaterThan(700);
  });
});
