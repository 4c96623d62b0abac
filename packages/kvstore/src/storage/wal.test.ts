import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@paxkv/paxos/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { CRC32C_WORD_PATH_MIN_BYTES, crc32c } from './crc32c.js';
import type { AppendFile } from './disk.js';
import { NodeDisk } from './node-disk.js';
import { SimDisk } from './sim-disk.js';
import {
  encodeRecord,
  type PartitionHandle,
  readLegacyGroupLog,
  type StorageLogger,
  segmentName,
  WAL_HEADER_BYTES,
  WAL_MARKER_RECORD_BYTES,
  WAL_RECORD_HEADER_BYTES,
  WAL_TAG_BYTES,
  WalCorruptError,
  WalFormatError,
  type WalOptions,
  WalRecordError,
  WriteAheadLog,
} from './wal.js';

/** Record header + partition tag. */
const OVERHEAD = WAL_RECORD_HEADER_BYTES + WAL_TAG_BYTES;

/** Opens a log and returns partition 0's recovered records (the other partitions stay untaken). */
async function open0(opts: WalOptions) {
  const { wal, recovery } = await WriteAheadLog.open(opts);
  return { wal, recovery, records: wal.takeRecovered(0).payloads };
}

const enc = new TextEncoder();
/** One event-loop turn (the log writes once per turn). */
const turn = () => new Promise<void>((r) => setImmediate(r));
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
  // One write: its sync marker, then the records.
  let off = WAL_HEADER_BYTES + WAL_MARKER_RECORD_BYTES;
  for (let i = 0; i < n; i++) {
    wal.append(0, rec(i));
    off += OVERHEAD + rec(i).length;
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

  it('agrees with a bit-at-a-time CRC at every alignment and length, on both sides of the word path', () => {
    const reference = (d: Uint8Array, from: number, to: number): number => {
      let c = 0xffffffff;
      for (let i = from; i < to; i++) {
        c ^= d[i] as number;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return ~c >>> 0;
    };
    const rng = new Rng(7);
    const backing = new Uint8Array(CRC32C_WORD_PATH_MIN_BYTES * 3);
    for (let i = 0; i < backing.length; i++) backing[i] = rng.int(256);
    const lengths = [0, 1, 3, 15, 16, 17, 63, CRC32C_WORD_PATH_MIN_BYTES - 1, CRC32C_WORD_PATH_MIN_BYTES];
    lengths.push(CRC32C_WORD_PATH_MIN_BYTES + 1, CRC32C_WORD_PATH_MIN_BYTES * 2 + 13);
    for (let view = 0; view < 4; view++) {
      // A view that starts off a 4-byte boundary of its buffer, and ranges that start anywhere in it.
      const data = backing.subarray(view);
      for (let start = 0; start < 8; start++) {
        for (const n of lengths) {
          const end = Math.min(data.length, start + n);
          expect(crc32c(data, 0, start, end), `view ${view} [${start}, ${end})`).toBe(
            reference(data, start, end),
          );
        }
      }
    }
  });
});

describe('WriteAheadLog', () => {
  it('round-trips records across reopen', async () => {
    const disk = new SimDisk();
    await writeRecords(disk, 50);
    const { records, recovery } = await open0({ disk, dir: '/w' });
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
      const { wal, records, recovery } = await open0({ disk, dir: '/w', logger });
      const expected = ends.filter((e) => e <= cut).length;
      expect(records.length, `cut at ${cut}`).toBe(expected);
      expect(texts(records)).toEqual(texts(Array.from({ length: expected }, (_, i) => rec(i))));
      const torn =
        cut > 0 &&
        cut !== full.length &&
        !ends.includes(cut) &&
        cut !== WAL_HEADER_BYTES &&
        cut !== WAL_HEADER_BYTES + WAL_MARKER_RECORD_BYTES;
      if (torn) {
        expect(recovery.droppedBytes).toBeGreaterThan(0);
        expect(logger.warnings.join()).toMatch(/dropped \d+ bytes/);
      }
      // The log is usable after recovery and the tail is gone for good.
      wal.append(0, enc.encode('after'));
      await wal.flush();
      const again = await open0({ disk, dir: '/w' });
      expect(texts(again.records)).toEqual([...texts(records), 'after']);
      expect(again.recovery.droppedBytes).toBe(0);
    }
  });

  it('stops at the first record with a flipped bit in the last write, and refuses a damaged segment header', async () => {
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
      if (pos < WAL_HEADER_BYTES) {
        // The header was synced when the segment was created, and the write's marker says so.
        await expect(open0({ disk, dir: '/w' }), `flip at ${pos}`).rejects.toThrow(WalCorruptError);
        continue;
      }
      // One write holds every record: it may be a torn write, so the damage is cut.
      const { records } = await open0({ disk, dir: '/w' });
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
      if (trial % 2 === 0 && len >= 8) bytes.set([0x50, 0x58, 0x57, 0x4c, 2, 0, 0, 0]);
      const disk = new SimDisk();
      disk.setBytes(`/w/${segmentName(3)}`, bytes);
      const { records, wal } = await open0({ disk, dir: '/w' });
      expect(records.length).toBeLessThanOrEqual(len);
      wal.append(0, enc.encode('ok'));
      await wal.flush();
      const again = await open0({ disk, dir: '/w' });
      expect(texts(again.records).at(-1)).toBe('ok');
    }
  });

  it('refuses a corrupt record in a segment that is not the last, and changes nothing', async () => {
    const disk = new SimDisk();
    const { wal } = await open0({ disk, dir: '/w', segmentBytes: 64 });
    for (let i = 0; i < 20; i++) {
      wal.append(0, rec(i));
      await wal.flush();
    }
    const segs = (await disk.list('/w')).filter((n) => n.startsWith('wal-'));
    expect(segs.length).toBeGreaterThan(3);
    const second = `/w/${segs[1]}`;
    const b = disk.bytes(second)!;
    b[b.length - 1]! ^= 0xff;
    disk.setBytes(second, b);
    const before = new Map(segs.map((n) => [n, disk.bytes(`/w/${n}`)!.slice()]));
    const error = await WriteAheadLog.open({ disk, dir: '/w' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WalCorruptError);
    expect((error as WalCorruptError).file).toBe(second);
    expect((error as Error).message).toMatch(
      /is corrupt at offset \d+ \(checksum mismatch; segment .* comes after it/,
    );
    expect((error as Error).message).toMatch(/joins as a new member/);
    // Nothing was cut or removed.
    expect((await disk.list('/w')).filter((n) => n.startsWith('wal-'))).toEqual(segs);
    for (const [n, bytes] of before) expect(disk.bytes(`/w/${n}`), n).toEqual(bytes);
    // The mutation (TESTING ONLY) cuts there, as recovery did before: later segments dropped.
    const logger = recordingLogger();
    const cut = await WriteAheadLog.open({ disk, dir: '/w', logger, unsafeMutation: 'cutCorruption' });
    expect(cut.recovery.droppedSegments).toBe(segs.length - 2);
    expect(logger.warnings).toHaveLength(1);
  });

  it('rotates segments and reads them back in order', async () => {
    const disk = new SimDisk();
    const { wal } = await open0({ disk, dir: '/w', segmentBytes: 100 });
    for (let i = 0; i < 40; i++) wal.append(0, rec(i));
    await wal.flush();
    for (let i = 40; i < 60; i++) {
      wal.append(0, rec(i));
      await wal.flush();
    }
    expect((await disk.list('/w')).length).toBeGreaterThan(5);
    const { records } = await open0({ disk, dir: '/w', segmentBytes: 100 });
    expect(texts(records)).toEqual(texts(Array.from({ length: 60 }, (_, i) => rec(i))));
  });

  it('group-commits concurrent flushes into few fsyncs in batch mode and one each in always mode', async () => {
    for (const fsync of ['batch', 'always', 'never'] as const) {
      const disk = new SimDisk();
      const { wal } = await open0({ disk, dir: '/w', fsync });
      const before = disk.fsyncs;
      const done: Promise<void>[] = [];
      for (let i = 0; i < 100; i++) {
        wal.append(0, rec(i));
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
      const opening = open0({ disk, dir: '/w' });
      while (disk.pendingSyncs === 0) await Promise.resolve();
      disk.completeSyncs();
      await Promise.resolve();
      while (disk.pendingSyncs > 0) {
        disk.completeSyncs();
        await Promise.resolve();
      }
      const { wal } = await opening;
      for (let i = 0; i < 5; i++) wal.append(0, rec(i));
      const durable = wal.flush();
      for (let k = 0; k < 10 && disk.pendingSyncs === 0; k++) await turn();
      disk.completeSyncs();
      await durable;
      for (let i = 5; i < 10; i++) wal.append(0, rec(i));
      const lost = wal.flush();
      let settled = false;
      void lost.then(() => {
        settled = true;
      });
      for (let k = 0; k < 3; k++) await turn();
      expect(disk.pendingSyncs).toBe(1);
      expect(settled).toBe(false);
      disk.crash({ tear: seeded(seed) });
      const { records } = await open0({ disk: adoptAuto(disk), dir: '/w' });
      expect(records.length).toBeGreaterThanOrEqual(5);
      expect(texts(records)).toEqual(texts(Array.from({ length: records.length }, (_, i) => rec(i))));
      expect(records.length).toBeLessThanOrEqual(10);
    }
  });

  it('rejects empty and oversized records with a typed error', async () => {
    const { wal } = await open0({ disk: new SimDisk(), dir: '/w', maxRecordBytes: 10 });
    expect(() => wal.append(0, new Uint8Array(0))).toThrow(WalRecordError);
    expect(() => wal.append(0, new Uint8Array(11))).toThrow(/maxRecordBytes/);
    expect(() => wal.append(-1, new Uint8Array(1))).toThrow(WalRecordError);
    expect(() => wal.append(2 ** 32, new Uint8Array(1))).toThrow(WalRecordError);
    // The top tag is the log's own sync marker.
    expect(() => wal.append(0xffff_ffff, new Uint8Array(1))).toThrow(WalRecordError);
    expect(() => wal.append(0.5, new Uint8Array(1))).toThrow(WalRecordError);
    expect(wal.stats.appendedRecords).toBe(0);
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
    const { wal } = await open0({ disk, dir });
    for (let i = 0; i < 20; i++) wal.append(0, rec(i));
    await wal.flush();
    await wal.close();
    const path = join(dir, segmentName(1));
    const full = (await disk.readFile(path))!;
    await disk.truncate(path, full.length - 3);
    const logger = recordingLogger();
    const r = await open0({ disk, dir, logger });
    expect(texts(r.records)).toEqual(texts(Array.from({ length: 19 }, (_, i) => rec(i))));
    expect(r.recovery.droppedBytes).toBe(OVERHEAD + rec(19).length - 3);
    expect(logger.warnings).toHaveLength(1);
    r.wal.append(0, enc.encode('next'));
    await r.wal.flush();
    await r.wal.close();
    const again = await open0({ disk, dir });
    expect(texts(again.records).at(-1)).toBe('next');
    expect(again.records).toHaveLength(20);
    await again.wal.close();
  });
});

describe('WriteAheadLog shared by many partitions', () => {
  const payload = (p: number, i: number) => enc.encode(`p${p}-r${i}`);

  it('recovers every partition from one log, split by partition, in order', async () => {
    const disk = new SimDisk();
    const { wal } = await WriteAheadLog.open({ disk, dir: '/w', segmentBytes: 300 });
    for (let i = 0; i < 40; i++) {
      for (let p = 0; p < 16; p++) if ((i + p) % 3 !== 0) wal.append(p * 1000, payload(p, i));
      if (i % 5 === 0) await wal.flush();
    }
    await wal.flush();
    await wal.close();
    let bytes = 0;
    for (const n of await disk.list('/w')) bytes += (await disk.readFile(`/w/${n}`))?.length ?? 0;
    const { wal: again, recovery } = await WriteAheadLog.open({ disk, dir: '/w' });
    expect(recovery.partitions).toBe(16);
    expect(recovery.segments).toBeGreaterThan(1);
    expect(recovery.bytes).toBe(bytes);
    expect(again.untakenPartitions).toEqual(Array.from({ length: 16 }, (_, p) => p * 1000));
    for (let p = 0; p < 16; p++) {
      const r = again.takeRecovered(p * 1000);
      const want = Array.from({ length: 40 }, (_, i) => i).filter((i) => (i + p) % 3 !== 0);
      expect(texts(r.payloads)).toEqual(want.map((i) => `p${p}-r${i}`));
      expect(r.segments).toHaveLength(r.payloads.length);
      expect([...r.segments].sort((a, b) => a - b)).toEqual(r.segments);
    }
    expect(again.untakenPartitions).toEqual([]);
    expect(() => again.takeRecovered(0)).toThrow(/already opened/);
  });

  it('group-commits every partition queued in one event-loop turn into one write and one sync', async () => {
    for (const fsync of ['batch', 'never'] as const) {
      const disk = new SimDisk();
      const { wal } = await WriteAheadLog.open({ disk, dir: '/w', fsync });
      const before = { fsyncs: disk.fsyncs, writes: wal.stats.writes };
      // 16 groups, each appending and flushing in its own microtask, as replica groups' pumps do.
      const flushes = await Promise.all(
        Array.from({ length: 16 }, async (_, p) => {
          await Promise.resolve();
          wal.append(p, payload(p, 0));
          wal.append(p, payload(p, 1));
          return wal.flush();
        }),
      );
      await Promise.all(flushes);
      expect(wal.stats.writes - before.writes).toBe(1);
      expect(disk.fsyncs - before.fsyncs).toBe(fsync === 'batch' ? 1 : 0);
      expect(wal.stats.durableRecords).toBe(32);
    }
  });

  it('a crash loses only whole records at the tail, for every partition at once', async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = seeded(seed);
      const disk = new SimDisk({ autoSync: false });
      const opening = WriteAheadLog.open({ disk, dir: '/w', segmentBytes: 200 });
      while (disk.pendingSyncs === 0) await turn();
      while (disk.pendingSyncs > 0) {
        disk.completeSyncs();
        await turn();
      }
      const { wal } = await opening;
      const appended = new Map<number, number>();
      const durable = new Map<number, number>();
      for (let round = 0; round < 12; round++) {
        const snapshot = new Map<number, number>();
        for (let k = 0; k < 1 + Math.floor(rnd() * 6); k++) {
          const p = Math.floor(rnd() * 5);
          const i = appended.get(p) ?? 0;
          wal.append(p, payload(p, i));
          appended.set(p, i + 1);
        }
        for (const [p, n] of appended) snapshot.set(p, n);
        void wal.flush().then(() => {
          for (const [p, n] of snapshot) durable.set(p, Math.max(durable.get(p) ?? 0, n));
        });
        await turn();
        if (rnd() < 0.6) disk.completeSyncs();
        await turn();
      }
      disk.crash({ tear: rnd });
      const { wal: again } = await WriteAheadLog.open({ disk: adoptAuto(disk), dir: '/w' });
      for (let p = 0; p < 5; p++) {
        const got = texts(again.takeRecovered(p).payloads);
        // A prefix of what the partition appended, containing everything whose flush resolved.
        expect(got, `seed ${seed} partition ${p}`).toEqual(
          Array.from({ length: got.length }, (_, i) => `p${p}-r${i}`),
        );
        expect(got.length, `seed ${seed} partition ${p} lost a flushed record`).toBeGreaterThanOrEqual(
          durable.get(p) ?? 0,
        );
      }
    }
  });

  it('deletes a segment only once every partition with records in it has moved its anchor past it', async () => {
    const disk = new SimDisk();
    const { wal } = await WriteAheadLog.open({ disk, dir: '/w', segmentBytes: 100, maxSegments: 1000 });
    const segs = async () => (await disk.list('/w')).filter((n) => n.startsWith('wal-')).length;
    for (let i = 0; i < 20; i++) {
      wal.append(1, payload(1, i));
      wal.append(2, payload(2, i));
      await wal.flush();
    }
    const total = await segs();
    expect(total).toBeGreaterThan(4);
    wal.setAnchor(1, wal.currentSegment);
    await turn();
    expect(await segs()).toBe(total); // partition 2 still needs them all
    wal.setAnchor(2, wal.currentSegment - 1);
    for (let k = 0; k < 5 && (await segs()) !== 2; k++) await turn();
    expect(await segs()).toBe(2);
    expect(wal.stats.deletedSegments).toBe(total - 2);
    const { wal: again } = await WriteAheadLog.open({ disk, dir: '/w' });
    // What is left is the tail of both partitions.
    const one = texts(again.takeRecovered(1).payloads);
    expect(one.at(-1)).toBe('p1-r19');
  });

  it('asks the partitions pinning the oldest segment to checkpoint once there are too many segments', async () => {
    const disk = new SimDisk();
    const { wal } = await WriteAheadLog.open({ disk, dir: '/w', segmentBytes: 100, maxSegments: 3 });
    const asked: number[] = [];
    const handle = (p: number): PartitionHandle => ({ requestCheckpoint: () => asked.push(p) });
    wal.takeRecovered(7, handle(7));
    wal.takeRecovered(8, handle(8));
    wal.append(7, payload(7, 0)); // partition 7 writes once, then stays idle
    await wal.flush();
    for (let i = 0; i < 30; i++) {
      wal.append(8, payload(8, i));
      await wal.flush();
      wal.setAnchor(8, wal.currentSegment);
    }
    expect(asked.filter((p) => p === 7).length).toBeGreaterThan(0);
    expect(asked).not.toContain(8);
    // Partition 7 checkpoints (rewrites its state at the tail): the old segments go.
    wal.append(7, payload(7, 1));
    const at = wal.currentSegment;
    await wal.flush();
    wal.setAnchor(7, at);
    for (let k = 0; k < 5 && wal.stats.liveSegments > 2; k++) await turn();
    expect(wal.stats.liveSegments).toBeLessThanOrEqual(2);
  });

  it('asks a partition that keeps the oldest segment for a few bytes to checkpoint, long before maxSegments', async () => {
    const run = async (cheapCheckpointBytes?: number) => {
      const disk = new SimDisk();
      const { wal } = await WriteAheadLog.open({
        disk,
        dir: '/w',
        segmentBytes: 100,
        maxSegments: 1000,
        ...(cheapCheckpointBytes === undefined ? {} : { cheapCheckpointBytes }),
      });
      const asked: number[] = [];
      wal.attach(7, { requestCheckpoint: () => asked.push(7) });
      wal.attach(8, { requestCheckpoint: () => asked.push(8) });
      wal.append(7, payload(7, 0)); // partition 7 writes once, then stays idle
      await wal.flush();
      for (let i = 0; i < 30; i++) {
        wal.append(8, payload(8, i));
        await wal.flush();
        wal.setAnchor(8, wal.currentSegment);
      }
      return asked;
    };
    // Default: 1/8 of a segment (12 bytes here) would not cover partition 7's one record: nothing asked.
    expect(await run()).toEqual([]);
    const asked = await run(64);
    expect(asked.filter((p) => p === 7).length).toBeGreaterThan(0);
    // Partition 8 keeps the oldest segment only until its first anchor move.
    expect(asked.filter((p) => p === 8).length).toBeLessThanOrEqual(1);
    expect(await run(0)).toEqual([]); // the rule off: only maxSegments would ask
  });

  it('asks no cheap checkpoint while a partition keeping the oldest segment holds more bytes, nor while one is not attached', async () => {
    const disk = new SimDisk();
    const { wal } = await WriteAheadLog.open({
      disk,
      dir: '/w',
      segmentBytes: 100,
      maxSegments: 1000,
      cheapCheckpointBytes: 64,
    });
    const asked: number[] = [];
    wal.attach(7, { requestCheckpoint: () => asked.push(7) });
    wal.attach(8, { requestCheckpoint: () => asked.push(8) });
    wal.append(7, payload(7, 0));
    for (let i = 0; i < 30; i++) {
      wal.append(8, payload(8, i)); // partition 8 keeps every segment: hundreds of bytes
      await wal.flush();
    }
    expect(wal.stats.liveSegments).toBeGreaterThan(5);
    expect(asked).toEqual([]);
    // Partition 8 checkpoints: now partition 7 alone keeps the old segments, for one record.
    wal.setAnchor(8, wal.currentSegment);
    expect(asked).toEqual([7]);
    wal.append(7, payload(7, 1));
    const at = wal.currentSegment;
    await wal.flush();
    wal.setAnchor(7, at);
    for (let k = 0; k < 5 && wal.stats.liveSegments > 2; k++) await turn();
    expect(wal.stats.liveSegments).toBeLessThanOrEqual(2);
  });

  it('asks no cheap checkpoint while a partition keeping the oldest segment is not attached (its group not open yet)', async () => {
    const disk = new SimDisk();
    const opts = { disk, dir: '/w', segmentBytes: 100, maxSegments: 1000 };
    const { wal } = await WriteAheadLog.open({ ...opts, cheapCheckpointBytes: 0 });
    wal.append(7, payload(7, 0));
    for (let i = 0; i < 20; i++) {
      wal.append(8, payload(8, i));
      await wal.flush();
      wal.setAnchor(8, wal.currentSegment);
    }
    await wal.close();
    const again = (await WriteAheadLog.open({ ...opts, cheapCheckpointBytes: 64 })).wal;
    const asked: number[] = [];
    again.takeRecovered(8);
    again.attach(8, { requestCheckpoint: () => asked.push(8) });
    for (let i = 0; i < 10; i++) {
      again.append(8, payload(8, 100 + i));
      await again.flush();
      again.setAnchor(8, again.currentSegment);
    }
    // Checkpointing partition 8 could not free the segment partition 7 keeps: nobody is asked.
    expect(asked).toEqual([]);
    expect(again.takeRecovered(7).count).toBe(1);
    again.attach(7, { requestCheckpoint: () => asked.push(7) });
    expect(asked).toEqual([7]);
  });

  it('refuses a segment of another format version instead of dropping it', async () => {
    const disk = new SimDisk();
    const legacy = new Uint8Array([0x50, 0x58, 0x57, 0x4c, 1, 0, 0, 0, ...encodeRecord(undefined, rec(1))]);
    disk.setBytes(`/w/${segmentName(1)}`, legacy);
    await expect(WriteAheadLog.open({ disk, dir: '/w' })).rejects.toBeInstanceOf(WalFormatError);
    expect(disk.bytes(`/w/${segmentName(1)}`)).toEqual(legacy);
  });

  it('reads a log of the old per-group format for import, and only files of that format', async () => {
    const disk = new SimDisk();
    const v1 = (...rs: Uint8Array[]) =>
      new Uint8Array([
        0x50,
        0x58,
        0x57,
        0x4c,
        1,
        0,
        0,
        0,
        ...rs.flatMap((r) => [...encodeRecord(undefined, r)]),
      ]);
    disk.setBytes(`/g/${segmentName(1)}`, v1(rec(0), rec(1)));
    disk.setBytes(`/g/${segmentName(2)}`, v1(rec(2)));
    const { wal } = await WriteAheadLog.open({ disk, dir: '/g2' });
    wal.append(0, rec(9));
    await wal.flush();
    disk.setBytes(`/g/${segmentName(3)}`, disk.bytes(`/g2/${segmentName(1)}`)!);
    const r = await readLegacyGroupLog(disk, '/g');
    expect(texts(r.records)).toEqual(texts([rec(0), rec(1), rec(2)]));
    expect(r.files).toEqual([segmentName(1), segmentName(2)]);
  });
});

describe('WriteAheadLog with several writes in flight', () => {
  /** A disk whose writes land at once but report completion only when the test says so. */
  class GatedWrites extends SimDisk {
    readonly gates: Array<() => void> = [];
    gating = false;
    override async openAppend(path: string): Promise<AppendFile> {
      const f = await super.openAppend(path);
      return {
        get size() {
          return f.size;
        },
        write: (d) => {
          const landed = f.write(d);
          if (!this.gating) return landed;
          return new Promise<void>((resolve) => this.gates.push(() => void landed.then(resolve)));
        },
        sync: () => f.sync(),
        close: () => f.close(),
      };
    }
  }

  it('acknowledges records in log order when a later write completes first', async () => {
    const disk = new GatedWrites();
    const { wal } = await WriteAheadLog.open({ disk, dir: '/w', maxWritesInFlight: 3 });
    disk.gating = true;
    const done: string[] = [];
    for (let i = 0; i < 3; i++) {
      wal.append(i, rec(i));
      void wal.flush().then(() => done.push(`r${i}`));
      await turn(); // one write per turn
    }
    expect(disk.gates).toHaveLength(3);
    expect(wal.stats.writes).toBe(0);
    disk.gates[2]!();
    disk.gates[1]!();
    await turn();
    expect(done).toEqual([]); // the first write is still in flight
    expect(wal.stats.durableRecords).toBe(0);
    disk.gates[0]!();
    await turn();
    expect(done).toEqual(['r0', 'r1', 'r2']);
    expect(wal.stats.durableRecords).toBe(3);
  });

  it('never has more writes in flight than allowed, and one in always mode', async () => {
    for (const [fsync, limit] of [
      ['batch', 2],
      ['always', 1],
    ] as const) {
      const disk = new GatedWrites();
      const { wal } = await WriteAheadLog.open({
        disk,
        dir: '/w',
        fsync,
        maxWritesInFlight: limit === 1 ? 4 : 2,
      });
      disk.gating = true;
      const flushes: Promise<void>[] = [];
      for (let i = 0; i < 6; i++) {
        wal.append(0, rec(i));
        flushes.push(wal.flush());
        await turn();
      }
      expect(disk.gates.length).toBe(limit);
      while (disk.gates.length > 0) {
        disk.gates.shift()!();
        await turn();
        await turn();
      }
      await Promise.all(flushes);
      expect(wal.stats.durableRecords).toBe(6);
    }
  });

  it('after a crash with a later write on disk and an earlier one lost, recovery stops at the hole', async () => {
    const disk = new SimDisk();
    const { wal } = await WriteAheadLog.open({ disk, dir: '/w' });
    for (let i = 0; i < 3; i++) wal.append(0, rec(i));
    await wal.flush();
    const path = `/w/${segmentName(1)}`;
    const bytes = disk.bytes(path)!;
    // Zero the middle record (as if its write never reached the disk) and keep the last one.
    const first = WAL_HEADER_BYTES + WAL_MARKER_RECORD_BYTES + OVERHEAD + rec(0).length;
    bytes.fill(0, first, first + OVERHEAD + rec(1).length);
    disk.setBytes(path, bytes);
    const { records } = await open0({ disk, dir: '/w' });
    expect(texts(records)).toEqual(texts([rec(0)]));
  });
});
