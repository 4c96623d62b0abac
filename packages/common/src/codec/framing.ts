/**
 * Length-prefixed framing: every frame is a 4-byte big-endian payload length followed by the
 * payload (one msgpack message). The streaming decoders accept any split of the byte stream.
 * @module
 */
import {
  ConfigError,
  type EncodeError,
  FrameTooLargeError,
  type PaxkvError,
  TruncatedFrameError,
} from '../errors.js';
import { type Codec, msgpackCodec } from './msgpack.js';

/** Size of the length prefix, in bytes. */
export const FRAME_HEADER_BYTES = 4;

/** Default largest frame payload: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Largest payload the 4-byte prefix can describe. */
export const ABSOLUTE_MAX_FRAME_BYTES = 0xffff_ffff;

/** Framing options. */
export interface FramingOptions {
  /**
   * Largest accepted payload, in bytes (the 4-byte header not counted). Default
   * {@link DEFAULT_MAX_FRAME_BYTES} (16 MiB). Both ends should use the same value.
   */
  readonly maxFrameBytes?: number;
  /** Codec of the payloads. Default {@link msgpackCodec}. */
  readonly codec?: Codec;
}

/** Returns the configured maximum frame size; throws a {@link ConfigError} if it is out of range. */
function maxFrameOf(options: FramingOptions): number {
  const max = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (!Number.isSafeInteger(max) || max < 1 || max > ABSOLUTE_MAX_FRAME_BYTES) {
    throw new ConfigError({
      issues: [
        {
          path: 'maxFrameBytes',
          problem: `must be an integer in 1..${ABSOLUTE_MAX_FRAME_BYTES}, got ${max}`,
        },
      ],
    });
  }
  return max;
}

/**
 * Prefixes an already encoded payload with its length.
 * @throws {@link FrameTooLargeError} if the payload exceeds `maxFrameBytes` (default 16 MiB).
 */
export function framePayload(
  payload: Uint8Array,
  maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES,
): Uint8Array {
  if (payload.length > maxFrameBytes)
    throw new FrameTooLargeError({ size: payload.length, maxBytes: maxFrameBytes });
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_BYTES).setUint32(0, payload.length, false);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Encodes `value` with the codec and frames it.
 * @throws {@link EncodeError} if the value cannot be encoded, {@link FrameTooLargeError} if the
 * payload exceeds the maximum frame size.
 */
export function encodeFrame(value: unknown, options: FramingOptions = {}): Uint8Array {
  const max = maxFrameOf(options);
  const codec = options.codec ?? msgpackCodec;
  if (!codec.encodeWithHeader) return framePayload(codec.encode(value), max);
  const frame = codec.encodeWithHeader(value, FRAME_HEADER_BYTES);
  const size = frame.length - FRAME_HEADER_BYTES;
  if (size > max) throw new FrameTooLargeError({ size, maxBytes: max });
  new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_BYTES).setUint32(0, size, false);
  return frame;
}

/** One frame's outcome from a streaming decoder. */
export type FrameResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: PaxkvError };

/**
 * Splits a byte stream into frame payloads, whatever the chunk boundaries. The length prefix is
 * checked before any payload is buffered: an oversized prefix yields one {@link FrameTooLargeError}
 * and puts the splitter in the failed state (the stream cannot be resynchronised; close it).
 * Memory held is at most one frame plus one chunk.
 */
export class FrameSplitter {
  /** The configured maximum payload size. */
  readonly maxFrameBytes: number;
  private chunks: Uint8Array[] = [];
  private offset = 0; // read position in chunks[0]
  private buffered = 0; // unread bytes across chunks
  private expected = -1; // payload length of the frame in progress, -1 while reading the header
  private failure: FrameTooLargeError | undefined;

  /**
   * @param options `maxFrameBytes` (default 16 MiB).
   * @throws {@link ConfigError} if `maxFrameBytes` is not an integer in 1..2^32-1.
   */
  constructor(options: Pick<FramingOptions, 'maxFrameBytes'> = {}) {
    this.maxFrameBytes = maxFrameOf(options);
  }

  /** Unread bytes held by the splitter. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** The error that stopped the splitter, if any; once set, {@link push} returns nothing. */
  get failed(): FrameTooLargeError | undefined {
    return this.failure;
  }

  /** Feeds a chunk; returns the payloads completed by it (possibly none) or the framing error. */
  push(chunk: Uint8Array): FrameResult<Uint8Array>[] {
    const out: FrameResult<Uint8Array>[] = [];
    if (this.failure || chunk.length === 0) return out;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        const h = this.take(FRAME_HEADER_BYTES);
        const len = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
        if (len > this.maxFrameBytes) {
          this.failure = new FrameTooLargeError({ size: len, maxBytes: this.maxFrameBytes });
          this.chunks = [];
          this.buffered = 0;
          this.offset = 0;
          out.push({ ok: false, error: this.failure });
          return out;
        }
        this.expected = len;
      }
      if (this.buffered < this.expected) break;
      const payload = this.take(this.expected);
      this.expected = -1;
      out.push({ ok: true, value: payload });
    }
    return out;
  }

  /**
   * Signals the end of the stream. Returns a {@link TruncatedFrameError} if it ended inside a frame,
   * undefined if it ended on a frame boundary (or the splitter had already failed).
   */
  end(): TruncatedFrameError | undefined {
    if (this.failure) return undefined;
    const pending = this.buffered;
    const expected = this.expected;
    this.chunks = [];
    this.buffered = 0;
    this.offset = 0;
    this.expected = -1;
    if (expected >= 0)
      return new TruncatedFrameError({
        received: FRAME_HEADER_BYTES + pending,
        expected: FRAME_HEADER_BYTES + expected,
      });
    if (pending > 0) return new TruncatedFrameError({ received: pending });
    return undefined;
  }

  /** Removes and returns the next n buffered bytes (n <= buffered): a view when possible, else a copy. */
  private take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.chunks[0]!;
    const avail = first.length - this.offset;
    if (n <= avail) {
      const view = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) {
        this.chunks.shift();
        this.offset = 0;
      }
      this.buffered -= n;
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const m = Math.min(n - filled, c.length - this.offset);
      out.set(c.subarray(this.offset, this.offset + m), filled);
      filled += m;
      this.offset += m;
      if (this.offset === c.length) {
        this.chunks.shift();
        this.offset = 0;
      }
    }
    this.buffered -= n;
    return out;
  }
}

/**
 * Streaming decoder of framed messages: a {@link FrameSplitter} followed by the codec. A payload that
 * is not valid msgpack yields a `DecodeError` result and decoding continues with the next frame (the
 * frame boundary is intact); an oversized frame stops the decoder (see {@link FrameSplitter}).
 * Never throws on any input.
 */
export class FrameDecoder {
  private readonly splitter: FrameSplitter;
  private readonly codec: Codec;

  /** @param options `maxFrameBytes` (default 16 MiB) and `codec` (default msgpack). */
  constructor(options: FramingOptions = {}) {
    this.splitter = new FrameSplitter(options);
    this.codec = options.codec ?? msgpackCodec;
  }

  /** Unread bytes held by the decoder. */
  get bufferedBytes(): number {
    return this.splitter.bufferedBytes;
  }

  /** The error that stopped the decoder, if any. */
  get failed(): FrameTooLargeError | undefined {
    return this.splitter.failed;
  }

  /** Feeds a chunk; returns the messages (or per-frame errors) it completes. */
  push(chunk: Uint8Array): FrameResult<unknown>[] {
    const frames = this.splitter.push(chunk);
    const out: FrameResult<unknown>[] = new Array(frames.length);
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      out[i] = f.ok ? this.codec.decode(f.value) : f;
    }
    return out;
  }

  /** Signals the end of the stream; see {@link FrameSplitter.end}. */
  end(): TruncatedFrameError | undefined {
    return this.splitter.end();
  }
}

/**
 * Decodes a complete buffer of frames (for tests and files). Returns every frame's result, plus a
 * trailing {@link TruncatedFrameError} result if the buffer ends inside a frame. Never throws.
 */
export function decodeFrames(bytes: Uint8Array, options: FramingOptions = {}): FrameResult<unknown>[] {
  const d = new FrameDecoder(options);
  const out = d.push(bytes);
  const tail = d.end();
  if (tail) out.push({ ok: false, error: tail });
  return out;
}
