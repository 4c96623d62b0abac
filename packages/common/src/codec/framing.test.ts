import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError, FrameTooLargeError, PaxkvError, TruncatedFrameError } from '../errors.js';
import {
  ABSOLUTE_MAX_FRAME_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  decodeFrames,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameSplitter,
  framePayload,
} from './framing.js';
import { createMsgpackCodec, msgpackCodec } from './msgpack.js';

/** Values msgpack round-trips exactly (no -0, no '__proto__' keys, bytes as Uint8Array). */
const { value: wireValue } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }).map((n) => (n === 0 ? 0 : n)),
    fc.double({ noNaN: true, noDefaultInfinity: false }).map((n) => (Object.is(n, -0) ? 0 : n)),
    fc.string({ unit: 'grapheme' }),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(
      fc.string().filter((k) => k !== '__proto__'),
      tie('value'),
      { maxKeys: 5 },
    ),
  ),
}));

const message = fc.record({ type: fc.constantFrom('kv', 'kv.ok', 'paxos'), id: fc.nat(), body: wireValue });

/** Normalises decoded values: Buffers become plain Uint8Arrays for comparison. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Splits `bytes` at the given (sorted, deduplicated) cut points. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

describe('framing', () => {
  it('writes a 4-byte big-endian length prefix', () => {
    const f = framePayload(new Uint8Array([7, 8, 9]));
    expect([...f]).toEqual([0, 0, 0, 3, 7, 8, 9]);
    const g = encodeFrame({ type: 'x' });
    expect(new DataView(g.buffer, g.byteOffset).getUint32(0)).toBe(g.length - FRAME_HEADER_BYTES);
  });

  it('decodes any sequence of messages split at any byte boundaries to the same messages', () => {
    fc.assert(
      fc.property(
        fc.array(message, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (msgs, cuts) => {
          const bytes = concat(msgs.map((m) => encodeFrame(m)));
          const d = new FrameDecoder();
          const got: unknown[] = [];
          for (const chunk of split(bytes, cuts)) {
            for (const r of d.push(chunk)) {
              expect(r.ok).toBe(true);
              if (r.ok) got.push(plain(r.value));
            }
          }
          expect(d.end()).toBeUndefined();
          expect(d.bufferedBytes).toBe(0);
          expect(got).toEqual(msgs.map(plain));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('encodeFrame (header reserved in place) equals framePayload(encode(v))', () => {
    const plainCodec = { encode: msgpackCodec.encode, decode: msgpackCodec.decode };
    fc.assert(
      fc.property(message, (m) => {
        expect([...encodeFrame(m)]).toEqual([...framePayload(msgpackCodec.encode(m))]);
        expect([...encodeFrame(m, { codec: plainCodec })]).toEqual([...encodeFrame(m)]);
      }),
    );
  });

  it('byte-at-a-time feeding yields the same frames as one big chunk', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), (payloads) => {
        const bytes = concat(payloads.map((p) => framePayload(p)));
        const s = new FrameSplitter();
        const got: number[][] = [];
        for (const b of bytes) for (const r of s.push(Uint8Array.of(b))) if (r.ok) got.push([...r.value]);
        expect(got).toEqual(payloads.map((p) => [...p]));
      }),
    );
  });

  it('never throws on random bytes, however they are split; every result is typed', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.integer({ min: 1, max: 512 }),
        (bytes, cuts, max) => {
          const d = new FrameDecoder({ maxFrameBytes: max });
          const results = split(bytes, cuts).flatMap((c) => d.push(c));
          const tail = d.end();
          for (const r of results) if (!r.ok) expect(r.error).toBeInstanceOf(PaxkvError);
          if (tail) expect(tail).toBeInstanceOf(TruncatedFrameError);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws on well-framed random payloads (fuzzes the msgpack decoder)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (payloads) => {
        const results = decodeFrames(concat(payloads.map((p) => framePayload(p))));
        expect(results).toHaveLength(payloads.length);
        for (const r of results) if (!r.ok) expect(r.error).toBeInstanceOf(DecodeError);
      }),
      { numRuns: 1000 },
    );
  });

  it('reports non-msgpack payloads and trailing bytes as DecodeError and keeps going', () => {
    const bad = framePayload(Uint8Array.of(0xc1)); // 0xc1 is "never used" in msgpack
    const trailing = framePayload(Uint8Array.of(0x01, 0x02));
    const truncated = framePayload(Uint8Array.of(0x92, 0x01)); // array of 2 with one element
    const empty = framePayload(new Uint8Array(0));
    const good = encodeFrame({ type: 'ok' });
    const r = decodeFrames(concat([bad, trailing, truncated, empty, good]));
    expect(r.slice(0, 4).map((x) => (x.ok ? 'ok' : x.error.code))).toEqual([
      'DECODE_FAILED',
      'DECODE_FAILED',
      'DECODE_FAILED',
      'DECODE_FAILED',
    ]);
    expect(r[4]).toEqual({ ok: true, value: { type: 'ok' } });
  });

  it.each([
    ['1 MB of nested arrays (stack overflow)', new Uint8Array(1_000_000).fill(0x91)],
    ['array32 announcing 2^32-1 items', Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff, 1)],
    ['map32 announcing 2^32-1 entries', Uint8Array.of(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0, 1)],
    ['str32 announcing 4 GiB', Uint8Array.of(0xdb, 0xff, 0xff, 0xff, 0xff, 0x41)],
    ['bin32 announcing 4 GiB', Uint8Array.of(0xc6, 0xff, 0xff, 0xff, 0xff, 0x41)],
    ['ext32 announcing 4 GiB', Uint8Array.of(0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x41)],
    ['unknown extension type', Uint8Array.of(0xd4, 0x01, 0x00)],
  ])('turns a hostile payload (%s) into a DecodeError', (_name, payload) => {
    const [r] = decodeFrames(framePayload(payload));
    expect(r?.ok).toBe(false);
    expect(!r?.ok && r?.error).toBeInstanceOf(DecodeError);
  });

  it('reports a stream cut inside a header or a payload as TruncatedFrameError', () => {
    const f = encodeFrame({ type: 'x', id: 1 });
    const d1 = new FrameDecoder();
    d1.push(f.subarray(0, 2));
    expect(d1.end()).toMatchObject({ code: 'TRUNCATED_FRAME', received: 2, expected: undefined });
    const d2 = new FrameDecoder();
    d2.push(f.subarray(0, f.length - 1));
    expect(d2.end()).toMatchObject({ code: 'TRUNCATED_FRAME', received: f.length - 1, expected: f.length });
  });

  it('rejects an oversized length prefix as soon as the header arrives, holding no payload', () => {
    const s = new FrameSplitter({ maxFrameBytes: 1000 });
    const header = Uint8Array.of(0, 0, 0x03, 0xe9); // 1001
    const r = s.push(header);
    expect(r).toHaveLength(1);
    expect(r[0]!.ok).toBe(false);
    expect(!r[0]!.ok && r[0]!.error).toBeInstanceOf(FrameTooLargeError);
    expect(s.bufferedBytes).toBe(0);
    expect(s.failed).toBeInstanceOf(FrameTooLargeError);
    expect(s.push(new Uint8Array(100))).toEqual([]);
    expect(s.bufferedBytes).toBe(0);
  });

  it('rejects any oversized prefix with the default 16 MiB limit', () => {
    fc.assert(
      fc.property(fc.integer({ min: DEFAULT_MAX_FRAME_BYTES + 1, max: ABSOLUTE_MAX_FRAME_BYTES }), (len) => {
        const header = new Uint8Array(4);
        new DataView(header.buffer).setUint32(0, len);
        const [r] = new FrameDecoder().push(header);
        expect(r && !r.ok && r.error).toMatchObject({ code: 'FRAME_TOO_LARGE', size: len });
      }),
    );
  });

  it('never allocates the announced size up front, even under the largest limit', () => {
    const s = new FrameSplitter({ maxFrameBytes: ABSOLUTE_MAX_FRAME_BYTES });
    const before = process.memoryUsage().arrayBuffers;
    s.push(Uint8Array.of(0xff, 0xff, 0xff, 0xfe, 1, 2, 3));
    expect(s.bufferedBytes).toBe(3);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('refuses to encode a frame over the limit', () => {
    expect(() => encodeFrame({ v: 'x'.repeat(100) }, { maxFrameBytes: 50 })).toThrow(FrameTooLargeError);
    expect(() => new FrameSplitter({ maxFrameBytes: 0 })).toThrow(/maxFrameBytes/);
  });
});

describe('msgpack codec', () => {
  it('round-trips protocol values and decodes bytes as copies', () => {
    const codec = createMsgpackCodec();
    const bytes = codec.encode({
      type: 'kv',
      id: 1,
      op: { op: 'put', key: 'k', value: Uint8Array.of(1, 2, 3) },
    });
    const r = codec.decode(bytes);
    expect(r.ok).toBe(true);
    const v = (r as { value: { op: { value: Uint8Array } } }).value.op.value;
    expect([...v]).toEqual([1, 2, 3]);
    expect(v.buffer).not.toBe(bytes.buffer);
  });
  it('keeps earlier encodings intact after later ones', () => {
    const a = msgpackCodec.encode({ a: 'first' });
    const copy = Uint8Array.from(a);
    for (let i = 0; i < 1000; i++) msgpackCodec.encode({ b: 'x'.repeat(i) });
    expect([...a]).toEqual([...copy]);
  });
  it('does not let a __proto__ key pollute prototypes', () => {
    const evil = Uint8Array.from([
      0x81,
      0xa9,
      ...new TextEncoder().encode('__proto__'),
      0x81,
      0xa1,
      0x78,
      0x01,
    ]);
    const r = msgpackCodec.decode(evil);
    expect(r.ok).toBe(true);
    expect(({} as { x?: unknown }).x).toBeUndefined();
  });
  it('reports unencodable values as EncodeError', () => {
    expect(() => msgpackCodec.encode(10n ** 30n)).toThrow(/could not encode/);
  });
});
