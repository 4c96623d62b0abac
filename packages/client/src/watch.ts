/**
 * `client.watch(key | prefix)`: the stream of changes to a key or a key prefix, as an async iterator.
 *
 * Revisions are per partition, so a watch is per partition underneath: a key (or a prefix inside one
 * hash tag, such as `{svc}:`) lives in one partition; any other prefix spans every partition, and the
 * watch opens one stream per partition and merges them (events of one partition stay in revision order;
 * events of different partitions are in arrival order, with no order between them).
 *
 * Each stream is served by any replica of its partition (no leader needed). When a stream breaks (the
 * connection dropped, the server restarted, the replica stopped) it is reopened on the next replica from
 * the revision after the last one received, so no event is missed and none is delivered twice. The
 * iterator fails only with a {@link WatchCompactedError} (the history of every replica of the partition
 * no longer reaches back to where the watch must resume: each keeps it since its own last restart, so
 * the other replicas are tried first) or a {@link WatchTooSlowError} (the consumer let more than `maxBufferedEvents`
 * events pile up): both say where to start again.
 * @module
 */
import {
  errorFromWire,
  hashTagOf,
  type LookupTable,
  type NodeId,
  type PaxkvError,
  partitionOf,
  type ServerResponse,
  type Value,
} from '@paxkv/common';
import type { Channel } from './connection.js';
import { WatchCompactedError, WatchTooSlowError } from './errors.js';

/** Default of {@link WatchOptions.maxBufferedEvents}. */
export const DEFAULT_WATCH_MAX_BUFFERED_EVENTS = 10_000;
/** Shortest and longest pause before a broken stream is reopened on another replica, in ms. */
export const WATCH_RETRY_MIN_MS = 20;
export const WATCH_RETRY_MAX_MS = 1_000;
/** How long to wait for a connection to a replica before trying the next one, in ms. */
export const WATCH_DIAL_TIMEOUT_MS = 2_000;

/** Options of {@link PaxkvClient.watch}. */
export interface WatchOptions {
  /** Watch every key starting with the given string instead of one key. Default false. */
  readonly prefix?: boolean;
  /**
   * First revision to deliver. A number is allowed only when the watch covers one partition (a key, or a
   * prefix inside one hash tag); for a multi-partition watch give a record `partition -> revision` (for
   * example a previous watch's `resumeRevisions`); partitions it does not name start from now.
   * Default: changes after the current revision.
   */
  readonly fromRevision?: number | Readonly<Record<number, number>>;
  /** Most events received but not yet read by the consumer; beyond, the watch fails with `WatchTooSlowError`. Default 10 000. */
  readonly maxBufferedEvents?: number;
}

/** One change delivered by a watch. */
export interface WatchEvent {
  /** `put` (created or overwritten) or `delete`. */
  readonly type: 'put' | 'delete';
  /** The key that changed. */
  readonly key: string;
  /** The value written (puts only). */
  readonly value?: Value;
  /** The partition's revision after the change (revisions are per partition). */
  readonly revision: number;
  /** The partition of the key. */
  readonly partition: number;
}

/** What a {@link Watch} needs from the client. */
export interface WatchDeps {
  /** The lookup table (refreshed from the cluster when `refresh`). */
  lookupTable(refresh: boolean): Promise<LookupTable>;
  /** A channel to `address` for this watch's streams (possibly shared with other watches). */
  openChannel(address: string): Channel;
  /** The watch no longer uses `channel` (the client closes it once no watch does). */
  releaseChannel(address: string, channel: Channel): void;
  /** The watch ended (cancelled or failed). */
  ended(): void;
  /** A fresh request id. */
  nextId(): number;
}

type StreamEnd =
  | { readonly kind: 'closed' }
  | { readonly kind: 'cancelled' }
  | { readonly kind: 'message'; readonly message: ServerResponse };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** An open watch: an async iterable of {@link WatchEvent}s. See the module comment. */
export class Watch implements AsyncIterable<WatchEvent> {
  /** Resolves once every partition's stream is open (changes after it are delivered); rejects if the watch fails first. */
  readonly ready: Promise<void>;
  readonly #deps: WatchDeps;
  readonly #target: { readonly key: string } | { readonly prefix: string };
  readonly #maxBuffered: number;
  readonly #queue: WatchEvent[] = [];
  #waiter: (() => void) | undefined;
  #failure: PaxkvError | undefined;
  #done = false;
  /** Per partition: the revision the next stream must start from (one after the last received). */
  readonly #next = new Map<number, number | undefined>();
  /** Per partition: one after the last revision handed to the consumer. */
  readonly #delivered = new Map<number, number>();
  readonly #channels = new Map<string, Channel>();
  readonly #cancels = new Set<() => void>();
  #readyPending = 0;
  #resolveReady!: () => void;
  #rejectReady!: (e: unknown) => void;

  /** Use {@link PaxkvClient.watch}. */
  constructor(deps: WatchDeps, keyOrPrefix: string, options: WatchOptions = {}) {
    this.#deps = deps;
    this.#target = options.prefix ? { prefix: keyOrPrefix } : { key: keyOrPrefix };
    this.#maxBuffered = options.maxBufferedEvents ?? DEFAULT_WATCH_MAX_BUFFERED_EVENTS;
    if (!Number.isSafeInteger(this.#maxBuffered) || this.#maxBuffered < 1)
      throw new RangeError(
        `maxBufferedEvents must be a positive integer, got ${String(options.maxBufferedEvents)}`,
      );
    if (!options.prefix && keyOrPrefix.length === 0) throw new RangeError('watch needs a non-empty key');
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // A failure before ready rejects it; nobody may be listening.
    this.ready.catch(() => {});
    void this.#start(keyOrPrefix, options);
  }

  /** Per partition, the revision to resume from to continue after the last event read. */
  get resumeRevisions(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const [p, next] of this.#next) {
      const r = this.#delivered.get(p) ?? next;
      if (r !== undefined) out[p] = r;
    }
    return out;
  }

  /** True once the watch ended (cancelled, or failed). */
  get ended(): boolean {
    return this.#done;
  }

  /** Ends the watch: streams are cancelled, the iterator finishes. */
  cancel(): void {
    if (this.#done) return;
    this.#done = true;
    for (const c of [...this.#cancels]) c();
    this.#cancels.clear();
    for (const [address, ch] of this.#channels) this.#deps.releaseChannel(address, ch);
    this.#channels.clear();
    this.#deps.ended();
    this.#wake();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    return {
      next: () => this.#nextEvent(),
      return: async () => {
        this.cancel();
        return { done: true, value: undefined };
      },
    };
  }

  async #nextEvent(): Promise<IteratorResult<WatchEvent>> {
    for (;;) {
      const e = this.#queue.shift();
      if (e) {
        this.#delivered.set(e.partition, e.revision + 1);
        return { done: false, value: e };
      }
      if (this.#failure) throw this.#failure;
      if (this.#done) return { done: true, value: undefined };
      await new Promise<void>((r) => {
        this.#waiter = r;
      });
    }
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  #fail(error: PaxkvError): void {
    if (this.#done) return;
    this.#failure = error;
    this.#rejectReady(error);
    this.cancel();
  }

  #push(
    partition: number,
    events: readonly { type: 'put' | 'delete'; key: string; value?: Value | undefined; revision: number }[],
  ): void {
    if (this.#done) return;
    for (const e of events)
      this.#queue.push(
        e.value === undefined
          ? { type: e.type, key: e.key, revision: e.revision, partition }
          : { type: e.type, key: e.key, value: e.value, revision: e.revision, partition },
      );
    if (this.#queue.length > this.#maxBuffered) {
      const resume = this.resumeRevisions;
      // Events still queued were never read: resume from the first of them per partition.
      for (const e of this.#queue) if (!this.#delivered.has(e.partition)) resume[e.partition] = e.revision;
      this.#queue.length = 0;
      this.#fail(new WatchTooSlowError({ buffered: this.#maxBuffered, resumeRevisions: resume }));
      return;
    }
    this.#wake();
  }

  async #start(keyOrPrefix: string, options: WatchOptions): Promise<void> {
    let table: LookupTable;
    try {
      table = await this.#deps.lookupTable(false);
    } catch (e) {
      this.#fail(e as PaxkvError);
      return;
    }
    const single = 'key' in this.#target || hashTagOf(keyOrPrefix) !== undefined;
    const partitions = single
      ? [partitionOf(keyOrPrefix, table.partitions)]
      : Array.from({ length: table.partitions }, (_, p) => p);
    const from = options.fromRevision;
    if (typeof from === 'number' && !single)
      throw new RangeError(
        'fromRevision as a number needs a watch on one partition (a key or a prefix inside one {hash tag}); pass a record partition -> revision',
      );
    for (const p of partitions) {
      const r = typeof from === 'number' ? from : from?.[p];
      this.#next.set(p, r);
    }
    this.#readyPending = partitions.length;
    for (const p of partitions) void this.#run(p);
  }

  /** Keeps one partition's stream open until the watch ends, moving between replicas as needed. */
  async #run(partition: number): Promise<void> {
    let attempt = 0;
    let opened = false;
    /** Replicas that answered `compacted` since the last stream opened, with their oldest revision. */
    const compacted = new Map<string, number>();
    while (!this.#done) {
      let table: LookupTable;
      try {
        table = await this.#deps.lookupTable(attempt > 0);
      } catch {
        await this.#pause(++attempt);
        continue;
      }
      const replicas = table.groups.find((g) => g.partition === partition)?.replicas ?? [];
      const node = replicas[attempt % Math.max(1, replicas.length)] as NodeId | undefined;
      const address = table.nodes.find((n) => n.id === node)?.address;
      if (address === undefined) {
        await this.#pause(++attempt);
        continue;
      }
      const end = await this.#stream(partition, address, () => {
        attempt = 0;
        compacted.clear();
        if (!opened) {
          opened = true;
          if (--this.#readyPending === 0) this.#resolveReady();
        }
      });
      if (end.kind === 'cancelled' || this.#done) return;
      if (end.kind === 'message') {
        const m = end.message;
        if (m.type === 'watch.end') {
          if (m.reason === 'cancelled') return;
          if (m.reason === 'compacted') {
            // Replicas keep history since their own last restart or snapshot install: another replica
            // may still have it. Fail only once every replica of the group said compacted.
            compacted.set(address, m.resumeRevision);
            if (compacted.size < replicas.length) {
              attempt++;
              continue;
            }
            this.#fail(
              new WatchCompactedError({
                partition,
                asked: this.#next.get(partition) ?? m.resumeRevision,
                compactRevision: Math.min(...compacted.values()),
              }),
            );
            return;
          }
          if (m.reason === 'too-slow') {
            // Our connection fell behind, not the consumer: the history still has it, resume at once.
            this.#next.set(partition, m.resumeRevision);
            continue;
          }
        } else if (m.type === 'error' && m.code !== 'UNAVAILABLE' && m.code !== 'NOT_READY') {
          this.#fail(errorFromWire(m));
          return;
        }
      }
      await this.#pause(++attempt);
    }
  }

  #pause(attempt: number): Promise<void> {
    const ms = Math.min(WATCH_RETRY_MAX_MS, WATCH_RETRY_MIN_MS * 2 ** Math.min(attempt, 10));
    return sleep(ms * (0.5 + Math.random() / 2));
  }

  #channel(address: string): Channel {
    let ch = this.#channels.get(address);
    if (!ch) {
      ch = this.#deps.openChannel(address);
      this.#channels.set(address, ch);
    }
    return ch;
  }

  /** One stream on one replica, until it ends; `onOpen` runs when the server confirmed it. */
  async #stream(partition: number, address: string, onOpen: () => void): Promise<StreamEnd> {
    const ch = this.#channel(address);
    if (!(await ch.whenOpen(WATCH_DIAL_TIMEOUT_MS)) || this.#done) return { kind: 'closed' };
    const id = this.#deps.nextId();
    const from = this.#next.get(partition);
    return new Promise<StreamEnd>((resolve) => {
      let settled = false;
      const finish = (end: StreamEnd) => {
        if (settled) return;
        settled = true;
        this.#cancels.delete(cancel);
        resolve(end);
      };
      const cancel = () => {
        ch.endStream(id, { type: 'watch.cancel', id });
        finish({ kind: 'cancelled' });
      };
      this.#cancels.add(cancel);
      const sent = ch.openStream(
        {
          type: 'watch',
          id,
          partition,
          ...('key' in this.#target ? { key: this.#target.key } : { prefix: this.#target.prefix }),
          ...(from !== undefined ? { fromRevision: from } : {}),
        },
        (m) => {
          if (m === null) return finish({ kind: 'closed' });
          switch (m.type) {
            case 'watch.ok':
              this.#next.set(partition, m.from);
              onOpen();
              return;
            case 'watch.events': {
              const last = m.events[m.events.length - 1];
              if (last === undefined) return;
              this.#next.set(partition, last.revision + 1);
              this.#push(partition, m.events);
              return;
            }
            default:
              ch.endStream(id);
              finish({ kind: 'message', message: m });
          }
        },
      );
      if (!sent) finish({ kind: 'closed' });
    });
  }
}
