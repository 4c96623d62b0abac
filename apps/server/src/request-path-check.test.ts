import { parseClientRequest } from '@paxkv/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plainGetRequest } from './request-path-check.js';

const limits = { maxKeyBytes: 8, maxValueBytes: 64 };
const weird = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.constantFrom('', 'kv', 'get', 'put', 'ééééé', 'stale'),
  fc.constantFrom(-1, 0, 1.5, 2 ** 53, Number.NaN, 7),
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
);
const valid = fc.record({
  type: fc.constant('kv'),
  id: fc.nat(),
  op: fc.record({ op: fc.constant('get'), key: fc.string({ minLength: 1, maxLength: 8 }) }),
});
const fields = ['type', 'id', 'op', 'key', 'consistency', 'session', 'extra'];
const mutated = fc
  .tuple(
    valid,
    fc.array(
      fc.record({ field: fc.constantFrom(...fields), inOp: fc.boolean(), remove: fc.boolean(), to: weird }),
      { maxLength: 2 },
    ),
  )
  .map(([r, edits]) => {
    const top: Record<string, unknown> = { ...r, op: { ...r.op } };
    for (const e of edits) {
      const o = (e.inOp && typeof top.op === 'object' && top.op !== null ? top.op : top) as Record<
        string,
        unknown
      >;
      if (e.remove) delete o[e.field];
      else o[e.field] = e.to;
    }
    return top;
  });

describe('plainGetRequest (the server boundary check of a plain get, without zod)', () => {
  it('never accepts what parseClientRequest refuses, returns an equal request, and accepts every plain get', () => {
    fc.assert(
      fc.property(mutated, (r) => {
        const fast = plainGetRequest(r, limits);
        const schema = parseClientRequest(r, limits);
        if (fast !== undefined) {
          expect(schema.ok).toBe(true);
          if (schema.ok)
            expect({ ...schema.value, op: { ...(schema.value as typeof fast).op } }).toStrictEqual({
              ...fast,
              op: { ...fast.op },
            });
        }
        const plain =
          r.type === 'kv' &&
          Object.keys(r).length === 3 &&
          typeof r.op === 'object' &&
          r.op !== null &&
          Object.keys(r.op).length === 2 &&
          (r.op as { op?: unknown }).op === 'get' &&
          schema.ok;
        expect(fast !== undefined).toBe(plain);
      }),
      { numRuns: 20000 },
    );
  });
});
