import { describe, expect, it } from 'vitest';
import { KeyTooLargeError } from '../errors.js';
import { partitionOfOp } from './keys.js';
import { KvOpSchema } from './kv.js';
import { LEASE_PARTITION_SPACE } from './lease.js';
import { checkKvOpLimits } from './limits.js';
import { partitionOf } from './partition.js';

describe('lease-timetolive', () => {
  const lease = 7 * LEASE_PARTITION_SPACE + 3;

  it('takes exactly one of lease or key', () => {
    expect(KvOpSchema.safeParse({ op: 'lease-timetolive', lease }).success).toBe(true);
    expect(KvOpSchema.safeParse({ op: 'lease-timetolive', key: 'k', keys: true }).success).toBe(true);
    expect(KvOpSchema.safeParse({ op: 'lease-timetolive' }).success).toBe(false);
    expect(KvOpSchema.safeParse({ op: 'lease-timetolive', lease, key: 'k' }).success).toBe(false);
    expect(KvOpSchema.safeParse({ op: 'lease-timetolive', lease: 5 }).success).toBe(false);
  });

  it('routes by the lease id, or by the key', () => {
    expect(partitionOfOp({ op: 'lease-timetolive', lease }, 8)).toBe(3);
    expect(() => partitionOfOp({ op: 'lease-timetolive', lease }, 2)).toThrow(/partition 3 does not exist/);
    expect(partitionOfOp({ op: 'lease-timetolive', key: 'user:1' }, 8)).toBe(partitionOf('user:1', 8));
  });

  it('bounds the key like every key', () => {
    const limits = { maxKeyBytes: 4, maxValueBytes: 100 };
    expect(checkKvOpLimits({ op: 'lease-timetolive', key: 'abcde' }, limits)).toBeInstanceOf(
      KeyTooLargeError,
    );
    expect(checkKvOpLimits({ op: 'lease-timetolive', lease }, limits)).toBeUndefined();
  });
});
