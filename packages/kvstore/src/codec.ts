/**
 * Binary encoding of log entries, snapshots and WAL records (msgpack). Decoding never throws: bad bytes
 * yield a {@link CorruptDataError}.
 * @module
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, variableMapSize: true });

/** Stored or received bytes could not be decoded: the data is corrupt or from an incompatible version. */
export class CorruptDataError extends Error {
  override readonly name = 'CorruptDataError';
  constructor(what: string, cause?: unknown) {
    super(
      `${what} could not be decoded (${String((cause as Error)?.message ?? cause ?? 'bad shape')}); the data is corrupt or was written by an incompatible version`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * Encodings at least this long are copied out of the encoder's buffer. msgpackr writes every encoding
 * into one shared buffer, grown to fit the largest so far and then reused at that size: without the
 * copy, a kept snapshot would pin a buffer up to 4 times its size, and every later small encoding
 * (WAL records, messages) would share a buffer as large as the largest snapshot.
 */
const COPY_OUT_BYTES = 1 << 20;

/** Buffer the encoder starts over with after a large encoding (msgpackr's own initial size). */
const ENCODER_BUFFER_BYTES = 8192;

/** Encodes any msgpack-friendly value. */
export function encode(value: unknown): Uint8Array {
  const out = packr.pack(value);
  if (out.byteLength < COPY_OUT_BYTES) return out;
  const own = new Uint8Array(out);
  packr.useBuffer(Buffer.allocUnsafeSlow(ENCODER_BUFFER_BYTES));
  return own;
}

/** Decodes msgpack bytes; returns a {@link CorruptDataError} instead of throwing. */
export function decode(bytes: Uint8Array, what: string): unknown {
  try {
    return plain(packr.unpack(bytes));
  } catch (e) {
    return new CorruptDataError(what, e);
  }
}

/** Turns Node `Buffer`s produced by the decoder into plain `Uint8Array` views, in place. */
function plain(x: unknown): unknown {
  if (x instanceof Uint8Array) {
    return x.constructor === Uint8Array ? x : new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  }
  if (Array.isArray(x)) {
    for (let i = 0; i < x.length; i++) x[i] = plain(x[i]);
    return x;
  }
  if (typeof x === 'object' && x !== null) {
    const o = x as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = plain(o[k]);
  }
  return x;
}
