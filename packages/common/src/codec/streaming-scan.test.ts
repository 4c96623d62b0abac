/**
 * The incremental scan (`MsgpackScanner`) and how the framing uses it: a hostile frame is refused at its
 * first bad chunk, never buffered whole; per-connection limits change between frames.
 */
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { arrayOf } from '../../test/fixtures/msgpack-bombs.js';
import { DEFAULT_DECODE_LIMITS, MsgpackScanner, scanMsgpack } from './bounded.js';
import { encodeFrame, FRAME_HEADER_BYTES, FrameDecoder, type FrameResult } from './framing.js';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

/** Scans `bytes` fed in pieces cut at `cuts`; the same answer as a whole scan is expected. */
function scanInPieces(bytes: Uint8Array, cuts: number[]): string | null {
  const s = new MsgpackScanner(DEFAULT_DECODE_LIMITS);
  s.begin(bytes.length);
  let at = 0;
  for (const c of [...cuts.map((x) => x % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
    const p = s.feed(bytes, at, Math.max(at, c));
    if (p !== null) return p;
    at = Math.max(at, c);
  }
  return s.finish();
}

/** A frame header announcing `length` bytes followed by the first `sent` bytes of `payload`. */
function framed(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

describe('MsgpackScanner: the same verdicts, however the bytes are split', () => {
  it('agrees with the whole-payload scan on arbitrary values and arbitrary bytes', () => {
    const anything = fc.oneof(
      fc.anything({ maxDepth: 4, withNullPrototype: false }).map((v) => packr.pack(v) as Uint8Array),
      fc.uint8Array({ minLength: 1, maxLength: 80 }),
    );
    fc.assert(
      fc.property(anything, fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
        const whole = scanMsgpack(bytes);
        const pieces = scanInPieces(bytes, cuts);
        expect(pieces === null).toBe(whole === null);
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps a header split across chunks (one byte at a time)', () => {
    const value = {
      s: 'x'.repeat(300),
      b: new Uint8Array(300),
      n: 2 ** 40,
      f: 1.5,
      u: undefined,
      d: new Date(0),
    };
    const bytes = packr.pack(value) as Uint8Array;
    const s = new MsgpackScanner(DEFAULT_DECODE_LIMITS);
    s.begin(bytes.length);
    for (let i = 0; i < bytes.length; i++) expect(s.feed(bytes, i, i + 1)).toBeNull();
    expect(s.finish()).toBeNull();
    expect(s.complete).toBe(true);
  });

  it('refuses an array of empty maps within its first kilobytes (the budget holds for every prefix)', () => {
    const bomb = arrayOf(16 * 1024 * 1024 - 5, [0x80]);
    const s = new MsgpackScanner(DEFAULT_DECODE_LIMITS);
    s.begin(bomb.length);
    const problem = s.feed(bomb, 0, 64 * 1024);
    expect(problem).toMatch(/maxExpansion/);
    expect(s.scannedBytes).toBeLessThan(4096);
  });

  it('counts values against maxItems', () => {
    const ints = arrayOf(100_000, [0x01]);
    expect(scanMsgpack(ints)).toBeNull();
    expect(scanMsgpack(ints, { ...DEFAULT_DECODE_LIMITS, maxItems: 100_001 })).toBeNull();
    expect(scanMsgpack(ints, { ...DEFAULT_DECODE_LIMITS, maxItems: 100_000 })).toMatch(
      /more than 100000 values/,
    );
    expect(() => new MsgpackScanner({ ...DEFAULT_DECODE_LIMITS, maxItems: 0 })).toThrow(/maxItems/);
  });
});

describe('FrameDecoder with the incremental scan', () => {
  it('refuses an amplification frame at its first chunk, holds none of it, and decodes the next frame', () => {
    const d = new FrameDecoder();
    const frame = framed(arrayOf(16 * 1024 * 1024 - 5, [0x80]));
    const first = d.push(frame.subarray(0, 64 * 1024));
    expect(first).toHaveLength(1);
    expect(first[0]!.ok).toBe(false);
    if (!first[0]!.ok) expect(first[0]!.error.code).toBe('DECODE_FAILED');
    // The rest of the frame is skipped as it arrives, never buffered.
    for (let at = 64 * 1024; at < frame.length; at += 1 << 20) {
      expect(d.push(frame.subarray(at, Math.min(frame.length, at + (1 << 20))))).toEqual([]);
      expect(d.bufferedBytes).toBe(0);
    }
    expect(d.push(encodeFrame({ type: 'status', id: 1 }))).toEqual([
      { ok: true, value: { type: 'status', id: 1 } },
    ]);
  });

  it('refuses a frame of too many values as it arrives (maxItemsPerFrame)', () => {
    const d = new FrameDecoder({ maxItemsPerFrame: 4096 });
    const frame = framed(arrayOf(1 << 20, [0x01])); // passes maxExpansion, 1 M values
    const r = d.push(frame.subarray(0, 16 * 1024));
    expect(r).toHaveLength(1);
    expect(r[0]!.ok === false && r[0]!.error.message).toMatch(/more than 4096 values/);
  });

  it('applies limits changed by the sink to the next frame of the same chunk', () => {
    const d = new FrameDecoder({ maxFrameBytes: 64 });
    const big = { type: 'kv', value: 'v'.repeat(1000) };
    const both = new Uint8Array([...encodeFrame({ type: 'status', id: 1 }), ...encodeFrame(big)]);
    const seen: FrameResult<unknown>[] = [];
    d.feed(both, (r) => {
      seen.push(r);
      if (seen.length === 1) d.setLimits({ maxFrameBytes: 1 << 20 });
      return true;
    });
    expect(seen.map((r) => r.ok)).toEqual([true, true]);
    expect(seen[1]).toEqual({ ok: true, value: big });
    // Without the raise the second frame is refused at its header.
    const strict = new FrameDecoder({ maxFrameBytes: 64 });
    expect(strict.push(both).map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'FRAME_TOO_LARGE']);
  });

  it('reports trailing bytes only once the frame is complete', () => {
    const d = new FrameDecoder();
    const frame = framed(new Uint8Array([0x01, 0x02, 0x03]));
    expect(d.push(frame.subarray(0, 5))).toEqual([]);
    const r = d.push(frame.subarray(5));
    expect(r[0]!.ok === false && r[0]!.error.message).toMatch(/2 trailing bytes/);
  });
});

describe('FrameDecoder.trustPayloadsUpTo (an authenticated sender)', () => {
  // 20 000 empty maps in 20 KB: over maxExpansion (72 B of heap per byte), refused by the scan.
  const bomb = framed(arrayOf(20_000, [0x80]));
  const outcome = (d: FrameDecoder, bytes: Uint8Array) =>
    d.push(bytes).map((r) => (r.ok ? 'ok' : r.error.code));

  it('decodes small frames without the scan, and still scans larger ones', () => {
    const d = new FrameDecoder();
    expect(outcome(d, bomb)).toEqual(['DECODE_FAILED']);
    d.trustPayloadsUpTo(64 * 1024);
    // The scan would refuse it: decoded, so it was not scanned.
    expect(outcome(d, bomb)).toEqual(['ok']);
    expect(d.push(encodeFrame({ type: 'paxos', n: 1 }))).toEqual([
      { ok: true, value: { type: 'paxos', n: 1 } },
    ]);
    // Above the trusted size the scan applies as before, chunk by chunk.
    const big = framed(arrayOf(100_000, [0x80]));
    expect(outcome(d, big.subarray(0, 32 * 1024))).toEqual(['DECODE_FAILED']);
    expect(outcome(d, big.subarray(32 * 1024))).toEqual([]);
    d.trustPayloadsUpTo(0);
    expect(outcome(d, bomb)).toEqual(['DECODE_FAILED']);
  });

  it('still refuses a payload that is not msgpack', () => {
    const d = new FrameDecoder();
    d.trustPayloadsUpTo(1024);
    expect(outcome(d, framed(new Uint8Array([0xc1])))).toEqual(['DECODE_FAILED']);
    expect(outcome(d, framed(new Uint8Array([0x92, 0x01])))).toEqual(['DECODE_FAILED']);
  });

  it('refuses a nesting bomb of the trusted size (the stack overflow is caught) and decodes on', () => {
    const d = new FrameDecoder();
    d.trustPayloadsUpTo(64 * 1024);
    const nested = new Uint8Array(64 * 1024);
    nested.fill(0x91, 0, nested.length - 1);
    nested[nested.length - 1] = 0x01;
    expect(outcome(d, framed(nested))).toEqual(['DECODE_FAILED']);
    expect(d.push(encodeFrame({ type: 'x', a: [1, 2] }))).toEqual([
      { ok: true, value: { type: 'x', a: [1, 2] } },
    ]);
  });
});
