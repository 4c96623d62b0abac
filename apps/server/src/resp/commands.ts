/**
 * The Redis commands paxkv answers, each translated into operations of the server's request path. The
 * table gives every command its Redis arity (positive: exact, negative: at least), its flags and key
 * positions (what `COMMAND` reports, what redis-cli reads for hints), which arguments are keys (used by
 * the connection to order pipelined commands on the same key), and its handler.
 *
 * Errors use Redis's own shapes: `ERR unknown command`, `ERR wrong number of arguments`, `ERR syntax
 * error`, `ERR value is not an integer or out of range`. Errors of the request path keep their paxkv
 * code as the error's first word (`-TIMEOUT ...`, `-NO_LEADER ...`), which Redis clients show as is.
 * @module
 */
import { isUtf8 } from 'node:buffer';
import {
  DEFAULT_MAX_TXN_OPS,
  type KvOp,
  type KvResult,
  MAX_LEASE_TTL_MS,
  MIN_LEASE_TTL_MS,
  PaxkvError,
  partitionOf,
  prefixEnd,
  TxnOpSchema,
  type TxnRequest,
  type TxnResponse,
} from '@paxkv/common';
import type { RespBackend, RespServerFacts } from './backend.js';
import { NULL, NULL_ARRAY, OK, R, type RespValue, type RespVersion } from './encoder.js';

/** An error reply: `message` starts with its code word (`ERR`, `WRONGTYPE`, `NOPROTO`...). */
export class RespCommandError extends Error {
  override readonly name = 'RespCommandError';
}

/** The Redis version paxkv presents itself as (the command set and reply shapes it follows). */
export const REDIS_COMPAT_VERSION = '7.0.0';

/** State of one RESP connection that commands read and change. */
export interface RespClientState {
  /** Connection id (`CLIENT ID`), unique per server process. */
  readonly id: number;
  /** `CLIENT SETNAME`. */
  name: string | null;
  /** Protocol version of replies (`HELLO`). */
  proto: RespVersion;
  /** `QUIT` was received: close after the replies before it. */
  quitting: boolean;
  /** Remote address, for `CLIENT INFO`. */
  readonly remote: string;
  /** Commands queued since `MULTI`, null outside a transaction. */
  multi: MultiState | null;
  /** What `AUTH` logged this connection in as (opaque, for the backend), or null. */
  principal: unknown;
  /** `WATCH`ed keys and the `modRevision` each had when watched. */
  watched: Map<string, number>;
  /** Open `SCAN` cursors of this connection (bounded, oldest dropped). */
  readonly cursors: Map<number, ScanCursor>;
}

/** A transaction being queued (`MULTI` ... `EXEC`). */
export interface MultiState {
  readonly queued: Queued[];
  ops: number;
  bytes: number;
  /** A command failed to queue: `EXEC` answers EXECABORT. */
  failed: boolean;
}

/** One queued command: the transaction operations it becomes and how to build its reply from theirs. */
interface Queued {
  readonly ops: readonly TxnRequest[];
  readonly reply: (results: readonly TxnResponse[]) => RespValue;
}

/** Where a `SCAN` goes on: the partition being read and the last key returned from it. */
export interface ScanCursor {
  readonly partition: number;
  readonly after: string | null;
  readonly match: string;
}

/** What a command handler gets. */
export interface CommandContext {
  readonly backend: RespBackend;
  readonly client: RespClientState;
  /** Runs one KV operation with a session of this connection (for writes). */
  readonly run: (op: KvOp) => Promise<KvResult>;
  /** Facts of the RESP server (connected clients, uptime). */
  readonly server: { readonly connectedClients: number; readonly startedAt: number; readonly port: number };
}

/** Key positions as `COMMAND` reports them: first key, last key (-1: last argument), step. */
type KeySpec = readonly [first: number, last: number, step: number];

/** One Redis command. */
export interface CommandSpec {
  /** Lower-case name. */
  readonly name: string;
  /** Redis arity: N > 0 exactly N arguments (name included), -N at least N. */
  readonly arity: number;
  /** `COMMAND` flags (`write`, `readonly`, `fast`, ...). */
  readonly flags: readonly string[];
  readonly keys: KeySpec;
  /**
   * True if the command touches no key but must wait for every earlier command of the connection
   * (`DBSIZE`, `INFO keyspace`).
   */
  readonly barrier?: boolean;
  /**
   * Runs at once when the command is read, before any earlier command finished (for the state it must
   * take in order, as `EXEC` takes the queued transaction); its result is passed to `run`.
   */
  readonly prepare?: (ctx: CommandContext, args: readonly Buffer[]) => unknown;
  readonly run: (
    ctx: CommandContext,
    args: readonly Buffer[],
    prepared?: unknown,
  ) => RespValue | Promise<RespValue>;
}

// ---- argument helpers --------------------------------------------------------------------------

const SYNTAX = 'ERR syntax error';
const NOT_INTEGER = 'ERR value is not an integer or out of range';
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function upper(b: Buffer | undefined): string {
  return b === undefined ? '' : b.toString('latin1').toUpperCase();
}

/** A key argument as the store's key: valid, non-empty UTF-8 within the key size limit. */
function keyArg(b: Buffer, ctx: CommandContext): string {
  if (b.length === 0) throw new RespCommandError('ERR paxkv keys must not be empty');
  if (b.length > ctx.backend.limits.maxKeyBytes) {
    throw new RespCommandError(`ERR key is larger than ${ctx.backend.limits.maxKeyBytes} bytes`);
  }
  if (!isUtf8(b)) {
    throw new RespCommandError('ERR paxkv keys are text: send keys as valid UTF-8 (values may be any bytes)');
  }
  return b.toString('utf8');
}

/** A value argument, copied out of the receive buffer, within the value size limit. */
function valueArg(b: Buffer, ctx: CommandContext): Uint8Array {
  if (b.length > ctx.backend.limits.maxValueBytes) {
    throw new RespCommandError(
      `ERR value is larger than ${ctx.backend.limits.maxValueBytes} bytes (paxkv's largest value)`,
    );
  }
  return new Uint8Array(b);
}

/** A signed 64-bit integer argument, strict as Redis's `string2ll` (no sign `+`, spaces or leading zeros). */
export function int64Arg(b: Buffer | undefined): bigint {
  const s = b?.toString('latin1') ?? '';
  if (!/^-?(0|[1-9][0-9]{0,18})$/.test(s) || s === '-0') throw new RespCommandError(NOT_INTEGER);
  const n = BigInt(s);
  if (n < INT64_MIN || n > INT64_MAX) throw new RespCommandError(NOT_INTEGER);
  return n;
}

/** Runs several operations at once; the first failure fails the command (the others may have applied). */
async function all(ctx: CommandContext, ops: KvOp[]): Promise<KvResult[]> {
  return Promise.all(ops.map((op) => ctx.run(op)));
}

// ---- command handlers --------------------------------------------------------------------------

function incrBy(ctx: CommandContext, key: Buffer, by: bigint): Promise<RespValue> {
  return ctx.run({ op: 'incr', key: keyArg(key, ctx), by: by.toString() }).then((r) => {
    if (r.op !== 'incr') throw unexpected(r);
    if (r.outcome === 'not-integer') throw new RespCommandError(NOT_INTEGER);
    if (r.outcome === 'overflow') throw new RespCommandError('ERR increment or decrement would overflow');
    return R.int(BigInt(r.value as string));
  });
}

function unexpected(r: KvResult): Error {
  return new RespCommandError(`ERR internal error: unexpected ${r.op} result`);
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

async function setCommand(ctx: CommandContext, args: readonly Buffer[]): Promise<RespValue> {
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
async function expireCommand(
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
async function ttlCommand(ctx: CommandContext, args: readonly Buffer[], unitMs: number): Promise<RespValue> {
  const key = keyArg(args[1] as Buffer, ctx);
  const { lease, remainingMs } = await leaseOf(ctx, key);
  if (lease !== 0) return R.int(unitMs === 1 ? remainingMs : Math.floor((remainingMs + 500) / 1000));
  const r = await ctx.run({ op: 'get', key });
  if (r.op !== 'get') throw unexpected(r);
  return R.int(r.value === null ? -2 : -1);
}

/** PERSIST: detaches the key from its lease, keeping its value (1), or 0 if it is absent or has no TTL. */
async function persistCommand(ctx: CommandContext, args: readonly Buffer[]): Promise<RespValue> {
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
function setexCommand(ctx: CommandContext, args: readonly Buffer[], unitMs: number): Promise<RespValue> {
  const o: SetOptions = {
    condition: 'always',
    get: false,
    ttlMs: ttlArg(args[2], unitMs, unitMs === 1000 ? 'setex' : 'psetex'),
  };
  return setWithLease(ctx, keyArg(args[1] as Buffer, ctx), valueArg(args[3] as Buffer, ctx), o);
}

/** A conditional `set` of `args[1]` to `args[valueAt]` (SETNX, GETSET, CAS). */
async function conditionalSet(
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
function infoText(
  ctx: CommandContext,
  sections: Set<string>,
  keyspace: { keys: number; expires: number } | null,
): string {
  const f: RespServerFacts = ctx.backend.facts();
  const all = sections.has('all') || sections.has('everything');
  const want = (s: string, byDefault = true) =>
    all || sections.has(s) || (byDefault && (sections.size === 0 || sections.has('default')));
  const out: string[] = [];
  if (want('server')) {
    out.push(
      '# Server',
      `redis_version:${REDIS_COMPAT_VERSION}`,
      'redis_mode:standalone',
      `paxkv_node_id:${f.nodeId ?? ''}`,
      `paxkv_address:${f.address}`,
      `process_id:${process.pid}`,
      `tcp_port:${ctx.server.port}`,
      `uptime_in_seconds:${Math.floor((Date.now() - ctx.server.startedAt) / 1000)}`,
      '',
    );
  }
  if (want('clients')) out.push('# Clients', `connected_clients:${ctx.server.connectedClients}`, '');
  if (want('persistence')) {
    out.push(
      '# Persistence',
      'loading:0',
      'paxkv_durability:replicated write-ahead log, a write is acknowledged once a majority has it',
      `paxkv_fsync:${f.fsync}`,
      '',
    );
  }
  if (want('replication')) {
    out.push('# Replication', 'role:master', `paxkv_partitions:${f.partitions ?? ''}`);
    for (const g of f.groups) {
      out.push(
        `paxkv_partition_${g.partition}:role=${g.role},leader=${g.leader ?? 'none'},decided_index=${g.decidedIndex}`,
      );
    }
    out.push('');
  }
  if (keyspace !== null) {
    const { keys, expires } = keyspace;
    out.push('# Keyspace', ...(keys > 0 ? [`db0:keys=${keys},expires=${expires},avg_ttl=0`] : []), '');
  }
  return out.join('\r\n');
}

/** Keys, one per partition, that route `size` operations to each partition (found once per table size). */
const sizeKeysCache = new Map<number, string[]>();
function sizeKeys(partitions: number): string[] {
  let keys = sizeKeysCache.get(partitions);
  if (keys) return keys;
  const found: (string | undefined)[] = new Array(partitions);
  let left = partitions;
  for (let i = 0; left > 0; i++) {
    const k = `\u0000paxkv.dbsize.${i}`;
    const p = partitionOf(k, partitions);
    if (found[p] === undefined) {
      found[p] = k;
      left--;
    }
  }
  keys = found as string[];
  sizeKeysCache.set(partitions, keys);
  return keys;
}

/** `INFO keyspace` `expires`: the keys attached to a lease, summed over every partition's lease list. */
async function keysWithTtl(ctx: CommandContext): Promise<number> {
  const partitions = ctx.backend.facts().partitions;
  if (partitions === null) throw new RespCommandError('NOT_READY the cluster has not started yet');
  const lists = await all(
    ctx,
    Array.from({ length: partitions }, (_, partition) => ({ op: 'lease-list', partition }) as KvOp),
  );
  let n = 0;
  for (const r of lists) if (r.op === 'lease-list') for (const l of r.leases) n += l.keys;
  return n;
}

/** DBSIZE: the sum of every partition's key count, each a linearizable read through its group's log. */
async function dbsize(ctx: CommandContext): Promise<number> {
  const partitions = ctx.backend.facts().partitions;
  if (partitions === null) throw new RespCommandError('NOT_READY the cluster has not started yet');
  const results = await all(
    ctx,
    sizeKeys(partitions).map((key) => ({ op: 'size', key }) as KvOp),
  );
  let n = 0;
  for (const r of results) if (r.op === 'size') n += r.keys;
  return n;
}

function validClientName(b: Buffer): boolean {
  for (const c of b) if (c < 33 || c > 126) return false;
  return true;
}

function helloReply(ctx: CommandContext): RespValue {
  return R.map([
    [R.bulk('server'), R.bulk('redis')],
    [R.bulk('version'), R.bulk(REDIS_COMPAT_VERSION)],
    [R.bulk('proto'), R.int(ctx.client.proto)],
    [R.bulk('id'), R.int(ctx.client.id)],
    [R.bulk('mode'), R.bulk('standalone')],
    [R.bulk('role'), R.bulk('master')],
    [R.bulk('modules'), R.array([])],
  ]);
}

const NO_AUTH =
  'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?';

function commandInfo(spec: CommandSpec): RespValue {
  return R.array([
    R.bulk(spec.name),
    R.int(spec.arity),
    R.set(spec.flags.map((f) => R.simple(f))),
    R.int(spec.keys[0]),
    R.int(spec.keys[1]),
    R.int(spec.keys[2]),
    R.set([]),
    R.set([]),
    R.array([]),
    R.array([]),
  ]);
}

function commandDocs(spec: CommandSpec): readonly [RespValue, RespValue] {
  return [
    R.bulk(spec.name),
    R.map([
      [R.bulk('summary'), R.bulk(`paxkv: ${spec.name.toUpperCase()}`)],
      [R.bulk('since'), R.bulk('1.0.0')],
      [R.bulk('group'), R.bulk(spec.keys[0] > 0 ? 'string' : 'connection')],
    ]),
  ];
}

/** Most operations one transaction may hold (the protocol's default `maxTxnOps`). */
function maxTxnOps(ctx: CommandContext): number {
  return ctx.backend.limits.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
}

/**
 * True when there are several keys, all in one partition (they share a hash tag, or hash alike), and
 * few enough for one transaction: then a multi-key command runs as one atomic transaction.
 */
function onePartition(ctx: CommandContext, keys: readonly string[]): boolean {
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
async function runTxn(ctx: CommandContext, op: KvOp): Promise<KvResult> {
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
function firstGlob(pattern: string): number {
  for (let i = 0; i < pattern.length; i++) if ('*?[\\'.includes(pattern[i] as string)) return i;
  return -1;
}

/** A Redis glob pattern (`*`, `?`, `[abc]`, `[^a-z]`, `\x`) as a regular expression. */
export function globToRegExp(pattern: string): RegExp {
  let out = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') out += '[\\s\\S]*';
    else if (c === '?') out += '[\\s\\S]';
    else if (c === '\\' && i + 1 < pattern.length)
      out += `\\${pattern[++i]}`.replace(/^\\([A-Za-z0-9])$/, '$1');
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) out += '\\[';
      else {
        let body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('^')) body = `^${body.slice(1)}`;
        out += `[${body}]`;
        i = end;
      }
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${out}$`, 's');
}

/** Most SCAN cursors one connection keeps open; the oldest is dropped beyond it. */
const MAX_CURSORS = 64;
let nextCursorId = 1;

async function scan(ctx: CommandContext, args: readonly Buffer[]): Promise<RespValue> {
  const partitions = ctx.backend.facts().partitions;
  if (partitions === null) throw new RespCommandError('NOT_READY the cluster has not started yet');
  let match = '*';
  let count = 10;
  for (let i = 2; i < args.length; i++) {
    const opt = upper(args[i]);
    if (opt === 'MATCH' && i + 1 < args.length) match = (args[++i] as Buffer).toString('utf8');
    else if (opt === 'COUNT' && i + 1 < args.length) {
      const n = int64Arg(args[++i]);
      if (n < 1n) throw new RespCommandError(SYNTAX);
      count = Number(n > 1000n ? 1000n : n);
    } else if (opt === 'TYPE' && i + 1 < args.length) {
      if ((args[++i] as Buffer).toString('latin1').toLowerCase() !== 'string')
        return R.array([R.bulk('0'), R.array([])]);
    } else throw new RespCommandError(SYNTAX);
  }
  const cursorText = (args[1] as Buffer).toString('latin1');
  if (!/^[0-9]{1,19}$/.test(cursorText)) throw new RespCommandError('ERR invalid cursor');
  let state: ScanCursor;
  if (cursorText === '0') state = { partition: 0, after: null, match };
  else {
    const known = ctx.client.cursors.get(Number(cursorText));
    if (!known)
      throw new RespCommandError('ERR invalid cursor (paxkv keeps the last 64 cursors of a connection)');
    ctx.client.cursors.delete(Number(cursorText));
    state = { ...known, match };
  }
  const g = firstGlob(match);
  const prefix = g < 0 ? match : match.slice(0, g);
  const test =
    g < 0
      ? (k: string) => k === match
      : (
          (re) => (k: string) =>
            re.test(k)
        )(globToRegExp(match));
  const end = g < 0 ? `${match}\u0000` : prefixEnd(prefix);
  const r = await ctx.run({
    op: 'range',
    start: state.after === null ? prefix : `${state.after}\u0000`,
    ...(end !== undefined ? { end } : {}),
    limit: count,
    keysOnly: true,
    partition: state.partition,
  });
  if (r.op !== 'range') throw unexpected(r);
  const keys = r.kvs.map((kv) => kv.key);
  const next: ScanCursor | null = r.more
    ? { partition: state.partition, after: keys[keys.length - 1] ?? state.after, match }
    : state.partition + 1 < partitions
      ? { partition: state.partition + 1, after: null, match }
      : null;
  let cursor = '0';
  if (next) {
    const id = nextCursorId++;
    ctx.client.cursors.set(id, next);
    if (ctx.client.cursors.size > MAX_CURSORS)
      ctx.client.cursors.delete(ctx.client.cursors.keys().next().value as number);
    cursor = String(id);
  }
  return R.array([R.bulk(cursor), R.array(keys.filter(test).map((k) => R.bulk(k)))]);
}

const NO_KEYS: KeySpec = [0, 0, 0];
const ONE_KEY: KeySpec = [1, 1, 1];
const ALL_KEYS: KeySpec = [1, -1, 1];

/** The seconds and milliseconds forms of a TTL command (`EXPIRE`/`PEXPIRE`, `TTL`/`PTTL`, ...). */
function inTwoUnits(
  seconds: string,
  millis: string,
  spec: Omit<CommandSpec, 'name' | 'run'>,
  run: (ctx: CommandContext, args: readonly Buffer[], unitMs: number) => Promise<RespValue>,
): CommandSpec[] {
  return [
    { ...spec, name: seconds, run: (ctx, args) => run(ctx, args, 1000) },
    { ...spec, name: millis, run: (ctx, args) => run(ctx, args, 1) },
  ];
}

const specs: CommandSpec[] = [
  {
    name: 'ping',
    arity: -1,
    flags: ['fast', 'stale'],
    keys: NO_KEYS,
    run: (_ctx, args) => {
      if (args.length > 2) throw arityError('ping');
      return args.length === 2 ? R.bulk(args[1] as Buffer) : R.simple('PONG');
    },
  },
  { name: 'echo', arity: 2, flags: ['fast'], keys: NO_KEYS, run: (_c, args) => R.bulk(args[1] as Buffer) },
  {
    name: 'hello',
    arity: -1,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth'],
    keys: NO_KEYS,
    run: (ctx, args) => {
      let proto = ctx.client.proto;
      let name: string | undefined;
      if (args.length >= 2) {
        const v = args[1]?.toString('latin1') ?? '';
        if (!/^[0-9]+$/.test(v))
          throw new RespCommandError('ERR Protocol version is not an integer or out of range');
        if (v !== '2' && v !== '3') throw new RespCommandError('NOPROTO unsupported protocol version');
        proto = v === '2' ? 2 : 3;
      }
      for (let i = 2; i < args.length; i++) {
        const opt = upper(args[i]);
        if (opt === 'AUTH' && i + 2 < args.length) throw new RespCommandError(NO_AUTH);
        if (opt === 'SETNAME' && i + 1 < args.length) {
          const n = args[++i] as Buffer;
          if (!validClientName(n)) {
            throw new RespCommandError(
              'ERR Client names cannot contain spaces, newlines or special characters.',
            );
          }
          name = n.toString('latin1');
        } else {
          throw new RespCommandError(`ERR Syntax error in HELLO option '${args[i]?.toString('latin1')}'`);
        }
      }
      ctx.client.proto = proto;
      if (name !== undefined) ctx.client.name = name;
      return helloReply(ctx);
    },
  },
  {
    name: 'auth',
    arity: -2,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth'],
    keys: NO_KEYS,
    run: async (ctx, args) => {
      // AUTH password (the user "default") or AUTH user password, as Redis 6 ACLs.
      if (!ctx.backend.login) throw new RespCommandError(NO_AUTH);
      if (args.length > 3) throw arityError('auth');
      const user = args.length === 3 ? (args[1] as Buffer).toString('utf8') : 'default';
      const password = (args[args.length - 1] as Buffer).toString('utf8');
      try {
        ctx.client.principal = await ctx.backend.login(user, password);
      } catch {
        throw new RespCommandError('WRONGPASS invalid username-password pair or user is disabled.');
      }
      return OK;
    },
  },
  {
    name: 'select',
    arity: 2,
    flags: ['loading', 'stale', 'fast'],
    keys: NO_KEYS,
    run: (_c, args) => {
      const n = int64Arg(args[1]);
      if (n !== 0n) throw new RespCommandError('ERR DB index is out of range');
      return OK;
    },
  },
  {
    name: 'quit',
    arity: -1,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth'],
    keys: NO_KEYS,
    run: (ctx) => {
      ctx.client.quitting = true;
      return OK;
    },
  },
  {
    name: 'get',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) => {
      const r = await ctx.run({ op: 'get', key: keyArg(args[1] as Buffer, ctx) });
      if (r.op !== 'get') throw unexpected(r);
      return r.value === null ? NULL : R.bulk(r.value);
    },
  },
  {
    name: 'strlen',
    arity: 2,
    flags: ['readonly', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) => {
      const r = await ctx.run({ op: 'get', key: keyArg(args[1] as Buffer, ctx) });
      if (r.op !== 'get') throw unexpected(r);
      if (r.value === null) return R.int(0);
      return R.int(typeof r.value === 'string' ? Buffer.byteLength(r.value) : r.value.length);
    },
  },
  { name: 'set', arity: -3, flags: ['write', 'denyoom'], keys: ONE_KEY, run: setCommand },
  {
    name: 'setnx',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) => R.int((await conditionalSet(ctx, args, 2, 'absent')).applied ? 1 : 0),
  },
  {
    name: 'getset',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) =>
      R.bulkOrNull((await conditionalSet(ctx, args, 2, 'always', { get: true })).previous ?? null),
  },
  {
    name: 'cas',
    arity: 4,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) =>
      R.int(
        (await conditionalSet(ctx, args, 3, 'equal', { expected: valueArg(args[2] as Buffer, ctx) })).applied
          ? 1
          : 0,
      ),
  },
  {
    name: 'getdel',
    arity: 2,
    flags: ['write', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) => {
      const r = await ctx.run({ op: 'getdel', key: keyArg(args[1] as Buffer, ctx) });
      if (r.op !== 'getdel') throw unexpected(r);
      return R.bulkOrNull(r.value);
    },
  },
  ...(['del', 'unlink'] as const).map(
    (name): CommandSpec => ({
      name,
      arity: -2,
      flags: ['write'],
      keys: ALL_KEYS,
      run: async (ctx, args) => {
        const keys = args.slice(1).map((k) => keyArg(k, ctx));
        const results = await all(
          ctx,
          keys.map((key) => ({ op: 'delete', key })),
        );
        return R.int(results.filter((r) => r.op === 'delete' && r.existed).length);
      },
    }),
  ),
  {
    name: 'exists',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: ALL_KEYS,
    run: async (ctx, args) => {
      const keys = args.slice(1).map((k) => keyArg(k, ctx));
      const results = await all(
        ctx,
        keys.map((key) => ({ op: 'get', key })),
      );
      return R.int(results.filter((r) => r.op === 'get' && r.value !== null).length);
    },
  },
  {
    name: 'mget',
    arity: -2,
    flags: ['readonly', 'fast'],
    keys: ALL_KEYS,
    run: async (ctx, args) => {
      const keys = args.slice(1).map((k) => keyArg(k, ctx));
      if (onePartition(ctx, keys)) {
        // One partition (one hash tag): one read-only transaction, every value at one revision.
        const r = await ctx.run({
          op: 'txn',
          compare: [],
          success: keys.map((key) => ({ get: { key } })),
          failure: [],
        });
        if (r.op !== 'txn') throw unexpected(r);
        return R.array(r.results.map((x) => (x.op === 'get' ? R.bulkOrNull(x.value) : NULL)));
      }
      const results = await all(
        ctx,
        keys.map((key) => ({ op: 'get', key })),
      );
      return R.array(results.map((r) => (r.op === 'get' ? R.bulkOrNull(r.value) : NULL)));
    },
  },
  {
    name: 'mset',
    arity: -3,
    flags: ['write', 'denyoom'],
    keys: [1, -1, 2],
    run: async (ctx, args) => {
      if (args.length % 2 !== 1) throw arityError('mset');
      const pairs = new Map<string, Uint8Array>(); // a key given twice keeps its last value, as in Redis
      for (let i = 1; i < args.length; i += 2) {
        pairs.set(keyArg(args[i] as Buffer, ctx), valueArg(args[i + 1] as Buffer, ctx));
      }
      if (onePartition(ctx, [...pairs.keys()])) {
        // One partition (one hash tag): one transaction, all keys written atomically at one revision.
        await ctx.run({
          op: 'txn',
          compare: [],
          success: [...pairs].map(([key, value]) => ({ put: { key, value } })),
          failure: [],
        });
        return OK;
      }
      await all(
        ctx,
        [...pairs].map(([key, value]) => ({ op: 'put', key, value })),
      );
      return OK;
    },
  },
  {
    name: 'incr',
    arity: 2,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: (ctx, args) => incrBy(ctx, args[1] as Buffer, 1n),
  },
  {
    name: 'decr',
    arity: 2,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: (ctx, args) => incrBy(ctx, args[1] as Buffer, -1n),
  },
  {
    name: 'incrby',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: (ctx, args) => incrBy(ctx, args[1] as Buffer, int64Arg(args[2])),
  },
  {
    name: 'decrby',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: (ctx, args) => {
      const by = int64Arg(args[2]);
      if (by === INT64_MIN) throw new RespCommandError('ERR decrement would overflow');
      return incrBy(ctx, args[1] as Buffer, -by);
    },
  },
  {
    name: 'append',
    arity: 3,
    flags: ['write', 'denyoom', 'fast'],
    keys: ONE_KEY,
    run: async (ctx, args) => {
      const r = await ctx.run({
        op: 'append',
        key: keyArg(args[1] as Buffer, ctx),
        value: valueArg(args[2] as Buffer, ctx),
      });
      if (r.op !== 'append') throw unexpected(r);
      if (r.outcome === 'too-large') {
        throw new RespCommandError('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
      }
      return R.int(r.length);
    },
  },
  {
    name: 'dbsize',
    arity: 1,
    flags: ['readonly', 'fast'],
    keys: NO_KEYS,
    barrier: true,
    run: async (ctx) => R.int(await dbsize(ctx)),
  },
  {
    name: 'info',
    arity: -1,
    flags: ['loading', 'stale'],
    keys: NO_KEYS,
    barrier: true,
    run: async (ctx, args) => {
      const sections = new Set(args.slice(1).map((a) => a.toString('latin1').toLowerCase()));
      const keyspace = sections.has('keyspace') || sections.has('all') || sections.has('everything');
      return R.bulk(
        infoText(
          ctx,
          sections,
          keyspace ? { keys: await dbsize(ctx), expires: await keysWithTtl(ctx) } : null,
        ),
      );
    },
  },
  {
    name: 'command',
    arity: -1,
    flags: ['loading', 'stale'],
    keys: NO_KEYS,
    run: (_ctx, args) => {
      const sub = upper(args[1]);
      if (args.length === 1) return R.array([...COMMANDS.values()].map(commandInfo));
      if (sub === 'COUNT') return R.int(COMMANDS.size);
      if (sub === 'INFO') {
        const names =
          args.length > 2
            ? args.slice(2).map((a) => a.toString('latin1').toLowerCase())
            : [...COMMANDS.keys()];
        return R.array(
          names.map((n) => {
            const spec = COMMANDS.get(n);
            return spec ? commandInfo(spec) : NULL_ARRAY;
          }),
        );
      }
      if (sub === 'DOCS') {
        const names =
          args.length > 2
            ? args.slice(2).map((a) => a.toString('latin1').toLowerCase())
            : [...COMMANDS.keys()];
        return R.map(
          names.flatMap((n) => {
            const spec = COMMANDS.get(n);
            return spec ? [commandDocs(spec)] : [];
          }),
        );
      }
      if (sub === 'LIST') return R.array([...COMMANDS.keys()].map((n) => R.bulk(n)));
      throw subcommandError(args[1] as Buffer, 'COMMAND');
    },
  },
  {
    name: 'client',
    arity: -2,
    flags: ['noscript', 'loading', 'stale'],
    keys: NO_KEYS,
    run: (ctx, args) => {
      const sub = upper(args[1]);
      switch (sub) {
        case 'ID':
          if (args.length !== 2) throw arityError('client|id');
          return R.int(ctx.client.id);
        case 'GETNAME':
          if (args.length !== 2) throw arityError('client|getname');
          return R.bulkOrNull(ctx.client.name);
        case 'SETNAME': {
          if (args.length !== 3) throw arityError('client|setname');
          const n = args[2] as Buffer;
          if (!validClientName(n)) {
            throw new RespCommandError(
              'ERR Client names cannot contain spaces, newlines or special characters.',
            );
          }
          ctx.client.name = n.length === 0 ? null : n.toString('latin1');
          return OK;
        }
        case 'SETINFO':
          if (args.length !== 4) throw arityError('client|setinfo');
          return OK;
        case 'INFO':
          return R.bulk(
            `id=${ctx.client.id} addr=${ctx.client.remote} name=${ctx.client.name ?? ''} db=0 resp=${ctx.client.proto}\n`,
          );
        default:
          throw subcommandError(args[1] as Buffer, 'CLIENT');
      }
    },
  },
  {
    name: 'config',
    arity: -2,
    flags: ['admin', 'noscript', 'loading', 'stale'],
    keys: NO_KEYS,
    run: (_ctx, args) => {
      // Tools read a few settings at start (redis-benchmark reads `save` and `appendonly`); paxkv has
      // none of Redis's settings, so every pattern matches nothing, as an unknown setting does in Redis.
      if (upper(args[1]) === 'GET' && args.length >= 3) return R.map([]);
      throw subcommandError(args[1] as Buffer, 'CONFIG');
    },
  },
  {
    name: 'time',
    arity: 1,
    flags: ['loading', 'stale', 'fast'],
    keys: NO_KEYS,
    run: () => {
      const us = BigInt(Date.now()) * 1000n;
      return R.array([R.bulk(String(us / 1_000_000n)), R.bulk(String(us % 1_000_000n))]);
    },
  },
  {
    name: 'multi',
    arity: 1,
    flags: ['noscript', 'loading', 'stale', 'fast'],
    keys: NO_KEYS,
    run: (ctx) => {
      if (ctx.client.multi) throw new RespCommandError('ERR MULTI calls can not be nested');
      ctx.client.multi = { queued: [], ops: 0, bytes: 0, failed: false };
      return OK;
    },
  },
  {
    name: 'discard',
    arity: 1,
    flags: ['noscript', 'loading', 'stale', 'fast'],
    keys: NO_KEYS,
    run: (ctx) => {
      if (!ctx.client.multi) throw new RespCommandError('ERR DISCARD without MULTI');
      ctx.client.multi = null;
      ctx.client.watched = new Map();
      return OK;
    },
  },
  {
    name: 'watch',
    arity: -2,
    flags: ['noscript', 'loading', 'stale', 'fast'],
    keys: ALL_KEYS,
    run: async (ctx, args) => {
      if (ctx.client.multi) throw new RespCommandError('ERR WATCH inside MULTI is not allowed');
      const keys = args.slice(1).map((k) => keyArg(k, ctx));
      const results = await all(
        ctx,
        keys.map((key) => ({ op: 'get', key })),
      );
      keys.forEach((key, i) => {
        const r = results[i];
        if (r?.op === 'get' && !ctx.client.watched.has(key)) ctx.client.watched.set(key, r.modRevision);
      });
      return OK;
    },
  },
  {
    name: 'unwatch',
    arity: 1,
    flags: ['noscript', 'loading', 'stale', 'fast'],
    keys: NO_KEYS,
    run: (ctx) => {
      ctx.client.watched = new Map();
      return OK;
    },
  },
  {
    name: 'exec',
    arity: 1,
    flags: ['noscript', 'loading', 'stale', 'skip_slowlog'],
    keys: NO_KEYS,
    barrier: true,
    prepare: (ctx) => {
      const m = ctx.client.multi;
      ctx.client.multi = null;
      return m;
    },
    run: async (ctx, _args, prepared) => {
      const m = prepared as MultiState | null;
      if (!m) throw new RespCommandError('ERR EXEC without MULTI');
      const watched = ctx.client.watched;
      ctx.client.watched = new Map();
      if (m.failed) throw new RespCommandError('EXECABORT Transaction discarded because of previous errors.');
      const success = m.queued.flatMap((q) => q.ops);
      if (success.length === 0 && watched.size === 0) return R.array([]);
      const compare = [...watched].map(([key, rev]) => ({
        key,
        target: 'modRevision' as const,
        op: '=' as const,
        value: rev,
      }));
      // The protocol's own check (a key written at most once per branch), as at the native port's boundary.
      const txn = TxnOpSchema.safeParse({ op: 'txn', compare, success, failure: [] });
      if (!txn.success)
        throw new RespCommandError(`ERR ${txn.error.issues[0]?.message ?? 'invalid transaction'}`);
      const r = await runTxn(ctx, txn.data);
      if (r.op !== 'txn') throw unexpected(r);
      if (!r.succeeded) return NULL_ARRAY;
      const replies: RespValue[] = [];
      let at = 0;
      for (const q of m.queued) {
        replies.push(q.reply(r.results.slice(at, at + q.ops.length)));
        at += q.ops.length;
      }
      return R.array(replies);
    },
  },
  {
    name: 'scan',
    arity: -2,
    flags: ['readonly'],
    keys: NO_KEYS,
    barrier: true,
    run: scan,
  },
  ...inTwoUnits('expire', 'pexpire', { arity: -3, flags: ['write', 'fast'], keys: ONE_KEY }, expireCommand),
  ...inTwoUnits('ttl', 'pttl', { arity: 2, flags: ['readonly', 'fast'], keys: ONE_KEY }, ttlCommand),
  { name: 'persist', arity: 2, flags: ['write', 'fast'], keys: ONE_KEY, run: persistCommand },
  ...inTwoUnits('setex', 'psetex', { arity: 4, flags: ['write', 'denyoom'], keys: ONE_KEY }, setexCommand),
];

/** Every command, by lower-case name. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(specs.map((s) => [s.name, s]));

function arityError(name: string): RespCommandError {
  return new RespCommandError(`ERR wrong number of arguments for '${name}' command`);
}

function subcommandError(sub: Buffer, command: string): RespCommandError {
  return new RespCommandError(`ERR unknown subcommand '${printable(sub)}'. Try ${command} HELP.`);
}

/** At most 128 characters of an argument for an error message, with CR/LF made visible. */
function printable(b: Buffer): string {
  return b
    .subarray(0, 128)
    .toString('latin1')
    .replace(/[\r\n]/g, ' ');
}

/**
 * Looks a command up and checks its arity. Returns the spec, or the error reply (`unknown command`,
 * `wrong number of arguments`) in Redis's exact words.
 */
export function lookupCommand(args: readonly Buffer[]): CommandSpec | RespCommandError {
  const nameBuf = args[0] as Buffer;
  const spec = nameBuf.length <= 16 ? COMMANDS.get(nameBuf.toString('latin1').toLowerCase()) : undefined;
  if (!spec) {
    const rest = args
      .slice(1)
      .map((a) => `'${printable(a)}' `)
      .join('');
    return new RespCommandError(
      `ERR unknown command '${printable(nameBuf)}', with args beginning with: ${rest}`,
    );
  }
  if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) {
    return arityError(spec.name);
  }
  return spec;
}

/**
 * The keys a command touches, as exact byte strings (`latin1`), for ordering pipelined commands of one
 * connection: a command waits for the earlier ones on any of its keys.
 */
export function commandKeys(spec: CommandSpec, args: readonly Buffer[]): string[] {
  const [first, last, step] = spec.keys;
  if (first === 0) return [];
  const end = last < 0 ? args.length + last : last;
  const keys: string[] = [];
  for (let i = first; i <= end && i < args.length; i += step)
    keys.push((args[i] as Buffer).toString('latin1'));
  return keys;
}

/**
 * The error reply for anything a command threw: its own {@link RespCommandError}, a paxkv error with its
 * code as the first word, or a generic internal error (whose text is not leaked).
 */
export function errorReply(e: unknown): RespValue {
  if (e instanceof RespCommandError) return R.error(e.message);
  // Redis clients know these prefixes: NOAUTH (log in first) and NOPERM (an ACL refused the command).
  if (e instanceof PaxkvError && e.code === 'UNAUTHENTICATED') return R.error(`NOAUTH ${e.message}`);
  if (e instanceof PaxkvError && e.code === 'PERMISSION_DENIED') return R.error(`NOPERM ${e.message}`);
  if (e instanceof PaxkvError) return R.error(`${e.code} ${e.message}`);
  return R.error('ERR internal error while running the command; see the server log');
}
