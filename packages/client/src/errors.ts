/**
 * Errors specific to the client. They extend the shared paxkv error classes, so `code` and
 * `retryable` work as everywhere else.
 * @module
 */
import {
  ConnectionClosedError,
  InternalError,
  PaxkvError,
  type PaxkvErrorOptions,
  UnavailableError,
} from '@paxkv/common';

/**
 * The client was closed while the call was waiting or in flight. If `uncertain` is true a write
 * may still have been applied; read the key to find out.
 */
export class ClientClosedError extends ConnectionClosedError {
  /** True if the call had been sent without an answer (a write may have been applied). */
  readonly uncertain: boolean;
  constructor(details: { uncertain: boolean }, options?: PaxkvErrorOptions) {
    super(
      { reason: 'the client was closed' },
      {
        message: details.uncertain
          ? 'the client was closed while the call was in flight; its outcome is unknown: create a new client and read the key to find out'
          : 'the client is closed; create a new client with createClient()',
        ...options,
      },
    );
    this.uncertain = details.uncertain;
  }
}

/** A server answered with a message of the wrong kind (a protocol bug or a version mismatch). */
export class UnexpectedReplyError extends InternalError {
  /** The server that answered. */
  readonly address: string;
  /** The `type` of the reply that came. */
  readonly got: string;
  constructor(details: { address: string; got: string; expected?: string }, options?: PaxkvErrorOptions) {
    super(
      {
        reason: `${details.address} answered '${details.got}'${details.expected ? ` where '${details.expected}' was expected` : ''}; check that client and server versions match`,
      },
      options,
    );
    this.address = details.address;
    this.got = details.got;
  }
}

/**
 * A call was refused before it was sent: `maxInFlight` calls were in flight and `maxQueuedCalls`
 * more were already waiting. Nothing was applied. Retry after a backoff, or start calls no faster
 * than they complete (or raise the limits).
 */
export class ClientOverloadedError extends UnavailableError {
  /** Calls waiting when this one was refused. */
  readonly queued: number;
  /** The `maxQueuedCalls` option. */
  readonly maxQueuedCalls: number;
  constructor(
    details: { queued: number; maxQueuedCalls: number; maxInFlight: number },
    options?: PaxkvErrorOptions,
  ) {
    super(
      {},
      {
        message: `the client is overloaded: ${details.maxInFlight} calls in flight (maxInFlight) and ${details.queued} waiting (maxQueuedCalls ${details.maxQueuedCalls}); the call was not sent: retry after a backoff or start calls no faster than they complete`,
        ...options,
      },
    );
    this.queued = details.queued;
    this.maxQueuedCalls = details.maxQueuedCalls;
  }
}

/**
 * A watch asked for changes older than the history the cluster still keeps for that partition
 * (`compactRevision` is the oldest still available). Re-read the keys you watch (their `modRevision`
 * tells where they are), then watch again from `compactRevision`, or from the revision after your read.
 */
export class WatchCompactedError extends PaxkvError {
  override readonly code = 'COMPACTED' as const;
  override readonly retryable = false;
  /** The partition whose history no longer reaches back far enough. */
  readonly partition: number;
  /** The oldest revision of that partition a watch can start from now. */
  readonly compactRevision: number;
  constructor(
    details: { partition: number; asked: number; compactRevision: number },
    options?: PaxkvErrorOptions,
  ) {
    super(
      `revision ${details.asked} of partition ${details.partition} is compacted: re-read the watched keys and watch again from revision ${details.compactRevision} or later`,
      options,
    );
    this.partition = details.partition;
    this.compactRevision = details.compactRevision;
  }
}

/**
 * The watch's consumer fell too far behind: more than `maxBufferedEvents` events waited to be read.
 * Nothing was lost on the server: watch again from `resumeRevision` (per partition), reading faster or
 * with a larger buffer.
 */
export class WatchTooSlowError extends PaxkvError {
  override readonly code = 'TOO_SLOW' as const;
  override readonly retryable = true;
  /** The revision to resume from, per partition (the one after the last event delivered). */
  readonly resumeRevisions: Readonly<Record<number, number>>;
  constructor(
    details: { buffered: number; resumeRevisions: Record<number, number> },
    options?: PaxkvErrorOptions,
  ) {
    super(
      `the watch consumer fell behind with ${details.buffered} unread events; watch again from the revisions in resumeRevisions (read faster or raise maxBufferedEvents)`,
      options,
    );
    this.resumeRevisions = details.resumeRevisions;
  }
}

/** The lease is gone: it expired (no keep-alive for its TTL) or was revoked, and its keys with it. Grant a new one. */
export class LeaseNotFoundError extends PaxkvError {
  override readonly code = 'LEASE_NOT_FOUND' as const;
  override readonly retryable = false;
  /** The lease that is gone. */
  readonly lease: number;
  constructor(details: { lease: number }, options?: PaxkvErrorOptions) {
    super(
      `lease ${details.lease} is gone (it expired or was revoked, with its keys): grant a new lease`,
      options,
    );
    this.lease = details.lease;
  }
}

/**
 * A lock (or a leadership) is not held any more: its lease expired or was revoked (its key is gone, and
 * another holder may have taken over), or a fenced write found that the lock's key no longer carries the
 * holder's fencing token. Stop acting as the holder; take the lock again if needed.
 */
export class LockLostError extends PaxkvError {
  override readonly code = 'LOCK_LOST' as const;
  override readonly retryable = false;
  /** The lock's (or election's) name. */
  readonly lock: string;
  /** The fencing token the holder had (the revision that created its key; 0 if it never held it). */
  readonly token: number;
  constructor(details: { name: string; token: number; why: string }, options?: PaxkvErrorOptions) {
    super(
      `lock '${details.name}' (token ${details.token}) is not held: ${details.why}; stop acting as its holder and lock again`,
      options,
    );
    this.lock = details.name;
    this.token = details.token;
  }
}
