/**
 * Watchers under the nemesis: N `client.watch` streams (half on single keys, half on the workload's whole
 * key prefix, which spans every partition) opened through the fault proxy before the workload starts and
 * kept through kills, pauses and partitions. After healing and the final reads, every stream must reach
 * the final state of its keys, and is checked with `checkWatchStreams` against the committed writes of the
 * history (acknowledged puts, applied CASes and deletes of present keys at their revisions; writes without
 * an answer may or may not appear): in revision order, no gap, no duplicate, nothing never written.
 */

import { createClient, type PaxkvClient, type Watch, type WatchEvent } from '@paxkv/client';
import type { TlsOptions } from '@paxkv/common';
import { partitionOf } from '@paxkv/common';
import {
  type CommittedChange,
  type CoordinationCheck,
  checkWatchStreams,
  type WatchStreamRecord,
} from '@paxkv/linearizability-checker';
import type { PairedOperation } from './history.js';

/** Watches per client connection set (each watch has its own connections; clients share the lookup table). */
const WATCHES_PER_CLIENT = 10;

interface OpenWatch {
  readonly id: string;
  readonly filter: { readonly key: string } | { readonly prefix: string };
  readonly keys: readonly string[];
  readonly watch: Watch;
  readonly events: WatchEvent[];
  from: Record<number, number>;
  failure: unknown;
  readonly done: Promise<void>;
}

/** What the watchers saw, for the run's summary. */
export interface WatchersSummary {
  readonly watchers: number;
  readonly events: number;
  /** Watchers that ended with an error (history compacted on every replica, too slow). */
  readonly failed: number;
  readonly check: CoordinationCheck;
}

/** `n` watchers on `keys` (see the module comment). */
export class WatcherPool {
  private constructor(
    private readonly clients: PaxkvClient[],
    private readonly watches: OpenWatch[],
    private readonly partitions: number,
  ) {}

  /** Opens the watchers and waits until every stream is open. */
  static async open(
    servers: readonly string[],
    n: number,
    keys: readonly string[],
    prefix: string,
    partitions: number,
    tls?: TlsOptions,
  ): Promise<WatcherPool> {
    const clients = Array.from({ length: Math.ceil(n / WATCHES_PER_CLIENT) }, () =>
      createClient({
        servers: [...servers],
        requestTimeoutMs: 30_000,
        ...(tls === undefined ? {} : { tls }),
      }),
    );
    const watches: OpenWatch[] = [];
    for (let i = 0; i < n; i++) {
      const client = clients[Math.floor(i / WATCHES_PER_CLIENT)] as PaxkvClient;
      const onKey = i % 2 === 1;
      const key = keys[i % keys.length] as string;
      const watch = onKey ? client.watch(key) : client.watch(prefix, { prefix: true });
      const events: WatchEvent[] = [];
      const w: Omit<OpenWatch, 'done'> & { done?: Promise<void> } = {
        id: `watcher-${i}`,
        filter: onKey ? { key } : { prefix },
        keys: onKey ? [key] : keys,
        watch,
        events,
        from: {},
        failure: undefined,
      };
      w.done = (async () => {
        try {
          for await (const e of watch) events.push(e);
        } catch (e) {
          w.failure = e;
        }
      })();
      watches.push(w as OpenWatch);
    }
    await Promise.all(
      watches.map(async (w) => {
        await w.watch.ready;
        // Before any event was read: where each partition's stream starts.
        w.from = w.watch.resumeRevisions;
      }),
    );
    return new WatcherPool(clients, watches, partitions);
  }

  /**
   * Waits (up to `timeoutMs`) until every watcher reached the final state of its keys (`finals`: the final
   * reads, key -> value and modRevision), stops them, and checks every stream against the history.
   */
  async finish(
    ops: readonly PairedOperation[],
    finals: ReadonlyMap<string, { readonly value: string | null; readonly revision: number }>,
    timeoutMs: number,
  ): Promise<WatchersSummary> {
    const caughtUp = (w: OpenWatch) =>
      w.failure !== undefined ||
      w.keys.every((k) => {
        const f = finals.get(k);
        if (f === undefined) return true;
        const last = w.events.findLast((e) => e.key === k);
        if (f.value === null) return last === undefined || last.type === 'delete';
        return last?.type === 'put' && String(last.value) === f.value;
      });
    const deadline = Date.now() + timeoutMs;
    while (!this.watches.every(caughtUp) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const late = this.watches.filter((w) => !caughtUp(w));
    for (const w of this.watches) w.watch.cancel();
    await Promise.all(this.watches.map((w) => w.done));
    await Promise.all(this.clients.map((c) => c.close()));

    const { committed, uncertain } = committedChanges(ops, this.partitions);
    // A stream is checked for gaps through the revision at which the final read of its keys happened.
    const through: Record<number, number> = {};
    for (const [k, f] of finals) {
      const p = partitionOf(k, this.partitions);
      through[p] = Math.max(through[p] ?? 0, f.revision);
    }
    const streams: WatchStreamRecord[] = this.watches.map((w) => ({
      id: w.id,
      filter: w.filter,
      from: w.from,
      ...(w.failure === undefined && !late.includes(w) ? { through } : {}),
      events: w.events.map((e) => ({
        type: e.type,
        key: e.key,
        ...(e.value !== undefined ? { value: String(e.value) } : {}),
        revision: e.revision,
        partition: e.partition,
      })),
    }));
    const check = checkWatchStreams(committed, streams, { uncertain });
    const violations = [
      ...check.violations,
      ...late.map(
        (w) => `${w.id} did not reach the final state of ${w.keys.join(',')} within ${timeoutMs} ms`,
      ),
    ];
    return {
      watchers: this.watches.length,
      events: this.watches.reduce((n, w) => n + w.events.length, 0),
      failed: this.watches.filter((w) => w.failure !== undefined).length,
      check: { ok: violations.length === 0, violations },
    };
  }
}

/**
 * The committed changes of a kv history (acknowledged puts, applied CASes, deletes that found the key,
 * each at the revision its result names) and the writes whose outcome is unknown.
 */
export function committedChanges(
  ops: readonly PairedOperation[],
  partitions: number,
): { committed: CommittedChange[]; uncertain: Omit<CommittedChange, 'revision' | 'partition'>[] } {
  const committed: CommittedChange[] = [];
  const uncertain: Omit<CommittedChange, 'revision' | 'partition'>[] = [];
  for (const op of ops) {
    const key = op.op.key;
    if (typeof key !== 'string') continue;
    const f = op.op.f;
    const value = op.op.value === undefined ? undefined : String(op.op.value);
    if (f !== 'put' && f !== 'cas' && f !== 'delete') continue;
    const type = f === 'delete' ? 'delete' : 'put';
    if (op.status === 'info') {
      uncertain.push(type === 'put' ? { type, key, value: value ?? '' } : { type, key });
      continue;
    }
    if (op.status !== 'ok' || op.result === undefined) continue;
    const revision = Number(op.result.revision);
    if (!Number.isSafeInteger(revision)) continue;
    if (f === 'cas' && op.result.ok !== true) continue;
    if (f === 'delete' && op.result.existed !== true) continue;
    const partition = partitionOf(key, partitions);
    committed.push(
      type === 'put'
        ? { type, key, value: value ?? '', revision, partition }
        : { type, key, revision, partition },
    );
  }
  return { committed, uncertain };
}
