import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptDataError } from '../codec.js';
import type { Disk } from './disk.js';
import { DurableStorage } from './durable-storage.js';
import { configDir, configSlot, configTag, GroupStorage } from './group-storage.js';
import { NodeDisk } from './node-disk.js';
import { snapshotFileName } from './records.js';
import { SimDisk } from './sim-disk.js';
import { WalRecordError, WriteAheadLog } from './wal.js';

type Entry = { v: string };
type Store = GroupStorage<Entry>;

function rng(seed: number) {
  let s = Math.imul(seed, 0x9e3779b1) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** Lets `p` finish, completing the disk's syncs as it goes. */
async function settle(disk: SimDisk, p: Promise<unknown>): Promise<void> {
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

async function open(
  disk: SimDisk,
  partition = 2,
  extra: {
    bootMembers?: number[];
    unsafeSeedNotAtomic?: boolean;
    isEntry?: (x: unknown) => x is Entry;
    checkpointChunkEntries?: number;
  } = {},
): Promise<{ wal: WriteAheadLog; store: Store }> {
  const p = (async () => {
    const view = disk.incarnation();
    const { wal } = await WriteAheadLog.open({
      disk: view,
      dir: '/wal',
      segmentBytes: 1024,
      fsync: 'always',
    });
    const store = await GroupStorage.open<Entry>({
      wal,
      disk: view,
      dir: `/g${partition}`,
      partition,
      checkpointChunkEntries: 2,
      ...extra,
    });
    return { wal, store };
  })();
  await settle(disk, p);
  return p;
}

/** `view` with every `writeFileAtomic` path recorded in `written`. */
function countingWrites(view: Disk): { disk: Disk; written: string[] } {
  const written: string[] = [];
  const disk: Disk = {
    ...view,
    writeFileAtomic: (path: string, data: Uint8Array) => {
      written.push(path);
      return view.writeFileAtomic(path, data);
    },
  };
  return { disk, written };
}

const entries = (from: number, to: number): Entry[] =>
  Array.from({ length: to - from }, (_, i) => ({ v: `e${from + i}` }));

describe('GroupStorage', () => {
  it('maps configurations to tags and directories, slot 0 keeping the old tag', () => {
    expect(configTag(7, 0)).toBe(7);
    expect(configTag(7, 1)).toBe(2 ** 21 + 7);
    expect(configTag(2 ** 20, 2047)).toBe(2047 * 2 ** 21 + 2 ** 20);
    expect(configTag(2 ** 21 - 1, 2047)).toBe(2 ** 32 - 1);
    expect(configSlot(2047)).toBe(2047);
    expect(configSlot(2048)).toBe(1);
    const disk = new SimDisk();
    expect(configDir(disk, '/g', 0)).toBe('/g');
    expect(configDir(disk, '/g', 3)).toBe('/g/config-slot-3');
  });

  it('a seed (snapshot + suffix + decided index + configuration record) survives a crash whole or not at all', async () => {
    let whole = 0;
    let none = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const r = rng(seed);
      const disk = new SimDisk({ autoSync: false });
      const { store } = await open(disk);
      const st = store.create({ configId: 4, members: [1, 2, 3], base: 9 });
      st.setSnapshot({ index: 3, data: new Uint8Array([3]) });
      st.appendEntries(entries(3, 9));
      st.setDecidedIndex(9);
      const f = st.flush();
      for (let k = Math.floor(r() * 12); k > 0; k--) {
        disk.completeSyncs();
        await new Promise((res) => setImmediate(res));
      }
      f.catch(() => {});
      disk.crash({ tear: r });
      const back = (await open(disk)).store;
      if (back.held.length === 0) {
        none++;
        continue;
      }
      whole++;
      const [h] = back.held;
      expect(h!.record, `seed ${seed}`).toEqual({ configId: 4, members: [1, 2, 3], base: 9 });
      const s = h!.storage;
      expect(s.getDecidedIndex(), `seed ${seed}`).toBe(9);
      expect(s.getCompactedIndex()).toBe(3);
      expect(s.getSnapshot()?.data).toEqual(new Uint8Array([3]));
      expect(s.getEntries(3, 9)).toEqual(entries(3, 9));
    }
    expect(whole).toBeGreaterThan(0);
    expect(none).toBeGreaterThan(0);
  });

  it('a seed is checked entry by entry as it is written, and reaches the log only as its checkpoint', async () => {
    const disk = new SimDisk();
    const isEntry = (x: unknown): x is Entry =>
      typeof x === 'object' && x !== null && typeof (x as { v?: unknown }).v === 'string';
    const { wal, store } = await open(disk, 2, { isEntry, checkpointChunkEntries: 1024 });
    const st = store.create({ configId: 4, members: [1, 2, 3], base: 6 });
    const start = wal.stats.appendedRecords;
    st.appendEntries(entries(0, 3));
    // A rejected entry is refused at once, before the log in memory changes.
    expect(() => st.appendEntries([{ v: 7 } as unknown as Entry])).toThrow(WalRecordError);
    expect(st.getLogLength()).toBe(3);
    st.appendEntries(entries(3, 6));
    st.setDecidedIndex(6);
    // Nothing reaches the shared log before the flush; the flush writes the seed as one checkpoint: a
    // header and one record of entries (`checkpointChunkEntries` 1024).
    expect(wal.stats.appendedRecords).toBe(start);
    await st.flush();
    expect(wal.stats.appendedRecords - start).toBe(2);
    await store.close();
    await wal.close();
    const back = (await open(disk)).store;
    const [h] = back.held;
    expect(h!.storage.getEntries(0, 6)).toEqual(entries(0, 6));
    expect(h!.storage.getDecidedIndex()).toBe(6);
  });

  it('a configuration seeded with the snapshot its replica held links that file: no copy written, whole or nothing after a crash', async () => {
    const D = new Uint8Array(64).map((_, i) => i);
    let linkedWhole = 0;
    let none = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed);
      const disk = new SimDisk({ autoSync: false });
      const { disk: counting, written } = countingWrites(disk.incarnation());
      const p = (async () => {
        const { wal } = await WriteAheadLog.open({
          disk: counting,
          dir: '/wal',
          segmentBytes: 1024,
          fsync: 'always',
        });
        return GroupStorage.open<Entry>({
          wal,
          disk: counting,
          dir: '/g2',
          partition: 2,
          checkpointChunkEntries: 2,
        });
      })();
      await settle(disk, p);
      const store = await p;
      const zero = store.create({ configId: 0, members: [1, 2, 3], base: 0 });
      zero.appendEntries(entries(0, 6));
      zero.setDecidedIndex(6);
      zero.setSnapshot({ index: 4, data: D.slice() });
      await settle(disk, zero.flush());
      expect(written, `seed ${seed}`).toHaveLength(1);
      // What the core hands the next configuration: the old one's snapshot (read back from its file).
      const held = zero.getSnapshot();
      expect(held?.index).toBe(4);
      const one = store.create({ configId: 1, members: [1, 2, 4], base: 7 });
      one.setSnapshot(held!);
      one.appendEntries(zero.getEntries(4, 6));
      one.appendEntries([{ v: 'stop' }]);
      one.setDecidedIndex(7);
      let finished = false;
      one.flush().then(
        () => {
          finished = true;
        },
        () => {},
      );
      for (let k = Math.floor(r() * 10); k > 0; k--) {
        disk.completeSyncs();
        await new Promise((res) => setImmediate(res));
      }
      if (finished) expect(written, `seed ${seed}: the seed linked, it wrote no copy`).toHaveLength(1);
      disk.crash({ tear: r });
      const back = (await open(disk)).store;
      const c1 = back.held.find((h) => h.record.configId === 1);
      if (!c1) {
        none++;
        continue;
      }
      linkedWhole++;
      expect(c1.storage.getCompactedIndex(), `seed ${seed}`).toBe(4);
      expect(c1.storage.getSnapshot()?.data, `seed ${seed}`).toEqual(D);
      expect(c1.storage.getEntries(4, 7), `seed ${seed}`).toEqual([...entries(4, 6), { v: 'stop' }]);
      // Retiring configuration 0 deletes its files; configuration 1's name for the bytes stays.
      back.retire(0, 1);
      await settle(disk, back.flush());
      await settle(disk, back.close());
      const again = (await open(disk)).store;
      expect(again.held.map((h) => h.record.configId)).toEqual([1]);
      expect(again.held[0]!.storage.getSnapshot()?.data, `seed ${seed}`).toEqual(D);
    }
    expect(linkedWhole).toBeGreaterThan(0);
    expect(none).toBeGreaterThan(0);
  });

  it('a seed links its snapshot with only the disk calls it needs: a missing slot directory or a stale file costs one more', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paxkv-seed-'));
    try {
      const node = new NodeDisk();
      const calls: string[] = [];
      const group = join(root, 'g2');
      const short = (path: string) => path.slice(group.length + 1) || '.';
      const disk: Disk = {
        ...Object.fromEntries(
          (Object.getOwnPropertyNames(NodeDisk.prototype) as (keyof NodeDisk)[])
            .filter((k) => (k as string) !== 'constructor')
            .map((k) => [k, (node[k] as (...a: unknown[]) => unknown).bind(node)]),
        ),
        mkdirp: async (dir: string) => {
          if (dir.startsWith(group)) calls.push(`mkdirp ${short(dir)}`);
          return node.mkdirp(dir);
        },
        remove: async (path: string) => {
          if (path.startsWith(group)) calls.push(`remove ${short(path)}`);
          return node.remove(path);
        },
        link: async (from: string, to: string) => {
          calls.push(`link ${short(to)}`);
          return node.link(from, to).catch((e: unknown) => {
            calls.push(String((e as { code?: unknown }).code));
            throw e;
          });
        },
        syncDir: async (dir: string) => {
          if (dir.startsWith(group)) calls.push(`syncDir ${short(dir)}`);
          return node.syncDir(dir);
        },
      } as Disk;
      const { wal } = await WriteAheadLog.open({ disk, dir: join(root, 'wal'), fsync: 'always' });
      const store = await GroupStorage.open<Entry>({ wal, disk, dir: group, partition: 2 });
      let prev = store.create({ configId: 0, members: [1, 2, 3], base: 0 });
      prev.appendEntries(entries(0, 4));
      prev.setDecidedIndex(4);
      prev.setSnapshot({ index: 4, data: new Uint8Array([4, 4]) });
      await prev.flush();
      const file = snapshotFileName(4);
      // Configuration 2's slot holds a file left by a seed that never became durable; configuration 3's
      // slot directory exists and is empty (the usual case once a slot was used).
      mkdirSync(join(group, 'config-slot-2'));
      writeFileSync(join(group, 'config-slot-2', file), 'torn');
      mkdirSync(join(group, 'config-slot-3'));
      const seeded: string[][] = [];
      for (const configId of [1, 2, 3]) {
        calls.length = 0;
        const next = store.create({ configId, members: [1, 2, 3], base: 4 + configId });
        next.setSnapshot(prev.getSnapshot()!);
        next.appendEntries([{ v: 'stop' }]);
        next.setDecidedIndex(4 + configId);
        await next.flush();
        seeded.push([...calls]);
        prev = next;
      }
      expect(seeded).toEqual([
        [
          `link config-slot-1/${file}`,
          'ENOENT',
          'mkdirp config-slot-1',
          `link config-slot-1/${file}`,
          'syncDir config-slot-1',
        ],
        [
          `link config-slot-2/${file}`,
          'EEXIST',
          `remove config-slot-2/${file}`,
          `link config-slot-2/${file}`,
          'syncDir config-slot-2',
        ],
        [`link config-slot-3/${file}`, 'syncDir config-slot-3'],
      ]);
      await store.close();
      await wal.close();
      // Every seed reads back whole, with the snapshot's bytes (not the stale file's).
      const again = await WriteAheadLog.open({ disk: node, dir: join(root, 'wal'), fsync: 'always' });
      const back = await GroupStorage.open<Entry>({ wal: again.wal, disk: node, dir: group, partition: 2 });
      expect(back.held.map((h) => h.record.configId)).toEqual([0, 1, 2, 3]);
      for (const h of back.held) expect(h.storage.getSnapshot()?.data).toEqual(new Uint8Array([4, 4]));
      await back.close();
      await again.wal.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("a disk without links gets a copy of the previous configuration's snapshot", async () => {
    const disk = new SimDisk();
    const { link: _link, ...view } = disk.incarnation();
    const { disk: plain, written } = countingWrites(view);
    const { wal } = await WriteAheadLog.open({
      disk: plain,
      dir: '/wal',
      segmentBytes: 1024,
      fsync: 'always',
    });
    const store = await GroupStorage.open<Entry>({ wal, disk: plain, dir: '/g2', partition: 2 });
    const zero = store.create({ configId: 0, members: [1, 2, 3], base: 0 });
    zero.appendEntries(entries(0, 4));
    zero.setDecidedIndex(4);
    zero.setSnapshot({ index: 4, data: new Uint8Array([4, 4]) });
    await zero.flush();
    const one = store.create({ configId: 1, members: [1, 2, 4], base: 5 });
    one.setSnapshot(zero.getSnapshot()!);
    one.appendEntries([{ v: 'stop' }]);
    one.setDecidedIndex(5);
    await one.flush();
    expect(written).toEqual([`/g2/${snapshotFileName(4)}`, `/g2/config-slot-1/${snapshotFileName(4)}`]);
  });

  it.each([
    ['EPERM', 'a file system without hard links is said once and not asked again', 1, 1, 0],
    ['EIO', 'a link failing for another reason is warned about and tried again next time', 2, 0, 2],
  ])('%s: %s', async (code, _title, linkCalls, infos, warns) => {
    const disk = new SimDisk();
    const view = disk.incarnation();
    let calls = 0;
    const failing: Disk = {
      ...view,
      link: async () => {
        calls++;
        throw Object.assign(new Error(`${code}: link refused`), { code });
      },
    };
    const { disk: counted, written } = countingWrites(failing);
    const said = { info: 0, warn: 0 };
    const seeds: unknown[] = [];
    const logger = {
      info: (o: object, msg: string) => {
        if (/cannot hard-link/.test(msg)) said.info++;
        if (msg === 'configuration seed durable') seeds.push(o);
      },
      warn: (_: object, msg: string) => void (/cannot link/.test(msg) && said.warn++),
    };
    const { wal } = await WriteAheadLog.open({
      disk: counted,
      dir: '/wal',
      segmentBytes: 1024,
      fsync: 'always',
    });
    const store = await GroupStorage.open<Entry>({ wal, disk: counted, dir: '/g2', partition: 2, logger });
    let prev = store.create({ configId: 0, members: [1, 2, 3], base: 0 });
    prev.appendEntries(entries(0, 4));
    prev.setDecidedIndex(4);
    prev.setSnapshot({ index: 4, data: new Uint8Array([4, 4]) });
    await prev.flush();
    for (const configId of [1, 2]) {
      const next = store.create({ configId, members: [1, 2, 3 + configId], base: 4 + configId });
      next.setSnapshot(prev.getSnapshot()!);
      next.appendEntries([{ v: 'stop' }]);
      next.setDecidedIndex(4 + configId);
      await next.flush();
      prev = next;
    }
    // Every seed came back as a copy; the unsupported link was asked for once, the failing one each time.
    expect(written).toEqual([
      `/g2/${snapshotFileName(4)}`,
      `/g2/config-slot-1/${snapshotFileName(4)}`,
      `/g2/config-slot-2/${snapshotFileName(4)}`,
    ]);
    expect(calls).toBe(linkCalls);
    expect(said).toEqual({ info: infos, warn: warns });
    // Each seed says how long it took to become durable and how its snapshot got there.
    expect(seeds).toEqual([
      expect.objectContaining({ configId: 0, snapshot: 'written', entries: 0, ms: expect.any(Number) }),
      expect.objectContaining({ configId: 1, snapshot: 'written', entries: 1, ms: expect.any(Number) }),
      expect.objectContaining({
        configId: 2,
        snapshot: 'written',
        entries: 1,
        snapshotMs: expect.any(Number),
      }),
    ]);
  });

  it('reports what its open read: records recovered and decoded, snapshot bytes (0 for a fresh storage)', async () => {
    const disk = new SimDisk();
    const { store } = await open(disk);
    expect(store.recovery).toEqual({ recoveredRecords: 0, decodedRecords: 0, snapshotBytes: 0 });
    const st = store.create({ configId: 0, members: [1, 2, 3], base: 0 });
    st.setSnapshot({ index: 3, data: new Uint8Array(100).fill(7) });
    st.appendEntries(entries(3, 9));
    st.setDecidedIndex(9);
    await settle(disk, st.flush());
    const back = (await open(disk)).store;
    const r = back.recovery;
    expect(r.recoveredRecords).toBeGreaterThan(0);
    expect(r.decodedRecords).toBeGreaterThan(0);
    expect(r.decodedRecords).toBeLessThanOrEqual(r.recoveredRecords);
    expect(r.snapshotBytes).toBeGreaterThan(100);
  });

  it('mutation check: a seed written as separate records can come back as a record without its log', async () => {
    let caught = 0;
    for (let seed = 1; seed <= 60 && caught === 0; seed++) {
      const r = rng(seed);
      const disk = new SimDisk({ autoSync: false });
      const { store } = await open(disk, 2, { unsafeSeedNotAtomic: true });
      const st = store.create({ configId: 4, members: [1, 2, 3], base: 9 });
      st.appendEntries(entries(0, 9));
      st.setDecidedIndex(9);
      const f = st.flush();
      for (let k = Math.floor(r() * 12); k > 0; k--) {
        disk.completeSyncs();
        await new Promise((res) => setImmediate(res));
      }
      f.catch(() => {});
      disk.crash({ tear: r });
      const back = (await open(disk)).store;
      const s = back.held[0]?.storage;
      if (s && s.getLogLength() < s.getDecidedIndex()) caught++;
    }
    expect(caught).toBeGreaterThan(0);
  });

  it('retiring a configuration leaves a tombstone: it is never held again, its snapshots are deleted, minConfigId survives', async () => {
    const disk = new SimDisk();
    const { store, wal } = await open(disk);
    const zero = store.create({ configId: 0, members: [1, 2], base: 0 });
    zero.appendEntries(entries(0, 4));
    zero.setDecidedIndex(4);
    zero.setSnapshot({ index: 4, data: new Uint8Array([4]) });
    await zero.flush();
    expect((await disk.list('/g2')).some((n) => n.startsWith('snap-'))).toBe(true);
    const one = store.create({ configId: 1, members: [1, 3], base: 5 });
    one.setSnapshot({ index: 4, data: new Uint8Array([4]) });
    one.appendEntries([{ v: 'stop' }]);
    one.setDecidedIndex(5);
    // Two configurations never share a slot.
    expect(() => store.create({ configId: 2048, members: [1], base: 9 })).toThrow(WalRecordError);
    store.retire(0, 2);
    await store.flush();
    await store.close();
    await wal.close();
    expect((await disk.list('/g2')).filter((n) => n.startsWith('snap-'))).toEqual([]);
    const back = (await open(disk)).store;
    expect(back.minConfigId).toBe(2);
    expect(back.held.map((h) => h.record)).toEqual([{ configId: 1, members: [1, 3], base: 5 }]);
    expect(back.held[0]!.storage.getEntries(4, 5)).toEqual([{ v: 'stop' }]);
    // Retiring the last one too: nothing held, the newest tombstone's minConfigId wins.
    back.retire(1, 7);
    await back.close();
    const last = (await open(disk)).store;
    expect(last.held).toEqual([]);
    expect(last.minConfigId).toBe(7);
  });

  it('adopts data written before reconfiguration as configuration 0 of the boot members', async () => {
    const disk = new SimDisk();
    const view = disk.incarnation();
    const { wal } = await WriteAheadLog.open({ disk: view, dir: '/wal' });
    const old = await DurableStorage.open<Entry>({ wal, partition: 2, disk: view, dir: '/g2' });
    old.appendEntries(entries(0, 3));
    old.setDecidedIndex(2);
    await old.close();
    await wal.close();
    await expect(open(disk)).rejects.toThrow(/bootMembers/);
    const { store } = await open(disk, 2, { bootMembers: [1, 2, 3] });
    expect(store.held.map((h) => h.record)).toEqual([{ configId: 0, members: [1, 2, 3], base: 0 }]);
    expect(store.held[0]!.storage.getEntries(0, 3)).toEqual(entries(0, 3));
  });

  it('discards state that cannot be read: tombstones supersede every configuration, the replica never joins below minConfigId', async () => {
    const disk = new SimDisk();
    const { store, wal } = await open(disk);
    const zero = store.create({ configId: 0, members: [1, 2], base: 0 });
    zero.appendEntries(entries(0, 4));
    zero.setDecidedIndex(4);
    zero.setSnapshot({ index: 4, data: new Uint8Array([4]) });
    await zero.flush();
    const one = store.create({ configId: 1, members: [1, 2], base: 5 });
    one.setSnapshot({ index: 4, data: new Uint8Array([4]) });
    one.appendEntries([{ v: 'stop' }]);
    one.setDecidedIndex(5);
    await store.flush();
    await store.close();
    await wal.close();
    // Corrupt configuration 0's snapshot file: opening fails.
    const snap = (await disk.list('/g2')).find((n) => n.startsWith('snap-')) as string;
    await settle(disk, disk.incarnation().writeFileAtomic(`/g2/${snap}`, new Uint8Array([9, 9, 9])));
    const view = disk.incarnation();
    const reopened = await WriteAheadLog.open({
      disk: view,
      dir: '/wal',
      segmentBytes: 1024,
      fsync: 'always',
    });
    const opts = { wal: reopened.wal, disk: view, dir: '/g2', partition: 2 };
    const tags = GroupStorage.tagsOf(reopened.wal, 2);
    expect(tags).toEqual([2, configTag(2, 1)]);
    await expect(GroupStorage.open<Entry>(opts)).rejects.toThrow(CorruptDataError);
    await expect(GroupStorage.discard<Entry>(opts, tags, 0, 1)).rejects.toThrow(RangeError);
    const fresh = await GroupStorage.discard<Entry>(opts, tags, 3, 1);
    expect(fresh.held).toEqual([]);
    expect(fresh.minConfigId).toBe(3);
    await fresh.close();
    await reopened.wal.close();
    // After a restart: nothing held, never below configuration 3, no snapshot file left.
    const back = (await open(disk)).store;
    expect(back.held).toEqual([]);
    expect(back.minConfigId).toBe(3);
    expect((await disk.list('/g2')).filter((n) => n.startsWith('snap-'))).toEqual([]);
    expect((await disk.list('/g2/config-slot-1')).filter((n) => n.startsWith('snap-'))).toEqual([]);
  });
});
