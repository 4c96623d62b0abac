/**
 * Locks and leader election for applications, built on leases, transactions and watches: the recipes
 * of etcd's `concurrency` package (`Mutex`, `Election`), with the same guarantees and the same limits.
 *
 * How a lock is taken (an election campaign is the same with a value):
 * 1. grant a lease (`ttlMs`, 10 s by default) in the lock's partition and keep it alive in the
 *    background;
 * 2. put a key of our own, `<prefix><lease id in hex>`, attached to that lease: the revision that creates
 *    it is our place in the queue and our **fencing token** (revisions of a partition only grow, so a
 *    later holder always has a larger token);
 * 3. read the lock's keys: if none was created before ours we hold the lock; otherwise watch the key
 *    created just before ours (from the revision after the read, so its delete cannot slip by) until it
 *    is deleted, and read again. Only the predecessor is watched, so a release wakes one waiter, not the
 *    herd, and nothing polls.
 *
 * A holder that dies or pauses stops renewing its lease: the leader expires it through the log after the
 * TTL (plus a grace period if the leader changed), which deletes its key and lets the next waiter in. A
 * holder cannot know for sure when that happened (it may be paused right now), so a write that must not
 * come from a former holder is **fenced**: {@link Lock.txn} and {@link Lock.put} run only while the lock's
 * key still carries the holder's token (one transaction: keys in the lock's partition), and a resource
 * elsewhere should refuse requests carrying a token smaller than the largest it has seen.
 *
 * The keys of lock `name` live under `name/` when `name` has a hash tag (`{jobs}:lock`), else under
 * `{name}/`: one partition either way, because revisions order keys only within a partition. Fenced
 * writes must use keys of that partition (the same hash tag).
 * @module
 */
import {
  type Compare,
  hashTagOf,
  type KeyValue,
  type PaxkvError,
  prefixEnd,
  type TxnRequest,
  type Value,
} from '@paxkv/common';
import type { PaxkvClient, TxnCallResult, TxnRequestInput } from './client.js';
import { ClientClosedError, LeaseNotFoundError, LockLostError, WatchCompactedError } from './errors.js';

/** Default lease TTL of a lock or a campaign, in ms: a dead holder is replaced about this long after it stopped. */
export const DEFAULT_LOCK_TTL_MS = 10_000;

/** Options of {@link PaxkvClient.lock} and of an {@link Election}. */
export interface LockOptions {
  /**
   * TTL of the holder's lease in ms (at least 1 s). A holder that stops renewing (crashed, paused,
   * partitioned away) loses the lock about this long later. Default {@link DEFAULT_LOCK_TTL_MS}.
   */
  readonly ttlMs?: number;
  /**
   * Stop waiting (and give up the place in the queue) when this signal aborts; the call rejects with the
   * signal's reason. Example: `AbortSignal.timeout(5_000)`. Default: wait as long as it takes.
   */
  readonly signal?: AbortSignal;
  /** Keep-alive period in ms. Default: a third of `ttlMs`. */
  readonly keepAliveIntervalMs?: number;
}

/** The key prefix under which lock or election `name` keeps its keys (one partition, see the module notes). */
export function recipePrefix(name: string): string {
  if (name.length === 0) throw new RangeError('a lock or election needs a non-empty name');
  return hashTagOf(name) !== undefined ? `${name}/` : `{${name}}/`;
}

/**
 * A held lock. `token` is its fencing token; `signal` aborts when the lock is lost (lease gone, or no
 * keep-alive confirmed for a whole TTL: another client may hold it now) or released.
 */
export class Lock {
  /** The lock's name. */
  readonly name: string;
  /** This holder's key (under the lock's prefix, attached to its lease). */
  readonly key: string;
  /** Fencing token: the revision that created {@link Lock.key}. Later holders have larger tokens. */
  readonly token: number;
  /** The holder's lease. */
  readonly lease: number;
  /** The partition of the lock's keys (fenced writes must use keys of it). */
  readonly partition: number;
  /** Aborts when the lock is lost or released; its `reason` is a {@link LockLostError} when lost. */
  readonly signal: AbortSignal;
  readonly #client: PaxkvClient;
  readonly #holder: Holder;

  /** @internal Use {@link PaxkvClient.lock}. */
  constructor(client: PaxkvClient, holder: Holder) {
    this.#client = client;
    this.#holder = holder;
    this.name = holder.name;
    this.key = holder.key;
    this.token = holder.token;
    this.lease = holder.lease;
    this.partition = holder.partition;
    this.signal = holder.lost.signal;
  }

  /** True while neither lost nor released (as far as this client knows: fence writes that matter). */
  get held(): boolean {
    return !this.signal.aborted;
  }

  /**
   * A transaction that runs `success` only while this lock is held: `compare` gets one more compare,
   * that the lock's key still has this holder's token. Keys must be in the lock's partition.
   * `succeeded: false` means a compare failed: check {@link Lock.stillHeld} to tell a lost lock apart.
   */
  txn(request: TxnRequestInput, options: { readonly timeoutMs?: number } = {}): Promise<TxnCallResult> {
    return this.#client.txn({ ...request, compare: [this.#fence(), ...(request.compare ?? [])] }, options);
  }

  /**
   * Writes `value` under `key` only while this lock is held (fenced by its token, one transaction).
   * @throws {@link LockLostError} if the lock's key no longer carries this holder's token: nothing written.
   */
  async put(
    key: string,
    value: Value,
    options: { readonly timeoutMs?: number; readonly lease?: number } = {},
  ): Promise<TxnCallResult> {
    const put: TxnRequest = {
      put: { key, value, ...(options.lease !== undefined ? { lease: options.lease } : {}) },
    };
    const r = await this.txn(
      { success: [put] },
      options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs },
    );
    if (!r.succeeded) {
      const e = new LockLostError({
        name: this.name,
        token: this.token,
        why: 'its key is gone (fenced write refused)',
      });
      this.#holder.lose(e);
      throw e;
    }
    return r;
  }

  /** Whether the lock's key still carries this holder's token (a linearizable read). */
  async stillHeld(options: { readonly timeoutMs?: number } = {}): Promise<boolean> {
    const e = await this.#client.getEntry(this.key, options);
    return e.createRevision === this.token;
  }

  /** Releases the lock: revokes the lease (deleting the key wakes the next waiter). Idempotent. */
  async unlock(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    await this.#holder.release(options);
  }

  #fence(): Compare {
    return { key: this.key, target: 'createRevision', op: '=', value: this.token };
  }
}

/** A won election: a {@link Lock} whose key holds the leader's value, with `proclaim` and `resign`. */
export class Leadership extends Lock {
  /**
   * Replaces the leader's value (observers see it), only while still leader (fenced by the token).
   * @throws {@link LockLostError} if the leadership was lost: nothing written.
   */
  async proclaim(value: Value, options: { readonly timeoutMs?: number } = {}): Promise<void> {
    await this.put(this.key, value, { ...options, lease: this.lease });
  }

  /** Gives up the leadership (or the candidacy): the next candidate becomes leader. Idempotent. */
  resign(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    return this.unlock(options);
  }
}

/** The leader of an election as observers see it. */
export interface ElectionLeader {
  /** The leader's key. */
  readonly key: string;
  /** The value it campaigned with or last proclaimed. */
  readonly value: Value;
  /** Its fencing token (the revision that created its key). */
  readonly token: number;
  /** The partition revision at which this was read or observed. */
  readonly revision: number;
}

/**
 * An election (etcd's `concurrency.Election`): candidates {@link Election.campaign} with a value; the
 * one whose key was created first leads until it resigns or its lease ends; anyone can read the
 * {@link Election.leader} or {@link Election.observe} every change of leader or value.
 */
export class Election {
  /** The election's name. */
  readonly name: string;
  /** The prefix of its keys. */
  readonly prefix: string;
  readonly #client: PaxkvClient;
  readonly #options: LockOptions;

  /** Use {@link PaxkvClient.election}. */
  constructor(client: PaxkvClient, name: string, options: LockOptions = {}) {
    this.#client = client;
    this.name = name;
    this.prefix = recipePrefix(name);
    this.#options = options;
  }

  /**
   * Becomes a candidate with `value` and resolves once leader (every earlier candidate resigned or lost
   * its lease). Rejects with the signal's reason if `options.signal` aborts first (the candidacy is
   * withdrawn), or with {@link LockLostError} if this candidate's lease is lost while waiting.
   */
  async campaign(value: Value, options: { readonly signal?: AbortSignal } = {}): Promise<Leadership> {
    const holder = await acquire(this.#client, this.name, this.prefix, value, {
      ...this.#options,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return new Leadership(this.#client, holder);
  }

  /** The current leader (a linearizable read), or null when there is no candidate. */
  async leader(): Promise<ElectionLeader | null> {
    const { kvs, revision } = await readAll(this.#client, this.prefix, false);
    return leaderOf(kvs, revision);
  }

  /**
   * Every change of leader or of the leader's value, as an async iterable: first the current leader
   * (or null), then one item per change, in revision order, none missed (the watch resumes across
   * replica failures; after a compaction it reads the state again). Leave the loop (or abort `signal`)
   * to stop.
   */
  async *observe(options: { readonly signal?: AbortSignal } = {}): AsyncGenerator<ElectionLeader | null> {
    const signal = options.signal;
    let last: ElectionLeader | null | undefined;
    const differs = (a: ElectionLeader | null | undefined, b: ElectionLeader | null): boolean =>
      a === undefined ||
      (a === null) !== (b === null) ||
      (a !== null && b !== null && (a.key !== b.key || a.token !== b.token || !sameValue(a.value, b.value)));
    while (!signal?.aborted) {
      const { kvs, revision } = await readAll(this.#client, this.prefix, false);
      const candidates = new Map<string, { token: number; value: Value }>();
      for (const kv of kvs) candidates.set(kv.key, { token: kv.createRevision, value: kv.value ?? '' });
      const first = leaderOfMap(candidates, revision);
      if (differs(last, first)) {
        last = first;
        yield first;
      }
      const w = this.#client.watch(this.prefix, { prefix: true, fromRevision: revision + 1 });
      const stop = () => w.cancel();
      signal?.addEventListener('abort', stop, { once: true });
      try {
        for await (const e of w) {
          if (e.type === 'delete') candidates.delete(e.key);
          else {
            const known = candidates.get(e.key);
            candidates.set(e.key, { token: known?.token ?? e.revision, value: e.value ?? '' });
          }
          const now = leaderOfMap(candidates, e.revision);
          if (differs(last, now)) {
            last = now;
            yield now;
          }
        }
        return; // cancelled (aborted)
      } catch (err) {
        if (!(err instanceof WatchCompactedError)) throw err;
        // History gone: read the state again and watch from there.
      } finally {
        signal?.removeEventListener('abort', stop);
        w.cancel();
      }
    }
  }
}

/**
 * What {@link Lock} wraps: the holder's lease, key and token, its keep-alive loop, and the signal that
 * aborts when it is lost or released.
 * @internal
 */
export interface Holder {
  readonly name: string;
  readonly key: string;
  readonly token: number;
  readonly lease: number;
  readonly partition: number;
  readonly lost: AbortController;
  lose(reason: PaxkvError): void;
  release(options: { readonly timeoutMs?: number }): Promise<void>;
}

/**
 * Takes lock (or campaigns in election) `name`: grant, put our key, wait for every key created before
 * it to be deleted. See the module notes.
 * @internal
 */
export async function acquire(
  client: PaxkvClient,
  name: string,
  prefix: string,
  value: Value,
  options: LockOptions,
): Promise<Holder> {
  const signal = options.signal;
  signal?.throwIfAborted();
  const { lease, ttlMs, partition } = await client.grant(options.ttlMs ?? DEFAULT_LOCK_TTL_MS, {
    key: prefix,
  });
  const key = `${prefix}${lease.toString(16)}`;
  const lost = new AbortController();
  let token = 0;
  const keeper = keepAlive(client, lease, ttlMs, options.keepAliveIntervalMs, (why) =>
    lost.abort(new LockLostError({ name, token, why })),
  );
  let released = false;
  const release = async (o: { readonly timeoutMs?: number }) => {
    keeper.stop();
    if (!lost.signal.aborted) lost.abort(new LockLostError({ name, token, why: 'it was released' }));
    if (released) return;
    released = true;
    await client.revoke(lease, o);
  };
  try {
    token = (await client.put(key, value, { lease })).createRevision;
    await waitForTurn(client, name, prefix, key, token, anySignal([signal, lost.signal]));
    return {
      name,
      key,
      token,
      lease,
      partition,
      lost,
      lose: (reason) => {
        keeper.stop();
        if (!lost.signal.aborted) lost.abort(reason);
      },
      release,
    };
  } catch (e) {
    // Give up our place (best effort: the lease expires by itself otherwise).
    await release({}).catch(() => {});
    if (signal?.aborted) throw signal.reason;
    throw e;
  }
}

/** Waits until no key under `prefix` was created before ours (`token`); fails if ours is gone. */
async function waitForTurn(
  client: PaxkvClient,
  name: string,
  prefix: string,
  key: string,
  token: number,
  signal: AbortSignal,
): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    const { kvs, revision } = await readAll(client, prefix, true);
    const mine = kvs.find((kv) => kv.key === key);
    if (mine?.createRevision !== token)
      throw new LockLostError({ name, token, why: 'its key is gone (the lease expired)' });
    let predecessor: KeyValue | undefined;
    for (const kv of kvs)
      if (kv.createRevision < token && (!predecessor || kv.createRevision > predecessor.createRevision))
        predecessor = kv;
    if (!predecessor) return;
    await waitForDelete(client, predecessor.key, revision + 1, signal);
  }
}

/** Resolves when `key` is deleted at or after `fromRevision` (or the history is gone: the caller reads again). */
async function waitForDelete(
  client: PaxkvClient,
  key: string,
  fromRevision: number,
  signal: AbortSignal,
): Promise<void> {
  const w = client.watch(key, { fromRevision });
  const stop = () => w.cancel();
  signal.addEventListener('abort', stop, { once: true });
  try {
    for await (const e of w) if (e.type === 'delete') return;
    signal.throwIfAborted();
  } catch (e) {
    if (!(e instanceof WatchCompactedError)) throw e;
  } finally {
    signal.removeEventListener('abort', stop);
    w.cancel();
  }
}

/** Every key under `prefix` (one partition), page after page, with the revision of the first page. */
async function readAll(
  client: PaxkvClient,
  prefix: string,
  keysOnly: boolean,
): Promise<{ kvs: KeyValue[]; revision: number }> {
  const kvs: KeyValue[] = [];
  let start = prefix;
  const end = prefixEnd(prefix);
  let revision: number | undefined;
  for (;;) {
    const page = await client.range(start, end, keysOnly ? { keysOnly: true } : {});
    revision ??= page.revisions[0]?.revision ?? 0;
    kvs.push(...page.kvs);
    if (!page.more || !page.next) return { kvs, revision };
    start = page.next.start;
  }
}

function leaderOf(kvs: readonly KeyValue[], revision: number): ElectionLeader | null {
  let best: KeyValue | undefined;
  for (const kv of kvs) if (!best || kv.createRevision < best.createRevision) best = kv;
  return best ? { key: best.key, value: best.value ?? '', token: best.createRevision, revision } : null;
}

function leaderOfMap(
  candidates: ReadonlyMap<string, { token: number; value: Value }>,
  revision: number,
): ElectionLeader | null {
  let best: ElectionLeader | null = null;
  for (const [key, c] of candidates)
    if (!best || c.token < best.token) best = { key, value: c.value, token: c.token, revision };
  return best;
}

function sameValue(a: Value, b: Value): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Keeps `lease` alive every `intervalMs` (a third of the TTL by default). `onLost` is called once when
 * the lease is found gone, or when no keep-alive was confirmed for a whole TTL: the leader may have
 * expired the lease since, so this holder must assume it lost the lock.
 */
function keepAlive(
  client: PaxkvClient,
  lease: number,
  ttlMs: number,
  intervalMs: number | undefined,
  onLost: (why: string) => void,
): { stop(): void } {
  const interval = intervalMs ?? Math.max(100, Math.floor(ttlMs / 3));
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // The TTL restarts when the leader serves a keep-alive, which is after we sent it: counting from the
  // send is the safe side.
  let confirmedAt = performance.now();
  const lose = (why: string) => {
    if (stopped) return;
    stopped = true;
    onLost(why);
  };
  const beat = async () => {
    if (stopped) return;
    const sentAt = performance.now();
    try {
      await client.keepAlive(lease, { timeoutMs: Math.max(interval, 1_000) });
      confirmedAt = sentAt;
    } catch (e) {
      if (e instanceof LeaseNotFoundError) return lose('its lease expired or was revoked');
      if (e instanceof ClientClosedError) return lose('the client was closed');
      // Transient (no leader during an election, ...): the next beat retries; the grace period covers it.
    }
    if (performance.now() - confirmedAt >= ttlMs)
      return lose(`no keep-alive was confirmed for ${ttlMs} ms (the lease may have expired)`);
    if (!stopped) timer = setTimeout(beat, interval);
  };
  timer = setTimeout(beat, interval);
  return {
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** A signal that aborts when any of `signals` does (with its reason). */
function anySignal(signals: readonly (AbortSignal | undefined)[]): AbortSignal {
  const c = new AbortController();
  for (const s of signals) {
    if (!s) continue;
    if (s.aborted) {
      c.abort(s.reason);
      break;
    }
    s.addEventListener('abort', () => c.abort(s.reason), { once: true });
  }
  return c.signal;
}
