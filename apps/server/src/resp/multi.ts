import {
  DEFAULT_MAX_TXN_OPS,
  type KvOp,
  type KvResult,
  PaxkvError,
  partitionOf,
  type TxnRequest,
} from '@paxkv/common';
import {
  arityError,
  type CommandContext,
  type CommandSpec,
  errorReply,
  keyArg,
  type MultiState,
  type Queued,
  RespCommandError,
  valueArg,
} from './command-context.js';
import { NULL, OK, R, type RespValue } from './encoder.js';

/** The most operations one transaction may carry on this server (the request path's limit). */
export function maxTxnOps(ctx: CommandContext): number {
  return ctx.backend.limits.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
}

/**
 * True when there are several keys, all in one partition (they share a hash tag, or hash alike), and
 * few enough for one transaction: then a multi-key command runs as one atomic transaction.
 */
export function onePartition(ctx: CommandContext, keys: readonly string[]): boolean {
  const partitions = ctx.backend.facts().partitions;
  if (partitions === null || keys.length < 2 || keys.length > maxTxnOps(ctx)) return false;
  const p = partitionOf(keys[0] as string, partitions);
  return keys.every((k) => partitionOf(k, partitions) === p);
}

/** Most bytes of arguments queued by one `MULTI`. */
const MAX_MULTI_BYTES = 16 * 1024 * 1024;

/** Commands that run (or fail) at once inside `MULTI` instead of being queued. */
const MULTI_CONTROL = new Set(['exec', 'discard', 'multi', 'watch', 'quit']);

/** True when `name` is executed even though a transaction is being queued. */
export function runsInsideMulti(name: string): boolean {
  return MULTI_CONTROL.has(name);
}

/**
 * The transaction operations of one command queued inside `MULTI`, or the error saying it cannot be
 * part of a paxkv transaction (only reads and plain writes can: a transaction's branch runs without
 * seeing values, so `INCR` or `SET NX` have no transaction form).
 */
function toTxn(ctx: CommandContext, spec: CommandSpec, args: readonly Buffer[]): Queued {
  const keys = (from: number, step = 1) => {
    const out: string[] = [];
    for (let i = from; i < args.length; i += step) out.push(keyArg(args[i] as Buffer, ctx));
    return out;
  };
  switch (spec.name) {
    case 'get': {
      const key = keyArg(args[1] as Buffer, ctx);
      return { ops: [{ get: { key } }], reply: ([r]) => (r?.op === 'get' ? R.bulkOrNull(r.value) : NULL) };
    }
    case 'mget':
      return {
        ops: keys(1).map((key) => ({ get: { key } })),
        reply: (rs) => R.array(rs.map((r) => (r.op === 'get' ? R.bulkOrNull(r.value) : NULL))),
      };
    case 'exists':
      return {
        ops: keys(1).map((key) => ({ get: { key } })),
        reply: (rs) => R.int(rs.filter((r) => r.op === 'get' && r.value !== null).length),
      };
    case 'set':
      if (args.length !== 3) break;
      return {
        ops: [{ put: { key: keyArg(args[1] as Buffer, ctx), value: valueArg(args[2] as Buffer, ctx) } }],
        reply: () => OK,
      };
    case 'mset': {
      if (args.length % 2 !== 1) throw arityError('mset');
      const ops: TxnRequest[] = [];
      for (let i = 1; i < args.length; i += 2) {
        ops.push({
          put: { key: keyArg(args[i] as Buffer, ctx), value: valueArg(args[i + 1] as Buffer, ctx) },
        });
      }
      return { ops, reply: () => OK };
    }
    case 'del':
    case 'unlink':
      return {
        ops: keys(1).map((key) => ({ delete: { key } })),
        reply: (rs) => R.int(rs.filter((r) => r.op === 'delete' && r.existed).length),
      };
    default:
      break;
  }
  throw new RespCommandError(
    `ERR ${spec.name.toUpperCase()}${spec.name === 'set' ? ' with options' : ''} cannot be part of a paxkv transaction (MULTI holds GET, MGET, EXISTS, SET key value, MSET, DEL, UNLINK)`,
  );
}

/**
 * Queues a command inside `MULTI` (`+QUEUED`), or answers why it cannot be queued; an error marks the
 * transaction failed, so that `EXEC` answers EXECABORT, as Redis does for errors found while queueing.
 */
export function queueCommand(
  ctx: CommandContext,
  spec: CommandSpec | RespCommandError,
  args: readonly Buffer[],
): RespValue {
  const m = ctx.client.multi as MultiState;
  try {
    if (spec instanceof RespCommandError) throw spec;
    const q = toTxn(ctx, spec, args);
    const bytes = args.reduce((n, a) => n + a.length, 0);
    if (m.ops + q.ops.length > maxTxnOps(ctx) || m.bytes + bytes > MAX_MULTI_BYTES) {
      throw new RespCommandError(
        `ERR a paxkv transaction holds at most ${maxTxnOps(ctx)} operations and ${MAX_MULTI_BYTES} bytes`,
      );
    }
    m.queued.push(q);
    m.ops += q.ops.length;
    m.bytes += bytes;
    return R.simple('QUEUED');
  } catch (e) {
    m.failed = true;
    return errorReply(e);
  }
}

const CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot";

/** Runs a transaction, answering Redis Cluster's CROSSSLOT error when its keys span partitions. */
export async function runTxn(ctx: CommandContext, op: KvOp): Promise<KvResult> {
  try {
    return await ctx.run(op);
  } catch (e) {
    if (e instanceof PaxkvError && e.code === 'CROSS_PARTITION') {
      throw new RespCommandError(
        `${CROSSSLOT} (paxkv: the keys of one transaction must share a partition: give them one hash tag, {like-this}:key)`,
      );
    }
    throw e;
  }
}

/** The first glob character of a SCAN pattern, or -1 when it is a plain string. */
