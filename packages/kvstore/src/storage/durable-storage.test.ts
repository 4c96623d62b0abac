import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Ballot, MemoryStorage, type Storage } from '@paxkv/paxos';
import { afterAll, describe, expect, it } from 'vitest';
import { DurableStorage } from './durable-storage.js';
import { NodeDisk } from './node-disk.js';
import { SimDisk } from './sim-disk.js';
import type { StorageLogger } from './wal.js';

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  return { next, int: (n: number) => Math.floor(next() * n), chance: (p: number) => next() < p };
}

type Entry = { v: string };

interface State {
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
function stateOf(s: Storage<Entry>): State {
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
function randomWrite(r: ReturnType<typeof rng>, targets: Storage<Entry>[], step: number): void {
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

async function settle(disk: SimDisk, p: Promise<unknown>): Promise<void> {
  let done = false;
  void p.then(() => {
    done = true;
  });
  for (let i = 0; i < 1000 && !done; i++) {
    disk.completeSyncs();
    await new Promise((r) => setImmediate(r));
  }
  if (!done) throw new Error('did not settle');
}

async function openOn(disk: SimDisk, logger?: StorageLogger): Promise<DurableStorage<Entry>> {
  const p = DurableStorage.open<Entry>({ disk, dir: '/g', segmentBytes: 512, ...(logger ? { logger } : {}) });
  await settle(disk, p);
  return p;
}

describe('DurableStorage', () => {
  it('recovers exactly what was flushed, across snapshots and checkpoints', async () => {
    for (let seed = 1; seed <= 30; seed++) {
      const r = rng(seed);
      const disk = new SimDisk();
      const model = new MemoryStorage<Entry>();
      let s = await openOn(disk);
      for (let step = 1; step <= 150; step++) {
        randomWrite(r, [model, s], step);
        if (r.chance(0.3)) await s.flush();
        if (r.chance(0.05)) {
          await s.flush();
          await s.close();
          s = await openOn(disk);
          expect(stateOf(s), `seed ${seed} step ${step}`).toEqual(stateOf(model));
        }
      }
      await s.flush();
      await s.close();
      expect(stateOf(await openOn(disk))).toEqual(stateOf(model));
    }
  });

  it('after a crash recovers a prefix of the writes that includes every flushed one', async () => {
    for (let seed = 1; seed <= 60; seed++) {
      const r = rng(seed * 7919);
      const disk = new SimDisk({ autoSync: false });
      const model = new MemoryStorage<Entry>();
      const history: string[] = [JSON.stringify(stateOf(model))];
      let s = await openOn(disk);
      let durableAt = 0;
      const steps = 40 + r.int(80);
      for (let step = 1; step <= steps; step++) {
        randomWrite(r, [model, s], step);
        history.push(JSON.stringify(stateOf(model)));
        if (r.chance(0.2)) {
          const at = history.length - 1;
          const f = s.flush().then(() => {
            durableAt = Math.max(durableAt, at);
          });
          if (r.chance(0.5)) await settle(disk, f);
        }
        if (r.chance(0.3)) disk.completeSyncs();
        await Promise.resolve();
      }
      disk.crash({ tear: r.next });
      s = await openOn(disk);
      // The decided index is written lazily (a flush does not wait for it): compare the rest, then
      // check that the decided index is one the prefix state had reached, never beyond it.
      const { decided, ...rest } = stateOf(s);
      const withoutDecided = history.map((h) => {
        const { decided: _d, ...r } = JSON.parse(h) as State;
        return JSON.stringify(r);
      });
      const k = withoutDecided.lastIndexOf(JSON.stringify(rest));
      expect(k, `seed ${seed}: recovered state is not a prefix state`).toBeGreaterThanOrEqual(0);
      expect(k, `seed ${seed}: lost a flushed write`).toBeGreaterThanOrEqual(durableAt);
      expect(decided, `seed ${seed}: decided index beyond the recovered prefix`).toBeLessThanOrEqual(
        (JSON.parse(history[k] as string) as State).decided,
      );
      expect(decided).toBeGreaterThanOrEqual(rest.compacted);
      // And it keeps working after recovery.
      s.appendEntries([{ v: 'after' }]);
      await settle(disk, s.flush());
      expect((await openOn(disk)).getLogLength()).toBe(s.getLogLength());
    }
  });

  it('trims the log on disk after a snapshot', async () => {
    const disk = new SimDisk();
    const s = await openOn(disk);
    for (let i = 0; i < 200; i++) {
      s.appendEntries([{ v: `entry-${i}-${'x'.repeat(20)}` }]);
      await s.flush();
    }
    s.setDecidedIndex(200);
    await s.flush();
    const before = (await disk.list('/g')).length;
    s.setSnapshot({ index: 190, data: new Uint8Array([1, 2, 3]) });
    await s.flush();
    await s.close();
    const files = await disk.list('/g');
    expect(before).toBeGreaterThan(3);
    expect(files.filter((f) => f.startsWith('wal-'))).toHaveLength(1);
    expect(files.filter((f) => f.startsWith('snap-'))).toEqual(['snap-0000000000000190.bin']);
    const again = await openOn(disk);
    expect(again.getCompactedIndex()).toBe(190);
    expect(again.getEntries(190, 200).map((e) => e.v)).toEqual(
      Array.from({ length: 10 }, (_, i) => `entry-${190 + i}-${'x'.repeat(20)}`),
    );
    expect(again.getSnapshot()?.data).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('writes the accepted round and the log that follows it as one record (a crash keeps both or neither)', async () => {
    const disk = new SimDisk({ autoSync: false });
    const s = await openOn(disk);
    s.setPromise({ n: 1, pid: 1 });
    s.setAcceptedRound({ n: 1, pid: 1 });
    s.appendEntries([{ v: 'old-1' }, { v: 'old-2' }]);
    await settle(disk, s.flush());
    // A new leader's sync: new accepted round, then the log is replaced. Crash before any flush completes,
    // tearing the unsynced bytes anywhere.
    for (let seed = 1; seed <= 40; seed++) {
      const d = new SimDisk({ autoSync: false });
      for (const p of disk.paths()) d.setBytes(p, disk.bytes(p)!);
      const t = await openOn(d);
      t.setPromise({ n: 2, pid: 2 });
      t.setAcceptedRound({ n: 2, pid: 2 });
      t.appendOnPrefix(0, [{ v: 'new-1' }]);
      void t.flush();
      await Promise.resolve();
      d.crash({ tear: rng(seed).next });
      const r = await openOn(d);
      const accepted = r.getAcceptedRound().n;
      const log = r.getEntries(0, r.getLogLength()).map((e) => e.v);
      if (accepted === 2) expect(log).toEqual(['new-1']);
      else expect(log).toEqual(['old-1', 'old-2']);
    }
  });

  it('refuses to open on a corrupt snapshot file instead of serving wrong data', async () => {
    const disk = new SimDisk();
    const s = await openOn(disk);
    s.appendEntries([{ v: 'a' }, { v: 'b' }]);
    s.setDecidedIndex(2);
    s.setSnapshot({ index: 2, data: new Uint8Array([9, 9]) });
    await s.flush();
    await s.close();
    const path = '/g/snap-0000000000000002.bin';
    const bytes = disk.bytes(path)!;
    bytes[bytes.length - 1]! ^= 1;
    disk.setBytes(path, bytes);
    await expect(DurableStorage.open<Entry>({ disk, dir: '/g' })).rejects.toMatchObject({
      name: 'CorruptDataError',
    });
  });
});

describe('DurableStorage on the real file system', () => {
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-durable-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('persists state, snapshots and checkpoints across reopen', async () => {
    const disk = new NodeDisk();
    const s = await DurableStorage.open<Entry>({ disk, dir, segmentBytes: 1024 });
    s.setPromise({ n: 3, pid: 2 });
    s.setAcceptedRound({ n: 3, pid: 2 });
    for (let i = 0; i < 100; i++) {
      s.appendEntries([{ v: `e${i}` }]);
      if (i % 10 === 0) await s.flush();
    }
    s.setDecidedIndex(90);
    s.setSnapshot({ index: 80, data: new TextEncoder().encode('state@80') });
    await s.flush();
    await s.close();
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['snap-0000000000000080.bin', expect.stringMatching(/^wal-\d{16}\.log$/)]);
    const r = await DurableStorage.open<Entry>({ disk, dir });
    expect(r.getPromise()).toEqual({ n: 3, pid: 2 });
    expect(r.getAcceptedRound()).toEqual({ n: 3, pid: 2 });
    expect(r.getDecidedIndex()).toBe(90);
    expect(r.getCompactedIndex()).toBe(80);
    expect(r.getEntries(80, 100).map((e) => e.v)).toEqual(Array.from({ length: 20 }, (_, i) => `e${80 + i}`));
    expect(new TextDecoder().decode(r.getSnapshot()!.data)).toBe('state@80');
    await r.close();
  });
});
