/**
 * Test fixtures of the durable storage's crash tests (shared by `durable-storage.test.ts` and
 * `recovery.test.ts`): a seeded generator, a model-checked random workload, and the storages of many
 * partitions on one shared log on a simulated disk.
 * @module
 */
import { type Ballot, MemoryStorage, type Storage } from '@paxkv/paxos';
import { Rng } from '@paxkv/paxos/testing';
import { DurableStorage, type DurableStorageOptions } from '../durable-storage.js';
import { SimDisk } from '../sim-disk.js';
import { type FsyncMode, WriteAheadLog } from '../wal.js';

/** The project's seeded generator (`@paxkv/paxos/testing`) with its methods bound, so `next` can be handed on. */
export function rng(seed: number) {
  const r = new Rng(seed);
  return { next: () => r.next(), int: (n: number) => r.int(n), chance: (p: number) => r.chance(p) };
}

export type Entry = { v: string };

export interface State {
  promise: Ballot;
  accepted: Ballot;
  round: number;
  decided: number;
  compacted: number;
  length: number;
  entries: readonly Entry[];
  snapshot: string | null;
}

const dec = new TextDecoder();
export function stateOf(s: Storage<Entry>): State {
  const snap = s.getSnapshot();
  return {
    promise: { ...s.getPromise() },
    accepted: { ...s.getAcceptedRound() },
    round: s.getBallotRound(),
    decided: s.getDecidedIndex(),
    compacted: s.getCompactedIndex(),
    length: s.getLogLength(),
    entries: s.getEntries(s.getCompactedIndex(), s.getLogLength()).map((e) => ({ ...e })),
    snapshot: snap ? `${snap.index}:${dec.decode(snap.data)}` : null,
  };
}

/** One random storage write, applied to both the model and the storage under test. */
export function randomWrite(r: ReturnType<typeof rng>, targets: Storage<Entry>[], step: number): void {
  const m = targets[0]!;
  const len = m.getLogLength();
  const compacted = m.getCompactedIndex();
  const decided = m.getDecidedIndex();
  const entries = (n: number) => Array.from({ length: n }, (_, i) => ({ v: `s${step}e${i}` }));
  const k = r.int(10);
  for (const t of targets) {
    if (k === 0) t.setPromise({ n: step, pid: 1 + (step % 3) });
    else if (k === 1) t.setAcceptedRound({ n: step, pid: 2 });
    else if (k === 2) t.setBallotRound(step);
    else if (k <= 4) t.appendEntries(entries(1 + (step % 4)));
    else if (k === 5) t.appendOnPrefix(compacted + ((step * 7) % (len - compacted + 1)), entries(step % 3));
    else if (k <= 7 && decided < len) t.setDecidedIndex(decided + 1 + ((step * 3) % (len - decided)));
    else if (k === 8 && decided > compacted) {
      const idx = compacted + 1 + (step % (decided - compacted));
      t.setSnapshot({ index: idx, data: new TextEncoder().encode(`snap@${idx}/${step}`) });
    } else if (k === 9 && step % 5 === 0) {
      // A snapshot beyond the log (installed from a leader while lagging).
      const idx = len + 2;
      t.setSnapshot({ index: idx, data: new TextEncoder().encode(`far@${idx}/${step}`) });
    }
  }
}

export async function settle(disk: SimDisk, p: Promise<unknown>): Promise<void> {
  let done = false;
  const finished = () => {
    done = true;
  };
  p.then(finished, finished);
  for (let i = 0; i < 1000 && !done; i++) {
    disk.completeSyncs();
    await new Promise((r) => setImmediate(r));
  }
  if (!done) throw new Error('did not settle');
}

export const isEntry = (x: unknown): x is Entry =>
  typeof x === 'object' && x !== null && typeof (x as { v?: unknown }).v === 'string';

export interface Opened {
  readonly wal: WriteAheadLog;
  readonly stores: DurableStorage<Entry>[];
}

/** The storages of `partitions` on one shared log on `disk` (the log of a previous opening is abandoned). */
export async function openMany(
  disk: SimDisk,
  partitions: readonly number[],
  options: {
    segmentBytes?: number;
    fsync?: FsyncMode;
    chunk?: number;
    maxSegments?: number;
    cheapCheckpointBytes?: number;
    unsafeRecovery?: DurableStorageOptions<Entry>['unsafeRecovery'];
  } = {},
): Promise<Opened> {
  const p = (async () => {
    const view = disk.incarnation();
    const { wal } = await WriteAheadLog.open({
      disk: view,
      dir: '/wal',
      segmentBytes: options.segmentBytes ?? 512,
      ...(options.maxSegments ? { maxSegments: options.maxSegments } : {}),
      ...(options.cheapCheckpointBytes !== undefined
        ? { cheapCheckpointBytes: options.cheapCheckpointBytes }
        : {}),
      ...(options.fsync ? { fsync: options.fsync } : {}),
    });
    const stores: DurableStorage<Entry>[] = [];
    for (const partition of partitions) {
      stores.push(
        await DurableStorage.open<Entry>({
          wal,
          partition,
          disk: view,
          dir: `/g/p${partition}`,
          isEntry,
          ...(options.chunk ? { checkpointChunkEntries: options.chunk } : {}),
          ...(options.unsafeRecovery ? { unsafeRecovery: options.unsafeRecovery } : {}),
        }),
      );
    }
    return { wal, stores };
  })();
  await settle(disk, p);
  return p;
}

export async function openOn(disk: SimDisk): Promise<DurableStorage<Entry>> {
  return (await openMany(disk, [0])).stores[0]!;
}

export async function closeAll(o: Opened): Promise<void> {
  for (const s of o.stores) await s.close();
  await o.wal.close();
}

export const PARTS = [0, 5, 6, 100];

/**
 * One seeded crash run: random writes to the storages of {@link PARTS} and a model of each, flushes
 * that may or may not complete, then a crash that tears the unsynced bytes; the log is recovered and
 * checked: every partition holds a state of its own history (a prefix of its writes) that includes
 * every flushed write, with a decided index it had reached. Then one more write each, flushed, must
 * survive a reopen. Returns what was wrong (empty when recovery was right); recovery failing to open
 * counts as wrong too.
 */
export async function crashRun(
  seed: number,
  unsafeRecovery?: DurableStorageOptions<Entry>['unsafeRecovery'],
  wal: { cheapCheckpointBytes?: number } = {},
): Promise<string[]> {
  const problems: string[] = [];
  const r = rng(seed * 7919);
  const disk = new SimDisk({ autoSync: false });
  const models = PARTS.map(() => new MemoryStorage<Entry>());
  const histories = models.map((m) => [JSON.stringify(stateOf(m))]);
  const durableAt = PARTS.map(() => 0);
  const o = await openMany(disk, PARTS, wal);
  const steps = 40 + r.int(120);
  for (let step = 1; step <= steps; step++) {
    const i = r.int(PARTS.length);
    randomWrite(r, [models[i]!, o.stores[i]!], step);
    histories[i]!.push(JSON.stringify(stateOf(models[i]!)));
    if (r.chance(0.3)) {
      const at = histories[i]!.length - 1;
      const f = o.stores[i]!.flush().then(() => {
        durableAt[i] = Math.max(durableAt[i]!, at);
      });
      if (r.chance(0.4)) await settle(disk, f);
    }
    if (r.chance(0.3)) disk.completeSyncs();
    if (r.chance(0.3)) await new Promise((res) => setImmediate(res));
  }
  disk.crash({ tear: r.next });
  let back: Opened;
  try {
    back = await openMany(disk, PARTS, unsafeRecovery ? { ...wal, unsafeRecovery } : wal);
  } catch (e) {
    return [`seed ${seed}: recovery failed: ${(e as Error).message}`];
  }
  back.stores.forEach((s, i) => {
    // The decided index is written lazily (a flush does not wait for it): compare the rest, then
    // check that the decided index is one the prefix state had reached, never beyond it.
    const { decided, ...rest } = stateOf(s);
    const withoutDecided = histories[i]!.map((h) => {
      const { decided: _d, ...x } = JSON.parse(h) as State;
      return JSON.stringify(x);
    });
    const k = withoutDecided.lastIndexOf(JSON.stringify(rest));
    const where = `seed ${seed} partition ${PARTS[i]}`;
    if (k < 0) problems.push(`${where}: recovered state is not a prefix state`);
    else if (k < durableAt[i]!) problems.push(`${where}: lost a flushed write`);
    else if (decided > (JSON.parse(histories[i]![k] as string) as State).decided)
      problems.push(`${where}: decided index beyond the recovered prefix`);
    if (decided < rest.compacted) problems.push(`${where}: decided index below the compacted index`);
  });
  if (problems.length > 0) return problems;
  // And it keeps working after recovery.
  for (const s of back.stores) s.appendEntries([{ v: 'after' }]);
  await settle(disk, Promise.all(back.stores.map((s) => s.flush())));
  const lengths = back.stores.map((s) => s.getLogLength());
  await settle(disk, closeAll(back));
  const third = await openMany(disk, PARTS, wal);
  third.stores.forEach((s, i) => {
    if (s.getLogLength() !== lengths[i])
      problems.push(`seed ${seed} partition ${PARTS[i]}: a write after recovery was lost`);
  });
  return problems;
}
