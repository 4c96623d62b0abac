/**
 * The write-ahead log of a server: ONE log shared by every replica group the server hosts. Records are
 * tagged with their partition; all groups' records queued during one event-loop turn go to disk in one
 * write (+ one sync): group commit across groups. Recovery reads the log once and splits it by partition;
 * a segment is deleted once every partition that has records in it has checkpointed past it.
 *
 * File format (all integers little-endian):
 * - segment `wal-<16-digit sequence>.log` = header `"PXWL"` + u32 format version (2), then records;
 * - record = u32 body length + u32 CRC-32C (over the length bytes and the body) + body, where
 *   body = u32 partition + payload (the payload is opaque here; see `records.ts` for what groups write).
 *
 * A record is valid only if its body length is in [5, maxRecordBytes + 4], it lies entirely inside the
 * file and its checksum matches. Recovery replays segments in order up to the first invalid record, and
 * then decides whether a crash can explain it:
 * - a **torn tail** (a crash): the invalid record is in the last segment and nothing after it shows
 *   that it had been durable. That record and everything after it are cut away (durably) and the
 *   amount is reported and logged. Nothing cut was ever acknowledged.
 * - **corruption**: the invalid record is in a segment that is not the last (a segment is complete and
 *   synced before the next one is created, so a crash cannot leave it torn), or a later write of the
 *   last segment says the log was durable past it (see sync markers below). Opening fails with
 *   {@link WalCorruptError} naming the file and offset, and nothing is changed: cutting there would make
 *   this replica forget entries it accepted and promises it made, which Paxos safety relies on.
 *
 * Sync markers: in `batch` and `always` mode every write starts with one marker record (tag
 * {@link WAL_MARKER_TAG}, payload = u64 offset in the segment up to which every earlier write had
 * completed, i.e. was durable, when this write was issued). Up to `maxWritesInFlight` writes are in
 * flight, so a crash can leave a later write on disk and an earlier one torn or missing (a hole); such a
 * later write's marker never reaches past the hole, while a marker past an invalid record proves the
 * record was durable and has since been damaged. (A corrupt record in the last write of the log, with no
 * later marker, cannot be told from a torn write and is cut.) `never` mode writes no markers. Markers
 * are the log's own: recovery never hands them to a partition.
 *
 * A segment of the old format (version 1) is never dropped: opening fails with {@link WalFormatError}.
 *
 * Format version 1 (one log per group, untagged records, in each group's own directory) is read only by
 * {@link readLegacyGroupLog}, to import a group's data written by an older paxkv.
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
  /** Directory of the segment files (created if missing). One per server. */
  readonly dir: string;
  /**
   * `batch` (default): group commit, one write + sync per event-loop turn covers every record every
   * group queued meanwhile (and every record queued while the previous write ran).
   * `always`: every record gets its own write and sync (slowest, for comparison).
   * `never`: records are written to the OS cache without sync; a machine crash can lose acknowledged
   * records (a process crash cannot).
   */
  readonly fsync?: FsyncMode;
  /**
   * A segment is closed and a new one started once it exceeds this size. Default 16 MiB: recovery
   * reads and checksums every live segment, and a segment is deleted only once every partition has
   * checkpointed past it, so smaller segments bound what a restart reads (the live segments since
   * the oldest partition's last checkpoint) at the cost of a rotation (one sync and a directory sync)
   * every 16 MiB written.
   */
  readonly segmentBytes?: number;
  /** Largest accepted record payload; a longer length prefix is treated as corruption. Default 64 MiB. */
  readonly maxRecordBytes?: number;
  /** Largest number of bytes written by one group-commit write call. Default 4 MiB. */
  readonly maxBatchBytes?: number;
  /**
   * Live segments above which the log asks the partitions that pin the oldest segment to checkpoint
   * (rewrite their state at the tail), so that an idle group does not keep old segments forever.
   * Default 4.
   */
  readonly maxSegments?: number;
  /**
   * Cheap checkpoints: whenever the oldest live segment is kept only by partitions whose records in
   * the live log add up to at most this many bytes, those partitions are asked to checkpoint (checked
   * at every rotation and every anchor move). A group that rarely writes (the server's metadata group,
   * a few records at bootstrap, never a snapshot) would otherwise keep every segment since its first
   * record until `maxSegments` is passed, and a restart would read them all; rewriting its small state
   * frees a whole segment for at most this many bytes written. Default `segmentBytes / 8` (2 MiB of
   * 16): at most 1/8 more bytes written per segment freed. 0: only the `maxSegments` rule.
   */
  readonly cheapCheckpointBytes?: number;
  /**
   * How a write is scheduled after records are queued. Default `setImmediate`: the write starts after
   * the current event-loop turn, so every group that handles input in this turn joins it.
   */
  readonly schedule?: (run: () => void) => void;
  /**
   * Writes in flight at once in `batch` and `never` mode (at most one new write per event-loop turn;
   * `always` keeps one). Records are acknowledged in log order whatever order the writes complete in, so
   * a crash that keeps a later write and loses an earlier one loses nothing acknowledged (recovery stops
   * at the hole). More writes in flight cut the wait behind a slow sync at the cost of more, smaller
   * writes. Default 2.
   */
  readonly maxWritesInFlight?: number;
  /** Where recovery reports what it dropped. Default: silent. */
  readonly logger?: StorageLogger;
  /**
   * TESTING ONLY (mutation check): `'cutCorruption'` makes recovery cut the log at a corrupt record as
   * if it were a torn tail, instead of refusing with {@link WalCorruptError}. Never set it elsewhere.
   */
  readonly unsafeMutation?: 'cutCorruption';
}

/** Defaults of {@link WalOptions}. */
export const DEFAULT_WAL_OPTIONS = {
  fsync: 'batch' as FsyncMode,
  segmentBytes: 16 * 1024 * 1024,
  maxRecordBytes: 64 * 1024 * 1024,
  maxBatchBytes: 4 * 1024 * 1024,
  maxSegments: 4,
  maxWritesInFlight: 2,
} as const;

/** Default {@link WalOptions.cheapCheckpointBytes} as a fraction of the segment size: 1/8. */
export const CHEAP_CHECKPOINT_FRACTION = 1 / 8;

/** What recovery found and dropped. */
export interface WalRecovery {
  /** Valid records replayed (all partitions). */
  readonly records: number;
  /** Partitions with at least one record. */
  readonly partitions: number;
  /** Segments read. */
  readonly segments: number;
  /** Bytes read (every segment, whole). */
  readonly bytes: number;
  /** Wall-clock milliseconds the recovery took (read, check, split). */
  readonly ms: number;
  /** Bytes cut away (torn or corrupt tail, and whole later segments). */
  readonly droppedBytes: number;
  /** Whole segment files removed because they followed an invalid record. */
  readonly droppedSegments: number;
  /** Where the first invalid record was, if any. */
  readonly firstInvalid?: { readonly segment: string; readonly offset: number; readonly reason: string };
}

/**
 * The recovered records of one partition, in log order. A payload is a view into the bytes of its
 * segment as read at open (no copy is made of records nobody reads: recovery of a partition reads only
 * those from its last checkpoint on); copy what you keep, or the whole segment stays in memory.
 */
export interface PartitionRecords {
  /** Number of records. */
  readonly count: number;
  /** Payload of record `i` (without the partition tag): a view into its segment's bytes. */
  payload(i: number): Uint8Array;
  /** Every payload (views, see {@link PartitionRecords.payload}). */
  readonly payloads: Uint8Array[];
  /** `segments[i]` is the sequence number of the segment holding record `i`. */
  readonly segments: number[];
}

/** {@link PartitionRecords} as recovery collects them: where each payload lies, no copy. */
class RecoveredRecords implements PartitionRecords {
  private readonly data: Uint8Array[] = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  readonly segments: number[] = [];
  add(data: Uint8Array, start: number, end: number, segment: number): void {
    this.data.push(data);
    this.starts.push(start);
    this.ends.push(end);
    this.segments.push(segment);
  }
  get count(): number {
    return this.starts.length;
  }
  payload(i: number): Uint8Array {
    return this.data[i]!.subarray(this.starts[i]!, this.ends[i]!);
  }
  get payloads(): Uint8Array[] {
    return this.starts.map((_, i) => this.payload(i));
  }
  /** Bytes of the records (payload + tag + header) per segment. */
  bytesBySegment(): Map<number, number> {
    const out = new Map<number, number>();
    for (let i = 0; i < this.starts.length; i++) {
      const seg = this.segments[i]!;
      const b = this.ends[i]! - this.starts[i]! + WAL_RECORD_HEADER_BYTES + WAL_TAG_BYTES;
      out.set(seg, (out.get(seg) ?? 0) + b);
    }
    return out;
  }
}

/** Counters of a running log. */
export interface WalStats {
  readonly appendedRecords: number;
  readonly durableRecords: number;
  readonly bytesWritten: number;
  readonly fsyncs: number;
  readonly writes: number;
  /** Name of the segment being appended to. */
  readonly segment: string;
  /** Segment files on disk (the current one included). */
  readonly liveSegments: number;
  /** Segment files deleted since open because every partition had checkpointed past them. */
  readonly deletedSegments: number;
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

/** A record was refused before it was written (empty, oversized, or not readable back): nothing was written. */
export class WalRecordError extends Error {
  override readonly name = 'WalRecordError';
}

/** A segment was written by an incompatible version of the log: it is kept untouched and the log is not opened. */
export class WalFormatError extends Error {
  override readonly name = 'WalFormatError';
}

/**
 * The log is damaged where a crash cannot have damaged it (see the module notes): replaying it up to the
 * damage would make this replica forget records it had made durable (accepted entries, promises). The
 * log is not opened and nothing on disk is changed. The node must be restored from its peers (wipe its
 * data dir and let it rejoin as a new member) or from a backup.
 */
export class WalCorruptError extends Error {
  override readonly name = 'WalCorruptError';
  constructor(
    /** Path of the damaged segment file. */
    readonly file: string,
    /** Offset of the first invalid record in that file. */
    readonly offset: number,
    /** What is wrong with the record (checksum mismatch, bad length, ...). */
    readonly reason: string,
    /** Why a crash cannot explain it. */
    readonly evidence: string,
  ) {
    super(
      `write-ahead log ${file} is corrupt at offset ${offset} (${reason}; ${evidence}): records this server had made durable are damaged, and replaying the log up to the damage would make it forget entries it accepted and promises it made. Nothing was changed. Restore this node from its peers: stop it, move its data dir away, and start it with an empty data dir (and --join naming a live member) so that it joins as a new member and receives copies of the groups from their other replicas (the replicas of its old node id are moved off it after --replace-after); or restore the cluster from a backup (\`paxkv snapshot restore\`)`,
    );
  }
}

const MAGIC = [0x50, 0x58, 0x57, 0x4c]; // "PXWL"
/** Format version of the shared, partition-tagged log. */
export const WAL_FORMAT_VERSION = 2;
/** Format version of the old one-log-per-group format (read only, for import). */
const LEGACY_VERSION = 1;
/** Size of a segment header in bytes. */
export const WAL_HEADER_BYTES = 8;
/** Size of a record header (length + checksum) in bytes. */
export const WAL_RECORD_HEADER_BYTES = 8;
/** Size of the partition tag at the start of a record body. */
export const WAL_TAG_BYTES = 4;
/** Tag of the log's own sync-marker records (see the module notes); never a partition's. */
export const WAL_MARKER_TAG = 0xffff_ffff;
/** Largest partition number a record can carry (u32 below {@link WAL_MARKER_TAG}). */
export const MAX_PARTITION = 0xffff_fffe;
/** Size of a marker payload (u64 little-endian offset). */
const MARKER_PAYLOAD_BYTES = 8;
/** Size of a whole sync-marker record on disk. */
export const WAL_MARKER_RECORD_BYTES = WAL_RECORD_HEADER_BYTES + WAL_TAG_BYTES + MARKER_PAYLOAD_BYTES;

/** File name of segment number `seq`. */
export function segmentName(seq: number): string {
  return `wal-${seq.toString().padStart(16, '0')}.log`;
}

function parseSegmentName(name: string): number | undefined {
  const m = /^wal-(\d{16})\.log$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

function header(version = WAL_FORMAT_VERSION): Uint8Array {
  const h = new Uint8Array(WAL_HEADER_BYTES);
  h.set(MAGIC, 0);
  new DataView(h.buffer).setUint32(4, version, true);
  return h;
}

/**
 * Encodes one record (header + body). `partition === undefined` writes an untagged record of the
 * legacy format (tests of the import path only).
 */
export function encodeRecord(partition: number | undefined, payload: Uint8Array): Uint8Array {
  const tag = partition === undefined ? 0 : WAL_TAG_BYTES;
  const out = new Uint8Array(WAL_RECORD_HEADER_BYTES + tag + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, tag + payload.length, true);
  if (partition !== undefined) dv.setUint32(WAL_RECORD_HEADER_BYTES, partition, true);
  out.set(payload, WAL_RECORD_HEADER_BYTES + tag);
  let c = crc32c(out, 0, 0, 4);
  c = crc32c(out, c, WAL_RECORD_HEADER_BYTES, out.length);
  dv.setUint32(4, c, true);
  return out;
}

/** Result of scanning one segment. */
export interface SegmentScan {
  /** Partition of each record (all 0 in a legacy segment). */
  readonly partitions: number[];
  /** Payload of record `i`: the segment's bytes `[starts[i], ends[i])` (without the partition tag). */
  readonly starts: number[];
  readonly ends: number[];
  /** Offset just past the last valid record. */
  readonly validEnd: number;
  /** Why scanning stopped before the end of the data, if it did. */
  readonly invalid?: string;
  /** The format version in the header, when the magic was valid. */
  readonly version?: number;
}

/** A sync-marker record saying the segment was durable up to `durableEnd` when the write was issued. */
function encodeMarker(durableEnd: number): Uint8Array {
  const payload = new Uint8Array(MARKER_PAYLOAD_BYTES);
  const dv = new DataView(payload.buffer);
  dv.setUint32(0, durableEnd % 2 ** 32, true);
  dv.setUint32(4, Math.floor(durableEnd / 2 ** 32), true);
  return encodeRecord(WAL_MARKER_TAG, payload);
}

/**
 * The largest durable offset claimed by a valid sync marker that starts at or after `from` in a segment's
 * bytes (0 if none). Scans byte by byte for the marker's fixed header (length 12, tag 0xffffffff) and
 * checks each candidate's checksum, so it finds markers behind a hole or a damaged record too.
 */
export function durableClaimAfter(data: Uint8Array, from: number): number {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const bodyLen = WAL_TAG_BYTES + MARKER_PAYLOAD_BYTES;
  let best = 0;
  for (let off = Math.max(from, 0); off + WAL_MARKER_RECORD_BYTES <= data.length; off++) {
    if (data[off] !== bodyLen || dv.getUint32(off, true) !== bodyLen) continue;
    if (dv.getUint32(off + WAL_RECORD_HEADER_BYTES, true) !== WAL_MARKER_TAG) continue;
    const end = off + WAL_MARKER_RECORD_BYTES;
    let c = crc32c(data, 0, off, off + 4);
    c = crc32c(data, c, off + WAL_RECORD_HEADER_BYTES, end);
    if (c !== dv.getUint32(off + 4, true)) continue;
    const at = off + WAL_RECORD_HEADER_BYTES + WAL_TAG_BYTES;
    best = Math.max(best, dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 2 ** 32);
  }
  return best;
}

/** Parses a segment's bytes; never throws. A segment of another version than `version` yields no records. */
export function scanSegment(
  data: Uint8Array,
  maxRecordBytes: number,
  version = WAL_FORMAT_VERSION,
): SegmentScan {
  const partitions: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  const payloads = { starts, ends };
  if (data.length < WAL_HEADER_BYTES) {
    return {
      partitions,
      ...payloads,
      validEnd: 0,
      ...(data.length > 0 ? { invalid: 'torn segment header' } : {}),
    };
  }
  for (let i = 0; i < 4; i++) {
    if (data[i] !== MAGIC[i]) return { partitions, ...payloads, validEnd: 0, invalid: 'bad segment magic' };
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const found = dv.getUint32(4, true);
  if (found !== version) {
    return {
      partitions,
      ...payloads,
      validEnd: 0,
      invalid: `segment format version ${found}`,
      version: found,
    };
  }
  const tag = version === LEGACY_VERSION ? 0 : WAL_TAG_BYTES;
  let off = WAL_HEADER_BYTES;
  while (off < data.length) {
    if (data.length - off < WAL_RECORD_HEADER_BYTES) {
      return { partitions, ...payloads, validEnd: off, invalid: 'torn record header', version };
    }
    const len = dv.getUint32(off, true);
    if (len <= tag || len > maxRecordBytes + tag)
      return { partitions, ...payloads, validEnd: off, invalid: `bad record length ${len}`, version };
    const end = off + WAL_RECORD_HEADER_BYTES + len;
    if (end > data.length)
      return { partitions, ...payloads, validEnd: off, invalid: 'torn record payload', version };
    let c = crc32c(data, 0, off, off + 4);
    c = crc32c(data, c, off + WAL_RECORD_HEADER_BYTES, end);
    if (c !== dv.getUint32(off + 4, true))
      return { partitions, ...payloads, validEnd: off, invalid: 'checksum mismatch', version };
    partitions.push(tag === 0 ? 0 : dv.getUint32(off + WAL_RECORD_HEADER_BYTES, true));
    starts.push(off + WAL_RECORD_HEADER_BYTES + tag);
    ends.push(end);
    off = end;
  }
  return { partitions, ...payloads, validEnd: off, version };
}

/**
 * Reads the old per-group log (format version 1) in `dir`, for a one-time import into the shared log.
 * Returns the valid records in order (stopping at the first invalid one, as recovery always did) and
 * the segment file names, to be removed once the import is durable. Never writes.
 */
export async function readLegacyGroupLog(
  disk: Disk,
  dir: string,
  maxRecordBytes: number = DEFAULT_WAL_OPTIONS.maxRecordBytes,
): Promise<{ records: Uint8Array[]; files: string[] }> {
  const names = (await disk.list(dir))
    .map((n) => ({ n, seq: parseSegmentName(n) }))
    .filter((x): x is { n: string; seq: number } => x.seq !== undefined)
    .sort((a, b) => a.seq - b.seq);
  const records: Uint8Array[] = [];
  const files: string[] = [];
  let stopped = false;
  for (const { n } of names) {
    const data = (await disk.readFile(disk.join(dir, n))) ?? new Uint8Array(0);
    const scan = scanSegment(data, maxRecordBytes, LEGACY_VERSION);
    // Only files of the old format are ever returned (and so removed by the caller).
    if (scan.version !== LEGACY_VERSION) continue;
    files.push(n);
    if (!stopped)
      for (let i = 0; i < scan.starts.length; i++) records.push(data.slice(scan.starts[i], scan.ends[i]));
    if (scan.invalid !== undefined) stopped = true;
  }
  return { records, files };
}

interface Waiter {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** What the log asks of a partition whose records pin old segments. */
export interface PartitionHandle {
  /** Rewrite the partition's whole state at the tail of the log, then move its anchor (see {@link WriteAheadLog.setAnchor}). */
  requestCheckpoint(): void;
}

/**
 * The server's write-ahead log: append-only, checksummed, segmented, shared by every partition, with
 * group commit across partitions.
 *
 * {@link WriteAheadLog.append} is synchronous: it queues a record in memory and returns.
 * {@link WriteAheadLog.flush} resolves once every record appended (by any partition) before the call is
 * durable (per the fsync mode). A write is issued at most once per event-loop turn, with everything
 * queued so far, so all records queued in a turn (and while earlier writes ran) go out together; up to
 * `maxWritesInFlight` writes run at once. Records are acknowledged in append order.
 *
 * Segment reclamation: every partition has an *anchor*, the oldest segment it still needs (its latest
 * durable checkpoint, or its first record). A segment older than every anchor is deleted.
 */
export class WriteAheadLog {
  private readonly disk: Disk;
  private readonly dir: string;
  private readonly mode: FsyncMode;
  private readonly segmentBytes: number;
  private readonly maxRecordBytes: number;
  private readonly maxBatchBytes: number;
  private readonly maxSegments: number;
  private readonly cheapCheckpointBytes: number;
  private readonly scheduleFn: (run: () => void) => void;
  private readonly maxInFlight: number;
  private file: AppendFile;
  private segSeq: number;
  /** Segments before the current one, oldest first. */
  private older: number[];
  /** Encoded records waiting to be written. */
  private queue: Uint8Array[] = [];
  private appended = 0;
  private durableSeq = 0;
  private waiters: Waiter[] = [];
  /** Writes issued and not yet acknowledged, in log order. */
  private inFlight: Array<{ readonly count: number; readonly end: number; done: boolean }> = [];
  /** Resolved when no write is in flight (before a rotation). */
  private drainWaiters: Array<() => void> = [];
  private issuing = false;
  private scheduled = false;
  private failed: WalFailedError | undefined;
  private closed = false;
  /** Whether every write starts with a sync marker (not in `never` mode). */
  private readonly markers: boolean;
  /** Offset in the current segment up to which every write has completed (the next marker's value). */
  private durableEnd: number;
  private counters = { bytesWritten: 0, fsyncs: 0, writes: 0, deletedSegments: 0 };
  /** Oldest segment each partition still needs. */
  private readonly anchors = new Map<number, number>();
  /**
   * Per partition: bytes of its records per live segment from its anchor on (what a checkpoint of it
   * would rewrite, at most; see {@link WalOptions.cheapCheckpointBytes}).
   */
  private readonly liveBytes = new Map<number, Map<number, number>>();
  private readonly handles = new Map<number, PartitionHandle>();
  private readonly taken = new Set<number>();
  private recovered: Map<number, RecoveredRecords> | undefined;
  private collecting = false;
  private collectAgain = false;

  private constructor(
    opts: WalOptions,
    file: AppendFile,
    segSeq: number,
    older: number[],
    recovered: Map<number, RecoveredRecords>,
  ) {
    this.disk = opts.disk;
    this.durableEnd = file.size;
    this.dir = opts.dir;
    this.mode = opts.fsync ?? DEFAULT_WAL_OPTIONS.fsync;
    this.markers = this.mode !== 'never';
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_WAL_OPTIONS.segmentBytes;
    this.maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_WAL_OPTIONS.maxRecordBytes;
    this.maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_WAL_OPTIONS.maxBatchBytes;
    this.maxSegments = opts.maxSegments ?? DEFAULT_WAL_OPTIONS.maxSegments;
    this.scheduleFn = opts.schedule ?? ((run) => setImmediate(run));
    this.maxInFlight =
      this.mode === 'always' ? 1 : (opts.maxWritesInFlight ?? DEFAULT_WAL_OPTIONS.maxWritesInFlight);
    if (!Number.isSafeInteger(this.maxInFlight) || this.maxInFlight < 1) {
      throw new RangeError(
        `maxWritesInFlight must be a positive integer, got ${String(opts.maxWritesInFlight)}`,
      );
    }
    this.file = file;
    this.segSeq = segSeq;
    this.older = older;
    this.recovered = recovered;
    for (const [p, r] of recovered) {
      this.anchors.set(p, r.segments[0] ?? segSeq);
      this.liveBytes.set(p, r.bytesBySegment());
    }
    this.cheapCheckpointBytes =
      opts.cheapCheckpointBytes ?? Math.floor(this.segmentBytes * CHEAP_CHECKPOINT_FRACTION);
    if (!Number.isSafeInteger(this.cheapCheckpointBytes) || this.cheapCheckpointBytes < 0) {
      throw new RangeError(
        `cheapCheckpointBytes must be a non-negative integer, got ${String(opts.cheapCheckpointBytes)}`,
      );
    }
  }

  /**
   * Opens (or creates) the log in `opts.dir` and recovers it: the valid records are read once, split by
   * partition, and held until each partition takes them ({@link WriteAheadLog.takeRecovered}). A torn
   * or corrupt tail is cut away durably before the log accepts appends.
   * @throws WalFormatError if a segment was written by an incompatible version (nothing is touched).
   * @throws WalCorruptError if a record is damaged where a crash cannot have damaged it (nothing is
   * touched): restore the node from its peers or a backup (see the error's message).
   */
  static async open(opts: WalOptions): Promise<{ wal: WriteAheadLog; recovery: WalRecovery }> {
    const { disk, dir } = opts;
    const maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_WAL_OPTIONS.maxRecordBytes;
    const logger = opts.logger ?? silentLogger;
    const mode = opts.fsync ?? DEFAULT_WAL_OPTIONS.fsync;
    const started = performance.now();
    await disk.mkdirp(dir);
    const names = (await disk.list(dir))
      .map((n) => ({ n, seq: parseSegmentName(n) }))
      .filter((x): x is { n: string; seq: number } => x.seq !== undefined)
      .sort((a, b) => a.seq - b.seq);
    const scans: Array<{ n: string; seq: number; data: Uint8Array; scan: SegmentScan }> = [];
    for (const { n, seq } of names) {
      const data = (await disk.readFile(disk.join(dir, n))) ?? new Uint8Array(0);
      const scan = scanSegment(data, maxRecordBytes);
      // A segment of the old per-group format in the server's log directory is a misplaced directory, not
      // a crash artefact: never drop it. (Any other version number is a damaged header: corruption.)
      if (scan.version === LEGACY_VERSION) {
        throw new WalFormatError(
          `write-ahead log segment ${disk.join(dir, n)} has format version ${scan.version}, this paxkv reads version ${WAL_FORMAT_VERSION}; move the directory away or run the paxkv version that wrote it`,
        );
      }
      scans.push({ n, seq, data, scan });
    }
    // A damaged record that no crash can explain: refuse before anything on disk is changed.
    const bad = scans.findIndex((x) => x.scan.invalid !== undefined);
    if (bad >= 0 && opts.unsafeMutation !== 'cutCorruption') {
      const { n, data, scan } = scans[bad]!;
      let evidence: string | undefined;
      if (bad < scans.length - 1) {
        evidence = `segment ${scans.at(-1)!.n} comes after it, and a segment is complete and synced before the next one is created`;
      } else {
        const claim = durableClaimAfter(data, scan.validEnd);
        if (claim > scan.validEnd)
          evidence = `a later write in this segment records that the log was durable up to offset ${claim}`;
      }
      if (evidence !== undefined)
        throw new WalCorruptError(disk.join(dir, n), scan.validEnd, scan.invalid!, evidence);
    }
    const recovered = new Map<number, RecoveredRecords>();
    const kept: number[] = [];
    let records = 0;
    let droppedBytes = 0;
    let droppedSegments = 0;
    let firstInvalid: WalRecovery['firstInvalid'];
    for (const { n, seq, data, scan } of scans) {
      const path = disk.join(dir, n);
      if (firstInvalid) {
        droppedBytes += data.length;
        droppedSegments++;
        await disk.remove(path);
        continue;
      }
      for (let i = 0; i < scan.starts.length; i++) {
        const p = scan.partitions[i]!;
        if (p === WAL_MARKER_TAG) continue;
        let r = recovered.get(p);
        if (!r) {
          r = new RecoveredRecords();
          recovered.set(p, r);
        }
        r.add(data, scan.starts[i]!, scan.ends[i]!, seq);
        records++;
      }
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
      records,
      partitions: recovered.size,
      segments: names.length,
      bytes: scans.reduce((sum, x) => sum + x.data.length, 0),
      ms: Math.round(performance.now() - started),
      droppedBytes,
      droppedSegments,
      ...(firstInvalid ? { firstInvalid } : {}),
    };
    if (firstInvalid) {
      logger.warn(
        { dir, ...recovery },
        `write-ahead log recovery dropped ${droppedBytes} bytes after ${records} valid records (${firstInvalid.reason} in ${firstInvalid.segment} at offset ${firstInvalid.offset})`,
      );
    } else {
      logger.info(
        { dir, fsync: mode, ...recovery },
        `write-ahead log recovered ${records} records of ${recovered.size} partitions from ${recovery.segments} segments (${recovery.bytes} bytes) in ${recovery.ms} ms (fsync=${mode})`,
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
      // The recovered bytes may still sit in the OS cache only (a process crash): make them durable
      // before the first marker says so.
      if (mode !== 'never') await file.sync();
    }
    const wal = new WriteAheadLog(opts, file, segSeq, kept.slice(0, -1), recovered);
    return { wal, recovery };
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

  /** Largest record payload accepted by {@link WriteAheadLog.append}. */
  get recordLimit(): number {
    return this.maxRecordBytes;
  }

  /** Counters since open. */
  get stats(): WalStats {
    return {
      appendedRecords: this.appended,
      durableRecords: this.durableSeq,
      bytesWritten: this.counters.bytesWritten,
      fsyncs: this.counters.fsyncs,
      writes: this.counters.writes,
      segment: segmentName(this.segSeq),
      liveSegments: this.older.length + 1,
      deletedSegments: this.counters.deletedSegments,
    };
  }

  /** Writes made durable since open (the `fsyncs` of {@link WriteAheadLog.stats}, without building the stats). */
  get fsyncCount(): number {
    return this.counters.fsyncs;
  }

  /** Number of records appended but not yet durable. */
  get pendingRecords(): number {
    return this.appended - this.durableSeq;
  }

  /**
   * True when a {@link WriteAheadLog.flush} called now would resolve at once: every record appended so
   * far (by any partition) is durable and the log has not failed.
   */
  get flushed(): boolean {
    return this.failed === undefined && this.appended <= this.durableSeq;
  }

  /** Sequence number of the segment being appended to (records appended now land in it or a later one). */
  get currentSegment(): number {
    return this.segSeq;
  }

  /** Partitions that had records in the log when it was opened and have not taken them yet. */
  get untakenPartitions(): number[] {
    return [...(this.recovered?.keys() ?? [])].sort((a, b) => a - b);
  }

  /**
   * Hands `partition` its recovered records and registers `handle`, which the log asks to checkpoint
   * when the partition pins an old segment.
   * `fresh`: the caller starts a new storage under this tag (its recovered records, if any, are
   * superseded by what it writes): taking it again is allowed and only re-registers the handle.
   * @throws WalRecordError if the partition was taken before on this log (its records are gone from
   * memory) and `fresh` is not set.
   */
  takeRecovered(partition: number, handle?: PartitionHandle, fresh = false): PartitionRecords {
    checkPartition(partition);
    if (this.taken.has(partition) && fresh) {
      if (handle) this.handles.set(partition, handle);
      return new RecoveredRecords();
    }
    if (this.taken.has(partition)) {
      throw new WalRecordError(
        `partition ${partition} was already opened on this write-ahead log; open the log again to recover it a second time`,
      );
    }
    this.taken.add(partition);
    const r = this.recovered?.get(partition) ?? new RecoveredRecords();
    this.recovered?.delete(partition);
    if (handle) this.handles.set(partition, handle);
    return r;
  }

  /**
   * Registers (or replaces) the handle the log asks to checkpoint `partition`, once the partition is
   * ready to write a checkpoint (its storage fully opened), and asks for a cheap checkpoint at once if
   * one is due (see {@link WalOptions.cheapCheckpointBytes}).
   */
  attach(partition: number, handle: PartitionHandle): void {
    checkPartition(partition);
    this.handles.set(partition, handle);
    this.askCheapCheckpoints();
  }

  /** Forgets the handle of a closed partition (its anchor stays: its records are still needed). */
  release(partition: number): void {
    this.handles.delete(partition);
  }

  /**
   * `partition` no longer needs any segment before `segment` (its state from there on is complete in
   * the log: a durable checkpoint starts in `segment`). Segments no partition needs are deleted.
   */
  setAnchor(partition: number, segment: number): void {
    const old = this.anchors.get(partition);
    if (old !== undefined && old >= segment) return;
    this.anchors.set(partition, segment);
    const bytes = this.liveBytes.get(partition);
    if (bytes) for (const s of bytes.keys()) if (s < segment) bytes.delete(s);
    this.collect();
    this.askCheapCheckpoints();
  }

  /**
   * Asks the partitions that keep the oldest live segment to checkpoint when together they hold at most
   * {@link WalOptions.cheapCheckpointBytes} of the live log (and every one of them can be asked: an
   * unopened or closed partition cannot move, so asking the others would free nothing).
   */
  private askCheapCheckpoints(): void {
    const oldest = this.older[0];
    if (oldest === undefined || this.cheapCheckpointBytes === 0) return;
    const pinning: PartitionHandle[] = [];
    let bytes = 0;
    for (const [p, anchor] of this.anchors) {
      if (anchor > oldest) continue;
      const handle = this.handles.get(p);
      if (!handle) return;
      for (const b of this.liveBytes.get(p)?.values() ?? []) bytes += b;
      if (bytes > this.cheapCheckpointBytes) return;
      pinning.push(handle);
    }
    for (const h of pinning) h.requestCheckpoint();
  }

  private check(): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new WalRecordError('write-ahead log is closed; open it again to append');
  }

  /**
   * Queues one record of `partition`. Synchronous; durable once a later {@link WriteAheadLog.flush}
   * resolves.
   * @throws WalRecordError for an empty or oversized payload or a bad partition number (nothing is
   * queued), WalFailedError after an IO failure.
   */
  append(partition: number, payload: Uint8Array): void {
    this.check();
    checkPartition(partition);
    if (payload.length === 0) throw new WalRecordError('write-ahead log records must not be empty');
    if (payload.length > this.maxRecordBytes) {
      throw new WalRecordError(
        `record of ${payload.length} bytes exceeds maxRecordBytes=${this.maxRecordBytes}; raise the limit or write smaller batches`,
      );
    }
    if (!this.anchors.has(partition)) this.anchors.set(partition, this.segSeq);
    const record = encodeRecord(partition, payload);
    this.queue.push(record);
    this.appended++;
    // Counted in the segment being appended to: a record that lands in the next one (a rotation in
    // between) is counted one segment early, which only makes a checkpoint look costlier.
    let bytes = this.liveBytes.get(partition);
    if (!bytes) {
      bytes = new Map();
      this.liveBytes.set(partition, bytes);
    }
    bytes.set(this.segSeq, (bytes.get(this.segSeq) ?? 0) + record.length);
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

  private kick(): void {
    if (this.scheduled || this.failed) return;
    this.scheduled = true;
    this.scheduleFn(() => {
      this.scheduled = false;
      void this.issue();
    });
  }

  /**
   * Issues the next write: everything queued (up to `maxBatchBytes`; one record in `always` mode), if
   * fewer than `maxWritesInFlight` writes are in flight. One new write per turn; each completion
   * schedules the next.
   */
  private async issue(): Promise<void> {
    if (this.issuing || this.failed || this.queue.length === 0) return;
    if (this.inFlight.length >= this.maxInFlight) return;
    this.issuing = true;
    try {
      const batch: Uint8Array[] = [];
      let bytes = this.markers ? WAL_MARKER_RECORD_BYTES : 0;
      let records = 0;
      const maxRecords = this.mode === 'always' ? 1 : this.queue.length;
      while (records < maxRecords && this.queue.length > 0) {
        const next = this.queue[0]!;
        if (records > 0 && bytes + next.length > this.maxBatchBytes) break;
        batch.push(next);
        bytes += next.length;
        records++;
        this.queue.shift();
      }
      if (this.file.size > WAL_HEADER_BYTES && this.file.size + bytes > this.segmentBytes) {
        // A segment is complete and synced before the next one exists: wait for the writes in flight.
        while (this.inFlight.length > 0 && !this.failed) {
          await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
        }
        if (this.failed) return;
        await this.rotate();
      }
      if (this.markers) batch.unshift(encodeMarker(this.durableEnd));
      const slot = { count: records, end: this.file.size + bytes, done: false };
      this.inFlight.push(slot);
      this.writeBatch(batch, bytes).then(
        () => {
          slot.done = true;
          this.completed();
        },
        (e: unknown) => this.fail(e),
      );
    } catch (e) {
      this.fail(e);
    } finally {
      this.issuing = false;
    }
    if (this.queue.length > 0) this.kick();
  }

  /** Acknowledges the completed writes at the head of the log, in order. */
  private completed(): void {
    while (this.inFlight[0]?.done) {
      const slot = this.inFlight.shift()!;
      this.durableSeq += slot.count;
      this.durableEnd = slot.end;
    }
    this.releaseWaiters();
    if (this.inFlight.length === 0) this.wakeDrainers();
    if (this.queue.length > 0) this.kick();
  }

  private wakeDrainers(): void {
    const d = this.drainWaiters;
    this.drainWaiters = [];
    for (const r of d) r();
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
    if (this.failed) return;
    this.failed = e instanceof WalFailedError ? e : new WalFailedError(e);
    const all = this.waiters;
    this.waiters = [];
    for (const w of all) w.reject(this.failed);
    this.wakeDrainers();
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
    this.durableEnd = this.file.size;
    this.collect();
    if (this.older.length + 1 > this.maxSegments) {
      // Ask the partitions pinning the oldest segment to rewrite their state at the tail.
      const oldest = this.older[0]!;
      for (const [p, anchor] of this.anchors) if (anchor <= oldest) this.handles.get(p)?.requestCheckpoint();
    } else {
      this.askCheapCheckpoints();
    }
  }

  /** Deletes the segments every partition has moved past (in the background, one pass at a time). */
  private collect(): void {
    if (this.collecting) {
      this.collectAgain = true;
      return;
    }
    let min = this.segSeq;
    for (const a of this.anchors.values()) min = Math.min(min, a);
    const dead = this.older.filter((s) => s < min);
    if (dead.length === 0) return;
    this.older = this.older.filter((s) => s >= min);
    this.collecting = true;
    void (async () => {
      for (const s of dead) await this.disk.remove(this.disk.join(this.dir, segmentName(s)));
      await this.disk.syncDir(this.dir);
      this.counters.deletedSegments += dead.length;
    })()
      .catch((e: unknown) => this.fail(e))
      .finally(() => {
        this.collecting = false;
        if (this.collectAgain && !this.failed) {
          this.collectAgain = false;
          this.collect();
        }
      });
  }

  /** Flushes and closes the log. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.failed) await this.flush();
    this.closed = true;
    await this.file.close();
  }
}

function checkPartition(partition: number): void {
  if (!Number.isInteger(partition) || partition < 0 || partition > MAX_PARTITION) {
    throw new WalRecordError(`partition ${partition} is not an integer in [0, ${MAX_PARTITION}]`);
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
