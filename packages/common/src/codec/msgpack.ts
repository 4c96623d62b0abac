/**
 * The msgpack codec of paxkv messages (msgpackr, plain maps, no shared structures, so any msgpack
 * implementation can read and write the protocol).
 * @module
 */
import { C1, Packr, RESERVE_START_SPACE, Unpackr } from 'msgpackr';
import { DecodeError, EncodeError } from '../errors.js';
import { type DecodeLimits, resolveDecodeLimits, scanMsgpack } from './bounded.js';

/** Outcome of a decode: the value, or a typed error. Decoding never throws. */
export type DecodeResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: DecodeError };

/** Turns messages into bytes and back. */
export interface Codec {
  /**
   * Encodes one value. The returned bytes stay valid (they are never overwritten by a later call).
   * @throws {@link EncodeError} if the value holds something msgpack cannot carry.
   */
  encode(value: unknown): Uint8Array;
  /**
   * Optional fast path for framing: encodes `value` after `headerBytes` (<= 255) reserved bytes at
   * the start of the returned buffer, which the caller fills in, saving a copy.
   * @throws {@link EncodeError} like {@link Codec.encode}.
   */
  encodeWithHeader?(value: unknown, headerBytes: number): Uint8Array;
  /** Decodes exactly one value from `bytes` (trailing bytes are an error). Never throws. */
  decode(bytes: Uint8Array): DecodeResult;
  /**
   * The limits {@link Codec.decode} enforces with its pre-scan, when it has one (the msgpack codec).
   * A streaming receiver (`FrameDecoder`) then scans payloads itself, chunk by chunk, with a
   * `MsgpackScanner` over these limits (plus its own per-connection limits) and calls
   * {@link Codec.decodeScanned}.
   */
  readonly decodeLimits?: DecodeLimits;
  /**
   * Decodes `bytes` that a `MsgpackScanner` with {@link Codec.decodeLimits} (or stricter) already
   * accepted whole, without scanning them again. Never throws.
   */
  decodeScanned?(bytes: Uint8Array): DecodeResult;
}

/** Options of {@link createMsgpackCodec}. */
export interface MsgpackCodecOptions {
  /**
   * Copy binary values out of the input buffer instead of returning views into it. Default true:
   * a decoded value then never pins the (possibly much larger) network chunk it arrived in.
   */
  readonly copyBuffers?: boolean;
  /**
   * Limits enforced before decoding (see {@link scanMsgpack}): nesting depth, the estimated decoded size
   * as a multiple of the payload size, extension types. Default {@link DEFAULT_DECODE_LIMITS}; a partial
   * object overrides single limits. `null` turns the pre-scan off (only for trusted bytes, e.g. data this
   * process wrote itself and checksummed).
   */
  readonly limits?: Partial<DecodeLimits> | null;
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Creates a msgpack codec. Maps decode to plain objects (a `__proto__` key cannot pollute
 * prototypes), binary decodes to `Uint8Array` (a Node `Buffer`), `undefined` survives a round trip.
 * Integers beyond 2^53 decode to `bigint`, which the protocol schemas reject. Decoding is bounded:
 * every payload is pre-scanned against `options.limits` (default {@link DEFAULT_DECODE_LIMITS}) and
 * refused with a `DecodeError` before msgpackr allocates anything for it.
 * @throws RangeError if a limit is out of range.
 */
export function createMsgpackCodec(options: MsgpackCodecOptions = {}): Codec {
  const limits = options.limits === null ? null : resolveDecodeLimits(options.limits ?? {});
  const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });
  const unpackr = new Unpackr({
    useRecords: false,
    moreTypes: false,
    mapsAsObjects: true,
    copyBuffers: options.copyBuffers ?? true,
  });
  const unpack = (bytes: Uint8Array): DecodeResult => {
    if (bytes.length === 0) return { ok: false, error: new DecodeError({ reason: 'empty input' }) };
    try {
      const value: unknown = unpackr.unpack(bytes);
      // 0xc1 is "never used" in msgpack; msgpackr returns a marker object for it.
      if (value === C1)
        return { ok: false, error: new DecodeError({ reason: 'byte 0xc1 is not valid msgpack' }) };
      return { ok: true, value };
    } catch (e) {
      return { ok: false, error: new DecodeError({ reason: reason(e) }, { cause: e }) };
    }
  };
  return {
    encode(value: unknown): Uint8Array {
      try {
        return packr.pack(value);
      } catch (e) {
        throw new EncodeError({ reason: reason(e) }, { cause: e });
      }
    },
    encodeWithHeader(value: unknown, headerBytes: number): Uint8Array {
      try {
        return packr.pack(value, RESERVE_START_SPACE | (headerBytes & 0xff));
      } catch (e) {
        throw new EncodeError({ reason: reason(e) }, { cause: e });
      }
    },
    decode(bytes: Uint8Array): DecodeResult {
      if (bytes.length === 0) return { ok: false, error: new DecodeError({ reason: 'empty input' }) };
      if (limits) {
        const problem = scanMsgpack(bytes, limits);
        if (problem !== null) return { ok: false, error: new DecodeError({ reason: problem }) };
      }
      return unpack(bytes);
    },
    ...(limits ? { decodeLimits: limits, decodeScanned: unpack } : {}),
  };
}

/** The default codec instance (see {@link createMsgpackCodec}). */
export const msgpackCodec: Codec = createMsgpackCodec();
