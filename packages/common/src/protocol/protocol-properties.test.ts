import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeFrames, encodeFrame } from '../codec/framing.js';
import { PaxkvError } from '../errors.js';
import {
  type ClientRequest,
  parseBootstrapReply,
  parseBootstrapRequest,
  parseClientRequest,
  parsePeerMessage,
  parseServerResponse,
} from './index.js';

const key = fc.string({ minLength: 1, maxLength: 40 });
const value = fc.oneof(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }));
const op = fc.oneof(
  fc.record({ op: fc.constant('get' as const), key }),
  fc.record({ op: fc.constant('put' as const), key, value }),
  fc.record({ op: fc.constant('cas' as const), key, expected: fc.option(value, { nil: null }), value }),
  fc.record({ op: fc.constant('delete' as const), key }),
);
const request: fc.Arbitrary<ClientRequest> = fc.oneof(
  fc.record(
    {
      type: fc.constant('kv' as const),
      id: fc.nat(),
      op,
      session: fc.record({ client: fc.string({ minLength: 1, maxLength: 64 }), seq: fc.integer({ min: 1 }) }),
      consistency: fc.constantFrom('linearizable' as const, 'stale' as const),
    },
    { requiredKeys: ['type', 'id', 'op'] },
  ),
  fc.record({ type: fc.constantFrom('lookup' as const, 'status' as const), id: fc.nat() }),
);

/** Buffers from the decoder compare equal to plain Uint8Arrays. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

describe('protocol properties', () => {
  it('every valid client request survives encode -> frame -> decode -> parse unchanged', () => {
    fc.assert(
      fc.property(request, (req) => {
        const [frame] = decodeFrames(encodeFrame(req));
        expect(frame?.ok).toBe(true);
        const parsed = parseClientRequest(frame?.ok ? frame.value : undefined);
        expect(parsed.ok).toBe(true);
        if (parsed.ok) expect(plain(parsed.value)).toEqual(plain(req));
      }),
      { numRuns: 500 },
    );
  });

  it('no parser throws on any value, and every failure is a typed PaxkvError', () => {
    const parsers = [
      parseClientRequest,
      parseServerResponse,
      parseBootstrapRequest,
      parseBootstrapReply,
      parsePeerMessage,
    ];
    const tagged = fc.record({
      type: fc.constantFrom(
        'kv',
        'kv.ok',
        'lookup',
        'lookup.ok',
        'status.ok',
        'error',
        'checkin',
        'paxos',
        'members',
      ),
      id: fc.anything(),
      op: fc.anything(),
      result: fc.anything(),
      table: fc.anything(),
    });
    fc.assert(
      fc.property(fc.oneof(fc.anything(), tagged), (input) => {
        for (const parse of parsers) {
          const r = parse(input);
          if (!r.ok) expect(r.error).toBeInstanceOf(PaxkvError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
