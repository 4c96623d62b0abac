import type { StopSign } from '@paxkv/paxos';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encode } from './codec.js';
import type { KvCommand } from './command.js';
import { estimateBytes, estimateEntryBytes } from './estimate-bytes.js';

/** Any string: ASCII, multi-byte and astral characters (4 UTF-8 bytes for 2 UTF-16 units). */
const text = fc.string({ unit: 'grapheme', maxLength: 200 });
const value = fc.oneof(text, fc.uint8Array({ maxLength: 300 }));
const session = fc.option(fc.record({ client: text, seq: fc.nat() }), { nil: undefined });

const singleKeyOp = fc.oneof(
  fc.record({ op: fc.constantFrom('get', 'delete', 'getdel', 'size'), key: text }),
  fc.record(
    {
      op: fc.constant('put'),
      key: text,
      value,
      lease: fc.integer({ min: 1 << 20, max: Number.MAX_SAFE_INTEGER }),
    },
    { requiredKeys: ['op', 'key', 'value'] },
  ),
  fc.record({ op: fc.constant('append'), key: text, value }),
  fc.record({
    op: fc.constant('incr'),
    key: text,
    by: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  }),
  fc.record(
    {
      op: fc.constant('set'),
      key: text,
      value,
      condition: fc.constantFrom('always', 'absent', 'present', 'equal'),
      expected: value,
      get: fc.boolean(),
    },
    { requiredKeys: ['op', 'key', 'value', 'condition'] },
  ),
  fc.record(
    {
      op: fc.constant('cas'),
      key: text,
      value,
      expected: fc.option(value, { nil: null }),
      expectedModRevision: fc.maxSafeNat(),
      expectedVersion: fc.maxSafeNat(),
    },
    { requiredKeys: ['op', 'key', 'value'] },
  ),
);

const command = fc
  .record({ id: text, op: singleKeyOp, session })
  .map(({ session: s, ...c }) => (s === undefined ? c : { ...c, session: s }) as unknown as KvCommand);

describe('estimateEntryBytes', () => {
  it('is never below the real encoding of a single-key command (any strings, binary values, every field)', () => {
    fc.assert(
      fc.property(command, (c) => {
        expect(estimateEntryBytes(c)).toBeGreaterThanOrEqual(encode(c).length);
      }),
      { numRuns: 2000 },
    );
  });

  it('measures the other commands and stop-signs by walking them, also never below their encoding', () => {
    const txn = {
      id: 'x1',
      op: {
        op: 'txn',
        compare: [{ key: 'a', target: 'value', result: 'equal', value: 'é'.repeat(50) }],
        success: [{ put: { key: 'a', value: new Uint8Array(1000) } }],
        failure: [{ get: { key: 'a' } }],
      },
    } as unknown as KvCommand;
    const sign: StopSign = { stopSign: true, configId: 4, members: [1, 2, 5], metadata: new Uint8Array(300) };
    for (const e of [txn, sign]) {
      expect(estimateEntryBytes(e)).toBe(estimateBytes(e));
      expect(estimateEntryBytes(e)).toBeGreaterThanOrEqual(encode(e).length);
    }
  });

  it('grows with the value: a 1 MB value is counted at least at 1 MB', () => {
    const big = { id: 'p', op: { op: 'put', key: 'k', value: new Uint8Array(1_000_000) } } as KvCommand;
    expect(estimateEntryBytes(big)).toBeGreaterThanOrEqual(1_000_000);
    expect(estimateEntryBytes(big)).toBeLessThan(1_000_000 + 1024);
    // Three UTF-8 bytes for each UTF-16 unit: the widest a string gets per unit.
    const euros = { id: 'p', op: { op: 'put', key: 'k', value: '€'.repeat(100_000) } } as KvCommand;
    expect(estimateEntryBytes(euros)).toBeGreaterThanOrEqual(encode(euros).length);
  });
});
