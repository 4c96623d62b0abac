import { type KvOp, KvOpSchema } from '@paxkv/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plainGetOrPut } from './input-check.js';

// Ops near the shapes of a plain get/put: wrong types, empty keys, leases, extra fields, other ops.
const anyValue = fc.oneof(
  fc.string(),
  fc.uint8Array({ maxLength: 4 }),
  fc.constant(undefined),
  fc.constant(null),
  fc.integer(),
  fc.array(fc.integer(), { maxLength: 2 }),
);
const op = fc.record(
  {
    op: fc.constantFrom('get', 'put', 'delete', 'cas', 'range', 'nope'),
    key: fc.oneof(fc.string({ maxLength: 3 }), fc.constant(''), fc.integer(), fc.constant(undefined)),
    value: anyValue,
    lease: fc.oneof(fc.constant(undefined), fc.integer(), fc.constant(2 ** 40)),
    extra: fc.string(),
  },
  { requiredKeys: ['op'] },
);

describe('plainGetOrPut (the client input check without zod)', () => {
  it('never accepts an op the schema refuses, and accepts every plain get and lease-less put', () => {
    fc.assert(
      fc.property(op, (o) => {
        const fast = plainGetOrPut(o as unknown as KvOp);
        const schema = KvOpSchema.safeParse(o).success;
        if (fast) expect(schema).toBe(true);
        const plain =
          typeof o.key === 'string' &&
          o.key.length > 0 &&
          (o.op === 'get' ||
            (o.op === 'put' &&
              o.lease === undefined &&
              (typeof o.value === 'string' || o.value instanceof Uint8Array)));
        expect(fast).toBe(plain);
      }),
      { numRuns: 5000 },
    );
  });
});
