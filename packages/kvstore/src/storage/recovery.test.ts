import { describe, expect, it } from 'vitest';
import { crashRun, type Entry, isEntry, openMany, settle, stateOf } from './__tests__/fixtures.js';
import { DurableStorage, type DurableStorageOptions } from './durable-storage.js';
import { SimDisk } from './sim-disk.js';
import { segmentName, WriteAheadLog } from './wal.js';

/**
 * Recovery decodes a partition's records only from its last complete checkpoint on (the records before
 * it are superseded; see `readFromLastCheckpoint` in durable-storage.ts). These tests show that it
 * reads that little, that what it recovers is still exactly right when a crash tears a checkpoint at
 * any byte, and (mutation checks) that the crash tests catch a recovery that skips too much.
 */

const SEGMENT = `/wal/${segmentName(1)}`;

/** A copy of every file of `disk`, durable. */
function copyOf(disk: SimDisk): SimDisk {
  const d = new SimDisk();
  for (const p of disk.paths()) d.setBytes(p, disk.bytes(p)!);
  return d;
}

describe('recovery reads a partition only from its last complete checkpoint', () => {
  it('decodes only the records from the last checkpoint on, and recovers the same state', async () => {
    const disk = new SimDisk();
    const o = await openMany(disk, [1, 2], { segmentBytes: 1 << 20 });
    const [a, b] = o.stores as [DurableStorage<Entry>, DurableStorage<Entry>];
    a.setPromise({ n: 3, pid: 1 });
    for (let i = 0; i < 400; i++) {
      a.appendEntries([{ v: `a${i}` }]);
      if (i % 3 === 0) b.appendEntries([{ v: `b${i}` }]);
      if (i % 50 === 0) await a.flush();
    }
    a.setDecidedIndex(395);
    a.setSnapshot({ index: 390, data: new Uint8Array([3, 9, 0]) });
    await a.flush();
    await a.checkpoint();
    a.setBallotRound(8);
    a.appendEntries([{ v: 'late' }]);
    await Promise.all([a.flush(), b.flush()]);
    const want = [stateOf(a), stateOf(b)];
    await Promise.all([a.close(), b.close()]);
    await o.wal.close();
    const back = await openMany(disk, [1, 2], { segmentBytes: 1 << 20 });
    expect(back.stores.map(stateOf)).toEqual(want);
    const [a2, b2] = back.stores as [DurableStorage<Entry>, DurableStorage<Entry>];
    expect(a2.recoveredRecords).toBeGreaterThan(400);
    // The checkpoint (a header and one record of 11 entries), the round and the late entry.
    expect(a2.decodedRecords).toBeLessThan(10);
    // Partition 2 never checkpointed: all of its records are read.
    expect(b2.decodedRecords).toBe(b2.recoveredRecords);
  });

  it('does not read a superseded record at all, but refuses one after the checkpoint that does not decode', async () => {
    const garbage = new Uint8Array([0xc1, 0xc1, 0xc1]); // msgpack's "never used" byte
    for (const where of ['before', 'after'] as const) {
      const disk = new SimDisk();
      const { wal } = await WriteAheadLog.open({ disk, dir: '/wal' });
      const s = await DurableStorage.open<Entry>({ wal, partition: 4, disk, dir: '/g/p4', isEntry });
      s.appendEntries([{ v: 'x' }, { v: 'y' }]);
      await s.flush();
      if (where === 'before') wal.append(4, garbage);
      await s.checkpoint();
      if (where === 'after') wal.append(4, garbage);
      await s.close();
      await wal.close();
      const open = openMany(disk, [4]);
      if (where === 'before') {
        const back = (await open).stores[0]!;
        expect(back.getEntries(0, 2)).toEqual([{ v: 'x' }, { v: 'y' }]);
      } else {
        await expect(open).rejects.toMatchObject({ name: 'CorruptDataError' });
      }
    }
  });
});

describe('the snapshot a restart recovers', () => {
  it('is read and checked once: kept in memory until its first read', async () => {
    class CountingDisk extends SimDisk {
      reads = 0;
      // (SimDisk's readFile reads through readFileSync: counting that one counts both.)
      override readFileSync(path: string): Uint8Array | undefined {
        if (path.includes('snap-')) this.reads++;
        return super.readFileSync(path);
      }
    }
    const disk = new CountingDisk();
    const o = await openMany(disk, [2]);
    const s = o.stores[0]!;
    s.appendEntries([{ v: 'a' }, { v: 'b' }, { v: 'c' }]);
    s.setDecidedIndex(3);
    s.setSnapshot({ index: 2, data: new Uint8Array([5, 6]) });
    await s.flush();
    await s.close();
    await o.wal.close();
    disk.reads = 0;
    const back = (await openMany(disk, [2])).stores[0]!;
    expect(disk.reads).toBe(1);
    expect(back.getSnapshot()).toEqual({ index: 2, data: new Uint8Array([5, 6]) });
    expect(disk.reads).toBe(1);
    // From then on only its file holds it (and a weak reference while someone holds the bytes).
    expect(back.getSnapshot()).toEqual({ index: 2, data: new Uint8Array([5, 6]) });
  });
});

/** Cuts the segment at every byte of the last write; returns what each recovery got wrong. */
async function cutEveryByte(unsafeRecovery?: DurableStorageOptions<Entry>['unsafeRecovery']) {
  const base = new SimDisk();
  const o = await openMany(base, [3, 4, 5], { segmentBytes: 1 << 20, chunk: 2 });
  const [s, other, idle] = o.stores as [DurableStorage<Entry>, DurableStorage<Entry>, DurableStorage<Entry>];
  idle.setPromise({ n: 2, pid: 5 });
  idle.appendEntries([{ v: 'i0' }]);
  for (let i = 0; i < 12; i++) s.appendEntries([{ v: `e${i}` }]);
  s.setPromise({ n: 7, pid: 3 });
  s.setDecidedIndex(6);
  s.setSnapshot({ index: 4, data: new Uint8Array([4]) });
  other.appendEntries([{ v: 'o0' }]);
  await Promise.all([s.flush(), other.flush(), idle.flush()]);
  // Let the checkpoint that follows the snapshot finish, then write more after it.
  await s.checkpoint();
  s.setAcceptedRound({ n: 7, pid: 3 });
  s.appendOnPrefix(10, [{ v: 'n10' }, { v: 'n11' }, { v: 'n12' }]);
  await s.flush();
  const wantS = stateOf(s);
  const wantIdle = stateOf(idle);
  const before = base.bytes(SEGMENT)!.length;
  // One write holding a whole checkpoint of partition 3 (a header, 5 records of 2 entries) and, in
  // the same write, a record of partition 4.
  const cp = s.checkpoint();
  other.appendEntries([{ v: 'o1' }]);
  await Promise.all([cp, other.flush()]);
  const full = base.bytes(SEGMENT)!;
  expect(full.length).toBeGreaterThan(before + 100);
  const wrong: string[] = [];
  for (let cut = before; cut <= full.length; cut++) {
    const disk = copyOf(base);
    disk.setBytes(SEGMENT, full.subarray(0, cut));
    let back: Awaited<ReturnType<typeof openMany>>;
    try {
      back = await openMany(disk, [3, 4, 5], unsafeRecovery ? { unsafeRecovery } : {});
    } catch (e) {
      wrong.push(`cut ${cut}: ${(e as Error).message}`);
      continue;
    }
    const [s2, o2, i2] = back.stores as [DurableStorage<Entry>, DurableStorage<Entry>, DurableStorage<Entry>];
    if (JSON.stringify(stateOf(s2)) !== JSON.stringify(wantS)) wrong.push(`cut ${cut}: partition 3`);
    const others = o2.getEntries(0, o2.getLogLength()).map((e) => e.v);
    if (others.join() !== 'o0' && others.join() !== 'o0,o1') wrong.push(`cut ${cut}: partition 4 ${others}`);
    if (JSON.stringify(stateOf(i2)) !== JSON.stringify(wantIdle)) wrong.push(`cut ${cut}: partition 5`);
    if (cut === full.length && others.join() !== 'o0,o1') wrong.push('the whole write lost partition 4');
  }
  return wrong;
}

describe('a checkpoint torn by a crash at any byte', () => {
  it('recovers every partition of the log exactly: the torn checkpoint is ignored, the one before it stands', async () => {
    expect(await cutEveryByte()).toEqual([]);
  });

  it('mutation check: a recovery that starts at a torn checkpoint (tornCheckpoint) loses state, and the cuts show it', async () => {
    const wrong = await cutEveryByte('tornCheckpoint');
    expect(wrong.length).toBeGreaterThan(10);
    expect(wrong.join('\n')).toMatch(/partition 3/);
  });
});

describe('mutation check: skipping records a snapshot does not supersede', () => {
  it('a recovery that starts at the last snapshot record (fromLastSnapshot) is caught by the crash runs', async () => {
    const caught: string[] = [];
    for (let seed = 1; seed <= 60 && caught.length === 0; seed++) {
      caught.push(...(await crashRun(seed, 'fromLastSnapshot')));
    }
    expect(caught.length).toBeGreaterThan(0);
  });

  it('and by a plain reopen: the promise made before the snapshot must survive it', async () => {
    for (const unsafeRecovery of [undefined, 'fromLastSnapshot'] as const) {
      const disk = new SimDisk({ autoSync: false });
      const o = await openMany(disk, [0]);
      const s = o.stores[0]!;
      s.setPromise({ n: 9, pid: 2 });
      s.appendEntries([{ v: 'a' }, { v: 'b' }]);
      s.setDecidedIndex(2);
      s.setSnapshot({ index: 1, data: new Uint8Array([1]) });
      // Durable up to the snapshot record; the checkpoint that would follow it never is.
      await settle(disk, s.flush());
      disk.crash();
      const back = (await openMany(disk, [0], unsafeRecovery ? { unsafeRecovery } : {})).stores[0]!;
      if (unsafeRecovery === undefined) expect(back.getPromise()).toEqual({ n: 9, pid: 2 });
      else expect(back.getPromise()).not.toEqual({ n: 9, pid: 2 });
    }
  });
});
