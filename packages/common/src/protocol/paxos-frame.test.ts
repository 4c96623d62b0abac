import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeFrames, encodeFrame } from '../codec/framing.js';
import { isPaxosFrame, MAX_PAXOS_BATCH, parsePaxosFrame, parsePeerMessage } from './index.js';

/** Numbers around every bound the schemas check. */
const num = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 0.5, 2 ** 53 - 1, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY),
  fc.integer({ min: -3, max: 5 }),
);
const junk = fc.oneof(
  num,
  fc.string({ maxLength: 3 }),
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
);
const field = fc.oneof({ weight: 4, arbitrary: num }, { weight: 1, arbitrary: junk });
const beat = fc.oneof(
  fc.tuple(field, field),
  fc.tuple(field, field, field, field, fc.oneof(fc.constantFrom(0, 1, 2), junk), field, field),
  fc.array(field, { maxLength: 8 }),
  junk,
);
const entry = fc.oneof(
  { weight: 4, arbitrary: fc.record({ partition: field, msg: fc.anything({ maxDepth: 1 }) }) },
  { weight: 1, arbitrary: fc.record({ partition: field }) },
  { weight: 1, arbitrary: junk },
);
const frame = fc.oneof(
  fc.record(
    {
      type: fc.constant('paxos'),
      partition: field,
      from: field,
      msg: fc.anything({ maxDepth: 1 }),
      extra: junk,
    },
    { requiredKeys: ['type'] },
  ),
  fc.record(
    {
      type: fc.constant('paxos.batch'),
      from: field,
      msgs: fc.oneof(fc.array(entry, { maxLength: 4 }), junk),
      beats: fc.oneof(fc.array(beat, { maxLength: 4 }), junk),
    },
    { requiredKeys: ['type'] },
  ),
  fc.record({ type: fc.constantFrom('kv', 'peer.hello', 'Paxos'), from: field }),
  junk,
);

const zodAccepts = (v: unknown) => {
  const r = parsePeerMessage(v);
  return r.ok && (r.value.type === 'paxos' || r.value.type === 'paxos.batch');
};

describe('paxos frames checked by hand', () => {
  it('reach the same verdict as the zod schemas on frames around every bound', () => {
    fc.assert(
      fc.property(frame, (f) => {
        expect(isPaxosFrame(f)).toBe(zodAccepts(f));
        const r = parsePaxosFrame(f);
        expect(r.ok).toBe(parsePeerMessage(f).ok);
      }),
      { numRuns: 5_000 },
    );
  });

  it('accept real frames after a trip through the codec, and refuse batches over the cap', () => {
    const beats = [
      [3, 7],
      [15, 7, 3, 2, 1, 3, 1],
    ];
    const batch = { type: 'paxos.batch', from: 2, msgs: [{ partition: 1, msg: { type: 'Accept' } }], beats };
    const [decoded] = decodeFrames(encodeFrame(batch));
    expect(decoded?.ok && isPaxosFrame(decoded.value)).toBe(true);
    expect(isPaxosFrame({ type: 'paxos.batch', from: 2, msgs: [], beats: [] })).toBe(false);
    const big = Array.from({ length: MAX_PAXOS_BATCH + 1 }, () => ({ partition: 0, msg: null }));
    expect(isPaxosFrame({ type: 'paxos.batch', from: 2, msgs: big })).toBe(false);
    expect(zodAccepts({ type: 'paxos.batch', from: 2, msgs: big })).toBe(false);
    const r = parsePaxosFrame({ type: 'paxos', from: 0, partition: 1, msg: null });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('BAD_REQUEST');
  });
});
