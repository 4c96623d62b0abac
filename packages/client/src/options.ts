/**
 * Options of {@link createClient}, their documented defaults and their validation.
 * @module
 */
import { randomBytes } from 'node:crypto';
import {
  type BackoffConfig,
  ConfigError,
  type ConfigIssue,
  DEFAULT_PROTOCOL_LIMITS,
  isAddress,
  type ProtocolLimits,
  type TlsOptions,
} from '@paxkv/common';
import type { ClientAuth } from './auth.js';
import type { ConnectionFactory } from './connection.js';
import { DEFAULT_HISTORY_BUFFER_LINES, type HistoryOption } from './history.js';

/** Longest {@link ClientOptions.sessionId}: the session slot suffix must fit the 64-char wire limit. */
export const MAX_SESSION_ID_LENGTH = 48;

/** Options of {@link createClient}. Every field but `servers` has a documented default. */
export interface ClientOptions {
  /** Seed servers (`host:port`); any one that answers is enough to find the cluster. Required. */
  readonly servers: readonly string[];
  /**
   * Deadline of one call (`get`, `put`, ...), retries included, in ms. When it passes the call
   * rejects with a `TimeoutError` (outcome unknown for a write that was sent). Default 10000.
   */
  readonly requestTimeoutMs?: number;
  /** How long one attempt waits for its reply before retrying elsewhere, in ms. Default 3000. */
  readonly attemptTimeoutMs?: number;
  /**
   * A retry is sent only if at least this many ms remain before the call's deadline; with less, the
   * call ends at once with its last error. An attempt cut short by the deadline cannot be answered in
   * time, and would turn a write that was certainly not applied into one whose outcome is unknown.
   * The first attempt is always sent. Default 5.
   */
  readonly minAttemptMs?: number;
  /**
   * Backoff between retries: `initialDelayMs` (default 20), doubling (`multiplier`, default 2) up to
   * `maxDelayMs` (default 1000), with `jitter` (default 0.5: the delay is uniform in [d/2, d]).
   */
  readonly backoff?: Partial<BackoffConfig>;
  /**
   * `NOT_LEADER` replies with a leader hint are followed at once, without backoff, up to this many
   * times in a row; further redirects back off (guards against ping-pong during elections). Default 3.
   */
  readonly maxImmediateRedirects?: number;
  /** Least time between two lookup-table refreshes triggered by errors, in ms. Default 200. */
  readonly tableRefreshIntervalMs?: number;
  /**
   * Servers forward requests they cannot serve, so a successful reply does not prove that the server
   * that sent it leads the group. Every this many ms of activity (and after each new table or
   * routing error, at most every `tableRefreshIntervalMs`) the client asks every server for its
   * `status` in the background and caches the leaders the servers report for their own groups.
   * 0 turns this off. Default 5000.
   */
  readonly leaderDiscoveryIntervalMs?: number;
  /** Most calls in flight at once; further calls wait (their deadline runs). Default 4096. */
  readonly maxInFlight?: number;
  /**
   * Most calls waiting for a free slot when `maxInFlight` calls are in flight. A call beyond this
   * rejects at once with a `ClientOverloadedError` (it was not sent), so a caller that starts
   * calls faster than the cluster answers cannot grow the client's memory without bound. Default 65536.
   */
  readonly maxQueuedCalls?: number;
  /**
   * Most server connections kept open at once. Servers are learned from the seeds, the lookup table
   * and `NOT_LEADER` leader hints; when a new one is needed at the limit, the least recently used
   * idle connection is closed (a call to a server beyond the limit with no idle connection to close
   * fails over like an unreachable server). Connections to servers that left the table are closed
   * when a new table arrives. Default 1024.
   */
  readonly maxConnections?: number;
  /**
   * With `history` set to a file path: the file is written at the end of each event-loop turn, or as
   * soon as this many lines are waiting, whichever comes first (bounds the memory of a long turn).
   * The first client to open a path sets it for every client sharing that path. Default 4096.
   */
  readonly historyBufferLines?: number;
  /**
   * Base of the exactly-once session ids (1..48 chars). Default: 24 random hex characters. Writes
   * use `<sessionId>.<slot>` sessions, one write in flight per slot. Must be unique per client
   * instance: two live clients with the same id would overwrite each other's session results.
   */
  readonly sessionId?: string;
  /** Record this client's operations in the checker's JSON-lines format v1 (a sink or a file path). */
  readonly history?: HistoryOption;
  /** Key and value size limits checked before sending. Default 4 KiB keys, 1 MiB values. */
  readonly limits?: Partial<ProtocolLimits>;
  /** Opens connections. Default: `@paxkv/common`'s reconnecting TCP transport. */
  readonly connectionFactory?: ConnectionFactory;
  /**
   * Dial every server with TLS: `ca` (PEM) verifies the servers' certificates (each must name the host
   * the client dials), `cert`/`key` present a client certificate. A certificate that does not verify
   * fails calls with a `TlsError` that says what to fix. Default: plain TCP. Only for the default
   * transport (not with `connectionFactory`).
   */
  readonly tls?: TlsOptions;
  /**
   * Log in on every connection (servers started with `--auth`): `{ user, password }` (the first login
   * hashes the password on the server; later connections reuse the session token it returned) or
   * `{ token }` (from `paxkv login` or `client.session`). Without it, such a cluster answers
   * `UNAUTHENTICATED`. Default: none. Only for the default transport.
   */
  readonly auth?: ClientAuth;
  /** Random source in [0, 1) for jitter and replica choice. Default `Math.random`. */
  readonly random?: () => number;
}

/** {@link ClientOptions} with every default filled in (each field means what it means there). */
export interface ResolvedClientOptions {
  /** Seed servers, deduplicated. */
  readonly servers: readonly string[];
  /** Deadline of one call, ms. */
  readonly requestTimeoutMs: number;
  /** Wait for one attempt's reply, ms. */
  readonly attemptTimeoutMs: number;
  /** Least time left before the deadline to send a retry, ms. */
  readonly minAttemptMs: number;
  /** Retry backoff. */
  readonly backoff: BackoffConfig;
  /** Redirects followed without backoff in a row. */
  readonly maxImmediateRedirects: number;
  /** Least time between error-triggered table refreshes, ms. */
  readonly tableRefreshIntervalMs: number;
  /** Period of background leader discovery during activity, ms (0 = off). */
  readonly leaderDiscoveryIntervalMs: number;
  /** Most calls in flight. */
  readonly maxInFlight: number;
  /** Most calls waiting for a slot. */
  readonly maxQueuedCalls: number;
  /** Most open server connections. */
  readonly maxConnections: number;
  /** History file lines gathered before a write. */
  readonly historyBufferLines: number;
  /** Base of the session ids. */
  readonly sessionId: string;
  /** History sink or file, if any. */
  readonly history: HistoryOption | undefined;
  /** Key and value size limits. */
  readonly limits: ProtocolLimits;
  /** Connection factory, or undefined for the default TCP one. */
  readonly connectionFactory: ConnectionFactory | undefined;
  /** TLS settings of the default transport, or undefined for plain TCP. */
  readonly tls: TlsOptions | undefined;
  /** Credentials of the default transport, or undefined. */
  readonly auth: ClientAuth | undefined;
  /** Random source. */
  readonly random: () => number;
}

/** The client defaults (see {@link ClientOptions} for what each means). */
export const DEFAULT_CLIENT_OPTIONS = Object.freeze({
  requestTimeoutMs: 10_000,
  attemptTimeoutMs: 3_000,
  minAttemptMs: 5,
  backoff: Object.freeze({ initialDelayMs: 20, maxDelayMs: 1_000, multiplier: 2, jitter: 0.5 }),
  maxImmediateRedirects: 3,
  tableRefreshIntervalMs: 200,
  leaderDiscoveryIntervalMs: 5000,
  maxInFlight: 4096,
  maxQueuedCalls: 65_536,
  maxConnections: 1024,
  historyBufferLines: DEFAULT_HISTORY_BUFFER_LINES,
});

function intIn(issues: ConfigIssue[], path: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    issues.push({ path, problem: `must be an integer in ${min}..${max}, got ${String(v)}` });
  }
}

function numIn(issues: ConfigIssue[], path: string, v: unknown, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    issues.push({ path, problem: `must be a number in ${min}..${max}, got ${String(v)}` });
  }
}

/**
 * Fills in defaults and validates `options`.
 * @throws {@link ConfigError} listing every invalid option.
 */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  const issues: ConfigIssue[] = [];
  const servers = Array.isArray(options?.servers) ? options.servers : [];
  if (servers.length === 0) issues.push({ path: 'servers', problem: 'give at least one host:port address' });
  servers.forEach((s, i) => {
    if (!isAddress(s))
      issues.push({ path: `servers.${i}`, problem: `'${String(s)}' is not a host:port address` });
  });
  const d = DEFAULT_CLIENT_OPTIONS;
  const backoff: BackoffConfig = { ...d.backoff, ...definedOnly(options.backoff ?? {}) };
  const r: ResolvedClientOptions = {
    servers: [...new Set(servers)],
    requestTimeoutMs: options.requestTimeoutMs ?? d.requestTimeoutMs,
    attemptTimeoutMs: options.attemptTimeoutMs ?? d.attemptTimeoutMs,
    minAttemptMs: options.minAttemptMs ?? d.minAttemptMs,
    backoff,
    maxImmediateRedirects: options.maxImmediateRedirects ?? d.maxImmediateRedirects,
    tableRefreshIntervalMs: options.tableRefreshIntervalMs ?? d.tableRefreshIntervalMs,
    leaderDiscoveryIntervalMs: options.leaderDiscoveryIntervalMs ?? d.leaderDiscoveryIntervalMs,
    maxInFlight: options.maxInFlight ?? d.maxInFlight,
    maxQueuedCalls: options.maxQueuedCalls ?? d.maxQueuedCalls,
    maxConnections: options.maxConnections ?? d.maxConnections,
    historyBufferLines: options.historyBufferLines ?? d.historyBufferLines,
    sessionId: options.sessionId ?? randomBytes(12).toString('hex'),
    history: options.history,
    limits: { ...DEFAULT_PROTOCOL_LIMITS, ...definedOnly(options.limits ?? {}) },
    connectionFactory: options.connectionFactory,
    tls: options.tls,
    auth: options.auth,
    random: options.random ?? Math.random,
  };
  if (r.auth !== undefined && r.connectionFactory !== undefined) {
    issues.push({
      path: 'auth',
      problem: 'auth logs in over the default transport; it cannot be used with a connectionFactory',
    });
  }
  if (r.tls !== undefined && r.connectionFactory !== undefined) {
    issues.push({
      path: 'tls',
      problem:
        'tls configures the default transport; with a connectionFactory, give the factory its TLS settings',
    });
  }
  intIn(issues, 'requestTimeoutMs', r.requestTimeoutMs, 1, 86_400_000);
  intIn(issues, 'attemptTimeoutMs', r.attemptTimeoutMs, 1, 86_400_000);
  intIn(issues, 'minAttemptMs', r.minAttemptMs, 0, 86_400_000);
  intIn(issues, 'backoff.initialDelayMs', backoff.initialDelayMs, 0, 3_600_000);
  intIn(issues, 'backoff.maxDelayMs', backoff.maxDelayMs, 1, 3_600_000);
  numIn(issues, 'backoff.multiplier', backoff.multiplier, 1, 100);
  numIn(issues, 'backoff.jitter', backoff.jitter, 0, 1);
  if (backoff.initialDelayMs > backoff.maxDelayMs) {
    issues.push({ path: 'backoff.initialDelayMs', problem: 'must not exceed backoff.maxDelayMs' });
  }
  intIn(issues, 'maxImmediateRedirects', r.maxImmediateRedirects, 0, 1000);
  intIn(issues, 'tableRefreshIntervalMs', r.tableRefreshIntervalMs, 0, 3_600_000);
  intIn(issues, 'leaderDiscoveryIntervalMs', r.leaderDiscoveryIntervalMs, 0, 86_400_000);
  intIn(issues, 'maxInFlight', r.maxInFlight, 1, 10_000_000);
  intIn(issues, 'maxQueuedCalls', r.maxQueuedCalls, 0, 100_000_000);
  intIn(issues, 'maxConnections', r.maxConnections, 1, 1_000_000);
  intIn(issues, 'historyBufferLines', r.historyBufferLines, 1, 10_000_000);
  intIn(issues, 'limits.maxKeyBytes', r.limits.maxKeyBytes, 1, 0xffff_ffff);
  intIn(issues, 'limits.maxValueBytes', r.limits.maxValueBytes, 1, 0xffff_ffff);
  if (
    typeof r.sessionId !== 'string' ||
    r.sessionId.length < 1 ||
    r.sessionId.length > MAX_SESSION_ID_LENGTH
  ) {
    issues.push({ path: 'sessionId', problem: `must be 1..${MAX_SESSION_ID_LENGTH} characters` });
  }
  if (r.history !== undefined && typeof r.history !== 'string' && typeof r.history?.write !== 'function') {
    issues.push({ path: 'history', problem: 'must be a file path or an object with a write(line) method' });
  }
  if (issues.length > 0) throw new ConfigError({ source: 'paxkv client options', issues });
  return r;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
