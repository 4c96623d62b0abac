/**
 * The command replicated through the paxos log of a group.
 * @module
 */
import {
  isLeaseOpName,
  isTxnOp,
  type KvOp,
  KvOpSchema,
  LeaseIdSchema,
  RangeOpSchema,
  type Session,
} from '@paxkv/common';
import { isStopSign, type LogEntry } from '@paxkv/paxos';

/**
 * One write replicated through a group's log. `id` is unique per proposal (the proposer's id, an
 * incarnation nonce and a counter) so the proposer can match the decided entry with the waiting caller.
 * `session`, when present, makes the write exactly-once.
 */
export interface KvCommand {
  /** Unique proposal id, chosen by the proposing replica. */
  readonly id: string;
  /** The operation (`put`, `cas` or `delete`; a `get` in the log is applied as a read). */
  readonly op: KvOp;
  /** Client session and sequence number for exactly-once application. */
  readonly session?: Session;
}

function isValue(x: unknown): boolean {
  return typeof x === 'string' || x instanceof Uint8Array;
}

function isRevision(x: unknown): boolean {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}

/** Structural check of a decoded log entry (from disk or a peer). Never throws. */
export function isKvCommand(x: unknown): x is KvCommand {
  if (typeof x !== 'object' || x === null) return false;
  const c = x as Record<string, unknown>;
  if (typeof c.id !== 'string') return false;
  if (c.session !== undefined && c.session !== null) {
    const s = c.session as Record<string, unknown>;
    if (typeof s !== 'object' || typeof s.client !== 'string' || !Number.isSafeInteger(s.seq)) return false;
  }
  const op = c.op as Record<string, unknown> | null;
  if (typeof op !== 'object' || op === null) return false;
  // Multi-key operations are rarer and richer: the wire schema checks them whole.
  if (op.op === 'txn') return isTxnOp(op);
  if (op.op === 'range') return RangeOpSchema.safeParse(op).success;
  if (typeof op.op === 'string' && isLeaseOpName(op.op)) return KvOpSchema.safeParse(op).success;
  if (op.op === 'snapshot' || op.op === 'restore') return KvOpSchema.safeParse(op).success;
  if (typeof op.key !== 'string') return false;
  switch (op.op) {
    case 'get':
    case 'delete':
    case 'getdel':
    case 'size':
      return true;
    case 'put':
      return isValue(op.value) && (op.lease === undefined || LeaseIdSchema.safeParse(op.lease).success);
    case 'append':
      return isValue(op.value);
    case 'incr':
      return typeof op.by === 'string' && /^-?(0|[1-9][0-9]{0,18})$/.test(op.by);
    case 'set':
      return (
        isValue(op.value) &&
        (op.condition === 'always' ||
          op.condition === 'absent' ||
          op.condition === 'present' ||
          (op.condition === 'equal' && isValue(op.expected))) &&
        (op.expected === undefined || isValue(op.expected)) &&
        (op.get === undefined || typeof op.get === 'boolean')
      );
    case 'cas': {
      if (!isValue(op.value)) return false;
      const value = op.expected !== undefined;
      const mod = op.expectedModRevision !== undefined;
      const ver = op.expectedVersion !== undefined;
      if (Number(value) + Number(mod) + Number(ver) !== 1) return false;
      if (value) return op.expected === null || isValue(op.expected);
      return isRevision(mod ? op.expectedModRevision : op.expectedVersion);
    }
    default:
      return false;
  }
}

/**
 * Whether `x` is an entry of a replica group's log: a {@link KvCommand} or a stop-sign (a
 * reconfiguration, applied as a no-op). Safe on wire input.
 */
export function isKvLogEntry(x: unknown): x is LogEntry<KvCommand> {
  return isKvCommand(x) || isStopSign(x);
}
