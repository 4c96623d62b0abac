/**
 * The paxkv client: finds the cluster, caches the lookup table, routes each key to the leader of its
 * group, follows redirects, retries with capped exponential backoff and jitter until a per-call
 * deadline, pipelines many calls per connection, and makes writes exactly-once with sessions.
 * @module
 */
import {
  BadRequestError,
  backoffDelay,
  type CasOutcome,
  type ClusterStatus,
  type Compare,
  ConnectionClosedError,
  checkKvOpLimits,
  compareKeys,
  errorFromWire,
  isAddress,
  isReadOnlyOp,
  type KeyMeta,
  type KeyValue,
  type KvOp,
  KvOpSchema,
  type KvRequest,
  type KvResult,
  type LeaderHint,
  type LeaseInfo,
  type LookupTable,
  type NodeId,
  NoLeaderError,
  type PaxkvError,
  partitionOf,
  partitionOfOp,
  prefixEnd,
  type RangeOp,
  type RangeResult,
  type RestoreResult,
  rangeTagPartition,
  type SnapshotResult,
  TimeoutError,
  type TxnOp,
  type TxnRequest,
  type TxnResponse,
  type TxnResult,
  txnKeys,
  UnavailableError,
  type Value,
  zodErrorToBadRequest,
} from '@paxkv/common';
import { type ClientSession, LoginHandshake } from './auth.js';
import { acquire, Election, Lock, type LockOptions, recipePrefix } from './concurrency.js';
import { type AttemptOutcome, Channel, type ConnectionFactory } from './connection.js';
import {
  ClientClosedError,
  ClientOverloadedError,
  LeaseNotFoundError,
  UnexpectedReplyError,
} from './errors.js';
import { type HistoryEntry, HistoryRecorder } from './history.js';
import { plainGetOrPut } from './input-check.js';
import { type ClientOptions, type ResolvedClientOptions, resolveClientOptions } from './options.js';
import { type HeldSession, SessionPool } from './sessions.js';
import { tcpConnectionFactory } from './tcp.js';
import { Watch, type WatchOptions } from './watch.js';

/** Options of one call. */
export interface CallOptions {
  /** Deadline of this call in ms, retries included. Default: the client's `requestTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** Options of {@link PaxkvClient.get}. */
export interface GetOptions extends CallOptions {
  /**
   * Allow a stale read: any replica may answer from its local state, without confirming that it is
   * still up to date. Faster, not linearizable. Default false.
   */
  readonly stale?: boolean;
}

/**
 * Where and at which revision an operation was served: the partition's revision after it (for a
 * read: the revision it was served at) and the partition. Revisions of different partitions are
 * unrelated (see `@paxkv/common`'s `kv` protocol module).
 */
export interface ResultHeader {
  /** The partition's revision after the operation. */
  readonly revision: number;
  /** The partition that served the operation. */
  readonly partition: number;
}

/** Result of {@link PaxkvClient.getEntry}: the value and revisions of a key (revisions 0 when absent). */
export interface GetEntryResult extends KeyMeta, ResultHeader {
  /** The value, or null if the key is absent. */
  readonly value: Value | null;
}

/** Result of {@link PaxkvClient.put}: the key's revisions after the write (`modRevision === revision`). */
/** Options of {@link PaxkvClient.put}. */
export interface PutOptions extends CallOptions {
  /** Attach the key to this lease (granted for a key of the same partition): it goes when the lease ends. */
  readonly lease?: number;
  /**
   * Convenience for one key: grant a lease of this TTL in the key's partition and attach the key to it
   * (two log entries, not atomic: if the put fails the lease expires by itself). Keep it alive with
   * `keepAlive(result.lease)`. Exclusive with `lease`.
   */
  readonly ttlMs?: number;
}

/** Result of {@link PaxkvClient.grant}. */
export interface LeaseGrant {
  /** The lease id (it names its partition: keys attached to it must live there). */
  readonly lease: number;
  /** Its TTL in ms. */
  readonly ttlMs: number;
  /** The partition it belongs to. */
  readonly partition: number;
}

/** Result of {@link PaxkvClient.timeToLive}. */
export interface LeaseTimeToLive extends ResultHeader {
  /** False when the lease is gone, or (asked by key) the key is absent or attached to no lease. */
  readonly found: boolean;
  /** The lease id (0 when not found). */
  readonly lease: number;
  /** The TTL it was granted with, in ms (0 when not found). */
  readonly ttlMs: number;
  /** Time left on the leader's clock before it proposes the expiry, in ms. */
  readonly remainingMs: number;
  /** Its keys, when asked with `keys: true` (at most `MAX_LEASE_KEYS_LISTED`). */
  readonly keys?: readonly string[];
  /** True when `keys` was cut. */
  readonly more?: boolean;
}

/** Result of {@link PaxkvClient.put}: whether the key was created, and its revisions after the write. */
export interface PutResult extends KeyMeta, ResultHeader {
  /** True if the key did not exist before. */
  readonly created: boolean;
  /** The lease the key is attached to, when the put asked for one (`lease` or `ttlMs`). */
  readonly lease?: number;
}

/** Result of {@link PaxkvClient.cas}: the outcome, and the key's value and revisions after it. */
export interface CasResult extends KeyMeta, ResultHeader {
  /** `applied` (written), `mismatch` (the key's state does not match), `not-found` (absent, a present key was expected). */
  readonly outcome: CasOutcome;
  /** The value after the operation: the new one if applied, else the unchanged current one (null if absent). */
  readonly current: Value | null;
}

/**
 * What {@link PaxkvClient.cas} compares: a value (`null`: the key must be absent), or the key's
 * `modRevision` or `version` (0: the key must be absent).
 */
export type CasExpectation = Value | null | { readonly modRevision: number } | { readonly version: number };

/** Result of {@link PaxkvClient.delete}. */
export interface DeleteResult extends ResultHeader {
  /** True if the key existed (the partition's revision was then raised). */
  readonly existed: boolean;
}

/** What {@link PaxkvClient.txn} takes: etcd's shape; missing lists are empty. */
export interface TxnRequestInput {
  /** Compares that must all hold for `success` to run (see `CompareSchema` of `@paxkv/common`). */
  readonly compare?: readonly Compare[];
  /** Operations run when every compare holds: `{ get: { key } }`, `{ put: { key, value } }`, `{ delete: { key } }`. */
  readonly success?: readonly TxnRequest[];
  /** Operations run otherwise. */
  readonly failure?: readonly TxnRequest[];
}

/** Result of {@link PaxkvClient.txn}. */
export interface TxnCallResult extends ResultHeader {
  /** Whether every compare held (the `success` branch ran). */
  readonly succeeded: boolean;
  /** The result of each operation of the branch that ran, in order. */
  readonly results: readonly TxnResponse[];
}

/** Options of {@link PaxkvClient.range} and {@link PaxkvClient.prefix}. */
export interface RangeOptions extends CallOptions {
  /** Most keys in the page. Default and cap: the server's `maxRangeKeys` (10 000 by default). */
  readonly limit?: number;
  /** Descending key order. Default false. */
  readonly reverse?: boolean;
  /** Keys and revisions only, no values. Default false. */
  readonly keysOnly?: boolean;
  /** Allow stale reads (any replica answers from its state). Default false. */
  readonly stale?: boolean;
}

/** One page of {@link PaxkvClient.range}. */
export interface RangePage {
  /** The keys found, in the order asked, with values (unless `keysOnly`) and revisions. */
  readonly kvs: readonly KeyValue[];
  /** True when keys of the range remain after this page. */
  readonly more: boolean;
  /** When `more`: the range that remains, to pass back to `range(next.start, next.end, options)`. */
  readonly next?: { readonly start: string; readonly end: string | undefined };
  /** The partitions read, each with the revision it was read at (one entry for a single-tag range). */
  readonly revisions: readonly ResultHeader[];
}

/** Options of {@link PaxkvClient.status}. */
export interface StatusOptions extends CallOptions {
  /** Ask this server (`host:port`). Default: the first server of the table (or the seeds) that answers. */
  readonly server?: string;
}

/** Counters of a client's activity (for diagnostics and benchmarks). */
export interface ClientStats {
  /** Calls started. */
  calls: number;
  /** Attempts sent (first tries and retries). */
  attempts: number;
  /** Retries after a backoff. */
  retries: number;
  /** `NOT_LEADER` redirects followed. */
  redirects: number;
  /** Successes from a server that forwarded the call and named the partition's leader (cache updated). */
  leaderUpdates: number;
  /** Attempts that got no reply in `attemptTimeoutMs`. */
  attemptTimeouts: number;
  /** Lookup-table fetches. */
  tableFetches: number;
  /** Background leader discoveries (status sweeps). */
  leaderDiscoveries: number;
}

interface Target {
  readonly node: NodeId;
  readonly address: string;
}

const now = () => performance.now();

/**
 * Watches sharing one connection to a server at most (each has up to one stream per partition there; the
 * server allows 1,000 streams per connection, so 50 watches of 16 partitions fit).
 */
export const WATCHES_PER_CONNECTION = 50;

/** The value of a `get` result. */
const valueOfGet = (r: KvResult): Value | null => (r as Extract<KvResult, { op: 'get' }>).value;

/**
 * A paxkv client. Create it with {@link createClient}; call {@link PaxkvClient.close} when done.
 * All methods may be called concurrently; calls are pipelined over one connection per server.
 */
export class PaxkvClient {
  /** The resolved options (defaults filled in). */
  readonly options: ResolvedClientOptions;
  /** Activity counters. */
  readonly stats: ClientStats = {
    calls: 0,
    attempts: 0,
    retries: 0,
    redirects: 0,
    leaderUpdates: 0,
    attemptTimeouts: 0,
    tableFetches: 0,
    leaderDiscoveries: 0,
  };

  readonly #factory: ConnectionFactory;
  readonly #login: LoginHandshake | undefined;
  readonly #channels = new Map<string, Channel>();
  /**
   * Connections of the watches, per server, shared: each holds at most {@link WATCHES_PER_CONNECTION}
   * watches (a watch has up to one stream per partition on it; the server allows 1,000 streams per
   * connection), closed when its last watch ends. Kept apart from the request channels so that a busy
   * stream never delays requests.
   */
  readonly #watchChannels = new Map<string, { channel: Channel; watches: number }[]>();
  /** Open watches (cancelled by {@link PaxkvClient.close}). */
  readonly #watches = new Set<Watch>();
  readonly #sessions: SessionPool;
  readonly #history: HistoryRecorder | undefined;
  #table: LookupTable | null = null;
  #refreshing: Promise<LookupTable> | null = null;
  #lastRefreshAt = Number.NEGATIVE_INFINITY;
  #discovering: Promise<void> | null = null;
  #lastDiscoveryAt = Number.NEGATIVE_INFINITY;
  readonly #leaders = new Map<number, Target>();
  readonly #cursor = new Map<number, number>();
  #nextId = 1;
  #seedCursor = 0;
  #inFlight = 0;
  readonly #waiting: Array<() => void> = [];
  readonly #sleepers = new Set<() => void>();
  #closed = false;
  readonly #active = new Set<Promise<unknown>>();

  /** @throws {@link ConfigError} if an option is invalid. Prefer {@link createClient}. */
  constructor(options: ClientOptions) {
    this.options = resolveClientOptions(options);
    this.#login = this.options.auth ? new LoginHandshake(this.options.auth) : undefined;
    this.#factory =
      this.options.connectionFactory ??
      tcpConnectionFactory({
        ...(this.options.tls ? { tls: this.options.tls } : {}),
        ...(this.#login ? { handshake: this.#login.hook } : {}),
      });
    this.#sessions = new SessionPool(this.options.sessionId);
    this.#history =
      this.options.history === undefined
        ? undefined
        : HistoryRecorder.acquire(this.options.history, {
            bufferLines: this.options.historyBufferLines,
          });
  }

  /**
   * The session of the last login (with the `auth` option), once a connection logged in: its user,
   * roles and session token (`paxkv login` saves it).
   */
  get session(): ClientSession | undefined {
    return this.#login?.session;
  }

  /** The cached lookup table, or null before the first successful lookup. */
  get table(): LookupTable | null {
    return this.#table;
  }

  /** The node this client currently believes leads `partition`, if any. */
  leaderOf(partition: number): NodeId | undefined {
    return this.#leaders.get(partition)?.node;
  }

  /** History lines lost because the sink or the file could not be written (0 without a history). */
  get historyLostLines(): number {
    return this.#history?.lostLines ?? 0;
  }

  /** Number of calls in flight right now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Reads `key`. Linearizable by default; `{ stale: true }` lets any replica answer from its state.
   * @returns the value, or null if the key is absent.
   */
  get(key: string, options: GetOptions = {}): Promise<Value | null> {
    // The hot call: one promise hop, no copy of the result (getEntry's shape is not needed).
    return this.#call({ op: 'get', key }, options.stale === true, options.timeoutMs).then(valueOfGet);
  }

  /**
   * Reads `key` with its revisions (`createRevision`, `modRevision`, `version`: all 0 when absent)
   * and the partition's revision at which it was read. Linearizable unless `{ stale: true }`.
   */
  async getEntry(key: string, options: GetOptions = {}): Promise<GetEntryResult> {
    const r = await this.#call({ op: 'get', key }, options.stale === true, options.timeoutMs);
    const { op: _, ...rest } = r as Extract<KvResult, { op: 'get' }>;
    return rest;
  }

  /** Writes `value` under `key`, exactly once even when retried. */
  async put(key: string, value: Value, options: PutOptions = {}): Promise<PutResult> {
    if (options.lease !== undefined && options.ttlMs !== undefined)
      throw new BadRequestError({ field: 'options', problem: 'give lease or ttlMs, not both' });
    const lease =
      options.ttlMs !== undefined
        ? (await this.grant(options.ttlMs, { key, ...timeout(options) })).lease
        : options.lease;
    const r = (await this.#call(
      lease === undefined ? { op: 'put', key, value } : { op: 'put', key, value, lease },
      false,
      options.timeoutMs,
    )) as Extract<KvResult, { op: 'put' }>;
    const { op: _, ...rest } = r;
    return lease === undefined ? rest : { ...rest, lease };
  }

  /**
   * Grants a lease of `ttlMs` (at least 1 s) in the partition of `options.key` (default: partition 0).
   * Keys put with `{ lease }` are deleted together, atomically, when it is revoked or when no keep-alive
   * reached the leader for `ttlMs` (a leader change adds a grace period). Attached keys must live in the
   * lease's partition: use keys of one hash tag (`{svc}:a`, `{svc}:b`) and grant with one of them.
   */
  async grant(ttlMs: number, options: CallOptions & { readonly key?: string } = {}): Promise<LeaseGrant> {
    const table = await this.lookupTable(timeout(options));
    const partition = options.key === undefined ? 0 : partitionOf(options.key, table.partitions);
    const r = (await this.#call(
      { op: 'lease-grant', partition, ttlMs },
      false,
      options.timeoutMs,
    )) as Extract<KvResult, { op: 'lease-grant' }>;
    if (!r.granted)
      throw new UnavailableError({
        reason: `partition ${partition} holds its maximum number of leases; revoke unused leases or grant in another partition`,
      });
    return { lease: r.lease, ttlMs: r.ttlMs, partition };
  }

  /**
   * Restarts the lease's TTL (served by the partition's leader). Resolves with the TTL; rejects with
   * `LeaseNotFoundError` if the lease is gone (expired or revoked: its keys are gone too).
   */
  async keepAlive(lease: number, options: CallOptions = {}): Promise<{ readonly ttlMs: number }> {
    const r = (await this.#call({ op: 'lease-keepalive', lease }, false, options.timeoutMs)) as Extract<
      KvResult,
      { op: 'lease-keepalive' }
    >;
    if (!r.found) throw new LeaseNotFoundError({ lease });
    return { ttlMs: r.ttlMs };
  }

  /**
   * Keeps `lease` alive in the background, every `intervalMs` (default a third of its TTL) until
   * `stop()`; `onLost` is called once if the lease is found gone (then the loop stops).
   */
  keepAliveLoop(
    lease: number,
    ttlMs: number,
    options: { readonly intervalMs?: number; readonly onLost?: (e: Error) => void } = {},
  ): { stop(): void } {
    const interval = options.intervalMs ?? Math.max(100, Math.floor(ttlMs / 3));
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const beat = async () => {
      if (stopped) return;
      try {
        await this.keepAlive(lease, { timeoutMs: Math.max(interval, 1_000) });
      } catch (e) {
        if (e instanceof LeaseNotFoundError || this.#closed) {
          stopped = true;
          options.onLost?.(e as Error);
          return;
        }
        // Transient (no leader during an election, ...): the next beat retries; the grace period covers it.
      }
      if (!stopped) timer = setTimeout(beat, interval);
    };
    timer = setTimeout(beat, 0);
    return {
      stop: () => {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  }

  /**
   * How long a lease has left, as etcd's `LeaseTimeToLive`: by lease id, or (`{ key }`) for the lease
   * the key is attached to (what Redis `TTL` answers). Served by the partition's leader after a
   * read-index round: `remainingMs` is the time left on its clock before it proposes the expiry (right
   * after an election it includes the grace period, so it can exceed `ttlMs`). `found: false` when the
   * lease is gone, or the key is absent or attached to no lease. `{ keys: true }` lists the lease's keys.
   */
  async timeToLive(
    target: number | { readonly key: string },
    options: CallOptions & { readonly keys?: boolean } = {},
  ): Promise<LeaseTimeToLive> {
    const op: KvOp = {
      op: 'lease-timetolive',
      ...(typeof target === 'number' ? { lease: target } : { key: target.key }),
      ...(options.keys ? { keys: true } : {}),
    };
    const r = (await this.#call(op, false, options.timeoutMs)) as Extract<
      KvResult,
      { op: 'lease-timetolive' }
    >;
    const { op: _, keys, more, ...rest } = r;
    return keys === undefined ? rest : { ...rest, keys, more: more ?? false };
  }

  /** Revokes the lease: it and every key attached to it are deleted atomically. Resolves with the keys deleted. */
  async revoke(
    lease: number,
    options: CallOptions = {},
  ): Promise<{ readonly found: boolean; readonly deleted: number }> {
    const r = (await this.#call({ op: 'lease-revoke', lease }, false, options.timeoutMs)) as Extract<
      KvResult,
      { op: 'lease-revoke' }
    >;
    return { found: r.found, deleted: r.deleted };
  }

  /** The leases of one partition (default: every partition, merged by id). */
  async leases(options: CallOptions & { readonly partition?: number } = {}): Promise<LeaseInfo[]> {
    const table = await this.lookupTable(timeout(options));
    const parts =
      options.partition !== undefined
        ? [options.partition]
        : Array.from({ length: table.partitions }, (_, p) => p);
    const lists = await Promise.all(
      parts.map(
        async (partition) =>
          (
            (await this.#call({ op: 'lease-list', partition }, false, options.timeoutMs)) as Extract<
              KvResult,
              { op: 'lease-list' }
            >
          ).leases,
      ),
    );
    return lists.flat().sort((a, b) => a.lease - b.lease);
  }

  /**
   * The whole state of one partition at one revision, for a backup (`paxkv snapshot save`): served by
   * the partition's leader after a read-index round, so it holds every write acknowledged before the
   * call. `outcome: 'too-large'` (empty `state`) when the state exceeds `MAX_PARTITION_STATE_BYTES`.
   * Client sessions are not part of it.
   */
  async snapshot(partition: number, options: CallOptions = {}): Promise<SnapshotResult> {
    return (await this.#call(
      { op: 'snapshot', partition },
      false,
      options.timeoutMs,
      false,
    )) as SnapshotResult;
  }

  /**
   * Loads a state that {@link Client.snapshot} returned into `partition` of this cluster, through the
   * log (replicated and durable when it resolves, exactly once). Only an empty partition (no key, no
   * lease, revision 0) takes it; otherwise `outcome` is `not-empty` and nothing changed. The cluster
   * must have the same partition count as the one the state came from (keys hash by that count).
   */
  async restore(partition: number, state: Uint8Array, options: CallOptions = {}): Promise<RestoreResult> {
    return (await this.#call(
      { op: 'restore', partition, state },
      false,
      options.timeoutMs,
      false,
    )) as RestoreResult;
  }

  /**
   * Writes `value` only if `key` matches `expected`: a value (`null`: only if `key` is absent), or
   * `{ modRevision }` / `{ version }` (0: only if absent). Exactly once even when retried.
   * @example
   * const { modRevision } = await client.getEntry('config');
   * await client.cas('config', { modRevision }, 'new'); // applied only if nobody wrote in between
   */
  async cas(
    key: string,
    expected: CasExpectation,
    value: Value,
    options: CallOptions = {},
  ): Promise<CasResult> {
    const compare =
      typeof expected !== 'object' || expected === null || expected instanceof Uint8Array
        ? { expected: expected as Value | null }
        : 'modRevision' in expected
          ? { expectedModRevision: expected.modRevision }
          : { expectedVersion: (expected as { version: number }).version };
    const r = (await this.#call({ op: 'cas', key, ...compare, value }, false, options.timeoutMs)) as Extract<
      KvResult,
      { op: 'cas' }
    >;
    const { op: _, ...rest } = r;
    return rest;
  }

  /** Removes `key`, exactly once even when retried. */
  async delete(key: string, options: CallOptions = {}): Promise<DeleteResult> {
    const r = (await this.#call({ op: 'delete', key }, false, options.timeoutMs)) as Extract<
      KvResult,
      { op: 'delete' }
    >;
    const { op: _, ...rest } = r;
    return rest;
  }

  /**
   * Watches a key (or, with `{ prefix: true }`, every key starting with `keyOrPrefix`): an async iterable
   * of its changes, each with its partition's revision. Resumable (`fromRevision`), served by any
   * replica, reopened on another replica when a stream breaks without missing or repeating an event.
   * Await `watch.ready` before writing if the watch must see those writes; `watch.cancel()` (or leaving a
   * `for await` loop) ends it. See `Watch` for the guarantees and errors.
   */
  watch(keyOrPrefix: string, options: WatchOptions = {}): Watch {
    this.#assertOpen();
    let self: Watch | undefined;
    const watch = new Watch(
      {
        lookupTable: (refresh) => this.lookupTable({ refresh }),
        openChannel: (address) => this.#watchChannel(address),
        releaseChannel: (address, channel) => this.#releaseWatchChannel(address, channel),
        ended: () => {
          if (self) this.#watches.delete(self);
        },
        nextId: () => this.#nextId++,
      },
      keyOrPrefix,
      options,
    );
    self = watch;
    if (!watch.ended) this.#watches.add(watch);
    return watch;
  }

  /**
   * Takes the distributed lock `name` (etcd's `Mutex`): resolves once held, with its fencing token
   * (`lock.token`, the revision that created the holder's key: later holders have larger ones). The
   * lock is held through a lease kept alive in the background; if the holder stops (crash, pause,
   * partition) the lock passes to the next waiter about `ttlMs` later, so writes that must not come from
   * a former holder go through `lock.put` / `lock.txn` (fenced by the token). Waiters are queued in
   * order and each watches only its predecessor (no polling, no herd). See the `concurrency` module.
   * @example
   * const lock = await kv.lock('{jobs}:nightly', { ttlMs: 5_000 });
   * try {
   *   await lock.put('{jobs}:nightly:state', 'running'); // refused if the lock was lost meanwhile
   * } finally {
   *   await lock.unlock();
   * }
   */
  async lock(name: string, options: LockOptions = {}): Promise<Lock> {
    this.#assertOpen();
    return new Lock(this, await acquire(this, name, recipePrefix(name), '', options));
  }

  /**
   * An election `name` (etcd's `Election`): `campaign(value)` resolves once this client leads,
   * `leader()` reads the current leader, `observe()` streams every change of leader. See the
   * `concurrency` module.
   */
  election(name: string, options: LockOptions = {}): Election {
    this.#assertOpen();
    return new Election(this, name, options);
  }

  /**
   * A transaction, etcd's shape: if every `compare` holds, runs the `success` operations, else the
   * `failure` ones, atomically and at one revision, exactly once even when retried (a transaction
   * without writes is a linearizable read). All keys must share a partition: give them the same hash
   * tag (`{acct}:a`, `{acct}:b`), or the call fails with `CrossPartitionError` before anything is sent.
   * @example
   * const r = await client.txn({
   *   compare: [{ key: '{acct}:a', target: 'value', op: '=', value: '100' }],
   *   success: [{ put: { key: '{acct}:a', value: '50' } }, { put: { key: '{acct}:b', value: '50' } }],
   *   failure: [{ get: { key: '{acct}:a' } }],
   * });
   * if (!r.succeeded) console.log('balance changed:', r.results[0]);
   */
  async txn(request: TxnRequestInput, options: CallOptions = {}): Promise<TxnCallResult> {
    const op: TxnOp = {
      op: 'txn',
      compare: [...(request.compare ?? [])],
      success: [...(request.success ?? [])],
      failure: [...(request.failure ?? [])],
    };
    const r = (await this.#call(op, false, options.timeoutMs)) as TxnResult;
    const { op: _, ...rest } = r;
    return rest;
  }

  /**
   * Reads the keys `start <= key < end` in key order (UTF-8 byte order; `end` undefined: no upper
   * bound), one page of at most `limit` keys (default and cap: the server's `maxRangeKeys`, 10 000).
   *
   * When every key of the range shares one hash tag (`start` and `end` both inside `{tag}...`), the
   * page is one linearizable read of that partition at one revision. Otherwise every partition is
   * read (each read linearizable, in parallel) and the pages merged by key: that is NOT one snapshot
   * (writes to different partitions made while the reads run may be seen in any combination; each
   * partition's part is at its own revision, listed in `revisions`). `more` says that keys remain:
   * pass `next` back to continue (a later page is a later read).
   */
  async range(start: string, end: string | undefined, options: RangeOptions = {}): Promise<RangePage> {
    this.#assertOpen();
    const table = await this.lookupTable(
      options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs },
    );
    const base: RangeOp = {
      op: 'range',
      start,
      ...(end !== undefined ? { end } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      ...(options.reverse ? { reverse: true } : {}),
      ...(options.keysOnly ? { keysOnly: true } : {}),
    };
    const single = rangeTagPartition(start, end, table.partitions);
    const stale = options.stale === true;
    if (single !== undefined) {
      const r = (await this.#call(base, stale, options.timeoutMs)) as RangeResult;
      return pageOf(base, r.kvs, r.more, [{ partition: r.partition, revision: r.revision }]);
    }
    const parts = await Promise.all(
      Array.from({ length: table.partitions }, (_, partition) =>
        this.#call({ ...base, partition }, stale, options.timeoutMs, false),
      ),
    );
    return mergePages(base, parts as RangeResult[]);
  }

  /** {@link PaxkvClient.range} over the keys that start with `prefix`. */
  prefix(prefix: string, options: RangeOptions = {}): Promise<RangePage> {
    return this.range(prefix, prefixEnd(prefix), options);
  }

  /**
   * Asks one server for its view of the cluster (table, its groups and leaders, members with their
   * alive/suspected/spare state). Tries the servers in turn until one answers or the deadline passes.
   */
  async status(options: StatusOptions = {}): Promise<ClusterStatus> {
    this.#assertOpen();
    if (options.server !== undefined && !isAddress(options.server)) {
      throw new BadRequestError({
        field: 'server',
        problem: `'${String(options.server)}' is not a host:port address`,
      });
    }
    const budget = options.timeoutMs ?? this.options.requestTimeoutMs;
    const deadline = now() + budget;
    let lastError: PaxkvError | undefined;
    for (let round = 0; ; round++) {
      const candidates = options.server ? [options.server] : this.#candidates();
      for (const address of candidates) {
        const remaining = deadline - now();
        if (remaining <= 0) break;
        const outcome = await this.#send(address, { type: 'status', id: this.#nextId++ }, remaining);
        if (outcome.kind === 'reply' && outcome.message.type === 'status.ok') {
          const table = outcome.message.status.table;
          if (table) this.#adoptTable(table);
          return outcome.message.status;
        }
        lastError = this.#outcomeError(outcome, address) ?? lastError;
      }
      if (!(await this.#backoff(round, deadline))) break;
    }
    throw this.#gaveUp('status', budget, lastError, false);
  }

  /**
   * The lookup table: the cached one, or a fresh one from the cluster when none is cached or
   * `refresh` is set.
   */
  async lookupTable(options: CallOptions & { readonly refresh?: boolean } = {}): Promise<LookupTable> {
    this.#assertOpen();
    if (this.#table && !options.refresh) return this.#table;
    const deadline = now() + (options.timeoutMs ?? this.options.requestTimeoutMs);
    return this.#refresh(deadline);
  }

  /**
   * Closes every connection and ends every open watch. Calls still in flight reject with
   * {@link ClientClosedError} (a write among them may or may not have been applied). Flushes and closes the history file, if any.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const wake of this.#sleepers) wake();
    this.#sleepers.clear();
    for (const w of this.#waiting.splice(0)) w();
    for (const c of this.#channels.values()) c.close();
    this.#channels.clear();
    for (const w of [...this.#watches]) w.cancel();
    for (const pool of this.#watchChannels.values()) for (const e of pool) e.channel.close();
    this.#watchChannels.clear();
    // Let the calls that were in flight record their outcome before the history file closes.
    await Promise.allSettled([...this.#active]);
    this.#history?.release();
  }

  #watchChannel(address: string): Channel {
    const pool = this.#watchChannels.get(address) ?? [];
    this.#watchChannels.set(address, pool);
    let entry = pool.find((e) => e.watches < WATCHES_PER_CONNECTION);
    if (!entry) {
      entry = { channel: new Channel(address, this.#factory), watches: 0 };
      pool.push(entry);
    }
    entry.watches++;
    return entry.channel;
  }

  #releaseWatchChannel(address: string, channel: Channel): void {
    const pool = this.#watchChannels.get(address);
    const i = pool?.findIndex((e) => e.channel === channel) ?? -1;
    const entry = i < 0 ? undefined : pool?.[i];
    if (!pool || !entry) return;
    if (--entry.watches > 0) return;
    channel.close();
    pool.splice(i, 1);
    if (pool.length === 0) this.#watchChannels.delete(address);
  }

  // ---- one call -------------------------------------------------------------------------------

  #call(op: KvOp, stale: boolean, timeoutMs: number | undefined, record = true): Promise<KvResult> {
    const p = this.#callInner(op, stale, timeoutMs, record);
    this.#active.add(p);
    const forget = () => this.#active.delete(p);
    p.then(forget, forget);
    return p;
  }

  async #callInner(
    op: KvOp,
    stale: boolean,
    timeoutMs: number | undefined,
    record: boolean,
  ): Promise<KvResult> {
    this.#assertOpen();
    const inputError = checkInput(op, timeoutMs);
    if (inputError) throw inputError;
    const limitError = checkKvOpLimits(op, this.options.limits);
    if (limitError) throw limitError;
    const budget = timeoutMs ?? this.options.requestTimeoutMs;
    const deadline = now() + budget;
    this.stats.calls++;
    this.#discoverLeadersEvery(this.options.leaderDiscoveryIntervalMs);
    // A free slot is taken at once (no await: an await costs promise hops on every call).
    if (this.#inFlight < this.options.maxInFlight) this.#inFlight++;
    else await this.#enter(deadline, op);
    const write = !isReadOnlyOp(op);
    const held: HeldSession | undefined = write ? this.#sessions.acquire() : undefined;
    const entry: HistoryEntry | undefined = stale || !record ? undefined : this.#history?.invoke(op);
    const state = { uncertain: false };
    try {
      const result = await this.#attempts(op, stale, held, deadline, budget, state);
      entry?.ok(result);
      return result;
    } catch (e) {
      if (entry) {
        const text = e instanceof Error ? `${(e as PaxkvError).code ?? 'ERROR'}: ${e.message}` : String(e);
        if (state.uncertain) entry.info(text);
        else entry.fail(text);
      }
      throw e;
    } finally {
      if (held) this.#sessions.release(held);
      this.#leave();
    }
  }

  async #attempts(
    op: KvOp,
    stale: boolean,
    held: HeldSession | undefined,
    deadline: number,
    budget: number,
    state: { uncertain: boolean },
  ): Promise<KvResult> {
    let backoffs = 0;
    let redirects = 0;
    let quickMoves = 0;
    let lastError: PaxkvError | undefined;
    const what = describeOp(op);
    for (;;) {
      if (this.#closed) {
        throw new ClientClosedError({ uncertain: state.uncertain });
      }
      const remaining = deadline - now();
      // A retry with almost no time left could not be answered in time (see `minAttemptMs`).
      if (remaining <= 0 || (lastError !== undefined && remaining < this.options.minAttemptMs))
        throw this.#gaveUp(what, budget, lastError, state.uncertain);
      let table = this.#table;
      if (table === null) {
        try {
          table = await this.#refresh(deadline);
        } catch (e) {
          lastError = asPaxkvError(e);
          // A refused login or certificate is not fixed by retrying.
          if (isCredentialError(lastError)) throw lastError;
          continue;
        }
      }
      // A transaction or range whose keys span partitions fails here for good (CrossPartitionError).
      const partition = partitionOfOp(op, table.partitions);
      const target = this.#target(table, partition);
      if (!target) {
        lastError = new NoLeaderError({ partition });
        this.#refreshSoon();
        if (!(await this.#backoff(backoffs++, deadline))) continue;
        this.stats.retries++;
        continue;
      }
      const request: KvRequest = {
        type: 'kv',
        id: this.#nextId++,
        op,
        ...(held ? { session: held.session } : {}),
        ...(stale ? { consistency: 'stale' as const } : {}),
      };
      this.stats.attempts++;
      const outcome = await this.#send(
        target.address,
        request,
        Math.min(this.options.attemptTimeoutMs, remaining),
      );
      if (outcome.kind === 'reply') {
        const m = outcome.message;
        if (m.type === 'kv.ok' && m.result.op === op.op) {
          const leader = m.leader;
          if (leader && !(leader.node === target.node && leader.address === target.address)) {
            // The server forwarded it to the partition's leader and says which: go there next time.
            this.#followHint(table, partition, leader);
            this.stats.leaderUpdates++;
          } else if (!stale && !this.#leaders.has(partition)) {
            // A plain success proves less than a redirect (an older server may have forwarded the
            // request): it fills an empty cache entry but never replaces a leader learned meanwhile.
            this.#leaders.set(partition, target);
          }
          return m.result;
        }
        if (m.type === 'error') {
          const error = errorFromWire(m);
          lastError = error;
          switch (m.code) {
            case 'NOT_LEADER': {
              this.#forget(partition, target);
              const hint = m.leaderHint;
              if (hint && !(hint.node === target.node && hint.address === target.address)) {
                this.#followHint(table, partition, hint);
                this.stats.redirects++;
                if (++redirects <= this.options.maxImmediateRedirects) continue;
              } else {
                this.#refreshSoon();
              }
              break;
            }
            case 'NO_LEADER':
              this.#forget(partition, target);
              this.#refreshSoon();
              break;
            case 'NOT_READY':
              this.#forget(partition, target);
              break;
            case 'UNAVAILABLE':
              // A forwarding server may have lost the leader after handing the request on.
              if (op.op !== 'get') state.uncertain = true;
              this.#forget(partition, target);
              break;
            case 'TIMEOUT':
              state.uncertain = true;
              break;
            default:
              // Not retryable: the request itself is wrong (or the server failed: INTERNAL).
              if (m.code === 'INTERNAL') state.uncertain = true;
              throw error;
          }
        } else {
          state.uncertain = true;
          lastError = new UnexpectedReplyError({ address: target.address, got: m.type, expected: 'kv.ok' });
          this.#forget(partition, target);
        }
      } else if (outcome.kind === 'not-sent' && outcome.error && !outcome.error.retryable) {
        throw outcome.error;
      } else if (outcome.kind === 'not-sent' && outcome.busy) {
        // The leader is fine but our buffer to it is full: wait (backoff) and send to it again.
        lastError = this.#outcomeError(outcome, target.address);
      } else {
        lastError = this.#outcomeError(outcome, target.address);
        this.#forget(partition, target);
        if (outcome.kind === 'not-sent') {
          // Nothing was sent: try the group's next replica at once, once per replica, then back off.
          if (++quickMoves < this.#replicaCount(table, partition)) continue;
          quickMoves = 0;
        } else {
          state.uncertain = true;
          if (outcome.kind === 'timeout') this.stats.attemptTimeouts++;
        }
      }
      redirects = 0;
      if (!(await this.#backoff(backoffs++, deadline))) continue;
      this.stats.retries++;
    }
  }

  // ---- routing --------------------------------------------------------------------------------

  #target(table: LookupTable, partition: number): Target | undefined {
    const cached = this.#leaders.get(partition);
    if (cached) return cached;
    const group = table.groups.find((g) => g.partition === partition);
    if (!group || group.replicas.length === 0) return undefined;
    // First try the group's preferred leader (replicas[0]), then the next replica after each failure.
    const i = this.#cursor.get(partition) ?? 0;
    const node = group.replicas[i % group.replicas.length]!;
    const address = table.nodes.find((n) => n.id === node)?.address;
    return address === undefined ? undefined : { node, address };
  }

  #replicaCount(table: LookupTable, partition: number): number {
    return table.groups.find((g) => g.partition === partition)?.replicas.length ?? 1;
  }

  /** The target failed or is not the leader: drop it from the leader cache and move to the next replica. */
  #forget(partition: number, target: Target): void {
    const cached = this.#leaders.get(partition);
    if (cached && cached.node === target.node) this.#leaders.delete(partition);
    if (!cached || cached.node === target.node)
      this.#cursor.set(partition, (this.#cursor.get(partition) ?? 0) + 1);
  }

  #followHint(table: LookupTable, partition: number, hint: LeaderHint): void {
    this.#leaders.set(partition, { node: hint.node, address: hint.address });
    const known = table.nodes.find((n) => n.id === hint.node);
    // A leader this table does not know (or knows at another address) means our table is old.
    if (!known || known.address !== hint.address) this.#refreshSoon();
  }

  // ---- lookup table ---------------------------------------------------------------------------

  /** Refreshes the table in the background unless a refresh ran less than `tableRefreshIntervalMs` ago. */
  #refreshSoon(): void {
    this.#discoverLeadersEvery(this.options.tableRefreshIntervalMs);
    if (this.#refreshing || now() - this.#lastRefreshAt < this.options.tableRefreshIntervalMs) return;
    this.#refresh(now() + this.options.requestTimeoutMs).catch(() => {
      // A failed background refresh is retried by the next error that asks for one.
    });
  }

  /** Starts a background leader discovery unless one ran less than `intervalMs` ago (or it is off). */
  #discoverLeadersEvery(intervalMs: number): void {
    if (this.options.leaderDiscoveryIntervalMs === 0 || this.#discovering || !this.#table || this.#closed)
      return;
    if (now() - this.#lastDiscoveryAt < intervalMs) return;
    this.#lastDiscoveryAt = now();
    this.stats.leaderDiscoveries++;
    this.#discovering = this.#discoverLeaders().finally(() => {
      this.#discovering = null;
    });
  }

  /**
   * Asks every server of the table for its status and caches, per partition, the server that reports
   * itself leader of its replica of that group. Servers that do not answer are skipped. Never rejects.
   */
  async #discoverLeaders(): Promise<void> {
    const table = this.#table;
    if (!table) return;
    const version = table.version;
    await Promise.all(
      table.nodes.map(async ({ id, address }) => {
        const outcome = await this.#send(
          address,
          { type: 'status', id: this.#nextId++ },
          this.options.attemptTimeoutMs,
        );
        if (outcome.kind !== 'reply' || outcome.message.type !== 'status.ok' || this.#closed) return;
        const status = outcome.message.status;
        if (status.table && status.table.version > version) this.#adoptTable(status.table);
        if (this.#table?.version !== version || status.node !== id) return;
        for (const g of status.groups) {
          if (g.role === 'leader' && g.leader === id) this.#leaders.set(g.partition, { node: id, address });
        }
      }),
    );
  }

  /** Fetches the table from any reachable server (single flight: concurrent callers share one fetch). */
  #refresh(deadline: number): Promise<LookupTable> {
    if (this.#refreshing) return this.#refreshing;
    this.#lastRefreshAt = now();
    const p = this.#fetchTable(deadline).finally(() => {
      this.#refreshing = null;
    });
    this.#refreshing = p;
    return p;
  }

  async #fetchTable(deadline: number): Promise<LookupTable> {
    const budget = deadline - now();
    let lastError: PaxkvError | undefined;
    for (let round = 0; ; round++) {
      for (const address of this.#candidates()) {
        if (this.#closed) throw new ClientClosedError({ uncertain: false });
        const remaining = deadline - now();
        if (remaining <= 0) break;
        this.stats.tableFetches++;
        const outcome = await this.#send(
          address,
          { type: 'lookup', id: this.#nextId++ },
          Math.min(this.options.attemptTimeoutMs, remaining),
        );
        if (outcome.kind === 'reply' && outcome.message.type === 'lookup.ok') {
          return this.#adoptTable(outcome.message.table);
        }
        // A refused login or certificate: retrying will not fix it, say why now.
        if (outcome.kind === 'not-sent' && outcome.error && !outcome.error.retryable) throw outcome.error;
        lastError = this.#outcomeError(outcome, address) ?? lastError;
      }
      if (this.#closed) throw new ClientClosedError({ uncertain: false });
      if (!(await this.#backoff(round, deadline))) break;
    }
    throw this.#gaveUp('lookup', budget, lastError, false);
  }

  /** Keeps the newer of the cached table and `table`; a new version resets the leader cache. */
  #adoptTable(table: LookupTable): LookupTable {
    const current = this.#table;
    if (current && table.version <= current.version) return current;
    if (table.groups.length === 0) return current ?? table;
    this.#table = table;
    this.#leaders.clear();
    this.#cursor.clear();
    this.#closeChannelsOutside(table);
    this.#lastDiscoveryAt = Number.NEGATIVE_INFINITY;
    queueMicrotask(() => this.#discoverLeadersEvery(0));
    return table;
  }

  /** Servers to ask for the table or status: the table's nodes then the seeds, rotating the start. */
  #candidates(): string[] {
    const all = [...new Set([...(this.#table?.nodes.map((n) => n.address) ?? []), ...this.options.servers])];
    const start = this.#seedCursor++ % all.length;
    return [...all.slice(start), ...all.slice(0, start)];
  }

  // ---- plumbing -------------------------------------------------------------------------------

  #send(
    address: string,
    request: Parameters<Channel['request']>[0],
    timeoutMs: number,
  ): Promise<AttemptOutcome> {
    let channel = this.#channels.get(address);
    if (channel) {
      // Least recently used first: re-inserting moves the channel to the end of the map's order.
      this.#channels.delete(address);
    } else {
      if (this.#closed) return Promise.resolve({ kind: 'not-sent', reason: 'client closed' });
      if (this.#channels.size >= this.options.maxConnections && !this.#evictIdleChannel()) {
        return Promise.resolve({
          kind: 'not-sent',
          reason: `no connection to ${address}: maxConnections (${this.options.maxConnections}) connections are open, all busy`,
        });
      }
      channel = new Channel(address, this.#factory);
    }
    this.#channels.set(address, channel);
    return channel.request(request, timeoutMs);
  }

  /** Closes the least recently used channel with nothing in flight. Returns false if every one is busy. */
  #evictIdleChannel(): boolean {
    for (const [address, c] of this.#channels) {
      if (c.idle) {
        c.close();
        this.#channels.delete(address);
        return true;
      }
    }
    return false;
  }

  /** Closes the idle channels to servers that are neither in `table` nor seeds (they left the cluster). */
  #closeChannelsOutside(table: LookupTable): void {
    const keep = new Set([...table.nodes.map((n) => n.address), ...this.options.servers]);
    for (const [address, c] of this.#channels) {
      if (!keep.has(address) && c.idle) {
        c.close();
        this.#channels.delete(address);
      }
    }
  }

  #outcomeError(outcome: AttemptOutcome, address: string): PaxkvError | undefined {
    switch (outcome.kind) {
      case 'reply':
        return outcome.message.type === 'error'
          ? errorFromWire(outcome.message)
          : new UnexpectedReplyError({ address, got: outcome.message.type });
      case 'timeout':
        return new TimeoutError({
          timeoutMs: this.options.attemptTimeoutMs,
          operation: `a request to ${address}`,
        });
      case 'closed':
        return new ConnectionClosedError({ address, reason: 'it broke while a request was in flight' });
      case 'not-sent':
        return outcome.error ?? new UnavailableError({ reason: outcome.reason });
    }
  }

  /** Sleeps the backoff of retry `attempt`, cut at the deadline. Returns false if the deadline is reached. */
  async #backoff(attempt: number, deadline: number): Promise<boolean> {
    const remaining = deadline - now();
    if (remaining <= 0 || this.#closed) return false;
    const delay = Math.min(backoffDelay(attempt, this.options.backoff, this.options.random), remaining);
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, delay);
      this.#sleepers.add(wake);
    });
    return deadline - now() > 0 && !this.#closed;
  }

  /** The error a call ends with when its deadline passes. */
  #gaveUp(what: string, budgetMs: number, lastError: PaxkvError | undefined, uncertain: boolean): PaxkvError {
    const last = lastError ? ` Last error: ${lastError.message}` : '';
    if (uncertain || !lastError) {
      return new TimeoutError(
        { timeoutMs: Math.round(budgetMs), operation: what },
        {
          ...(lastError ? { cause: lastError } : {}),
          message: `${what} timed out after ${Math.round(budgetMs)} ms; ${
            uncertain ? 'its outcome is unknown (a write may have been applied)' : 'it was not applied'
          }.${last}`,
        },
      );
    }
    return lastError;
  }

  async #enter(deadline: number, op: KvOp): Promise<void> {
    if (this.#inFlight >= this.options.maxInFlight && this.#waiting.length >= this.options.maxQueuedCalls) {
      throw new ClientOverloadedError({
        queued: this.#waiting.length,
        maxQueuedCalls: this.options.maxQueuedCalls,
        maxInFlight: this.options.maxInFlight,
      });
    }
    while (this.#inFlight >= this.options.maxInFlight) {
      const remaining = deadline - now();
      if (remaining <= 0 || this.#closed) {
        if (this.#closed) throw new ClientClosedError({ uncertain: false });
        throw new TimeoutError(
          { operation: op.op },
          {
            message: `${op.op} waited for a free slot (maxInFlight ${this.options.maxInFlight}) until its deadline; it was not sent`,
          },
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          const i = this.#waiting.indexOf(go);
          if (i >= 0) this.#waiting.splice(i, 1);
          resolve();
        }, remaining);
        const go = () => {
          clearTimeout(timer);
          resolve();
        };
        this.#waiting.push(go);
      });
    }
    this.#inFlight++;
  }

  #leave(): void {
    this.#inFlight--;
    this.#waiting.shift()?.();
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClientClosedError({ uncertain: false });
  }
}

/** The page of `op` made of `kvs`, with where to continue when `more`. */
function pageOf(op: RangeOp, kvs: readonly KeyValue[], more: boolean, revisions: ResultHeader[]): RangePage {
  const last = kvs[kvs.length - 1];
  if (!more || last === undefined) return { kvs, more: false, revisions };
  // Forward: continue just after the last key ('\0' is the smallest code point); reverse: before it.
  const next = op.reverse ? { start: op.start, end: last.key } : { start: `${last.key}\u0000`, end: op.end };
  return { kvs, more: true, next, revisions };
}

/**
 * Merges one page per partition by key. A partition that has more keys than it returned bounds the
 * merged page: no key beyond its last one may be returned (it may hold keys before them).
 */
function mergePages(op: RangeOp, parts: readonly RangeResult[]): RangePage {
  const dir = op.reverse ? -1 : 1;
  const cmp = (a: string, b: string) => dir * compareKeys(a, b);
  let bound: string | undefined;
  for (const p of parts) {
    const last = p.kvs[p.kvs.length - 1];
    if (p.more && last !== undefined && (bound === undefined || cmp(last.key, bound) < 0)) bound = last.key;
  }
  const all = parts.flatMap((p) => p.kvs).sort((a, b) => cmp(a.key, b.key));
  const limit = op.limit ?? Number.POSITIVE_INFINITY;
  const kvs: KeyValue[] = [];
  for (const kv of all) {
    if (kvs.length >= limit || (bound !== undefined && cmp(kv.key, bound) > 0)) break;
    kvs.push(kv);
  }
  const more = kvs.length < all.length || parts.some((p) => p.more);
  return pageOf(
    op,
    kvs,
    more,
    parts.map((p) => ({ partition: p.partition, revision: p.revision })),
  );
}

/** A short description of an operation for error messages: its name and (first) key. */
function describeOp(op: KvOp): string {
  const clip = (k: string) => `'${k.length > 40 ? `${k.slice(0, 40)}…` : k}'`;
  switch (op.op) {
    case 'txn': {
      const first = txnKeys(op)[0];
      return first === undefined ? 'txn' : `txn on ${clip(first)}`;
    }
    case 'range':
      return `range from ${clip(op.start)}${op.partition === undefined ? '' : ` of partition ${op.partition}`}`;
    case 'lease-grant':
    case 'lease-list':
    case 'snapshot':
    case 'restore':
      return `${op.op} in partition ${op.partition}`;
    case 'lease-revoke':
    case 'lease-expire':
    case 'lease-keepalive':
      return `${op.op} ${op.lease}`;
    case 'lease-timetolive':
      return op.lease !== undefined ? `${op.op} ${op.lease}` : `${op.op} of ${clip(op.key ?? '')}`;
    default:
      return `${op.op} ${clip(op.key)}`;
  }
}

/**
 * Checks what TypeScript cannot guarantee for JavaScript callers: the operation against the wire
 * schema (types, empty keys, revisions), and the timeout.
 */
function checkInput(op: KvOp, timeoutMs: number | undefined): BadRequestError | undefined {
  if (!plainGetOrPut(op)) {
    const parsed = KvOpSchema.safeParse(op);
    if (!parsed.success) return zodErrorToBadRequest(parsed.error);
  }
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    return new BadRequestError({
      field: 'timeoutMs',
      problem: `must be a positive number of ms, got ${timeoutMs}`,
    });
  }
  return undefined;
}

function asPaxkvError(e: unknown): PaxkvError {
  if (e instanceof Error && 'code' in e && 'retryable' in e) return e as PaxkvError;
  return new UnavailableError({ reason: e instanceof Error ? e.message : String(e) });
}

/**
 * Creates a client of the cluster reachable through `options.servers`. Connections open lazily on
 * the first call. See {@link ClientOptions} for the options and their defaults.
 * @throws {@link ConfigError} if an option is invalid.
 */
export function createClient(options: ClientOptions): PaxkvClient {
  return new PaxkvClient(options);
}

/** A refused login or TLS certificate: configuration, not a transient failure. */
function isCredentialError(e: PaxkvError): boolean {
  return !e.retryable && (e.code === 'UNAUTHENTICATED' || e.code === 'TLS_FAILED');
}

/** `{ timeoutMs }` of `options` when set (for forwarding a deadline to an inner call). */
function timeout(options: CallOptions): CallOptions {
  return options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
}
