/**
 * Checkers for what linearizability of single operations does not cover: watch streams, lease expiry
 * and locks. Each takes plain records (times in ms of one clock, for example `performance.now()` of the
 * process that ran the workload) and returns every violation found, described in words.
 *
 * - {@link checkWatchStreams}: every watcher's stream equals the sequence of committed writes of its
 *   keys (known from the acknowledged writes' revisions), in revision order, with no gap, no duplicate,
 *   and nothing that was never written.
 * - {@link checkLeaseHistory}: a key attached to a lease never disappears while the lease was kept alive
 *   within its TTL, is gone within TTL + grace (+ slack) after the last keep-alive, and is never read
 *   again once the lease's end was observed.
 * - {@link checkLockHistory}: the holders of a lock never overlap, fencing tokens grow in the order the
 *   lock was taken, and fenced writes never carry a token older than one already written.
 * @module
 */

/** The outcome of a checker: `ok` when `violations` is empty. */
export interface CoordinationCheck {
  readonly ok: boolean;
  /** Each violation found, in words (what, where, which records). */
  readonly violations: string[];
}

/** Most violations listed (the rest are counted in the last entry). */
export const MAX_VIOLATIONS_LISTED = 50;

function result(violations: string[]): CoordinationCheck {
  if (violations.length > MAX_VIOLATIONS_LISTED) {
    const more = violations.length - MAX_VIOLATIONS_LISTED;
    violations.length = MAX_VIOLATIONS_LISTED;
    violations.push(`... and ${more} more`);
  }
  return { ok: violations.length === 0, violations };
}

// ---- watches ----------------------------------------------------------------------------------------

/** A committed change of one key (from an acknowledged write: its result's revision and partition). */
export interface CommittedChange {
  readonly type: 'put' | 'delete';
  readonly key: string;
  /** The value written (puts), compared as text. */
  readonly value?: string;
  readonly revision: number;
  readonly partition: number;
}

/** One event as a watcher received it. */
export interface ObservedEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly value?: string;
  readonly revision: number;
  readonly partition: number;
}

/** One watcher's stream. */
export interface WatchStreamRecord {
  /** A name for messages. */
  readonly id: string;
  /** What it watched: one key, or every key starting with `prefix`. */
  readonly filter: { readonly key: string } | { readonly prefix: string };
  /**
   * Per partition, the first revision the stream had to deliver (the watch's `fromRevision`, or one
   * after the revision at which it was known to be open). Partitions not named are not checked for gaps
   * before their first event.
   */
  readonly from: Readonly<Record<number, number>>;
  /**
   * Per partition, the last revision the stream is known to have reached (for example the revision of
   * the last write the workload waited for). Default: the revision of its last event in that partition.
   */
  readonly through?: Readonly<Record<number, number>>;
  readonly events: readonly ObservedEvent[];
}

/** Options of {@link checkWatchStreams}. */
export interface WatchCheckOptions {
  /**
   * Writes whose outcome is unknown (no answer): an event that matches one of them (key, type, value) is
   * not a phantom, but no stream is required to contain it.
   */
  readonly uncertain?: readonly Omit<CommittedChange, 'revision' | 'partition'>[];
  /**
   * Allow delete events that match no committed change (deletes made by lease expiry, which no client
   * wrote). Default false.
   */
  readonly allowUnrecordedDeletes?: boolean;
}

function matches(filter: WatchStreamRecord['filter'], key: string): boolean {
  return 'key' in filter ? key === filter.key : key.startsWith(filter.prefix);
}

/**
 * Checks every watcher's stream against the committed changes: per partition the events are in revision
 * order; no event is delivered twice; every event is a committed change (same key, type, value,
 * revision) or an uncertain one; and every committed change of a watched key with a revision in the
 * stream's `[from, through]` range was delivered (no gap).
 */
export function checkWatchStreams(
  committed: readonly CommittedChange[],
  streams: readonly WatchStreamRecord[],
  options: WatchCheckOptions = {},
): CoordinationCheck {
  const violations: string[] = [];
  const byRevision = new Map<string, CommittedChange>();
  const id = (p: number, r: number, k: string) => `${p}/${r}/${k}`;
  for (const c of committed) {
    const k = id(c.partition, c.revision, c.key);
    const prev = byRevision.get(k);
    if (prev && (prev.type !== c.type || prev.value !== c.value))
      violations.push(
        `history: key '${c.key}' changed twice at revision ${c.revision} of partition ${c.partition} (${describe(prev)} and ${describe(c)}): two writes acknowledged with one revision`,
      );
    byRevision.set(k, c);
  }
  const uncertain = new Set((options.uncertain ?? []).map((u) => `${u.type}/${u.key}/${u.value ?? ''}`));
  for (const s of streams) {
    const last = new Map<number, number>();
    const seen = new Set<string>();
    for (const [i, e] of s.events.entries()) {
      const at = `stream ${s.id} event #${i} (${describe(e)})`;
      if (!matches(s.filter, e.key))
        violations.push(`${at}: key outside the watched ${filterText(s.filter)}`);
      const prev = last.get(e.partition);
      if (prev !== undefined && e.revision < prev)
        violations.push(`${at}: revision goes back from ${prev} in partition ${e.partition}`);
      last.set(e.partition, Math.max(prev ?? 0, e.revision));
      const k = id(e.partition, e.revision, e.key);
      if (seen.has(k)) violations.push(`${at}: delivered twice`);
      seen.add(k);
      const from = s.from[e.partition];
      if (from !== undefined && e.revision < from)
        violations.push(`${at}: before the stream's first revision ${from}`);
      const c = byRevision.get(k);
      if (c) {
        if (c.type !== e.type || (e.type === 'put' && c.value !== e.value))
          violations.push(`${at}: the committed change at that revision is ${describe(c)}`);
      } else if (
        !uncertain.has(`${e.type}/${e.key}/${e.value ?? ''}`) &&
        !(e.type === 'delete' && options.allowUnrecordedDeletes)
      ) {
        violations.push(`${at}: no such write was made (phantom event)`);
      }
    }
    // Gaps: every committed change of a watched key within [from, through] must be there.
    for (const c of committed) {
      if (!matches(s.filter, c.key)) continue;
      const from = s.from[c.partition];
      const through = s.through?.[c.partition] ?? last.get(c.partition);
      if (from === undefined || through === undefined) continue;
      if (c.revision < from || c.revision > through) continue;
      if (!seen.has(id(c.partition, c.revision, c.key)))
        violations.push(
          `stream ${s.id}: missed ${describe(c)} (the stream covers revisions ${from}..${through} of partition ${c.partition})`,
        );
    }
  }
  return result(violations);
}

function describe(c: ObservedEvent | CommittedChange): string {
  return `${c.type} '${c.key}'${c.type === 'put' ? `='${c.value ?? ''}'` : ''} @${c.partition}/${c.revision}`;
}

function filterText(f: WatchStreamRecord['filter']): string {
  return 'key' in f ? `key '${f.key}'` : `prefix '${f.prefix}'`;
}

// ---- leases -----------------------------------------------------------------------------------------

/** One operation on a leased key or its lease, with its invocation and completion times. */
export type LeaseEvent =
  /** The lease was granted (completed ok). */
  | { readonly kind: 'grant'; readonly invokedAt: number; readonly completedAt: number }
  /**
   * A keep-alive answered `found` (`ok: true`), not found (`ok: false`), or got no answer (`'unknown'`:
   * it may have renewed the lease, so it delays when the key must be gone, but proves nothing).
   */
  | {
      readonly kind: 'keepalive';
      readonly ok: boolean | 'unknown';
      readonly invokedAt: number;
      readonly completedAt: number;
    }
  /** The key was put with the lease (completed ok; attaching does not renew the lease). */
  | { readonly kind: 'put'; readonly invokedAt: number; readonly completedAt: number }
  /** A linearizable read of the key: present or absent. */
  | {
      readonly kind: 'read';
      readonly present: boolean;
      readonly invokedAt: number;
      readonly completedAt: number;
    }
  /** A revoke was sent (`completedAt`: when it was answered; an unanswered one counts from its invocation). */
  | { readonly kind: 'revoke'; readonly invokedAt: number; readonly completedAt: number }
  /** A watcher saw the key's delete (received at `completedAt`). */
  | { readonly kind: 'deleted'; readonly invokedAt: number; readonly completedAt: number };

/** The history of one key attached to one lease (the only key written there, put once, never deleted by a client). */
export interface LeaseHistory {
  /** A name for messages (the key). */
  readonly id: string;
  readonly ttlMs: number;
  readonly events: readonly LeaseEvent[];
}

/** Options of {@link checkLeaseHistory}. */
export interface LeaseCheckOptions {
  /** The servers' grace period after a leader change, in ms. Default 2 000 (the server's default). */
  readonly graceMs?: number;
  /**
   * Time allowed on top of TTL + grace for the expiry to commit and reach the reader (a log round trip,
   * clock drift). Default 2 000 ms.
   */
  readonly slackMs?: number;
}

/**
 * Checks one leased key against its history:
 * - **never early**: a read invoked after the put completed that found the key absent must not have
 *   completed before `t + ttl`, for the grant or any successful keep-alive invoked at `t` (the lease was
 *   alive when it was served, and due a TTL later at the earliest, on any leader), unless a revoke had
 *   been sent before the read completed;
 * - **gone in time**: a read invoked more than `ttl + grace + slack` after the completion of the last
 *   keep-alive that may have renewed the lease finds the key absent;
 * - **never read after its end**: once a revoke completed, a keep-alive answered not found, or a watcher
 *   saw the delete, no read invoked later finds the key.
 */
export function checkLeaseHistory(h: LeaseHistory, options: LeaseCheckOptions = {}): CoordinationCheck {
  const grace = options.graceMs ?? 2_000;
  const slack = options.slackMs ?? 2_000;
  const violations: string[] = [];
  // Proven renewals (the lease was alive when they were served, and due a TTL later at the earliest)...
  const renewals = h.events.filter((e) => e.kind === 'grant' || (e.kind === 'keepalive' && e.ok === true));
  const lastRenewalInvoked = Math.max(...renewals.map((e) => e.invokedAt), Number.NEGATIVE_INFINITY);
  // ... and possible ones (a keep-alive without an answer may have been served).
  const possible = h.events.filter((e) => e.kind === 'grant' || (e.kind === 'keepalive' && e.ok !== false));
  const lastRenewalCompleted = Math.max(...possible.map((e) => e.completedAt), Number.NEGATIVE_INFINITY);
  const putDone = Math.min(
    ...h.events.filter((e) => e.kind === 'put').map((e) => e.completedAt),
    Number.POSITIVE_INFINITY,
  );
  // A revoke (whatever its outcome) may delete the key from its invocation on.
  const revokeInvoked = Math.min(
    ...h.events.filter((e) => e.kind === 'revoke').map((e) => e.invokedAt),
    Number.POSITIVE_INFINITY,
  );
  const ended = Math.min(
    ...h.events
      .filter((e) => e.kind === 'revoke' || e.kind === 'deleted' || (e.kind === 'keepalive' && !e.ok))
      .map((e) => e.completedAt),
    Number.POSITIVE_INFINITY,
  );
  for (const e of h.events) {
    if (e.kind !== 'read') continue;
    if (
      !e.present &&
      e.invokedAt > putDone &&
      e.completedAt < lastRenewalInvoked + h.ttlMs &&
      e.completedAt < revokeInvoked
    )
      violations.push(
        `${h.id}: read absent at [${ms(e.invokedAt)}, ${ms(e.completedAt)}] while the lease was kept alive (renewed at ${ms(lastRenewalInvoked)}, TTL ${h.ttlMs} ms): the key disappeared early`,
      );
    if (e.present && e.invokedAt > lastRenewalCompleted + h.ttlMs + grace + slack)
      violations.push(
        `${h.id}: read present at ${ms(e.invokedAt)}, more than TTL ${h.ttlMs} + grace ${grace} + slack ${slack} ms after the last keep-alive (${ms(lastRenewalCompleted)}): the lease did not expire`,
      );
    if (e.present && e.invokedAt > ended)
      violations.push(
        `${h.id}: read present at ${ms(e.invokedAt)} after the lease's end was observed at ${ms(ended)}`,
      );
  }
  return result(violations);
}

function ms(t: number): string {
  return `${Math.round(t)} ms`;
}

// ---- locks ------------------------------------------------------------------------------------------

/** One holding of a lock: who, its fencing token, and when it was acquired and released. */
export interface LockRecord {
  readonly client: string | number;
  readonly token: number;
  /** When `lock()` resolved. */
  readonly acquiredAt: number;
  /**
   * When the holder stopped acting as holder (before `unlock()` was called), undefined if it never did
   * (crashed or paused while holding: then only the token order is checked for the next holder).
   */
  readonly releasedAt?: number;
}

/** A write to a fenced resource, in the order the resource applied them, with the token it carried. */
export interface FencedWrite {
  readonly client: string | number;
  readonly token: number;
}

/**
 * Checks a lock's holdings: ordered by acquisition, tokens strictly grow and each holding starts after
 * the previous one was released (mutual exclusion; a holding never released is exempt, its lease had to
 * expire); and `writes` (the resource's applied writes in order) never carry a token lower than an
 * earlier write's (a former holder's stale write).
 */
export function checkLockHistory(
  records: readonly LockRecord[],
  writes: readonly FencedWrite[] = [],
): CoordinationCheck {
  const violations: string[] = [];
  const sorted = [...records].sort((a, b) => a.acquiredAt - b.acquiredAt);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as LockRecord;
    const cur = sorted[i] as LockRecord;
    if (cur.token <= prev.token)
      violations.push(
        `token ${cur.token} of client ${cur.client} (acquired at ${ms(cur.acquiredAt)}) is not above token ${prev.token} of client ${prev.client}, acquired before it`,
      );
    if (prev.releasedAt !== undefined && cur.acquiredAt < prev.releasedAt)
      violations.push(
        `client ${cur.client} acquired at ${ms(cur.acquiredAt)} while client ${prev.client} held the lock (token ${prev.token}, until ${ms(prev.releasedAt)})`,
      );
  }
  let top: FencedWrite | undefined;
  for (const [i, w] of writes.entries()) {
    if (top && w.token < top.token)
      violations.push(
        `fenced write #${i} of client ${w.client} carries token ${w.token}, older than token ${top.token} already written by client ${top.client}: a stale holder's write was applied`,
      );
    if (!top || w.token > top.token) top = w;
  }
  return result(violations);
}
