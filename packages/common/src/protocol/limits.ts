/**
 * Size limits of keys and values, and the byte-length helpers they use.
 * @module
 */
import { BadRequestError, KeyTooLargeError, type PaxkvError, ValueTooLargeError } from '../errors.js';
import type { KvOp } from './kv.js';
import type { Value } from './primitives.js';

/** Size limits applied to keys and values at the protocol boundary. */
export interface ProtocolLimits {
  /** Largest key, in UTF-8 bytes. Default {@link DEFAULT_MAX_KEY_BYTES} (4 KiB). */
  readonly maxKeyBytes: number;
  /** Largest value, in bytes (UTF-8 bytes for string values). Default {@link DEFAULT_MAX_VALUE_BYTES} (1 MiB). */
  readonly maxValueBytes: number;
  /**
   * Most entries in each of a transaction's `compare`, `success` and `failure` lists. Default
   * {@link DEFAULT_MAX_TXN_OPS} (128, as etcd's `--max-txn-ops`). Optional for compatibility.
   */
  readonly maxTxnOps?: number;
}

/** Default largest key: 4 KiB of UTF-8. */
export const DEFAULT_MAX_KEY_BYTES = 4 * 1024;
/** Default largest value: 1 MiB. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

/** Default most entries per list of a transaction: 128 (etcd's default `--max-txn-ops`). */
export const DEFAULT_MAX_TXN_OPS = 128;

/** The default {@link ProtocolLimits}. */
export const DEFAULT_PROTOCOL_LIMITS: ProtocolLimits = Object.freeze({
  maxKeyBytes: DEFAULT_MAX_KEY_BYTES,
  maxValueBytes: DEFAULT_MAX_VALUE_BYTES,
  maxTxnOps: DEFAULT_MAX_TXN_OPS,
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
 * Checks the key and value sizes of a KV operation against `limits` (every key and value of a
 * transaction, and its number of operations; the bounds of a range). Returns the first violation as
 * a {@link KeyTooLargeError}, {@link ValueTooLargeError} or {@link BadRequestError}, or undefined if
 * the operation fits.
 */
export function checkKvOpLimits(
  op: KvOp,
  limits: ProtocolLimits = DEFAULT_PROTOCOL_LIMITS,
): PaxkvError | undefined {
  const keys: string[] = [];
  const values: Value[] = [];
  switch (op.op) {
    case 'txn': {
      const max = limits.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
      for (const list of ['compare', 'success', 'failure'] as const) {
        if (op[list].length > max) {
          return new BadRequestError({
            field: `op.${list}`,
            problem: `${op[list].length} entries, more than the limit of ${max}; split the transaction`,
          });
        }
      }
      for (const c of op.compare) {
        keys.push(c.key);
        if (c.target === 'value') values.push(c.value);
      }
      for (const o of [...op.success, ...op.failure]) {
        if ('get' in o) keys.push(o.get.key);
        else if ('delete' in o) keys.push(o.delete.key);
        else {
          keys.push(o.put.key);
          values.push(o.put.value);
        }
      }
      break;
    }
    case 'range':
      keys.push(op.start);
      if (op.end !== undefined) keys.push(op.end);
      break;
    case 'put':
    case 'append':
      keys.push(op.key);
      values.push(op.value);
      break;
    case 'cas':
      keys.push(op.key);
      values.push(op.value);
      if (op.expected !== undefined && op.expected !== null) values.push(op.expected);
      break;
    case 'set':
      keys.push(op.key);
      values.push(op.value);
      if (op.expected !== undefined) values.push(op.expected);
      break;
    case 'lease-grant':
    case 'lease-revoke':
    case 'lease-expire':
    case 'lease-keepalive':
    case 'lease-list':
    case 'snapshot':
    case 'restore':
      break;
    case 'lease-timetolive':
      if (op.key !== undefined) keys.push(op.key);
      break;
    default:
      keys.push(op.key);
  }
  for (const k of keys) {
    if (!mayExceed(k, limits.maxKeyBytes)) continue;
    const keyBytes = utf8ByteLength(k);
    if (keyBytes > limits.maxKeyBytes)
      return new KeyTooLargeError({ size: keyBytes, maxBytes: limits.maxKeyBytes });
  }
  for (const v of values) {
    if (typeof v === 'string' && !mayExceed(v, limits.maxValueBytes)) continue;
    const size = valueByteLength(v);
    if (size > limits.maxValueBytes) return new ValueTooLargeError({ size, maxBytes: limits.maxValueBytes });
  }
  return undefined;
}

/**
 * False when `s` certainly fits in `max` UTF-8 bytes without counting them: a UTF-16 code unit takes
 * at most 3 bytes (a surrogate pair, two units, takes 4). Every request is checked at least once on
 * its way (the exact count over a 256-byte value showed in the profile of a loaded server).
 */
function mayExceed(s: string, max: number): boolean {
  return s.length * 3 > max;
}
