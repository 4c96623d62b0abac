/**
 * Length-prefixed framing: every frame is a 4-byte big-endian payload length followed by the
 * payload (one msgpack message). The streaming decoders accept any split of the byte stream.
 * @module
 */
import {
  ConfigError,
  DecodeError,
  type EncodeError,
  FrameTooLargeError,
  type PaxkvError,
  TruncatedFrameError,
} from '../errors.js';
import { MsgpackScanner } from './bounded.js';
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
 * Receives each frame's outcome as soon as the frame is complete (or refused), before the next frame's
 * header is read: a receiver may change the limits (see {@link FrameSplitter.setMaxFrameBytes}) in it and
 * they apply from the next frame on. Returning `false` stops processing the rest of the chunk (use it when
 * the connection was closed).
 */
export type FrameSink<T> = (result: FrameResult<T>) => boolean | undefined;

/**
 * Looks at a frame's payload as it arrives, so a hostile frame can be refused at its first bad chunk
 * instead of once all of it has been buffered (see `MsgpackScanner`).
 */
export interface PayloadInspector {
  /** A new payload of `length` bytes starts. */
  begin(length: number): void;
  /** The next bytes of the payload: null while fine, else why the payload is refused. */
  feed(bytes: Uint8Array, from: number, to: number): string | null;
  /** The payload is complete: null if it is fine, else why it is refused. */
  finish(): string | null;
}

/**
 * Splits a byte stream into frame payloads, whatever the chunk boundaries. The length prefix is
 * checked before any payload is buffered: an oversized prefix yields one {@link FrameTooLargeError}
 * and puts the splitter in the failed state (the stream cannot be resynchronised; close it).
 * With an {@link PayloadInspector}, every payload byte is shown to it as it arrives; a payload it refuses
 * yields a `DecodeError` at once, the bytes of that frame already held are dropped and the rest of the
 * frame is skipped as it arrives (never buffered); the next frame is read normally.
 * Memory held is at most one frame plus one chunk.
 */
export class FrameSplitter {
  private maxBytes: number;
  private chunks: Uint8Array[] = [];
  private got = 0; // payload bytes of the frame in progress held in `chunks`
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private expected = -1; // payload length of the frame in progress, -1 while reading the header
  private discard = 0; // bytes of a refused frame still to skip
  private failure: FrameTooLargeError | undefined;
  private inspector: PayloadInspector | undefined; // of the frame in progress
  private nextInspector: PayloadInspector | undefined;
  private uninspectedMax = 0;
  private inspectedFlag = false;

  /**
   * @param options `maxFrameBytes` (default 16 MiB).
   * @throws {@link ConfigError} if `maxFrameBytes` is not an integer in 1..2^32-1.
   */
  constructor(options: Pick<FramingOptions, 'maxFrameBytes'> = {}) {
    this.maxBytes = maxFrameOf(options);
  }

  /** The maximum payload size in force. */
  get maxFrameBytes(): number {
    return this.maxBytes;
  }

  /**
   * Changes the maximum payload size; it applies from the next frame header on (a frame already
   * announced keeps the limit it was checked against).
   * @throws {@link ConfigError} if `maxFrameBytes` is not an integer in 1..2^32-1.
   */
  setMaxFrameBytes(maxFrameBytes: number): void {
    this.maxBytes = maxFrameOf({ maxFrameBytes });
  }

  /** Shows payloads to `inspector` as they arrive (undefined: none), from the next frame on. */
  setInspector(inspector: PayloadInspector | undefined): void {
    this.nextInspector = inspector;
  }

  /**
   * Payloads of at most `bytes` bytes are not shown to the inspector from the next frame on (0, the
   * default: every payload is); larger ones still are. For a sender the receiver trusts (see
   * {@link FrameDecoder.trustPayloadsUpTo}).
   * @throws RangeError if `bytes` is not a non-negative safe integer.
   */
  setUninspectedMax(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0)
      throw new RangeError(`the uninspected payload size must be a non-negative integer, got ${bytes}`);
    this.uninspectedMax = bytes;
  }

  /** Whether the payload just handed to the sink was shown whole to an inspector (and passed it). */
  get inspected(): boolean {
    return this.inspectedFlag;
  }

  /** Unread bytes held by the splitter. */
  get bufferedBytes(): number {
    return this.got + this.headerFill;
  }

  /** The error that stopped the splitter, if any; once set, {@link push} returns nothing. */
  get failed(): FrameTooLargeError | undefined {
    return this.failure;
  }

  /** Feeds a chunk; returns the payloads completed by it (possibly none) or the framing errors. */
  push(chunk: Uint8Array): FrameResult<Uint8Array>[] {
    const out: FrameResult<Uint8Array>[] = [];
    this.feed(chunk, (r) => {
      out.push(r);
      return true;
    });
    return out;
  }

  /** Feeds a chunk, handing each frame's outcome to `sink` as soon as it is known (see {@link FrameSink}). */
  feed(chunk: Uint8Array, sink: FrameSink<Uint8Array>): void {
    const len = chunk.length;
    let i = 0;
    while (i < len && !this.failure) {
      if (this.discard > 0) {
        const k = Math.min(this.discard, len - i);
        this.discard -= k;
        i += k;
        continue;
      }
      if (this.expected < 0) {
        const k = Math.min(FRAME_HEADER_BYTES - this.headerFill, len - i);
        this.header.set(chunk.subarray(i, i + k), this.headerFill);
        this.headerFill += k;
        i += k;
        if (this.headerFill < FRAME_HEADER_BYTES) break;
        this.headerFill = 0;
        const h = this.header;
        const size = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
        if (size > this.maxBytes) {
          this.failure = new FrameTooLargeError({ size, maxBytes: this.maxBytes });
          this.chunks = [];
          this.got = 0;
          sink({ ok: false, error: this.failure });
          return;
        }
        this.expected = size;
        this.got = 0;
        this.inspector = size > this.uninspectedMax ? this.nextInspector : undefined;
        this.inspector?.begin(size);
      }
      const k = Math.min(this.expected - this.got, len - i);
      if (k > 0) {
        const problem = this.inspector ? this.inspector.feed(chunk, i, i + k) : null;
        if (problem !== null) {
          this.discard = this.expected - this.got - k;
          this.expected = -1;
          this.chunks = [];
          this.got = 0;
          i += k;
          if (sink({ ok: false, error: new DecodeError({ reason: problem }) }) === false) return;
          continue;
        }
        this.chunks.push(k === len && i === 0 ? chunk : chunk.subarray(i, i + k));
        this.got += k;
        i += k;
      }
      if (this.got < this.expected) break;
      const payload = this.joined();
      this.expected = -1;
      const problem = this.inspector ? this.inspector.finish() : null;
      this.inspectedFlag = this.inspector !== undefined;
      const result: FrameResult<Uint8Array> =
        problem === null
          ? { ok: true, value: payload }
          : { ok: false, error: new DecodeError({ reason: problem }) };
      if (sink(result) === false) return;
    }
  }

  /**
   * Signals the end of the stream. Returns a {@link TruncatedFrameError} if it ended inside a frame,
   * undefined if it ended on a frame boundary (or the splitter had already failed).
   */
  end(): TruncatedFrameError | undefined {
    if (this.failure) return undefined;
    const pending = this.got + this.headerFill;
    const expected = this.expected;
    const discarding = this.discard > 0;
    this.chunks = [];
    this.got = 0;
    this.headerFill = 0;
    this.expected = -1;
    this.discard = 0;
    if (expected >= 0)
      return new TruncatedFrameError({
        received: FRAME_HEADER_BYTES + pending,
        expected: FRAME_HEADER_BYTES + expected,
      });
    if (pending > 0 || discarding) return new TruncatedFrameError({ received: pending });
    return undefined;
  }

  /** The held payload of the completed frame as one array (a view when it arrived in one chunk). */
  private joined(): Uint8Array {
    const chunks = this.chunks;
    const n = this.got;
    this.chunks = [];
    this.got = 0;
    if (chunks.length === 1) return chunks[0]!;
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** Inbound limits of a {@link FrameDecoder} that a receiver may change between frames. */
export interface InboundFrameLimits {
  /** Largest accepted payload, in bytes. */
  readonly maxFrameBytes?: number;
  /**
   * Most msgpack values in one payload (0: no limit), enforced while the payload arrives when the codec
   * can scan incrementally (the msgpack codec can).
   */
  readonly maxItemsPerFrame?: number;
}

/**
 * Streaming decoder of framed messages: a {@link FrameSplitter} followed by the codec. A payload that
 * is not valid msgpack yields a `DecodeError` result and decoding continues with the next frame (the
 * frame boundary is intact); an oversized frame stops the decoder (see {@link FrameSplitter}).
 * With a codec that scans incrementally (`Codec.decodeLimits`, the msgpack codec), each payload is
 * scanned as its bytes arrive, so a hostile frame is refused at its first bad chunk, and a payload that
 * passed is decoded without scanning it again. Never throws on any input.
 */
export class FrameDecoder {
  private readonly splitter: FrameSplitter;
  private readonly codec: Codec;
  private maxItems = 0;
  private trustedMax = 0;
  private scanner: MsgpackScanner | undefined;

  /** @param options `maxFrameBytes` (default 16 MiB), `codec` (default msgpack), `maxItemsPerFrame` (default 0: none). */
  constructor(options: FramingOptions & Pick<InboundFrameLimits, 'maxItemsPerFrame'> = {}) {
    this.splitter = new FrameSplitter(options);
    this.codec = options.codec ?? msgpackCodec;
    this.setLimits({ maxItemsPerFrame: options.maxItemsPerFrame ?? 0 });
  }

  /** Unread bytes held by the decoder. */
  get bufferedBytes(): number {
    return this.splitter.bufferedBytes;
  }

  /** The error that stopped the decoder, if any. */
  get failed(): FrameTooLargeError | undefined {
    return this.splitter.failed;
  }

  /** The limits in force. */
  get limits(): Required<InboundFrameLimits> {
    return { maxFrameBytes: this.splitter.maxFrameBytes, maxItemsPerFrame: this.maxItems };
  }

  /**
   * Changes the limits from the next frame on (a receiver raises them once it knows who is sending).
   * @throws {@link ConfigError} / RangeError for a limit out of range.
   */
  setLimits(limits: InboundFrameLimits): void {
    if (limits.maxFrameBytes !== undefined) this.splitter.setMaxFrameBytes(limits.maxFrameBytes);
    if (limits.maxItemsPerFrame !== undefined) {
      const items = limits.maxItemsPerFrame;
      if (!Number.isSafeInteger(items) || items < 0)
        throw new RangeError(`maxItemsPerFrame must be a non-negative integer, got ${items}`);
      this.maxItems = items;
      const base = this.codec.decodeLimits;
      this.scanner =
        base && this.codec.decodeScanned
          ? new MsgpackScanner(items > 0 ? { ...base, maxItems: items } : base)
          : undefined;
      this.splitter.setInspector(this.scanner);
    }
  }

  /**
   * Decodes payloads of at most `bytes` bytes without the codec's pre-scan (`Codec.decodeScanned`), from
   * the next frame on; larger payloads are scanned as before. Only for a sender that proved who it is
   * (a server's authenticated peer): a payload decoded unscanned may take up to ~192 times its size in
   * heap (msgpackr's worst case, an array of empty binaries), and a nesting deeper than the scan's
   * `maxDepth` fails as a `DecodeError` only once msgpackr's recursion overflows the stack. 0 (the
   * default) scans every payload. No effect with a codec that has no pre-scan.
   * @throws RangeError if `bytes` is not a non-negative safe integer.
   */
  trustPayloadsUpTo(bytes: number): void {
    this.splitter.setUninspectedMax(bytes);
    this.trustedMax = bytes;
  }

  /** Feeds a chunk; returns the messages (or per-frame errors) it completes. */
  push(chunk: Uint8Array): FrameResult<unknown>[] {
    const out: FrameResult<unknown>[] = [];
    this.feed(chunk, (r) => {
      out.push(r);
      return true;
    });
    return out;
  }

  /** Feeds a chunk, handing each message (or per-frame error) to `sink` as soon as it is complete. */
  feed(chunk: Uint8Array, sink: FrameSink<unknown>): void {
    this.splitter.feed(chunk, (f) => {
      if (!f.ok) return sink(f);
      const skip =
        (this.splitter.inspected || f.value.length <= this.trustedMax) &&
        this.codec.decodeScanned !== undefined;
      return sink(skip ? this.codec.decodeScanned!(f.value) : this.codec.decode(f.value));
    });
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
