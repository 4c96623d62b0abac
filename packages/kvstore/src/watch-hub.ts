/**
 * Watches: the change stream of one partition, in revision order, resumable from a revision.
 *
 * Every replica records the changes it applies (a put or a delete of a key, with the partition's
 * revision after the entry) in a bounded in-memory history, so any replica that has applied a revision
 * can serve watchers from it: a stream needs no leader. A watcher asks for every change of a key or a
 * key prefix from `fromRevision` on; it gets the recorded history from there, then every new change as
 * it is applied. If `fromRevision` is older than the history kept (the history is bounded, and after a
 * restart or a snapshot install it starts at the state's revision), the watch is refused with the first
 * revision still available, and the watcher must re-read the state and watch from there (etcd's
 * "compacted" answer).
 *
 * Several changes can share one revision (a transaction, or a lease whose keys are deleted together);
 * they are delivered together in one batch, in the order they were applied.
 * @module
 */
import type { Value } from '@paxkv/common';

/** One change of one key. */
export interface ChangeEvent {
  /** `put` (created or overwritten) or `delete`. */
  readonly type: 'put' | 'delete';
  /** The key that changed. */
  readonly key: string;
  /** The value written (puts only). */
  readonly value?: Value;
  /** The partition's revision after the change. */
  readonly revision: number;
}

/** What a watcher wants: one key, or every key starting with a prefix. */
export interface WatchFilter {
  /** Exact key (exclusive with `prefix`). */
  readonly key?: string;
  /** Key prefix; `''` watches every key of the partition (exclusive with `key`). */
  readonly prefix?: string;
}

/** A watcher's sink: receives batches of events in revision order. */
export type WatchSink = (events: readonly ChangeEvent[]) => void;

/** An open watch. */
export interface WatchHandle {
  /** Delivers the recorded history from the watch's revision (call once, before anything else happens). */
  replay(): void;
  /** Stops delivery. */
  cancel(): void;
}

/** Tunables of a {@link WatchHub}. */
export interface WatchHubConfig {
  /** Most change events kept for resuming watchers. Default 10 000. */
  readonly historyEvents: number;
  /** Most watchers open at once on this replica. Default 10 000. */
  readonly maxWatchers: number;
}

/** Defaults of {@link WatchHubConfig}. */
export const DEFAULT_WATCH_HUB_CONFIG: Readonly<WatchHubConfig> = Object.freeze({
  historyEvents: 10_000,
  maxWatchers: 10_000,
});

/** Why a watch could not be opened. */
export type WatchRefusal =
  | { readonly reason: 'compacted'; readonly compactRevision: number }
  | { readonly reason: 'too-many-watchers'; readonly limit: number };

interface Watcher {
  readonly filter: WatchFilter;
  readonly sink: WatchSink;
  /** Deliver only events with revision >= this (history replay already covered the rest). */
  readonly from: number;
}

function matches(f: WatchFilter, key: string): boolean {
  return f.key !== undefined ? f.key === key : key.startsWith(f.prefix ?? '');
}

/** See the module comment. One hub per replica group. */
export class WatchHub {
  private readonly config: WatchHubConfig;
  /** Ring of recent events; `head` is the oldest. */
  private readonly ring: (ChangeEvent | undefined)[];
  private head = 0;
  private count = 0;
  /** Every revision above `floor` is complete in the ring (or not yet applied). */
  private floor: number;
  private readonly watchers = new Set<Watcher>();
  /**
   * The watchers indexed for delivery: key watchers by key (one map lookup per event), prefix watchers
   * by prefix (one `startsWith` per distinct prefix and event), so an entry costs O(its events × distinct
   * prefixes + matching watchers), not O(every watcher).
   */
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly byPrefix = new Map<string, Set<Watcher>>();
  /** Events of the entry being applied, delivered together by {@link WatchHub.endEntry}. */
  private batch: ChangeEvent[] = [];

  /**
   * @param revision the state's revision when the hub starts (history is complete above it)
   * @param config overrides of {@link DEFAULT_WATCH_HUB_CONFIG}
   */
  constructor(revision: number, config: Partial<WatchHubConfig> = {}) {
    this.config = { ...DEFAULT_WATCH_HUB_CONFIG, ...config };
    for (const k of ['historyEvents', 'maxWatchers'] as const) {
      const v = this.config[k];
      if (!Number.isSafeInteger(v) || v < 1)
        throw new RangeError(`watch hub config.${k} must be a positive integer, got ${String(v)}`);
    }
    this.ring = new Array(this.config.historyEvents);
    this.floor = revision;
  }

  /** Number of open watchers. */
  get watcherCount(): number {
    return this.watchers.size;
  }

  /** The oldest revision a new watch can start from. */
  get oldestRevision(): number {
    return this.floor + 1;
  }

  /** Records one change of the entry being applied (delivered at {@link WatchHub.endEntry}). */
  record(event: ChangeEvent): void {
    if (this.count === this.ring.length) {
      const dropped = this.ring[this.head] as ChangeEvent;
      this.floor = Math.max(this.floor, dropped.revision);
      this.head = (this.head + 1) % this.ring.length;
      this.count--;
    }
    this.ring[(this.head + this.count) % this.ring.length] = event;
    this.count++;
    this.batch.push(event);
  }

  /**
   * The entry's changes are complete: delivers them to every matching watcher. (A revision whose
   * events were partly dropped from the ring is at or below `floor`, so no new watch starts inside it.)
   */
  endEntry(): void {
    if (this.batch.length === 0) return;
    const events = this.batch;
    this.batch = [];
    if (this.watchers.size === 0) return;
    const out = new Map<Watcher, ChangeEvent[]>();
    const add = (set: Set<Watcher> | undefined, e: ChangeEvent) => {
      if (set === undefined) return;
      for (const w of set) {
        if (e.revision < w.from) continue;
        const list = out.get(w);
        if (list) list.push(e);
        else out.set(w, [e]);
      }
    };
    for (const e of events) {
      add(this.byKey.get(e.key), e);
      for (const [prefix, set] of this.byPrefix) if (e.key.startsWith(prefix)) add(set, e);
    }
    // A sink may cancel watchers (itself or others): only the ones still open get their events.
    for (const [w, mine] of out) if (this.watchers.has(w)) w.sink(mine);
  }

  private index(w: Watcher): void {
    const [map, k] =
      w.filter.key !== undefined ? [this.byKey, w.filter.key] : [this.byPrefix, w.filter.prefix ?? ''];
    const set = map.get(k);
    if (set) set.add(w);
    else map.set(k, new Set([w]));
  }

  private unindex(w: Watcher): void {
    const [map, k] =
      w.filter.key !== undefined ? [this.byKey, w.filter.key] : [this.byPrefix, w.filter.prefix ?? ''];
    const set = map.get(k);
    set?.delete(w);
    if (set?.size === 0) map.delete(k);
  }

  /**
   * The state was replaced by a snapshot at `revision`: history restarts there. Open watchers keep
   * going: a snapshot only ever moves a replica forward past changes it never applied, so the caller
   * must cancel them with a compacted error if it cannot tell them what they missed.
   */
  reset(revision: number): void {
    this.ring.fill(undefined);
    this.head = 0;
    this.count = 0;
    this.batch = [];
    this.floor = revision;
  }

  /** Cancels every watcher (the replica stopped or its history was replaced). */
  cancelAll(): Watcher[] {
    const all = [...this.watchers];
    this.watchers.clear();
    this.byKey.clear();
    this.byPrefix.clear();
    return all;
  }

  /**
   * Opens a watch from `fromRevision` (which must be > the hub's floor, i.e. still in history or in the
   * future). The matching history goes to `sink` when the caller calls `replay()` on the handle (so it
   * can first announce the stream), new changes as they are applied.
   */
  watch(filter: WatchFilter, fromRevision: number, sink: WatchSink): WatchHandle | WatchRefusal {
    if (fromRevision <= this.floor) return { reason: 'compacted', compactRevision: this.floor + 1 };
    if (this.watchers.size >= this.config.maxWatchers)
      return { reason: 'too-many-watchers', limit: this.config.maxWatchers };
    const replay: ChangeEvent[] = [];
    for (let i = 0; i < this.count; i++) {
      const e = this.ring[(this.head + i) % this.ring.length] as ChangeEvent;
      if (e.revision >= fromRevision && matches(filter, e.key)) replay.push(e);
    }
    const w: Watcher = { filter, sink, from: fromRevision };
    this.watchers.add(w);
    this.index(w);
    let replayed = false;
    return {
      replay: () => {
        if (replayed || !this.watchers.has(w)) return;
        replayed = true;
        if (replay.length > 0) sink(replay);
      },
      cancel: () => {
        if (this.watchers.delete(w)) this.unindex(w);
      },
    };
  }
}
