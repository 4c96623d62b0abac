/**
 * Recovery tells a crash from corruption (see the module notes of wal.ts): a torn tail is cut, a damaged
 * record that had been durable makes `open` refuse with WalCorruptError and change nothing. The
 * TESTING ONLY mutation `unsafeMutation: 'cutCorruption'` (recovery cuts at any invalid record, as it
 * did before) is caught by the same check: acknowledged records come back missing.
 */
import { describe, expect, it } from 'vitest';
import { SimDisk } from './sim-disk.js';
import {
  durableClaimAfter,
  segmentName,
  WAL_HEADER_BYTES,
  WAL_MARKER_RECORD_BYTES,
  WAL_RECORD_HEADER_BYTES,
  WAL_TAG_BYTES,
  WalCorruptError,
  type WalOptions,
  WriteAheadLog,
} from './wal.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const rec = (i: number) => enc.encode(`record-${i}-${'y'.repeat(i % 5)}`);
const PATH = `/w/${segmentName(1)}`;
/** One event-loop turn (the log issues at most one write per turn). */
const turn = () => new Promise<void>((r) => setImmediate(r));

/** Awaits `p` on a disk whose syncs complete only when asked: completes them turn after turn. */
async function drive<T>(disk: SimDisk, p: Promise<T>): Promise<T> {
  let done = false;
  const out = p.finally(() => {
    done = true;
  });
  while (!done) {
    disk.completeSyncs();
    await turn();
  }
  return out;
}

/** Writes `n` records of partition 0, each acknowledged (flushed) before the next: one write each. */
async function acknowledgedLog(n: number): Promise<{ bytes: Uint8Array; starts: number[] }> {
  const disk = new SimDisk();
  const { wal } = await WriteAheadLog.open({ disk, dir: '/w' });
  const starts: number[] = [];
  let off = WAL_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    starts.push(off); // the write starts with its marker
    wal.append(0, rec(i));
    await wal.flush();
    off += WAL_MARKER_RECORD_BYTES + WAL_RECORD_HEADER_BYTES + WAL_TAG_BYTES + rec(i).length;
  }
  await wal.close();
  const bytes = disk.bytes(PATH)!;
  expect(bytes.length).toBe(off);
  return { bytes, starts };
}

/**
 * The safety check: opening a damaged copy either refuses with WalCorruptError, or returns every record
 * acknowledged before the write that holds the damaged byte. Returns what is wrong, or undefined.
 */
async function checkFlip(
  bytes: Uint8Array,
  starts: number[],
  pos: number,
  bit: number,
  extra: Partial<WalOptions> = {},
): Promise<string | undefined> {
  const damaged = bytes.slice();
  damaged[pos]! ^= 1 << bit;
  const disk = new SimDisk();
  disk.setBytes(PATH, damaged);
  const opened = await WriteAheadLog.open({ disk, dir: '/w', ...extra }).catch((e: unknown) => e);
  if (opened instanceof WalCorruptError) {
    if (opened.file !== PATH) return `refused naming ${opened.file}`;
    if (!disk.bytes(PATH)!.every((b, i) => b === damaged[i])) return 'refused but changed the file';
    return undefined;
  }
  if (opened instanceof Error) return `threw ${opened.message}`;
  const { wal } = opened as Awaited<ReturnType<typeof WriteAheadLog.open>>;
  const got = wal.takeRecovered(0).payloads.map((p) => dec.decode(p));
  // The write holding the damaged byte, and every write before it, had been acknowledged when the next
  // write was issued; only the last write can be a torn one.
  const write = starts.filter((s) => s <= pos).length - 1;
  const last = write === starts.length - 1;
  if (!last) return `flip at ${pos} (write ${write} of ${starts.length}) opened with ${got.length} records`;
  const want = Array.from({ length: write }, (_, i) => dec.decode(rec(i)));
  if (got.length < write || got.slice(0, write).join() !== want.join())
    return `flip at ${pos} lost acknowledged records: ${got.length} of ${write}`;
  return undefined;
}

describe('write-ahead log recovery: crash or corruption', () => {
  it('refuses every flipped bit in a record that was durable before a later write, and never loses an acknowledged record', async () => {
    const { bytes, starts } = await acknowledgedLog(12);
    const problems: string[] = [];
    let refused = 0;
    for (let pos = WAL_HEADER_BYTES; pos < bytes.length; pos++) {
      const bit = pos % 8;
      const problem = await checkFlip(bytes, starts, pos, bit);
      if (problem) problems.push(problem);
      if (pos < starts.at(-1)!) refused++;
    }
    expect(problems).toEqual([]);
    // checkFlip requires a refusal for each of these (a flip before the last write).
    expect(refused).toBeGreaterThan(100);
  });

  it('names the file and offset, says what to do, and changes nothing', async () => {
    const { bytes, starts } = await acknowledgedLog(6);
    const damaged = bytes.slice();
    const at = starts[2]! + WAL_MARKER_RECORD_BYTES; // the third record (after its write's marker)
    damaged[at + WAL_RECORD_HEADER_BYTES + WAL_TAG_BYTES + 1]! ^= 0x10;
    const disk = new SimDisk();
    disk.setBytes(PATH, damaged);
    const e = await WriteAheadLog.open({ disk, dir: '/w' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WalCorruptError);
    const err = e as WalCorruptError;
    expect(err.file).toBe(PATH);
    expect(err.offset).toBe(at);
    expect(err.reason).toBe('checksum mismatch');
    expect(err.message).toContain(`write-ahead log ${PATH} is corrupt at offset ${at} (checksum mismatch;`);
    expect(err.message).toMatch(/durable up to offset \d+/);
    expect(err.message).toMatch(/move its data dir away/);
    expect(err.message).toMatch(/paxkv snapshot restore/);
    expect(disk.bytes(PATH)).toEqual(damaged);
  });

  it('still cuts a torn tail: the last write cut at every byte, or its bytes zeroed after a later write landed', async () => {
    const { bytes, starts } = await acknowledgedLog(5);
    for (let cut = starts.at(-1)!; cut < bytes.length; cut++) {
      const disk = new SimDisk();
      disk.setBytes(PATH, bytes.subarray(0, cut));
      const { wal, recovery } = await WriteAheadLog.open({ disk, dir: '/w' });
      expect(wal.takeRecovered(0).payloads, `cut at ${cut}`).toHaveLength(4);
      // A whole marker before the cut stays (it is a valid record); the rest is dropped.
      const kept = cut >= starts.at(-1)! + WAL_MARKER_RECORD_BYTES ? WAL_MARKER_RECORD_BYTES : 0;
      expect(recovery.droppedBytes, `cut at ${cut}`).toBe(cut - starts.at(-1)! - kept);
    }
    // Two writes in flight at the crash: the earlier one lost (zeros), the later one on disk. Its marker
    // says only what was durable before both, so this is a torn tail.
    const disk = new SimDisk({ autoSync: false });
    const { wal } = await drive(disk, WriteAheadLog.open({ disk, dir: '/w', maxWritesInFlight: 2 }));
    wal.append(0, rec(0));
    await drive(disk, wal.flush());
    const holeFrom = disk.bytes(PATH)!.length;
    wal.append(0, rec(1));
    const first = wal.flush();
    await turn();
    await turn();
    expect(disk.pendingSyncs).toBe(1);
    wal.append(0, rec(2));
    const second = wal.flush();
    await turn();
    await turn();
    expect(disk.pendingSyncs).toBe(2);
    await drive(disk, Promise.all([first, second]));
    const all = disk.bytes(PATH)!;
    // The second write's marker was written while the first was in flight: it claims only `holeFrom`.
    expect(durableClaimAfter(all, holeFrom + 1)).toBe(holeFrom);
    const holeTo =
      holeFrom + WAL_MARKER_RECORD_BYTES + WAL_RECORD_HEADER_BYTES + WAL_TAG_BYTES + rec(1).length;
    all.fill(0, holeFrom, holeTo);
    const crashed = new SimDisk();
    crashed.setBytes(PATH, all);
    const reopened = await WriteAheadLog.open({ disk: crashed, dir: '/w' });
    expect(reopened.wal.takeRecovered(0).payloads.map((p) => dec.decode(p))).toEqual([dec.decode(rec(0))]);
    // Had the first write completed before the second was issued, the same bytes are corruption.
    const durable = new SimDisk();
    const { wal: w2 } = await WriteAheadLog.open({ disk: durable, dir: '/w' });
    for (let i = 0; i < 3; i++) {
      w2.append(0, rec(i));
      await w2.flush();
    }
    const seq = durable.bytes(PATH)!;
    expect(seq.length).toBe(all.length);
    seq.fill(0, holeFrom, holeTo);
    const damaged = new SimDisk();
    damaged.setBytes(PATH, seq);
    await expect(WriteAheadLog.open({ disk: damaged, dir: '/w' })).rejects.toThrow(WalCorruptError);
  });

  it('mutation check: recovery that cuts at any invalid record (cutCorruption) loses acknowledged records, and the check sees it', async () => {
    const { bytes, starts } = await acknowledgedLog(8);
    const pos = starts[3]! + WAL_MARKER_RECORD_BYTES + WAL_RECORD_HEADER_BYTES + 2;
    expect(await checkFlip(bytes, starts, pos, 3)).toBeUndefined();
    expect(await checkFlip(bytes, starts, pos, 3, { unsafeMutation: 'cutCorruption' })).toMatch(
      /opened with 3 records/,
    );
  });
});
