import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { arrayOf } from '../../test/fixtures/msgpack-bombs.js';
import { DecodeError } from '../errors.js';
import { DEFAULT_DECODE_LIMITS, resolveDecodeLimits, scanMsgpack } from './bounded.js';
import { decodeFrames, encodeFrame, FRAME_HEADER_BYTES } from './framing.js';
import { createMsgpackCodec, msgpackCodec } from './msgpack.js';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

/** The offset at which a refusal stopped, from its message. */
function refusedAt(problem: string | null): number {
  const m = /refused at offset (\d+)/.exec(problem ?? '');
  if (!m) throw new Error(`not a budget refusal: ${problem}`);
  return Number(m[1]);
}

const entries = (n: number, f: (i: number) => unknown) => Array.from({ length: n }, (_, i) => f(i));

/** Realistic paxkv messages at their largest usual shapes: none may be refused. */
const legitimate: Array<[string, unknown]> = [
  [
    'an Accept of 1024 small puts with sessions',
    {
      type: 'paxos',
      partition: 3,
      from: 2,
      msg: {
        type: 'Accept',
        n: { n: 5, pid: 2 },
        start: 100,
        decidedIndex: 90,
        entries: entries(1024, (i) => ({
          kind: 'kv',
          op: { op: 'put', key: `k${i}`, value: `v${i}` },
          session: { client: `c-${i % 7}`, seq: i },
        })),
      },
    },
  ],
  [
    'an Accept of 1024 binary puts',
    {
      type: 'paxos',
      partition: 3,
      from: 2,
      msg: {
        type: 'Accept',
        n: { n: 5, pid: 2 },
        start: 100,
        decidedIndex: 90,
        entries: entries(1024, (i) => ({
          kind: 'kv',
          op: { op: 'put', key: `k${i}`, value: new Uint8Array(8) },
        })),
      },
    },
  ],
  [
    'a lookup table of 4096 partitions',
    {
      type: 'table.push',
      table: {
        version: 4,
        partitions: 4096,
        replication: 3,
        nodes: entries(5, (i) => ({ id: i + 1, address: `127.0.0.1:${7000 + i}` })),
        groups: entries(4096, (i) => ({
          partition: i,
          replicas: [1 + (i % 5), 1 + ((i + 1) % 5), 1 + ((i + 2) % 5)],
        })),
      },
    },
  ],
  ['a 1 MiB value', { type: 'kv', id: 1, op: { op: 'put', key: 'k', value: new Uint8Array(1 << 20) } }],
  ['a small get', { type: 'kv', id: 7, op: { op: 'get', key: 'user:1234' } }],
  ['undefined fields', { type: 'kv', id: 7, session: undefined }],
  ['a date', { at: new Date(0) }],
];

describe('scanMsgpack: legitimate messages pass', () => {
  it.each(legitimate)('%s', (_what, value) => {
    const bytes = packr.pack(value);
    expect(scanMsgpack(bytes)).toBeNull();
    expect(msgpackCodec.decode(bytes).ok).toBe(true);
  });

  it('accepts every value msgpack can carry within the depth limit (property)', () => {
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', maxDepth: 6 },
        fc.constant(null),
        fc.boolean(),
        fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
        fc.double(),
        fc.string({ unit: 'grapheme' }),
        fc.uint8Array({ maxLength: 300 }),
        fc.array(tie('value'), { maxLength: 20 }),
        fc.dictionary(fc.string(), tie('value'), { maxKeys: 20 }),
      ),
    }));
    fc.assert(
      fc.property(value, (v) => {
        const bytes = packr.pack(v);
        expect(scanMsgpack(bytes)).toBeNull();
      }),
    );
  });
});

describe('scanMsgpack: hostile payloads are refused early', () => {
  it('refuses the 16 MiB array of 16.7 M empty maps after scanning a small part of it', () => {
    const bytes = arrayOf(16 * 1024 * 1024 - 5, [0x80]);
    const problem = scanMsgpack(bytes);
    expect(problem).toMatch(/maxExpansion/);
    // The budget (16 x 16 MiB) is spent on ~4.2 M maps of the 16.7 M: the scan stopped at a quarter.
    expect(refusedAt(problem)).toBeLessThan(bytes.length / 3);
    const r = msgpackCodec.decode(bytes);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toBeInstanceOf(DecodeError);
  });

  it.each([
    ['empty arrays', [0x90]],
    ['empty binaries (one Buffer each)', [0xc4, 0x00]],
    ['maps of one entry', [0x81, 0xa1, 0x61, 0x01]],
    ['arrays of one element', [0x91, 0x01]],
  ])('refuses an array of many %s', (_what, element) => {
    const bytes = arrayOf(1 << 20, element);
    expect(scanMsgpack(bytes)).toMatch(/maxExpansion/);
  });

  it('accepts an array of small integers (8 bytes of heap per byte: within the budget)', () => {
    expect(scanMsgpack(arrayOf(1 << 20, [0x01]))).toBeNull();
  });

  it('refuses collection and data headers that declare more than the payload holds', () => {
    const lie = (header: number[]) => new Uint8Array([...header, 0x01, 0x02]);
    expect(scanMsgpack(lie([0xdd, 0xff, 0xff, 0xff, 0xff]))).toMatch(/declares 4294967295 elements/);
    expect(scanMsgpack(lie([0xdf, 0x00, 0x10, 0x00, 0x00]))).toMatch(/declares 1048576 entries/);
    expect(scanMsgpack(lie([0xc6, 0x7f, 0xff, 0xff, 0xff]))).toMatch(/declares 2147483647 bytes/);
    expect(scanMsgpack(lie([0xdb, 0x00, 0x01, 0x00, 0x00]))).toMatch(/declares 65536 bytes/);
    expect(scanMsgpack(new Uint8Array([0x92, 0x01]))).toMatch(/declares 2 elements/);
  });

  it('refuses nesting deeper than maxDepth, without recursion', () => {
    const nested = (depth: number) => new Uint8Array([...new Array<number>(depth).fill(0x91), 0x01]);
    expect(scanMsgpack(nested(DEFAULT_DECODE_LIMITS.maxDepth))).toBeNull();
    expect(scanMsgpack(nested(DEFAULT_DECODE_LIMITS.maxDepth + 1))).toMatch(/maxDepth/);
    // A million levels: msgpackr would overflow its stack; the scan stops at level 33.
    expect(scanMsgpack(nested(1_000_000))).toMatch(/deeper than 32/);
  });

  it('refuses extension types the protocol never sends (msgpackr records, bundled strings)', () => {
    expect(scanMsgpack(new Uint8Array([0xd4, 0x72, 0x00]))).toMatch(/extension type 114/);
    expect(scanMsgpack(new Uint8Array([0xc7, 0x01, 0x62, 0x00]))).toMatch(/extension type 98/);
    expect(scanMsgpack(new Uint8Array([0xd4, 0x00, 0x00]))).toBeNull(); // undefined
  });

  it('refuses truncated values, trailing bytes and 0xc1', () => {
    expect(scanMsgpack(new Uint8Array([0x92, 0x01]))).not.toBeNull();
    expect(scanMsgpack(new Uint8Array([0xcb, 0x00]))).toMatch(/declares 8 bytes/);
    expect(scanMsgpack(new Uint8Array([0x01, 0x02]))).toMatch(/1 trailing bytes/);
    expect(scanMsgpack(new Uint8Array([0xc1]))).toMatch(/0xc1/);
    expect(scanMsgpack(new Uint8Array([]))).toMatch(/ends/);
  });

  it('never throws, and whatever it accepts msgpackr decodes (property over arbitrary bytes)', () => {
    const codec = createMsgpackCodec();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const problem = scanMsgpack(bytes);
        const r = codec.decode(bytes);
        if (problem !== null) expect(r.ok).toBe(false);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('bounded decoding in the codec and the framing', () => {
  it('a frame of the amplification attack yields a DecodeError and the next frame still decodes', () => {
    const attack = arrayOf(1 << 20, [0x80]);
    const frame = new Uint8Array(FRAME_HEADER_BYTES + attack.length);
    new DataView(frame.buffer).setUint32(0, attack.length);
    frame.set(attack, FRAME_HEADER_BYTES);
    const next = encodeFrame({ type: 'kv', id: 1 });
    const both = new Uint8Array(frame.length + next.length);
    both.set(frame);
    both.set(next, frame.length);
    const results = decodeFrames(both);
    expect(results).toHaveLength(2);
    expect(results[0]!.ok).toBe(false);
    expect(results[1]).toEqual({ ok: true, value: { type: 'kv', id: 1 } });
  });

  it('limits are configurable, and null turns the pre-scan off', () => {
    const deep = new Uint8Array([0x91, 0x91, 0x91, 0x01]);
    expect(createMsgpackCodec({ limits: { maxDepth: 2 } }).decode(deep).ok).toBe(false);
    expect(createMsgpackCodec({ limits: { maxDepth: 3 } }).decode(deep).ok).toBe(true);
    expect(createMsgpackCodec({ limits: null }).decode(arrayOf(1000, [0x80])).ok).toBe(true);
    expect(() => resolveDecodeLimits({ maxExpansion: 0 })).toThrow(RangeError);
    expect(() => createMsgpackCodec({ limits: { maxDepth: 0 } })).toThrow(/maxDepth/);
  });
});
