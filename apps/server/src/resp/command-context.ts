/**
 * The shared vocabulary of the Redis commands: the per-connection state, the context a handler runs in,
 * the command table's entry shape, and the argument parsers and errors every handler uses.
 * @module
 */
import { isUtf8 } from 'node:buffer';
import type { KvOp, KvResult, TxnRequest, TxnResponse } from '@paxkv/common';
import { PaxkvError } from '@paxkv/common';
import type { RespBackend } from './backend.js';
import { R, type RespValue, type RespVersion } from './encoder.js';

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
export interface Queued {
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

/** Redis's reply to arguments it cannot parse. */
export const SYNTAX = 'ERR syntax error';
/** Redis's reply to an argument that must be a signed 64-bit integer and is not. */
export const NOT_INTEGER = 'ERR value is not an integer or out of range';
/** The smallest signed 64-bit integer (Redis integers are `long long`). */
export const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** An argument as an upper-case string (command and option names), `''` when absent. */
export function upper(b: Buffer | undefined): string {
  return b === undefined ? '' : b.toString('latin1').toUpperCase();
}

/** A key argument as the store's key: valid, non-empty UTF-8 within the key size limit. */
export function keyArg(b: Buffer, ctx: CommandContext): string {
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
export function valueArg(b: Buffer, ctx: CommandContext): Uint8Array {
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
export async function all(ctx: CommandContext, ops: KvOp[]): Promise<KvResult[]> {
  return Promise.all(ops.map((op) => ctx.run(op)));
}

/** An internal error for a request-path result of the wrong kind (a bug, never the client's fault). */
export function unexpected(r: KvResult): Error {
  return new RespCommandError(`ERR internal error: unexpected ${r.op} result`);
}

/** Key positions of a command without keys (`COMMAND` reports first 0, last 0, step 0). */
export const NO_KEYS: KeySpec = [0, 0, 0];
/** Key positions of a command whose only key is its first argument. */
export const ONE_KEY: KeySpec = [1, 1, 1];
/** Key positions of a command whose every argument is a key (`MGET`, `EXISTS`, `WATCH`). */
export const ALL_KEYS: KeySpec = [1, -1, 1];

/** The seconds and milliseconds forms of a TTL command (`EXPIRE`/`PEXPIRE`, `TTL`/`PTTL`, ...). */
export function inTwoUnits(
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

/** Redis's wrong-number-of-arguments error for `name`. */
export function arityError(name: string): RespCommandError {
  return new RespCommandError(`ERR wrong number of arguments for '${name}' command`);
}

/** Redis's unknown-subcommand error, quoting at most a printable prefix of the subcommand. */
export function subcommandError(sub: Buffer, command: string): RespCommandError {
  return new RespCommandError(`ERR unknown subcommand '${printable(sub)}'. Try ${command} HELP.`);
}

/** At most 128 characters of an argument for an error message, with CR/LF made visible. */
export function printable(b: Buffer): string {
  return b
    .subarray(0, 128)
    .toString('latin1')
    .replace(/[\r\n]/g, ' ');
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
