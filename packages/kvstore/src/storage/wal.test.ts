import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.js';
import { NodeDisk } from './node-disk.js';
import { SimDisk } from './sim-disk.js';
import {
  type StorageLogger,
  segmentName,
  WAL_HEADER_BYTES,
  WAL_RECORD_HEADER_BYTES,
  WalRecordError,
  WriteAheadLog,
} from './wal.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const rec = (i: number) => enc.encode(`record-${i}-${'x'.repeat(i % 7)}`);
const texts = (rs: Uint8Array[]) => rs.map((r) => dec.decode(r));

function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

function recordingLogger(): StorageLogger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info() {}, warn: (_o, m) => warnings.push(m) };
}

async function writeRecords(disk: SimDisk, n: number): Promise<{ path: string; ends: number[] }> {
  const { wal } = await WriteAheadLog.open({ disk, dir: '/w' });
  const ends: number[] = [];
  let off = WAL_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    wal.append(rec(i));
    off += WAL_RECORD_HEADER_BYTES + rec(i).length;
    ends.push(off);
  }
  await wal.flush();
  await wal.close();
  return { path: `/w/${segmentName(1)}`, ends };
}

describe('crc32c', () => {
  it('matches the standard check value', () => {
    expect(crc32c(enc.encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    // 32 zero bytes: RFC 3720 B.4 test vector.
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    const data = enc.encode('the quick brown fox jumps over the lazy dog');
    expect(crc32c(data, crc32c(data, 0, 0, 10), 10)).toBe(crc32c(data));
  });
});

describe('WriteAheadLog', () => {
  it('round-trips records across reopen', async () => {
    const disk = new SimDisk();
    await writeRecords(disk, 50);
    const { records, recovery } = await WriteAheadLog.open({ disk, dir: '/w' });
    expect(texts(records)).toEqual(texts(Array.from({ length: 50 }, (_, i) => rec(i))));
    expect(recovery.droppedBytes).toBe(0);
  });

  it('keeps exactly the whole records before a cut at every byte offset', async () => {
    const n = 6;
    const base = new SimDisk();
    const { path, ends } = await writeRecords(base, n);
    const full = base.bytes(path)!;
    for (let cut = 0; cut <= full.length; cut++) {
      const disk = new SimDisk();
      disk.setBytes(path, full.subarray(0, cut));
      const logger = recordingLogger();
      const { wal, records, recovery } = await WriteAheadLog.open({ disk, dir: '/w', logger });
      const expected = ends.filter((e) => e <= cut).length;
      expect(records.length, `cut at ${cut}`).toBe(expected);
      expect(texts(records)).toEqual(texts(Array.from({ length: expected }, (_, i) => rec(i))));
      const torn = cut > 0 && cut !== full.length && !ends.includes(cut) && cut !== WAL_HEADER_BYTES;
      if (torn) {
        expect(recovery.droppedBytes).toBeGreaterThan(0);
        expect(logger.warnings.join()).toMatch(/dropped \d+ bytes/);
      }
      // The log is usable after recovery and the tail is gone for good.
      wal.append(enc.encode('after'));
      await wal.flush();
      const again = await WriteAheadLog.open({ disk, dir: '/w' });
      expect(texts(again.records)).toEqual([...texts(records), 'after']);
      expect(again.recovery.droppedBytes).toBe(0);
    }
  });

  it('stops at the first record with a flipped bit and never throws', async () => {
    const base = new SimDisk();
    const { path, ends } = await writeRecords(base, 8);
    const full = base.bytes(path)!;
    const rnd = seeded(7);
    for (let trial = 0; trial < 400; trial++) {
      const bytes = full.slice();
      const pos = Math.floor(rnd() * bytes.length);
      bytes[pos]! ^= 1 << Math.floor(rnd() * 8);
      const disk = new SimDisk();
      disk.setBytes(path, bytes);
      const { records } = await WriteAheadLog.open({ disk, dir: '/w' });
      // Records wholly before the damaged byte survive; the damaged one and all after it are dropped.
      const intact = pos < WAL_HEADER_BYTES ? 0 : ends.filter((e) => e <= pos).length;
      expect(records.length, `flip at ${pos}`).toBe(intact);
      expect(texts(records)).toEqual(texts(Array.from({ length: intact }, (_, i) => rec(i))));
    }
  });

  it('survives random garbage files without throwing', async () => {
    const rnd = seeded(99);
    for (let trial = 0; trial < 200; trial++) {
      const len = Math.floor(rnd() * 200);
      const bytes = new Uint8Array(len).map(() => Math.floor(rnd() * 256));
      if (trial % 2 === 0 && len >= 8) bytes.set([0x50, 0x58, 0x57, 0x4c, 1, 0, 0, 0]);
      const disk = new SimDisk();
      disk.setBytes(`/w/${segmentName(3)}`, bytes);
      const { records, wal } = await WriteAheadLog.open({ disk, dir: '/w' });
      expect(records.length).toBeLessThanOrEqual(len);
      wal.append(enc.encode('ok'));
      await wal.flush();
      const again = await WriteAheadLog.open({ disk, dir: '/w' });
      expect(texts(again.records).at(-1)).toBe('ok');
    }
  });

  it('drops later segments after a corrupt record in an earlier one', async () => {
    const disk = new SimDisk();
    const { wal } = await WriteAheadLog.open({ disk, dir: '/w', segmentBytes: 64 });
    for (let i = 0; i < 20; i++) {
      wal.append(rec(i));
      await wal.flush();
    }
    const segs = (await disk.list('/w')).filter((n) => n.startsWith('wal-'));
    expect(segs.length).toBeGreaterThan(3);
    const second = `/w/${segs[1]}`;
    const b = disk.bytes(second)!;
    b[b.length - 1]! ^= 0xff;
    disk.setBytes(second, b);
    const logger = recordingLogger();
    const { records, recovery } = await WriteAheadLog.open({ disk, dir: '/w', logger });
    expect(recovery.droppedSegments).toBe(segs.length - 2);
    expect(texts(records)).toEqual(texts(Array.from({ length: records.length }, (_, i) => rec(i))));
    expect(logger.warnings).toHaveLength(1);
  });

  it('rotates segments and reads them back in order', async () => {
    const disk = new SimDisk();
    const { wal } = await WriteAheadLog.open({ disk, dir: '/w', segmentBytes: 100 });
    for (let i = 0; i < 40; i++) wal.append(rec(i));
    await wal.flush();
    for (let i = 40; i < 60; i++) {
      wal.append(rec(i));
      await wal.flush();
    }
    expect((await disk.list('/w')).length).toBeGreaterThan(5);
    const { records } = await WriteAheadLog.open({ disk, dir: '/w', segmentBytes: 100 });
    expect(texts(records)).toEqual(texts(Array.from({ length: 60 }, (_, i) => rec(i))));
  });

  it('group-commits concurrent flushes into few fsyncs in batch mode and one each in always mode', async () => {
    for (const fsync of ['batch', 'always', 'never'] as const) {
      const disk = new SimDisk();
      const { wal } = await WriteAheadLog.open({ disk, dir: '/w', fsync });
      const before = disk.fsyncs;
      const done: Promise<void>[] = [];
      for (let i = 0; i < 100; i++) {
        wal.append(rec(i));
        done.push(wal.flush());
      }
      await Promise.all(done);
      const syncs = disk.fsyncs - before;
      if (fsync === 'batch') expect(syncs).toBeLessThanOrEqual(2);
      if (fsync === 'always') expect(syncs).toBe(100);
      if (fsync === 'never') expect(syncs).toBe(0);
      expect(wal.stats.durableRecords).toBe(100);
    }
  });

  it('loses unsynced records on a crash, keeps synced ones, and handles a torn tail', async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const disk = new SimDisk({ autoSync: false });
      const opening = WriteAheadLog.open({ disk, dir: '/w' });
      while (disk.pendingSyncs === 0) await Promise.resolve();
      disk.completeSyncs();
      await Promise.resolve();
      while (disk.pendingSyncs > 0) {
        disk.completeSyncs();
        await Promise.resolve();
      }
      const { wal } = await opening;
      for (let i = 0; i < 5; i++) wal.append(rec(i));
      const durable = wal.flush();
      for (let k = 0; k < 10 && disk.pendingSyncs === 0; k++) await Promise.resolve();
      disk.completeSyncs();
      await durable;
      for (let i = 5; i < 10; i++) wal.append(rec(i));
      const lost = wal.flush();
      let settled = false;
      void lost.then(() => {
        settled = true;
      });
      for (let k = 0; k < 10; k++) await Promise.resolve();
      expect(settled).toBe(false);
      disk.crash({ tear: seeded(seed) });
      const { records } = await WriteAheadLog.open({ disk: adoptAuto(disk), dir: '/w' });
      expect(records.length).toBeGreaterThanOrEqual(5);
      expect(texts(records)).toEqual(texts(Array.from({ length: records.length }, (_, i) => rec(i))));
      expect(records.length).toBeLessThanOrEqual(10);
    }
  });

  it('checkpoint replaces older segments', async () => {
    const disk = new SimDisk();
    const { wal } = await WriteAheadLog.open({ disk, dir: '/w', segmentBytes: 80 });
    for (let i = 0; i < 30; i++) wal.append(rec(i));
    const cp = wal.checkpoint([enc.encode('checkpoint')]);
    wal.append(enc.encode('after'));
    await cp;
    await wal.flush();
    expect(await disk.list('/w')).toHaveLength(1);
    const { records } = await WriteAheadLog.open({ disk, dir: '/w' });
    expect(texts(records)).toEqual(['checkpoint', 'after']);
  });

  it('rejects empty and oversized records with a typed error', async () => {
    const { wal } = await WriteAheadLog.open({ disk: new SimDisk(), dir: '/w', maxRecordBytes: 10 });
    expect(() => wal.append(new Uint8Array(0))).toThrow(WalRecordError);
    expect(() => wal.append(new Uint8Array(11))).toThrow(/maxRecordBytes/);
  });
});

/** Reopens on the same simulated disk with syncs completing immediately. */
function adoptAuto(disk: SimDisk): SimDisk {
  const auto = disk as unknown as { autoSync: boolean };
  auto.autoSync = true;
  return disk;
}

describe('WriteAheadLog on the real file system', () => {
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-wal-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips, truncates a torn tail and keeps appending', async () => {
    const disk = new NodeDisk();
    const { wal } = await WriteAheadLog.open({ disk, dir });
    for (let i = 0; i < 20; i++) wal.append(rec(i));
    await wal.flush();
    await wal.close();
    const path = join(dir, segmentName(1));
    const full = (await disk.readFile(path))!;
    await disk.truncate(path, full.length - 3);
    const logger = recordingLogger();
    const r = await WriteAheadLog.open({ disk, dir, logger });
    expect(texts(r.records)).toEqual(texts(Array.from({ length: 19 }, (_, i) => rec(i))));
    expect(r.recovery.droppedBytes).toBe(WAL_RECORD_HEADER_BYTES + rec(19).length - 3);
    expect(logger.warnings).toHaveLength(1);
    r.wal.append(enc.encode('next'));
    await r.wal.flush();
    await r.wal.close();
    const again = await WriteAheadLog.open({ disk, dir });
    expect(texts(again.records).at(-1)).toBe('next');
    expect(again.records).toHaveLength(20);
    await again.wal.close();
  });
});
