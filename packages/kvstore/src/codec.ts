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

/** Encodes any msgpack-friendly value. */
export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
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
