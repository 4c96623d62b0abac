import { parseServerResponse } from '@paxkv/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plainKvReply } from './reply-check.js';

// Numbers near the schema's edges: negatives, fractions, unsafe integers, the partition bound.
const num = fc.oneof(
  fc.nat({ max: 5 }),
  fc.constantFrom(-1, 0.5, 0xffff, 0x10000, Number.MAX_SAFE_INTEGER, 2 ** 53, Number.NaN),
  fc.constant('1'),
  fc.constant(undefined),
);
const value = fc.oneof(
  fc.string({ maxLength: 3 }),
  fc.uint8Array({ maxLength: 3 }),
  fc.constant(null),
  fc.constant(undefined),
  fc.integer(),
);
const result = fc.record(
  {
    op: fc.constantFrom('get', 'put', 'delete', 'range', 'nope'),
    value,
    created: fc.oneof(fc.boolean(), fc.constant(1), fc.constant(undefined)),
    createRevision: num,
    modRevision: num,
    version: num,
    revision: num,
    partition: num,
    extra: fc.string({ maxLength: 2 }),
  },
  { requiredKeys: [] },
);
const reply = fc.record(
  {
    type: fc.constantFrom('kv.ok', 'error', 'lookup.ok'),
    id: num,
    result: fc.oneof(result, fc.constant(null), fc.string()),
    stale: fc.oneof(fc.boolean(), fc.constant(undefined), fc.constant(0)),
    extra: fc.integer(),
  },
  { requiredKeys: [] },
);
// Replies the server really sends: every get and put result shape.
const meta = { createRevision: 3, modRevision: 9, version: 2, revision: 12, partition: 5 };
const valid = fc.oneof(
  fc.record({
    type: fc.constant('kv.ok'),
    id: fc.nat(),
    result: fc.record({
      op: fc.constant('get'),
      value: fc.oneof(fc.string(), fc.uint8Array({ maxLength: 8 }), fc.constant(null)),
      createRevision: fc.nat(),
      modRevision: fc.nat(),
      version: fc.nat(),
      revision: fc.nat(),
      partition: fc.nat({ max: 0xffff }),
    }),
  }),
  fc.record({
    type: fc.constant('kv.ok'),
    id: fc.nat(),
    result: fc.record({ op: fc.constant('put'), created: fc.boolean(), ...mapArb(meta) }),
    stale: fc.boolean(),
  }),
);
/** `a` and `b` have the same fields with the same values, two levels deep (prototypes aside). */
function sameReply(a: object, b: object): void {
  const plain = (o: object) => {
    const top = { ...o } as Record<string, unknown>;
    if (typeof top.result === 'object' && top.result !== null) top.result = { ...top.result };
    return top;
  };
  expect(plain(a)).toStrictEqual(plain(b));
}
function mapArb(o: Record<string, number>) {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, fc.constant(v)]));
}

// A real reply with one or two fields replaced, removed or added, at the top or in the result.
const weird = fc.oneof(num, value, fc.boolean(), fc.constantFrom('get', 'put', 'kv.ok', 'delete'));
const fields = [
  'type',
  'id',
  'result',
  'stale',
  'op',
  'value',
  'created',
  'createRevision',
  'modRevision',
  'version',
  'revision',
  'partition',
  'extra',
];
const edit = fc.record({
  field: fc.constantFrom(...fields),
  inResult: fc.boolean(),
  remove: fc.boolean(),
  to: weird,
});
const mutated = fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 2 })).map(([r, edits]) => {
  const top: Record<string, unknown> = { ...r, result: { ...r.result } };
  for (const e of edits) {
    const o = (
      e.inResult && typeof top.result === 'object' && top.result !== null ? top.result : top
    ) as Record<string, unknown>;
    if (e.remove) delete o[e.field];
    else o[e.field] = e.to;
  }
  return top;
});

describe('plainKvReply (the client reply check without zod)', () => {
  it('never accepts a reply the schema refuses, and returns what the schema returns', () => {
    fc.assert(
      fc.property(fc.oneof(reply, mutated), (r) => {
        const fast = plainKvReply(r);
        if (fast === undefined) return;
        const schema = parseServerResponse(r);
        expect(schema.ok).toBe(true);
        if (schema.ok) sameReply(fast, schema.value);
      }),
      { numRuns: 20000 },
    );
  });

  it('accepts every get and put reply a server sends', () => {
    fc.assert(
      fc.property(valid, (r) => {
        const schema = parseServerResponse(r);
        expect(schema.ok).toBe(true);
        const fast = plainKvReply(r);
        expect(fast).toBe(r);
        if (schema.ok && fast !== undefined) sameReply(fast, schema.value);
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves other replies to the schema', () => {
    expect(plainKvReply({ type: 'kv.ok', id: 1, result: { op: 'delete', deleted: true, ...meta } })).toBe(
      undefined,
    );
    expect(plainKvReply({ type: 'error', id: 1, code: 'NOT_LEADER', message: 'x' })).toBe(undefined);
    expect(
      plainKvReply({ type: 'kv.ok', id: 1, result: { op: 'get', value: 'v', ...meta }, stale: undefined }),
    ).toBe(undefined);
  });
});
