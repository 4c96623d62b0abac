/**
 * Limits of the RESP front-end. Every byte a Redis client sends is bounded before it reaches memory: a
 * bulk length, an argument count or an inline line over its limit is refused from its header, before the
 * bytes it announces are awaited or buffered.
 * @module
 */
import { DEFAULT_MAX_KEY_BYTES, DEFAULT_MAX_VALUE_BYTES } from '@paxkv/common';

/** Bounds of one RESP connection. Every field has a documented default ({@link DEFAULT_RESP_LIMITS}). */
export interface RespLimits {
  /**
   * Largest bulk string (one argument) in bytes. A `$<n>` header above it is refused at once with
   * `-ERR Protocol error: invalid bulk length` and the connection is closed, as Redis does above
   * `proto-max-bulk-len`. Default: the largest value plus one key (1 MiB + 4 KiB).
   */
  readonly maxBulkBytes: number;
  /** Most arguments of one command (`*<n>` header). Default 65 536 (an MSET of 32 767 pairs). */
  readonly maxArgs: number;
  /** Most bytes of one command, headers included. Default 16 MiB (the native port's largest frame). */
  readonly maxCommandBytes: number;
  /** Longest inline command (a line not starting with `*`), or `*`/`$` header line. Default 64 KiB (Redis). */
  readonly maxInlineBytes: number;
  /**
   * Commands of one connection read but not yet answered. At the limit the connection stops reading
   * (TCP backpressure) until replies go out; nothing is refused. Default 1024.
   */
  readonly maxPipeline: number;
  /**
   * Reply bytes queued on one socket above which the connection stops reading until the client reads
   * its replies. Default 4 MiB.
   */
  readonly outputHighWaterBytes: number;
  /**
   * A command left half-sent this long (no byte completes it) closes the connection with an error.
   * Default 10 000 ms. 0 turns it off.
   */
  readonly partialCommandTimeoutMs: number;
  /** Most RESP connections served at once; more are refused with an error. Default 10 000. */
  readonly maxConnections: number;
}

/** Defaults of {@link RespLimits}. */
export const DEFAULT_RESP_LIMITS: Readonly<RespLimits> = Object.freeze({
  maxBulkBytes: DEFAULT_MAX_VALUE_BYTES + DEFAULT_MAX_KEY_BYTES,
  maxArgs: 65_536,
  maxCommandBytes: 16 * 1024 * 1024,
  maxInlineBytes: 64 * 1024,
  maxPipeline: 1024,
  outputHighWaterBytes: 4 * 1024 * 1024,
  partialCommandTimeoutMs: 10_000,
  maxConnections: 10_000,
});

/** Fills in defaults and checks every limit is a positive integer (0 allowed for the timeout). */
export function resolveRespLimits(partial: Partial<RespLimits> = {}): RespLimits {
  const limits = { ...DEFAULT_RESP_LIMITS, ...partial };
  for (const [k, v] of Object.entries(limits)) {
    const min = k === 'partialCommandTimeoutMs' ? 0 : 1;
    if (!Number.isSafeInteger(v) || v < min) {
      throw new RangeError(`RESP limit ${k} must be an integer >= ${min}, got ${String(v)}`);
    }
  }
  return limits;
}
