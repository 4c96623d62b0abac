/**
 * The write-ahead log: checksummed records in numbered segment files, group commit, torn-tail recovery.
 *
 * File format (all integers little-endian):
 * - segment `wal-<16-digit sequence>.log` = header `"PXWL"` + u32 format version, then records;
 * - record = u32 payload length + u32 CRC-32C (over the length bytes and the payload) + payload.
 *
 * A record is valid only if its length is in (0, maxRecordBytes], it lies entirely inside the file and its
 * checksum matches. Recovery replays segments in order and stops at the first invalid record: that record
 * and everything after it (the rest of the segment and every later segment) is cut away and the amount is
 * reported and logged. Since a segment is synced before the next one is created, only the tail of the last
 * segment can be torn by a crash; an invalid record anywhere else is real corruption, handled the same way.
 * @module
 */
import { crc32c } from './crc32c.js';
import type { AppendFile, Disk, OpenAppendOptions } from './disk.js';

/** When the log calls fsync. */
export type FsyncMode = 'always' | 'batch' | 'never';

/** Minimal logger the storage layer writes to (a pino logger fits). */
export interface StorageLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** A logger that drops everything. */
export const silentLogger: StorageLogger = { info() {}, warn() {} };

/** Options of {@link WriteAheadLog.open}. */
export interface WalOptions {
  /** The file port: {@link NodeDisk} in production, {@link SimDisk} in simulations. */
  readonly disk: Disk;
  /** Directory of the segment files (created if missing). */
  readonly dir: string;
  /**
   * `batch` (default): group commit, one fsync covers every record queued while the previous fsync ran.
   * `always`: every record gets its own write and fsync (slowest, for comparison).
   * `never`: records are written to the OS cache without fsync; a machine crash can lose acknowledged
   * records (a process crash cannot).
   */
  readonly fsync?: FsyncMode;
  /** A segment is closed and a new one started once it exceeds this size. Default 64 MiB. */
  readonly segmentBytes?: number;
  /** Largest accepted record payload; a longer length prefix is treated as corruption. Default 64 MiB. */
  readonly maxRecordBytes?: number;
  /** Largest number of bytes written by one group-commit write call. Default 4 MiB. */
  readonly maxBatchBytes?: number;
  /** Where recovery reports what it dropped. Default: silent. */
  readonly logger?: StorageLogger;
}

/** Defaults of {@link WalOptions}. */
export const DEFAULT_WAL_OPTIONS = {
  fsync: 'batch' as FsyncMode,
  segmentBytes: 64 * 1024 * 1024,
  maxRecordBytes: 64 * 1024 * 1024,
  maxBatchBytes: 4 * 1024 * 1024,
} as const;

/** What recovery found and dropped. */
export interface WalRecovery {
  /** Valid records replayed. */
  readonly records: number;
  /** Segments read. */
  readonly segments: number;
  /** Bytes cut away (torn or corrupt tail, and whole later segments). */
  readonly droppedBytes: number;
  /** Whole segment files removed because they followed an invalid record. */
  readonly droppedSegments: number;
  /** Where the first invalid record was, if any. */
  readonly firstInvalid?: { readonly segment: string; readonly offset: number; readonly reason: string };
}

/** Counters of a running log. */
export interface WalStats {
  readonly appendedRecords: number;
  readonly durableRecords: number;
  readonly bytesWritten: number;
  readonly fsyncs: number;
  readonly writes: number;
  readonly segment: string;
}

/** The log failed an IO operation (write or fsync) and cannot continue: restart the process to recover. */
export class WalFailedError extends Error {
  override readonly name = 'WalFailedError';
  constructor(readonly reason: unknown) {
    super(
      `write-ahead log IO failed (${String((reason as Error)?.message ?? reason)}); nothing can be assumed about unsynced records: restart the replica so it recovers from disk`,
    );
  }
}

/** A record payload was rejected before it was written. */
export class WalRecordError extends Error {
  override readonly name = 'WalRecordError';
}

const MAGIC = [0x50, 0x58, 0x57, 0x4c]; // "PXWL"
const VERSION = 1;
/** Size of a segment header in bytes. */
export const WAL_HEADER_BYTES = 8;
/** Size of a record header (length + checksum) in bytes. */
export const WAL_RECORD_HEADER_BYTES = 8;

/** File name of segment number `seq`. */
export function segmentName(seq: number): string {
  return `wal-${seq.toString().padStart(16, '0')}.log`;
}

function parseSegmentName(name: string): number | undefined {
  const m = /^wal-(\d{16})\.log$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

function header(): Uint8Array {
  const h = new Uint8Array(WAL_HEADER_BYTES);
  h.set(MAGIC, 0);
  new DataView(h.buffer).setUint32(4, VERSION, true);
  return h;
}

/** Encodes one record (header + payload). */
export function encodeRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(WAL_RECORD_HEADER_BYTES + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, payload.length, true);
  out.set(payload, WAL_RECORD_HEADER_BYTES);
  let c = crc32c(out, 0, 0, 4);
  c = crc32c(out, c, WAL_RECORD_HEADER_BYTES, out.length);
  dv.setUint32(4, c, true);
  return out;
}

/** Result of scanning one segment. */
export interface SegmentScan {
  readonly payloads: Uint8Array[];
  /** Offset just past the last valid record. */
  readonly validEnd: number;
  /** Why scanning stopped before the end of the data, if it did. */
  readonly invalid?: string;
}

/** Parses a segment's bytes; never throws. */
export function scanSegment(data: Uint8Array, maxRecordBytes: number): SegmentScan {
  if (data.length < WAL_HEADER_BYTES) {
    return { payloads: [], validEnd: 0, ...(data.length > 0 ? { invalid: 'torn segment header' } : {}) };
  }
  for (let i = 0; i < 4; i++) {
    if (data[i] !== MAGIC[i]) return { payloads: [], validEnd: 0, invalid: 'bad segment magic' };
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (dv.getUint32(4, true) !== VERSION) {
    return { payloads: [], validEnd: 0, invalid: `unsupported segment version ${dv.getUint32(4, true)}` };
  }
  const payloads: Uint8Array[] = [];
  let off = WAL_HEADER_BYTES;
  while (off < data.length) {
    if (data.length - off < WAL_RECORD_HEADER_BYTES) {
      return { payloads, validEnd: off, invalid: 'torn record header' };
    }
    const len = dv.getUint32(off, true);
    if (len === 0 || len > maxRecordBytes)
      return { payloads, validEnd: off, invalid: `bad record length ${len}` };
    const end = off + WAL_RECORD_HEADER_BYTES + len;
    if (end > data.length) return { payloads, validEnd: off, invalid: 'torn record payload' };
    let c = crc32c(data, 0, off, off + 4);
    c = crc32c(data, c, off + WAL_RECORD_HEADER_BYTES, end);
    if (c !== dv.getUint32(off + 4, true)) return { payloads, validEnd: off, invalid: 'checksum mismatch' };
    payloads.push(data.slice(off + WAL_RECORD_HEADER_BYTES, end));
    off = end;
  }
  return { payloads, validEnd: off };
}

interface Waiter {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/**
 * An append-only, checksummed, segmented log with group commit.
 *
 * {@link WriteAheadLog.append} is synchronous: it queues a record in memory and returns. {@link
 * WriteAheadLog.flush} resolves once every record appended before the call is durable (per the fsync
 * mode). Writes are done by one background loop, so all records queued while a write+fsync is running go
 * out together in the next one (group commit). Records become durable in append order.
 */
export class WriteAheadLog {
  private readonly disk: Disk;
  private readonly dir: string;
  private readonly mode: FsyncMode;
  private readonly segmentBytes: number;
  private readonly maxRecordBytes: number;
  private readonly maxBatchBytes: number;
  private readonly logger: StorageLogger;
  private file: AppendFile;
  private segSeq: number;
  /** Segments before the current one, oldest first. */
  private older: number[];
  /** Encoded records, and barriers (tasks that must complete before any later record is written). */
  private queue: Array<Uint8Array | (() => Promise<void>)> = [];
  private appended = 0;
  private durableSeq = 0;
  private waiters: Waiter[] = [];
  private running = false;
  private checkpointJob: { records: Uint8Array[]; waiters: Waiter[] } | undefined;
  private failed: WalFailedError | undefined;
  private closed = false;
  private counters = { bytesWritten: 0, fsyncs: 0, writes: 0 };

  private constructor(opts: WalOptions, file: AppendFile, segSeq: number, older: number[]) {
    this.disk = opts.disk;
    this.dir = opts.dir;
    this.mode = opts.fsync ?? DEFAULT_WAL_OPTIONS.fsync;
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_WAL_OPTIONS.segmentBytes;
    this.maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_WAL_OPTIONS.maxRecordBytes;
    this.maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_WAL_OPTIONS.maxBatchBytes;
    this.logger = opts.logger ?? silentLogger;
    this.file = file;
    this.segSeq = segSeq;
    this.older = older;
  }

  /**
   * Opens (or creates) the log in `opts.dir`, recovers it and returns the valid record payloads in order.
   * A torn or corrupt tail is cut away durably before the log accepts appends.
   */
  static async open(
    opts: WalOptions,
  ): Promise<{ wal: WriteAheadLog; records: Uint8Array[]; recovery: WalRecovery }> {
    const { disk, dir } = opts;
    const maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_WAL_OPTIONS.maxRecordBytes;
    const logger = opts.logger ?? silentLogger;
    const mode = opts.fsync ?? DEFAULT_WAL_OPTIONS.fsync;
    await disk.mkdirp(dir);
    const names = (await disk.list(dir))
      .map((n) => ({ n, seq: parseSegmentName(n) }))
      .filter((x): x is { n: string; seq: number } => x.seq !== undefined)
      .sort((a, b) => a.seq - b.seq);
    const records: Uint8Array[] = [];
    const kept: number[] = [];
    let droppedBytes = 0;
    let droppedSegments = 0;
    let firstInvalid: WalRecovery['firstInvalid'];
    for (const { n, seq } of names) {
      const path = disk.join(dir, n);
      const data = (await disk.readFile(path)) ?? new Uint8Array(0);
      if (firstInvalid) {
        droppedBytes += data.length;
        droppedSegments++;
        await disk.remove(path);
        continue;
      }
      const scan = scanSegment(data, maxRecordBytes);
      for (const p of scan.payloads) records.push(p);
      if (scan.invalid !== undefined) {
        firstInvalid = { segment: n, offset: scan.validEnd, reason: scan.invalid };
        droppedBytes += data.length - scan.validEnd;
      }
      if (scan.validEnd < WAL_HEADER_BYTES) {
        // Empty or header-less segment (a crash right after its creation): nothing in it to keep.
        if (data.length > 0) droppedSegments++;
        await disk.remove(path);
        continue;
      }
      if (scan.invalid !== undefined) await disk.truncate(path, scan.validEnd);
      kept.push(seq);
    }
    if (droppedSegments > 0 || kept.length < names.length) await disk.syncDir(dir);
    const recovery: WalRecovery = {
      records: records.length,
      segments: names.length,
      droppedBytes,
      droppedSegments,
      ...(firstInvalid ? { firstInvalid } : {}),
    };
    if (firstInvalid) {
      logger.warn(
        { dir, ...recovery },
        `write-ahead log recovery dropped ${droppedBytes} bytes after ${records.length} valid records (${firstInvalid.reason} in ${firstInvalid.segment} at offset ${firstInvalid.offset})`,
      );
    } else {
      logger.info(
        { dir, fsync: opts.fsync ?? DEFAULT_WAL_OPTIONS.fsync, ...recovery },
        `write-ahead log recovered ${records.length} records (fsync=${opts.fsync ?? DEFAULT_WAL_OPTIONS.fsync})`,
      );
    }
    let file: AppendFile;
    let segSeq: number;
    const last = kept.at(-1);
    if (last === undefined) {
      segSeq = (names.at(-1)?.seq ?? 0) + 1;
      file = await WriteAheadLog.createSegment(disk, dir, segSeq, mode);
    } else {
      segSeq = last;
      file = await disk.openAppend(disk.join(dir, segmentName(last)), WriteAheadLog.openOptions(mode));
    }
    const wal = new WriteAheadLog(opts, file, segSeq, kept.slice(0, -1));
    return { wal, records, recovery };
  }

  /**
   * Segments are opened with `O_DSYNC` unless the mode is `never`: a batch then costs one write
   * system call (one trip through libuv's thread pool) instead of a write and an `fdatasync`.
   */
  private static openOptions(mode: FsyncMode): OpenAppendOptions {
    return { syncEachWrite: mode !== 'never' };
  }

  private static async createSegment(
    disk: Disk,
    dir: string,
    seq: number,
    mode: FsyncMode,
  ): Promise<AppendFile> {
    const file = await disk.openAppend(disk.join(dir, segmentName(seq)), WriteAheadLog.openOptions(mode));
    await file.write(header());
    await file.sync();
    await disk.syncDir(dir);
    return file;
  }

  /** The fsync mode in force. */
  get fsyncMode(): FsyncMode {
    return this.mode;
  }

  /** Counters since open. */
  get stats(): WalStats {
    return {
      appendedRecords: this.appended,
      durableRecords: this.durableSeq,
      ...this.counters,
      segment: segmentName(this.segSeq),
    };
  }

  /** Number of records appended but not yet durable. */
  get pendingRecords(): number {
    return this.appended - this.durableSeq;
  }

  private check(): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new WalRecordError('write-ahead log is closed; open it again to append');
  }

  /**
   * Queues one record. Synchronous; durable once a later {@link WriteAheadLog.flush} resolves.
   * @throws WalRecordError for an empty or oversized payload, WalFailedError after an IO failure.
   */
  append(payload: Uint8Array): void {
    this.check();
    if (payload.length === 0) throw new WalRecordError('write-ahead log records must not be empty');
    if (payload.length > this.maxRecordBytes) {
      throw new WalRecordError(
        `record of ${payload.length} bytes exceeds maxRecordBytes=${this.maxRecordBytes}; raise the limit or write smaller batches`,
      );
    }
    this.queue.push(encodeRecord(payload));
    this.appended++;
  }

  /**
   * Queues a barrier: `task` runs after every record appended before it is durable, and no record appended
   * after it is written until `task` resolves. Use it to make a side file (a snapshot) durable before the
   * log record that refers to it. A rejected task fails the log like an IO error.
   */
  appendBarrier(task: () => Promise<void>): void {
    this.check();
    this.queue.push(task);
    this.appended++;
  }

  /** Resolves when every record appended so far is durable; rejects with WalFailedError on IO failure. */
  flush(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    const seq = this.appended;
    if (seq <= this.durableSeq) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ seq, resolve, reject });
      this.kick();
    });
  }

  /**
   * Starts a new segment whose content is exactly `records` (a checkpoint of the caller's whole state),
   * makes it durable, then deletes every older segment. Records appended before this call are written
   * first; records appended after it follow the checkpoint. Use it to trim the log after a snapshot.
   */
  checkpoint(records: Uint8Array[]): Promise<void> {
    this.check();
    for (const r of records) {
      if (r.length === 0 || r.length > this.maxRecordBytes) {
        throw new WalRecordError(`checkpoint record of ${r.length} bytes is empty or exceeds maxRecordBytes`);
      }
    }
    // Everything queued so far goes before the checkpoint; later appends after it.
    const before = this.appended;
    return new Promise<void>((resolve, reject) => {
      const job = { records: records.map(encodeRecord), waiters: [{ seq: before, resolve, reject }] };
      if (this.checkpointJob) {
        // A newer checkpoint supersedes an older one that has not started yet.
        this.checkpointJob.records = job.records;
        this.checkpointJob.waiters.push(...job.waiters);
      } else {
        this.checkpointJob = job;
      }
      this.checkpointBarrier = before;
      this.kick();
    });
  }

  private checkpointBarrier = 0;

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        if (this.failed) return;
        if (this.checkpointJob && this.durableSeq >= this.checkpointBarrier) {
          const job = this.checkpointJob;
          this.checkpointJob = undefined;
          await this.writeCheckpoint(job.records);
          for (const w of job.waiters) w.resolve();
          this.releaseWaiters();
          continue;
        }
        if (this.queue.length === 0) break;
        const head = this.queue[0]!;
        if (typeof head === 'function') {
          this.queue.shift();
          await head();
          this.durableSeq++;
          this.releaseWaiters();
          continue;
        }
        const batch: Uint8Array[] = [];
        let bytes = 0;
        const limit = this.checkpointJob ? this.checkpointBarrier - this.durableSeq : this.queue.length;
        const maxRecords = this.mode === 'always' ? 1 : limit;
        while (batch.length < maxRecords && this.queue.length > 0) {
          const next = this.queue[0]!;
          if (typeof next === 'function') break;
          if (batch.length > 0 && bytes + next.length > this.maxBatchBytes) break;
          batch.push(next);
          bytes += next.length;
          this.queue.shift();
        }
        await this.writeBatch(batch, bytes);
        this.durableSeq += batch.length;
        this.releaseWaiters();
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.running = false;
    }
    if (!this.failed && (this.queue.length > 0 || this.checkpointJob)) this.kick();
  }

  private releaseWaiters(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.seq <= this.durableSeq) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  private fail(e: unknown): void {
    this.failed = e instanceof WalFailedError ? e : new WalFailedError(e);
    const all = [...this.waiters, ...(this.checkpointJob?.waiters ?? [])];
    this.waiters = [];
    this.checkpointJob = undefined;
    for (const w of all) w.reject(this.failed);
  }

  private async writeBatch(batch: Uint8Array[], bytes: number): Promise<void> {
    if (this.file.size > WAL_HEADER_BYTES && this.file.size + bytes > this.segmentBytes) await this.rotate();
    const buf = batch.length === 1 ? batch[0]! : concat(batch, bytes);
    await this.file.write(buf);
    this.counters.writes++;
    this.counters.bytesWritten += buf.length;
    if (this.mode !== 'never') {
      // An O_DSYNC segment made the write durable already.
      if (this.file.syncsEachWrite !== true) await this.file.sync();
      this.counters.fsyncs++;
    }
  }

  private async rotate(): Promise<void> {
    await this.file.sync();
    this.counters.fsyncs++;
    await this.file.close();
    this.older.push(this.segSeq);
    this.segSeq++;
    this.file = await WriteAheadLog.createSegment(this.disk, this.dir, this.segSeq, this.mode);
  }

  private async writeCheckpoint(records: Uint8Array[]): Promise<void> {
    await this.file.sync();
    await this.file.close();
    const obsolete = [...this.older, this.segSeq];
    this.segSeq++;
    const file = await this.disk.openAppend(
      this.disk.join(this.dir, segmentName(this.segSeq)),
      WriteAheadLog.openOptions(this.mode),
    );
    const bytes = records.reduce((n, r) => n + r.length, 0);
    await file.write(concat([header(), ...records], WAL_HEADER_BYTES + bytes));
    await file.sync();
    await this.disk.syncDir(this.dir);
    this.counters.fsyncs += 2;
    this.file = file;
    this.older = [];
    // The checkpoint is durable: older segments are now garbage. A crash before their removal is harmless
    // because replay of the checkpoint resets the state they describe.
    for (const s of obsolete) await this.disk.remove(this.disk.join(this.dir, segmentName(s)));
    await this.disk.syncDir(this.dir);
  }

  /** Flushes and closes the log. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.failed) await this.flush();
    this.closed = true;
    await this.file.close();
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
