import { type KvResult, MAX_LEASE_TTL_MS, MIN_LEASE_TTL_MS, PaxkvError, partitionOf } from '@paxkv/common';
import {
  type CommandContext,
  int64Arg,
  keyArg,
  NOT_INTEGER,
  RespCommandError,
  SYNTAX,
  unexpected,
  upper,
  valueArg,
} from './command-context.js';
import { NULL, OK, R, type RespValue } from './encoder.js';

/** INCR/DECR/INCRBY/DECRBY: adds `by` to the key's integer value, answering Redis's errors for non-integers and overflow. */
export function incrBy(ctx: CommandContext, key: Buffer, by: bigint): Promise<RespValue> {
  return ctx.run({ op: 'incr', key: keyArg(key, ctx), by: by.toString() }).then((r) => {
    if (r.op !== 'incr') throw unexpected(r);
    if (r.outcome === 'not-integer') throw new RespCommandError(NOT_INTEGER);
    if (r.outcome === 'overflow') throw new RespCommandError('ERR increment or decrement would overflow');
    return R.int(BigInt(r.value as string));
  });
}

interface SetOptions {
  condition: 'always' | 'absent' | 'present' | 'equal';
  expected?: Uint8Array;
  get: boolean;
  /** EX/PX/EXAT/PXAT: the key's time to live in ms (a lease of its own). */
  ttlMs?: number;
  /** KEEPTTL: keep the key's lease. */
  keepTtl?: boolean;
}

/**
 * A key's time to live in ms from Redis's `seconds`/`milliseconds` argument, checked against what a
 * lease can be (1 s to one year: a shorter lease could expire during an ordinary election).
 */
function ttlArg(b: Buffer | undefined, unitMs: number, command: string, at = false): number {
  const n = int64Arg(b);
  const ms = Number(n) * unitMs - (at ? Date.now() : 0);
  if (n <= 0n || !Number.isFinite(ms) || ms < MIN_LEASE_TTL_MS || ms > MAX_LEASE_TTL_MS) {
    throw new RespCommandError(
      `ERR invalid expire time in '${command}' command (paxkv expires keys through leases of ${MIN_LEASE_TTL_MS / 1000} s to one year)`,
    );
  }
  return Math.round(ms);
}

function parseSetOptions(ctx: CommandContext, args: readonly Buffer[]): SetOptions {
  const o: SetOptions = { condition: 'always', get: false };
  for (let i = 3; i < args.length; i++) {
    const a = upper(args[i]);
    if (a === 'NX' || a === 'XX') {
      if (o.condition !== 'always') throw new RespCommandError(SYNTAX);
      o.condition = a === 'NX' ? 'absent' : 'present';
    } else if (a === 'GET') {
      o.get = true;
    } else if (a === 'IFEQ' && i + 1 < args.length) {
      if (o.condition !== 'always') throw new RespCommandError(SYNTAX);
      o.condition = 'equal';
      o.expected = valueArg(args[++i] as Buffer, ctx);
    } else if (a === 'EX' || a === 'PX' || a === 'EXAT' || a === 'PXAT') {
      if (o.ttlMs !== undefined || o.keepTtl || i + 1 >= args.length) throw new RespCommandError(SYNTAX);
      o.ttlMs = ttlArg(args[++i], a === 'EX' || a === 'EXAT' ? 1000 : 1, 'set', a.endsWith('AT'));
    } else if (a === 'KEEPTTL') {
      if (o.ttlMs !== undefined) throw new RespCommandError(SYNTAX);
      o.keepTtl = true;
    } else {
      throw new RespCommandError(SYNTAX);
    }
  }
  return o;
}

/** SET key value [NX|XX|IFEQ v] [GET] [EX|PX|EXAT|PXAT t|KEEPTTL]. */
export async function setCommand(ctx: CommandContext, args: readonly Buffer[]): Promise<RespValue> {
  const o = parseSetOptions(ctx, args);
  const key = keyArg(args[1] as Buffer, ctx);
  const value = valueArg(args[2] as Buffer, ctx);
  if (o.ttlMs !== undefined || o.keepTtl) return setWithLease(ctx, key, value, o);
  if (o.condition === 'always' && !o.get) {
    await ctx.run({ op: 'put', key, value });
    return OK;
  }
  const r = await ctx.run({
    op: 'set',
    key,
    value,
    condition: o.condition,
    ...(o.expected !== undefined ? { expected: o.expected } : {}),
    ...(o.get ? { get: true } : {}),
  });
  if (r.op !== 'set') throw unexpected(r);
  if (o.get) return R.bulkOrNull(r.previous ?? null);
  return r.applied ? OK : NULL;
}

// ---- key expiry: Redis TTLs as leases -----------------------------------------------------------
//
// A key with a TTL is attached to a lease of its own, granted in the key's partition with the TTL; the
// leader expires the lease (and so deletes the key) through the log. A write without a lease detaches
// the key (SET clears the TTL, as in Redis); INCR and APPEND keep it. A lease a key no longer uses is not
// revoked (a native client may share it between keys): it expires on its own.

/** The partition of `key`. */
function partitionOfKey(ctx: CommandContext, key: string): number {
  const partitions = ctx.backend.facts().partitions;
  if (partitions === null) throw new RespCommandError('NOT_READY the cluster has not started yet');
  return partitionOf(key, partitions);
}

/** Grants a lease of `ttlMs` in the partition of `key`. */
async function grantFor(ctx: CommandContext, key: string, ttlMs: number): Promise<number> {
  const r = await ctx.run({ op: 'lease-grant', partition: partitionOfKey(ctx, key), ttlMs });
  if (r.op !== 'lease-grant') throw unexpected(r);
  if (!r.granted)
    throw new RespCommandError(
      "ERR too many keys with a TTL in this key's partition (paxkv's lease limit): retry after some expire",
    );
  return r.lease;
}

/** Revokes a lease granted for a write that did not use it (best effort: it expires on its own anyway). */
function dropLease(ctx: CommandContext, lease: number): void {
  ctx.run({ op: 'lease-revoke', lease }).catch(() => {});
}

/** The lease `key` is attached to and the time it has left on the leader's clock (`lease` 0: none). */
async function leaseOf(ctx: CommandContext, key: string): Promise<{ lease: number; remainingMs: number }> {
  const r = await ctx.run({ op: 'lease-timetolive', key });
  if (r.op !== 'lease-timetolive') throw unexpected(r);
  return r.found ? { lease: r.lease, remainingMs: r.remainingMs } : { lease: 0, remainingMs: 0 };
}

/** True for the refusal of a write whose lease is gone (it expired or was revoked in between). */
function leaseGone(e: unknown): boolean {
  return e instanceof PaxkvError && e.code === 'BAD_REQUEST' && /lease \d+ does not exist/.test(e.message);
}

/** SET with EX/PX/EXAT/PXAT (a new lease) or KEEPTTL (the key's lease), any condition and GET. */
async function setWithLease(
  ctx: CommandContext,
  key: string,
  value: Uint8Array,
  o: SetOptions,
): Promise<RespValue> {
  for (let attempt = 0; ; attempt++) {
    const granted = o.ttlMs !== undefined ? await grantFor(ctx, key, o.ttlMs) : 0;
    const lease = o.keepTtl ? (await leaseOf(ctx, key)).lease : granted;
    const put = { put: { key, value, ...(lease !== 0 ? { lease } : {}) } };
    const compare =
      o.condition === 'absent' || o.condition === 'present'
        ? [{ key, target: 'exists' as const, op: '=' as const, value: o.condition === 'present' }]
        : o.condition === 'equal'
          ? [{ key, target: 'value' as const, op: '=' as const, value: o.expected as Uint8Array }]
          : [];
    const read = o.get ? [{ get: { key } }] : [];
    let r: KvResult;
    try {
      r = await ctx.run({ op: 'txn', compare, success: [...read, put], failure: read });
    } catch (e) {
      if (granted !== 0) dropLease(ctx, granted);
      // KEEPTTL and the key's lease expired meanwhile: the key is gone with it, set it without a TTL.
      if (o.keepTtl && attempt === 0 && leaseGone(e)) continue;
      throw e;
    }
    if (r.op !== 'txn') throw unexpected(r);
    if (!r.succeeded && granted !== 0) dropLease(ctx, granted);
    if (o.get) {
      const first = r.results[0];
      return R.bulkOrNull(first?.op === 'get' ? first.value : null);
    }
    return r.succeeded ? OK : NULL;
  }
}

/**
 * EXPIRE/PEXPIRE (`unitMs` 1000 or 1) with NX, XX, GT, LT: attaches the key to a new lease with the
 * TTL, keeping its value (a write at the key's current modRevision, retried if the key changed in
 * between). A TTL of 0 or less deletes the key. 1 if the TTL was set, 0 if the key is absent or a flag
 * said no.
 */
export async function expireCommand(
  ctx: CommandContext,
  args: readonly Buffer[],
  unitMs: number,
): Promise<RespValue> {
  const command = unitMs === 1000 ? 'expire' : 'pexpire';
  const key = keyArg(args[1] as Buffer, ctx);
  const n = int64Arg(args[2]);
  const flags = new Set(args.slice(3).map((a) => upper(a)));
  for (const f of flags)
    if (!['NX', 'XX', 'GT', 'LT'].includes(f)) throw new RespCommandError(`ERR Unsupported option ${f}`);
  if (flags.has('NX') && flags.size > 1)
    throw new RespCommandError('ERR NX and XX, GT or LT options at the same time are not compatible');
  if (flags.has('GT') && flags.has('LT'))
    throw new RespCommandError('ERR GT and LT options at the same time are not compatible');
  const removes = n <= 0n;
  const ttlMs = removes ? 0 : ttlArg(args[2], unitMs, command);
  for (let attempt = 0; attempt < 16; attempt++) {
    const entry = await ctx.run({ op: 'get', key });
    if (entry.op !== 'get') throw unexpected(entry);
    if (entry.value === null) return R.int(0);
    const current = await leaseOf(ctx, key);
    const has = current.lease !== 0;
    if (flags.has('NX') && has) return R.int(0);
    if (flags.has('XX') && !has) return R.int(0);
    // A key without a TTL counts as an infinite TTL for GT and LT (as Redis).
    if (flags.has('GT') && (!has || ttlMs <= current.remainingMs)) return R.int(0);
    if (flags.has('LT') && has && ttlMs >= current.remainingMs) return R.int(0);
    const unchanged = [{ key, target: 'modRevision' as const, op: '=' as const, value: entry.modRevision }];
    if (removes) {
      const r = await ctx.run({ op: 'txn', compare: unchanged, success: [{ delete: { key } }], failure: [] });
      if (r.op !== 'txn') throw unexpected(r);
      if (r.succeeded) return R.int(1);
      continue;
    }
    const lease = await grantFor(ctx, key, ttlMs);
    const r = await ctx.run({
      op: 'txn',
      compare: unchanged,
      success: [{ put: { key, value: entry.value, lease } }],
      failure: [],
    });
    if (r.op !== 'txn') throw unexpected(r);
    if (r.succeeded) return R.int(1);
    dropLease(ctx, lease);
  }
  throw new RespCommandError(`ERR ${command.toUpperCase()} gave up: the key kept changing; try again`);
}

/** TTL (`unitMs` 1000, rounded as Redis does) or PTTL (1): -2 if the key is absent, -1 if it has no TTL. */
export async function ttlCommand(
  ctx: CommandContext,
  args: readonly Buffer[],
  unitMs: number,
): Promise<RespValue> {
  const key = keyArg(args[1] as Buffer, ctx);
  const { lease, remainingMs } = await leaseOf(ctx, key);
  if (lease !== 0) return R.int(unitMs === 1 ? remainingMs : Math.floor((remainingMs + 500) / 1000));
  const r = await ctx.run({ op: 'get', key });
  if (r.op !== 'get') throw unexpected(r);
  return R.int(r.value === null ? -2 : -1);
}

/** PERSIST: detaches the key from its lease, keeping its value (1), or 0 if it is absent or has no TTL. */
export async function persistCommand(ctx: CommandContext, args: readonly Buffer[]): Promise<RespValue> {
  const key = keyArg(args[1] as Buffer, ctx);
  for (let attempt = 0; attempt < 16; attempt++) {
    const entry = await ctx.run({ op: 'get', key });
    if (entry.op !== 'get') throw unexpected(entry);
    if (entry.value === null) return R.int(0);
    if ((await leaseOf(ctx, key)).lease === 0) return R.int(0);
    const r = await ctx.run({
      op: 'txn',
      compare: [{ key, target: 'modRevision', op: '=', value: entry.modRevision }],
      success: [{ put: { key, value: entry.value } }],
      failure: [],
    });
    if (r.op !== 'txn') throw unexpected(r);
    if (r.succeeded) return R.int(1);
  }
  throw new RespCommandError('ERR PERSIST gave up: the key kept changing; try again');
}

/** SETEX key seconds value / PSETEX key milliseconds value. */
export function setexCommand(
  ctx: CommandContext,
  args: readonly Buffer[],
  unitMs: number,
): Promise<RespValue> {
  const o: SetOptions = {
    condition: 'always',
    get: false,
    ttlMs: ttlArg(args[2], unitMs, unitMs === 1000 ? 'setex' : 'psetex'),
  };
  return setWithLease(ctx, keyArg(args[1] as Buffer, ctx), valueArg(args[3] as Buffer, ctx), o);
}

/** A conditional `set` of `args[1]` to `args[valueAt]` (SETNX, GETSET, CAS). */
export async function conditionalSet(
  ctx: CommandContext,
  args: readonly Buffer[],
  valueAt: number,
  condition: 'always' | 'absent' | 'equal',
  extra: { expected?: Uint8Array; get?: true } = {},
): Promise<Extract<KvResult, { op: 'set' }>> {
  const r = await ctx.run({
    op: 'set',
    key: keyArg(args[1] as Buffer, ctx),
    value: valueArg(args[valueAt] as Buffer, ctx),
    condition,
    ...extra,
  });
  if (r.op !== 'set') throw unexpected(r);
  return r;
}

/** The `INFO` text of the requested sections. */
