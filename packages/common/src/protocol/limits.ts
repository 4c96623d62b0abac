/**
 * Size limits of keys and values, and the byte-length helpers they use.
 * @module
 */
import { KeyTooLargeError, type PaxkvError, ValueTooLargeError } from '../errors.js';
import type { KvOp, Value } from './kv.js';

/** Size limits applied to keys and values at the protocol boundary. */
export interface ProtocolLimits {
  /** Largest key, in UTF-8 bytes. Default {@link DEFAULT_MAX_KEY_BYTES} (4 KiB). */
  readonly maxKeyBytes: number;
  /** Largest value, in bytes (UTF-8 bytes for string values). Default {@link DEFAULT_MAX_VALUE_BYTES} (1 MiB). */
  readonly maxValueBytes: number;
}

/** Default largest key: 4 KiB of UTF-8. */
export const DEFAULT_MAX_KEY_BYTES = 4 * 1024;
/** Default largest value: 1 MiB. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

/** The default {@link ProtocolLimits}. */
export const DEFAULT_PROTOCOL_LIMITS: ProtocolLimits = Object.freeze({
  maxKeyBytes: DEFAULT_MAX_KEY_BYTES,
  maxValueBytes: DEFAULT_MAX_VALUE_BYTES,
});

/**
 * Length of `s` encoded as UTF-8, without allocating. Lone surrogates count 3 bytes (they encode
 * as U+FFFD), exactly as `TextEncoder` and msgpack encoders do.
 */
export function utf8ByteLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Size of a value in bytes: UTF-8 length for strings, byte length for binary values. */
export function valueByteLength(v: Value): number {
  return typeof v === 'string' ? utf8ByteLength(v) : v.byteLength;
}

/**
 * Checks the key and value sizes of a KV operation against `limits`. Returns the first violation as
 * a {@link KeyTooLargeError} or {@link ValueTooLargeError}, or undefined if the operation fits.
 */
export function checkKvOpLimits(
  op: KvOp,
  limits: ProtocolLimits = DEFAULT_PROTOCOL_LIMITS,
): PaxkvError | undefined {
  const keyBytes = utf8ByteLength(op.key);
  if (keyBytes > limits.maxKeyBytes)
    return new KeyTooLargeError({ size: keyBytes, maxBytes: limits.maxKeyBytes });
  const values: Value[] = [];
  if (op.op === 'put' || op.op === 'append') values.push(op.value);
  else if (op.op === 'cas') {
    values.push(op.value);
    if (op.expected !== undefined && op.expected !== null) values.push(op.expected);
  } else if (op.op === 'set') {
    values.push(op.value);
    if (op.expected !== undefined) values.push(op.expected);
  }
  for (const v of values) {
    const size = valueByteLength(v);
    if (size > limits.maxValueBytes) return new ValueTooLargeError({ size, maxBytes: limits.maxValueBytes });
  }
  return undefined;
}
