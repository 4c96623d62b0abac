/**
 * Upper estimates of encoded sizes, for the byte budgets of the leader's batches and of chunked
 * transfers. Estimates, not encodings: computing them allocates nothing for the common commands.
 * @module
 */
import { isStopSign, type LogEntry } from '@paxkv/paxos';
import type { KvCommand } from './command.js';

/** Bytes a string of `units` UTF-16 code units takes at most in UTF-8 (3 per unit), plus a header. */
function stringBytes(units: number): number {
  return 5 + units * 3;
}

/** Encoded bytes of a string or a byte array, header included; undefined for any other value. */
function leafBytes(v: unknown): number | undefined {
  if (typeof v === 'string') return stringBytes(v.length);
  if (v instanceof Uint8Array) return 5 + v.length;
  return undefined;
}

/**
 * Upper estimate of the msgpack size of `x` (strings at 3 bytes per UTF-16 unit, every header at its
 * widest), stopping once it passes `limit`.
 */
export function estimateBytes(x: unknown, limit = Number.POSITIVE_INFINITY): number {
  let total = 0;
  const stack: unknown[] = [x];
  while (stack.length > 0 && total <= limit) {
    const v = stack.pop();
    const leaf = leafBytes(v);
    if (leaf !== undefined) total += leaf;
    else if (Array.isArray(v)) {
      total += 5;
      for (const e of v) stack.push(e);
    } else if (typeof v === 'object' && v !== null) {
      total += 5;
      for (const [k, e] of Object.entries(v)) {
        total += 1 + k.length;
        stack.push(e);
      }
    } else total += 9;
  }
  return total;
}

/**
 * Bytes of a single-key command beyond its strings and values: the map headers, every field name a
 * single-key operation may have, the operation's name, numbers and flags, each at its widest (about
 * 160 bytes), rounded up.
 */
export const SINGLE_KEY_COMMAND_FIXED_BYTES = 256;

/** Operations whose only variable-size fields are `key`, `value`, `expected` and `by`. */
const SINGLE_KEY_OPS: ReadonlySet<string> = new Set([
  'get',
  'delete',
  'getdel',
  'size',
  'put',
  'append',
  'incr',
  'set',
  'cas',
]);

function valueBytes(v: unknown): number {
  return leafBytes(v) ?? 0;
}

/**
 * Upper estimate of the encoded size of one log entry of a replica group (a command or a stop-sign):
 * the `entryBytes` of the group's paxos, which cuts the leader's `Accept` batches by size. Single-key
 * commands, the hot path, are measured from their few variable fields; any other entry is walked.
 */
export function estimateEntryBytes(entry: LogEntry<KvCommand>): number {
  if (isStopSign(entry)) return estimateBytes(entry);
  const op = entry.op as { op: string; key?: unknown; value?: unknown; expected?: unknown; by?: unknown };
  if (!SINGLE_KEY_OPS.has(op.op) || typeof op.key !== 'string') return estimateBytes(entry);
  return (
    SINGLE_KEY_COMMAND_FIXED_BYTES +
    stringBytes(entry.id.length) +
    stringBytes(op.key.length) +
    (entry.session ? stringBytes(entry.session.client.length) : 0) +
    valueBytes(op.value) +
    valueBytes(op.expected) +
    valueBytes(op.by)
  );
}
