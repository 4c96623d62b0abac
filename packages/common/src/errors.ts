/**
 * Typed errors of paxkv. Every error a caller can see is a {@link PaxkvError} with a stable `code`
 * and a message that says what to do next. Errors that travel over the wire map 1:1 to the
 * {@link ErrorCode} values of the protocol ({@link errorToWire} / {@link errorFromWire}).
 * @module
 */

/**
 * Error codes that travel over the wire in an `error` message. Stable: clients branch on them.
 */
export const ERROR_CODES = [
  'NOT_LEADER',
  'NO_LEADER',
  'TIMEOUT',
  'BAD_REQUEST',
  'UNKNOWN_TYPE',
  'FRAME_TOO_LARGE',
  'KEY_TOO_LARGE',
  'VALUE_TOO_LARGE',
  'NOT_READY',
  'UNAVAILABLE',
  'INTERNAL',
  'UNAUTHENTICATED',
  'CROSS_PARTITION',
  'PERMISSION_DENIED',
  'CONFIGURATION_CHANGED',
] as const;

/** A wire error code (see {@link ERROR_CODES}). */
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Codes of errors that only exist inside one process (codec, transport and configuration
 * failures). {@link errorToWire} maps them to the closest {@link ErrorCode}.
 */
export const LOCAL_ERROR_CODES = [
  'DECODE_FAILED',
  'ENCODE_FAILED',
  'TRUNCATED_FRAME',
  'BACKPRESSURE',
  'CONNECTION_CLOSED',
  'INVALID_ADDRESS',
  'INVALID_CONFIG',
  'COMPACTED',
  'TOO_SLOW',
  'LEASE_NOT_FOUND',
  'LOCK_LOST',
  'TLS_FAILED',
] as const;

/** A process-local error code (see {@link LOCAL_ERROR_CODES}). */
export type LocalErrorCode = (typeof LOCAL_ERROR_CODES)[number];

/** Any code a {@link PaxkvError} can carry. */
export type PaxkvErrorCode = ErrorCode | LocalErrorCode;

/** Options accepted by every paxkv error constructor. */
export interface PaxkvErrorOptions {
  /** Replaces the generated message (used when an error is rebuilt from the wire). */
  readonly message?: string;
  /** The underlying cause, kept for logs. */
  readonly cause?: unknown;
}

/** Where the current leader of a group can be reached, as far as the sender knows. */
export interface LeaderHint {
  /** Node id of the leader. */
  readonly node: number;
  /** Its `host:port` address. */
  readonly address: string;
}

/**
 * Base class of every paxkv error. `code` is stable and machine-readable; `retryable` says whether
 * the same request may succeed if sent again (possibly elsewhere, after a backoff).
 */
export abstract class PaxkvError extends Error {
  /** Machine-readable code; stable across versions. */
  abstract readonly code: PaxkvErrorCode;
  /** Whether repeating the request (after a backoff, maybe against another node) can succeed. */
  abstract readonly retryable: boolean;

  protected constructor(message: string, options: PaxkvErrorOptions = {}) {
    super(options.message ?? message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}

/** The node that got the request does not lead the key's group. Retry against `leaderHint` if present. */
export class NotLeaderError extends PaxkvError {
  override readonly code = 'NOT_LEADER' as const;
  override readonly retryable = true;
  /** The leader as far as the replying node knows, if it knows one. */
  readonly leaderHint: LeaderHint | undefined;
  constructor(
    details: { leaderHint?: LeaderHint | undefined; partition?: number } = {},
    options?: PaxkvErrorOptions,
  ) {
    const where = details.partition === undefined ? '' : ` of partition ${details.partition}`;
    const hint = details.leaderHint;
    super(
      hint
        ? `this node is not the leader${where}; retry against node ${hint.node} at ${hint.address}`
        : `this node is not the leader${where} and knows no leader; refresh the lookup table and retry after a backoff`,
      options,
    );
    this.leaderHint = hint;
  }
}

/** The key's group has no elected leader right now (election in progress or quorum lost). */
export class NoLeaderError extends PaxkvError {
  override readonly code = 'NO_LEADER' as const;
  override readonly retryable = true;
  constructor(details: { partition?: number } = {}, options?: PaxkvErrorOptions) {
    const where = details.partition === undefined ? 'the group' : `partition ${details.partition}`;
    super(`${where} has no leader yet (election in progress or no quorum); retry after a backoff`, options);
  }
}

/**
 * The operation did not complete in time. Its outcome is unknown: a write may or may not have been
 * applied. Retry with the same session sequence number so the write is applied at most once.
 */
export class TimeoutError extends PaxkvError {
  override readonly code = 'TIMEOUT' as const;
  override readonly retryable = true;
  /** The time budget that ran out, in milliseconds, if known. */
  readonly timeoutMs: number | undefined;
  constructor(details: { timeoutMs?: number; operation?: string } = {}, options?: PaxkvErrorOptions) {
    const what = details.operation ?? 'the operation';
    const after = details.timeoutMs === undefined ? '' : ` after ${details.timeoutMs} ms`;
    super(
      `${what} timed out${after}; its outcome is unknown: retry with the same session sequence number to stay exactly-once`,
      options,
    );
    this.timeoutMs = details.timeoutMs;
  }
}

/** The request was malformed. `field` names the offending field (dotted path) when known. */
export class BadRequestError extends PaxkvError {
  override readonly code = 'BAD_REQUEST' as const;
  override readonly retryable = false;
  /** Dotted path of the offending field (`op.key`), or undefined if the whole message is wrong. */
  readonly field: string | undefined;
  constructor(details: { field?: string | undefined; problem: string }, options?: PaxkvErrorOptions) {
    const at = details.field ? `field '${details.field}': ` : '';
    super(
      `bad request: ${at}${details.problem}; fix the request, sending it again unchanged will fail again`,
      options,
    );
    this.field = details.field;
  }
}

/** The message's `type` tag is not one the receiver understands on this channel. */
export class UnknownTypeError extends PaxkvError {
  override readonly code = 'UNKNOWN_TYPE' as const;
  override readonly retryable = false;
  /** The type tag that was received. */
  readonly type: string;
  constructor(details: { type: string; expected?: readonly string[] }, options?: PaxkvErrorOptions) {
    const expected = details.expected ? ` (expected one of: ${details.expected.join(', ')})` : '';
    super(
      `unknown message type '${details.type}'${expected}; check that client and server versions match`,
      options,
    );
    this.type = details.type;
  }
}

/** A frame is larger than the configured maximum. The connection that carried it is closed. */
export class FrameTooLargeError extends PaxkvError {
  override readonly code = 'FRAME_TOO_LARGE' as const;
  override readonly retryable = false;
  /** Size the frame announced or needed, in bytes (-1 if unknown: rebuilt from the wire). */
  readonly size: number;
  /** The configured maximum, in bytes (-1 if unknown: rebuilt from the wire). */
  readonly maxBytes: number;
  constructor(details: { size: number; maxBytes: number }, options?: PaxkvErrorOptions) {
    super(
      `frame of ${details.size} bytes exceeds the maximum of ${details.maxBytes} bytes; send smaller messages or raise maxFrameBytes on both ends`,
      options,
    );
    this.size = details.size;
    this.maxBytes = details.maxBytes;
  }
}

/** A key's UTF-8 encoding is longer than the configured limit. */
export class KeyTooLargeError extends PaxkvError {
  override readonly code = 'KEY_TOO_LARGE' as const;
  override readonly retryable = false;
  /** Size of the key in bytes (-1 if unknown: rebuilt from the wire). */
  readonly size: number;
  /** The limit, in bytes (-1 if unknown: rebuilt from the wire). */
  readonly maxBytes: number;
  constructor(details: { size: number; maxBytes: number }, options?: PaxkvErrorOptions) {
    super(
      `key of ${details.size} bytes exceeds the limit of ${details.maxBytes} bytes; use a shorter key (for example a hash of it)`,
      options,
    );
    this.size = details.size;
    this.maxBytes = details.maxBytes;
  }
}

/** A value is longer than the configured limit. */
export class ValueTooLargeError extends PaxkvError {
  override readonly code = 'VALUE_TOO_LARGE' as const;
  override readonly retryable = false;
  /** Size of the value in bytes (-1 if unknown: rebuilt from the wire). */
  readonly size: number;
  /** The limit, in bytes (-1 if unknown: rebuilt from the wire). */
  readonly maxBytes: number;
  constructor(details: { size: number; maxBytes: number }, options?: PaxkvErrorOptions) {
    super(
      `value of ${details.size} bytes exceeds the limit of ${details.maxBytes} bytes; split it across several keys`,
      options,
    );
    this.size = details.size;
    this.maxBytes = details.maxBytes;
  }
}

/** The server is up but not serving yet (no lookup table, still recovering). */
export class NotReadyError extends PaxkvError {
  override readonly code = 'NOT_READY' as const;
  override readonly retryable = true;
  constructor(details: { reason?: string } = {}, options?: PaxkvErrorOptions) {
    const why = details.reason ? ` (${details.reason})` : '';
    super(`the server is not ready to serve yet${why}; retry after a backoff`, options);
  }
}

/** The service or a peer cannot be reached right now. */
export class UnavailableError extends PaxkvError {
  override readonly code = 'UNAVAILABLE' as const;
  override readonly retryable = true;
  constructor(details: { reason?: string } = {}, options?: PaxkvErrorOptions) {
    const why = details.reason ? `: ${details.reason}` : '';
    super(`service unavailable${why}; retry after a backoff or against another node`, options);
  }
}

/** A replica group's configuration as an error reports it: its id and its members (node ids). */
export interface ReportedConfiguration {
  /** The configuration id (consecutive from 0; -1: unknown). */
  readonly configId: number;
  /** Its members. */
  readonly members: readonly number[];
}

/**
 * A replica group refused a reconfiguration because its current configuration is not the one the
 * request expected to replace (compare-and-set on the configuration id and members): another change
 * ran since the caller read the configuration (a stale metadata view, or a concurrent mover). Not
 * retryable as is: re-read the group's configuration (and the cluster metadata), re-plan, then retry.
 * `current` travels over the wire (the `error` message's `configuration`), so a caller on another
 * server learns which configuration the group runs and can bring a record that fell behind up to date.
 */
export class ConfigurationChangedError extends PaxkvError {
  override readonly code = 'CONFIGURATION_CHANGED' as const;
  override readonly retryable = false;
  /** The configuration the request expected (configId -1 when rebuilt from the wire). */
  readonly expected: ReportedConfiguration;
  /**
   * The refusing leader's configuration (configId -1 when unknown: the leader runs none, or the error
   * was rebuilt from the wire of an older sender that did not carry it).
   */
  readonly current: ReportedConfiguration;
  constructor(
    details: {
      partition?: number;
      expected?: ReportedConfiguration;
      current?: ReportedConfiguration;
    } = {},
    options?: PaxkvErrorOptions,
  ) {
    const expected = details.expected ?? { configId: -1, members: [] };
    const current = details.current ?? { configId: -1, members: [] };
    const what = details.partition === undefined ? 'the group' : `partition ${details.partition}`;
    super(
      `${what} runs configuration ${current.configId} [${current.members.join(', ')}], not the expected ${expected.configId} [${expected.members.join(', ')}]; re-read the configuration and the cluster metadata, re-plan, then retry`,
      options,
    );
    this.expected = expected;
    this.current = current;
  }
}

/**
 * The sender did not prove who it is: a peer without the cluster token (or with another one), a
 * bootstrap or peer message on a connection that never authenticated. Not retryable as is: configure
 * the same `--cluster-token` on every server of the cluster.
 */
export class UnauthenticatedError extends PaxkvError {
  override readonly code = 'UNAUTHENTICATED' as const;
  override readonly retryable = false;
  constructor(
    details: {
      reason: string;
      /** What to do, appended to the message. Default: configure the same cluster token everywhere. */
      hint?: string;
    },
    options?: PaxkvErrorOptions,
  ) {
    super(
      `not authenticated: ${details.reason}; ${details.hint ?? 'every server of a cluster must be started with the same cluster token'}`,
      options,
    );
  }
}

/**
 * The authenticated user's roles do not allow the request (a read-only user's put, a key outside the
 * prefixes a role grants). Not retryable: ask an admin for a role (`paxkv user grant`).
 */
export class PermissionDeniedError extends PaxkvError {
  override readonly code = 'PERMISSION_DENIED' as const;
  override readonly retryable = false;
  constructor(details: { user: string; action: string; key?: string }, options?: PaxkvErrorOptions) {
    const what =
      details.key === undefined
        ? details.action
        : `${details.action} ${JSON.stringify(details.key.length > 64 ? `${details.key.slice(0, 64)}…` : details.key)}`;
    super(
      `permission denied: user ${JSON.stringify(details.user)} may not ${what}; an admin can grant a role that allows it (paxkv user grant ${details.user} <role>)`,
      options,
    );
  }
}

/**
 * A TLS handshake failed: the other side's certificate is not signed by the trusted CA, does not name
 * the host dialled, has expired, or one side does not speak TLS. The message says which and what to
 * fix. Retryable only in the sense that a reconnecting link keeps trying (the configuration must change).
 */
export class TlsError extends PaxkvError {
  override readonly code = 'TLS_FAILED' as const;
  override readonly retryable = false;
  constructor(details: { reason: string }, options?: PaxkvErrorOptions) {
    super(`TLS failed: ${details.reason}`, options);
  }
}

/**
 * A transaction or a range names keys of different partitions. Transactions and single-request
 * ranges are atomic within one partition only: give related keys the same hash tag (the part between
 * the first `{` and the next `}`, e.g. `{acct}:a` and `{acct}:b`), which is all that is hashed, so
 * they land in one partition. For a range over many partitions use the client's `range`, which merges
 * per-partition reads (not one snapshot).
 */
export class CrossPartitionError extends PaxkvError {
  override readonly code = 'CROSS_PARTITION' as const;
  override readonly retryable = false;
  /** Two keys of the request that live in different partitions (empty when rebuilt from the wire). */
  readonly keys: readonly string[];
  /** Their partitions (empty when rebuilt from the wire). */
  readonly partitions: readonly number[];
  constructor(
    details: {
      what: string;
      keys?: readonly [string, string];
      partitions?: readonly [number, number];
      /** What else the caller can do, appended to the message. */
      advice?: string;
    },
    options?: PaxkvErrorOptions,
  ) {
    const show = (k: string) => JSON.stringify(k.length > 64 ? `${k.slice(0, 64)}…` : k);
    const where =
      details.keys && details.partitions
        ? `: key ${show(details.keys[0])} is in partition ${details.partitions[0]} and key ${show(details.keys[1])} in partition ${details.partitions[1]}`
        : '';
    super(
      `${details.what} spans partitions${where}; a ${details.what} is atomic within one partition only: give its keys the same hash tag (the part between the first '{' and the next '}' is all that is hashed, e.g. '{acct}:a' and '{acct}:b' share a partition)${details.advice ? `, ${details.advice}` : ''}`,
      options,
    );
    this.keys = details.keys ?? [];
    this.partitions = details.partitions ?? [];
  }
}

/** A bug or an unexpected failure on the server. Report it with the server's log. */
export class InternalError extends PaxkvError {
  override readonly code = 'INTERNAL' as const;
  override readonly retryable = false;
  constructor(details: { reason?: string } = {}, options?: PaxkvErrorOptions) {
    const why = details.reason ? `: ${details.reason}` : '';
    super(`internal error${why}; this is a bug, please report it with the server log`, options);
  }
}

/** Bytes that are not a valid msgpack value (or carry trailing bytes) were received. */
export class DecodeError extends PaxkvError {
  override readonly code = 'DECODE_FAILED' as const;
  override readonly retryable = false;
  constructor(details: { reason: string }, options?: PaxkvErrorOptions) {
    super(
      `could not decode a msgpack message: ${details.reason}; the peer is not speaking the paxkv protocol`,
      options,
    );
  }
}

/** A value could not be encoded to msgpack (it holds a type msgpack cannot carry). */
export class EncodeError extends PaxkvError {
  override readonly code = 'ENCODE_FAILED' as const;
  override readonly retryable = false;
  constructor(details: { reason: string }, options?: PaxkvErrorOptions) {
    super(
      `could not encode a message: ${details.reason}; send only plain objects, strings, numbers and bytes`,
      options,
    );
  }
}

/** A stream ended in the middle of a frame. */
export class TruncatedFrameError extends PaxkvError {
  override readonly code = 'TRUNCATED_FRAME' as const;
  override readonly retryable = true;
  /** Bytes of the incomplete frame that did arrive. */
  readonly received: number;
  /** Bytes the frame announced (header included), or undefined if the header itself was cut. */
  readonly expected: number | undefined;
  constructor(details: { received: number; expected?: number | undefined }, options?: PaxkvErrorOptions) {
    const of = details.expected === undefined ? 'an incomplete 4-byte header' : `${details.expected} bytes`;
    super(
      `stream ended inside a frame: got ${details.received} of ${of}; the connection broke, resend on a new one`,
      options,
    );
    this.received = details.received;
    this.expected = details.expected;
  }
}

/**
 * A send was refused because the connection's outgoing buffer is at its high-water mark (the peer
 * reads slower than we write). Wait for the connection's `drain` event, then send again.
 */
export class BackpressureError extends PaxkvError {
  override readonly code = 'BACKPRESSURE' as const;
  override readonly retryable = true;
  /** Bytes waiting in the outgoing buffer. */
  readonly bufferedBytes: number;
  /** The configured high-water mark, in bytes. */
  readonly highWaterMark: number;
  constructor(details: { bufferedBytes: number; highWaterMark: number }, options?: PaxkvErrorOptions) {
    super(
      `peer is reading too slowly: ${details.bufferedBytes} bytes buffered, high-water mark ${details.highWaterMark}; wait for 'drain' and send again`,
      options,
    );
    this.bufferedBytes = details.bufferedBytes;
    this.highWaterMark = details.highWaterMark;
  }
}

/** The connection is closed or not yet established. */
export class ConnectionClosedError extends PaxkvError {
  override readonly code = 'CONNECTION_CLOSED' as const;
  override readonly retryable = true;
  constructor(details: { address?: string; reason?: string } = {}, options?: PaxkvErrorOptions) {
    const to = details.address ? ` to ${details.address}` : '';
    const why = details.reason ? ` (${details.reason})` : '';
    super(`connection${to} is closed${why}; wait for 'connect' and send again`, options);
  }
}

/** A string is not a valid `host:port` address. */
export class InvalidAddressError extends PaxkvError {
  override readonly code = 'INVALID_ADDRESS' as const;
  override readonly retryable = false;
  /** The rejected input. */
  readonly input: string;
  constructor(details: { input: string; problem: string }, options?: PaxkvErrorOptions) {
    super(
      `invalid address '${details.input}': ${details.problem}; use host:port, e.g. 127.0.0.1:7001, node-1.local:7001 or [::1]:7001`,
      options,
    );
    this.input = details.input;
  }
}

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** Dotted path of the field (`transport.maxFrameBytes`), empty for the root. */
  readonly path: string;
  /** What is wrong with it. */
  readonly problem: string;
}

/** A configuration failed validation. `issues` lists every offending field. */
export class ConfigError extends PaxkvError {
  override readonly code = 'INVALID_CONFIG' as const;
  override readonly retryable = false;
  /** Every problem found. */
  readonly issues: readonly ConfigIssue[];
  constructor(
    details: { source?: string | undefined; issues: readonly ConfigIssue[] },
    options?: PaxkvErrorOptions,
  ) {
    const from = details.source ? ` (from ${details.source})` : '';
    const list = details.issues.map((i) => `${i.path || '<root>'}: ${i.problem}`).join('; ');
    super(`invalid configuration${from}: ${list}; fix these fields`, options);
    this.issues = details.issues;
  }
}

/** Returns true if `x` is a {@link PaxkvError}. */
export function isPaxkvError(x: unknown): x is PaxkvError {
  return x instanceof PaxkvError;
}

/** Maps a process-local code to the wire code a remote caller should see. */
function toWireCode(code: PaxkvErrorCode): ErrorCode {
  switch (code) {
    case 'DECODE_FAILED':
    case 'INVALID_ADDRESS':
    case 'TRUNCATED_FRAME':
      return 'BAD_REQUEST';
    case 'BACKPRESSURE':
    case 'CONNECTION_CLOSED':
    case 'TOO_SLOW':
      return 'UNAVAILABLE';
    case 'COMPACTED':
    case 'LEASE_NOT_FOUND':
    case 'LOCK_LOST':
      return 'BAD_REQUEST';
    case 'ENCODE_FAILED':
    case 'INVALID_CONFIG':
      return 'INTERNAL';
    case 'TLS_FAILED':
      return 'UNAUTHENTICATED';
    default:
      return code;
  }
}

/** The wire form of an error (the fields of an `error` message other than `type`). */
export interface WireError {
  /** Request id the error answers, or null if it cannot be attributed to a request. */
  readonly id: number | null;
  /** Wire code. */
  readonly code: ErrorCode;
  /** Human-readable message that says what to do. */
  readonly message: string;
  /** Leader to retry against, for `NOT_LEADER`. */
  readonly leaderHint?: LeaderHint;
  /**
   * For `CONFIGURATION_CHANGED`: the configuration the refusing leader runs (absent when it runs none,
   * and from older senders).
   */
  readonly configuration?: { readonly configId: number; readonly members: number[] };
}

/**
 * Converts any thrown value into the fields of a wire `error` message. Non-paxkv errors become
 * `INTERNAL` without leaking their message (which may hold server internals).
 */
export function errorToWire(error: unknown, id: number | null = null): WireError {
  if (!(error instanceof PaxkvError)) {
    return { id, code: 'INTERNAL', message: new InternalError().message };
  }
  const code = toWireCode(error.code);
  if (error instanceof NotLeaderError && error.leaderHint) {
    return { id, code, message: error.message, leaderHint: error.leaderHint };
  }
  if (error instanceof ConfigurationChangedError && error.current.configId >= 0) {
    const { configId, members } = error.current;
    return { id, code, message: error.message, configuration: { configId, members: [...members] } };
  }
  return { id, code, message: error.message };
}

/**
 * Rebuilds a typed error from a wire `error` message, keeping the sender's message. The result is an
 * instance of the class that matches `code` (`NOT_LEADER` -> {@link NotLeaderError}, ...). Details
 * that the wire does not carry are unknown: sizes are -1, `field` and `type` are undefined/'unknown'.
 * `leaderHint` and `configuration` are taken as given: pass only a message its schema
 * (`ErrorMessageSchema` of `./protocol`) accepted, which bounds them.
 */
export function errorFromWire(wire: {
  readonly code: ErrorCode;
  readonly message: string;
  readonly leaderHint?: LeaderHint | undefined;
  readonly configuration?: ReportedConfiguration | undefined;
}): PaxkvError {
  const o = { message: wire.message };
  switch (wire.code) {
    case 'NOT_LEADER':
      return new NotLeaderError({ leaderHint: wire.leaderHint }, o);
    case 'NO_LEADER':
      return new NoLeaderError({}, o);
    case 'TIMEOUT':
      return new TimeoutError({}, o);
    case 'BAD_REQUEST':
      return new BadRequestError({ problem: wire.message }, o);
    case 'UNKNOWN_TYPE':
      return new UnknownTypeError({ type: 'unknown' }, o);
    case 'FRAME_TOO_LARGE':
      return new FrameTooLargeError({ size: -1, maxBytes: -1 }, o);
    case 'KEY_TOO_LARGE':
      return new KeyTooLargeError({ size: -1, maxBytes: -1 }, o);
    case 'VALUE_TOO_LARGE':
      return new ValueTooLargeError({ size: -1, maxBytes: -1 }, o);
    case 'NOT_READY':
      return new NotReadyError({}, o);
    case 'UNAVAILABLE':
      return new UnavailableError({}, o);
    case 'UNAUTHENTICATED':
      return new UnauthenticatedError({ reason: wire.message }, o);
    case 'CROSS_PARTITION':
      return new CrossPartitionError({ what: 'request' }, o);
    case 'PERMISSION_DENIED':
      return new PermissionDeniedError({ user: '?', action: '?' }, o);
    case 'CONFIGURATION_CHANGED':
      return new ConfigurationChangedError(
        wire.configuration
          ? { current: { configId: wire.configuration.configId, members: [...wire.configuration.members] } }
          : {},
        o,
      );
    default:
      return new InternalError({}, o);
  }
}
