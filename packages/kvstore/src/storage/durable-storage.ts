/**
 * The durable implementation of paxos's `Storage<T>` interface: an in-memory copy of the replica's
 * persistent state, with every change also appended to the write-ahead log. Writes are synchronous and
 * buffered; {@link DurableStorage.flush} makes them durable (group commit). The host must release the
 * outputs it drained from SequencePaxos only after the flush that follows them resolves (the ordering
 * duty of the `Storage` interface); {@link ReplicaGroup} does exactly that.
 *
 * Log records (msgpack, one per storage write): `P` promise, `A` accepted round, `R` own ballot round,
 * `D` decided index, `E` truncate-and-append, `S` snapshot installed (the snapshot bytes are in their own
 * file, made durable by a WAL barrier before the `S` record is written), `C` checkpoint (the whole state;
 * the first record of a fresh segment written after a snapshot, when older segments are deleted).
 * @module
 */
import { BALLOT_ZERO, type Ballot, type Snapshot, type Storage } from '@paxkv/paxos';
import { CorruptDataError, decode, encode } from '../codec.js';
import { crc32c } from './crc32c.js';
import type { Disk } from './disk.js';
import { type FsyncMode, type StorageLogger, silentLogger, type WalRecovery, WriteAheadLog } from './wal.js';

/** Options of {@link DurableStorage.open}. */
export interface DurableStorageOptions<T> {
  /** The file port. */
  readonly disk: Disk;
  /** Directory holding the WAL segments and snapshot files of this replica (one per group). */
  readonly dir: string;
  /** fsync policy of the WAL. Default `batch` (group commit). */
  readonly fsync?: FsyncMode;
  /** WAL segment size in bytes. Default 64 MiB. */
  readonly segmentBytes?: number;
  /** Largest WAL record. Default 64 MiB. */
  readonly maxRecordBytes?: number;
  /** Most log entries per `E` record written by a checkpoint. Default 1024. */
  readonly checkpointChunkEntries?: number;
  /** Recovery and checkpoint messages. Default: silent. */
  readonly logger?: StorageLogger;
  /**
   * Checks a log entry read back from disk. Default: accepts anything. A failing entry means the stored
   * data is not what this version wrote: opening fails with {@link CorruptDataError}.
   */
  readonly isEntry?: (x: unknown) => x is T;
}

type Rec =
  | { t: 'P' | 'A'; b: [number, number] }
  | { t: 'R'; r: number }
  | { t: 'D'; i: number }
  | { t: 'E'; from: number; e: unknown[]; a?: [number, number] }
  | { t: 'S'; i: number; f: string }
  | {
      t: 'C';
      p: [number, number];
      a: [number, number];
      r: number;
      d: number;
      c: number;
      s: { i: number; f: string } | null;
      len: number;
    };

const SNAP_MAGIC = [0x50, 0x58, 0x53, 0x4e]; // "PXSN"
const SNAP_HEADER = 12;

/** File name of the snapshot covering the first `index` entries. */
export function snapshotFileName(index: number): string {
  return `snap-${index.toString().padStart(16, '0')}.bin`;
}

function encodeSnapshotFile(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(SNAP_HEADER + data.length);
  out.set(SNAP_MAGIC, 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(4, 1, true);
  dv.setUint32(8, crc32c(data), true);
  out.set(data, SNAP_HEADER);
  return out;
}

function decodeSnapshotFile(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length < SNAP_HEADER) return undefined;
  for (let i = 0; i < 4; i++) if (bytes[i] !== SNAP_MAGIC[i]) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(4, true) !== 1) return undefined;
  const data = bytes.slice(SNAP_HEADER);
  return crc32c(data) === dv.getUint32(8, true) ? data : undefined;
}

const b2a = (b: Ballot): [number, number] => [b.n, b.pid];
function a2b(x: unknown): Ballot {
  if (!Array.isArray(x) || !Number.isSafeInteger(x[0]) || !Number.isSafeInteger(x[1])) {
    throw new CorruptDataError('ballot in the write-ahead log');
  }
  return x[0] === 0 && x[1] === 0 ? BALLOT_ZERO : { n: x[0], pid: x[1] };
}

/**
 * A paxos {@link Storage} backed by a {@link WriteAheadLog} and snapshot files. Open with
 * {@link DurableStorage.open}; hand it to `SequencePaxos`; after each batch of calls into the core,
 * `await storage.flush()` before releasing the core's outputs.
 */
export class DurableStorage<T> implements Storage<T> {
  private promise: Ballot = BALLOT_ZERO;
  private accepted: Ballot = BALLOT_ZERO;
  private ballotRound = 0;
  private decided = 0;
  private compacted = 0;
  private snapshot: Snapshot | undefined;
  private snapshotFile: string | undefined;
  /** `log[i]` is the entry at absolute index `compacted + i`. */
  private log: T[] = [];
  private needCheckpoint = false;
  /** An accepted-round write not yet in the WAL (see {@link DurableStorage.setAcceptedRound}). */
  private pendingAccepted: Ballot | undefined;
  /** A decided-index change not yet in the WAL (see {@link DurableStorage.setDecidedIndex}). */
  private pendingDecided = false;
  private checkpointing: Promise<void> | undefined;
  private readonly disk: Disk;
  private readonly dir: string;
  private readonly chunk: number;
  private readonly logger: StorageLogger;

  private constructor(
    private readonly wal: WriteAheadLog,
    opts: DurableStorageOptions<T>,
    /** What WAL recovery found when this storage was opened. */
    readonly recovery: WalRecovery,
  ) {
    this.disk = opts.disk;
    this.dir = opts.dir;
    this.chunk = opts.checkpointChunkEntries ?? 1024;
    this.logger = opts.logger ?? silentLogger;
  }

  /**
   * Opens the storage in `opts.dir`, replaying its WAL (a torn tail is truncated and logged) and loading
   * the latest snapshot.
   * @throws CorruptDataError if a checksummed record decodes to something this version never writes
   * (data from another program or version); the replica must not start on such a directory.
   */
  static async open<T>(opts: DurableStorageOptions<T>): Promise<DurableStorage<T>> {
    const { wal, records, recovery } = await WriteAheadLog.open({
      disk: opts.disk,
      dir: opts.dir,
      ...(opts.fsync ? { fsync: opts.fsync } : {}),
      ...(opts.segmentBytes ? { segmentBytes: opts.segmentBytes } : {}),
      ...(opts.maxRecordBytes ? { maxRecordBytes: opts.maxRecordBytes } : {}),
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
    const s = new DurableStorage<T>(wal, opts, recovery);
    const isEntry = opts.isEntry ?? ((_x: unknown): _x is T => true);
    for (let i = 0; i < records.length; i++) s.replay(decode(records[i]!, `WAL record ${i}`), isEntry);
    if (s.snapshotFile !== undefined) {
      const bytes = await opts.disk.readFile(opts.disk.join(opts.dir, s.snapshotFile));
      const data = bytes && decodeSnapshotFile(bytes);
      if (!data)
        throw new CorruptDataError(`snapshot file ${s.snapshotFile} (missing or failed its checksum)`);
      s.snapshot = { index: s.compacted, data };
    }
    await s.removeStaleSnapshots(s.compacted);
    return s;
  }

  private replay(raw: unknown, isEntry: (x: unknown) => x is T): void {
    if (raw instanceof CorruptDataError) throw raw;
    const r = raw as Rec;
    const bad = (what: string) => new CorruptDataError(`WAL record ${JSON.stringify(r?.t)} (${what})`);
    if (typeof r !== 'object' || r === null) throw bad('not an object');
    const int = (x: unknown): number => {
      if (!Number.isSafeInteger(x) || (x as number) < 0) throw bad('bad integer');
      return x as number;
    };
    switch (r.t) {
      case 'P':
        this.promise = a2b(r.b);
        return;
      case 'A':
        this.accepted = a2b(r.b);
        return;
      case 'R':
        this.ballotRound = int(r.r);
        return;
      case 'D':
        this.decided = int(r.i);
        return;
      case 'E': {
        if (r.a !== undefined) this.accepted = a2b(r.a);
        const from = int(r.from);
        if (from < this.compacted || from > this.getLogLength() || !Array.isArray(r.e)) {
          throw bad(`append at ${from} outside [${this.compacted}, ${this.getLogLength()}]`);
        }
        for (const e of r.e) if (!isEntry(e)) throw bad('entry rejected by isEntry');
        this.log.length = from - this.compacted;
        for (const e of r.e) this.log.push(e as T);
        return;
      }
      case 'S':
        if (typeof r.f !== 'string') throw bad('snapshot file name');
        this.compactTo(int(r.i));
        this.snapshotFile = r.f;
        return;
      case 'C':
        this.promise = a2b(r.p);
        this.accepted = a2b(r.a);
        this.ballotRound = int(r.r);
        this.decided = int(r.d);
        this.compacted = int(r.c);
        this.log = [];
        if (int(r.len) !== this.compacted) throw bad('checkpoint length');
        this.snapshotFile = r.s === null ? undefined : r.s.f;
        return;
      default:
        throw bad('unknown record type');
    }
  }

  private compactTo(index: number): void {
    if (index >= this.getLogLength()) this.log = [];
    else this.log = this.log.slice(index - this.compacted);
    this.compacted = index;
    if (this.decided < index) this.decided = index;
  }

  private write(rec: Rec): void {
    this.writePendingDecided();
    if (this.pendingAccepted) {
      // The accepted round and the log it describes change together: one record, so a crash keeps both or neither.
      if (rec.t === 'E') rec.a = b2a(this.pendingAccepted);
      else this.wal.append(encode({ t: 'A', b: b2a(this.pendingAccepted) } satisfies Rec));
      this.pendingAccepted = undefined;
    }
    this.wal.append(encode(rec));
  }

  private writePendingDecided(): void {
    if (!this.pendingDecided) return;
    this.pendingDecided = false;
    this.wal.append(encode({ t: 'D', i: this.decided } satisfies Rec));
  }

  private writePending(): void {
    if (!this.pendingAccepted) return;
    this.wal.append(encode({ t: 'A', b: b2a(this.pendingAccepted) } satisfies Rec));
    this.pendingAccepted = undefined;
  }

  getPromise(): Ballot {
    return this.promise;
  }
  setPromise(ballot: Ballot): void {
    this.promise = ballot;
    this.write({ t: 'P', b: b2a(ballot) });
  }
  getAcceptedRound(): Ballot {
    return this.accepted;
  }
  /**
   * Records the accepted round. The record is held back and merged into the next log write when that
   * write comes right after it (SequencePaxos sets the round, then replaces the log): the pair is then
   * atomic on disk. Otherwise it is written on its own before the next record or at the next flush.
   */
  setAcceptedRound(ballot: Ballot): void {
    this.writePending();
    this.accepted = ballot;
    this.pendingAccepted = ballot;
  }
  getBallotRound(): number {
    return this.ballotRound;
  }
  setBallotRound(round: number): void {
    this.ballotRound = round;
    this.write({ t: 'R', r: round });
  }
  getDecidedIndex(): number {
    return this.decided;
  }
  /**
   * Records the decided index lazily: its `D` record goes into the WAL just before the next record
   * (or at {@link DurableStorage.close}), and {@link DurableStorage.flush} does not wait for it. A
   * decided index only summarises what a majority has durably accepted, so a crash that loses its
   * latest value loses no decision: the replica restarts with an older decided index and learns the
   * rest from the leader (Raft does not persist its commit index at all). This keeps a sync of its
   * own off the path of every write. After recovery the decided index is at most the one set last,
   * and at least the last one written before a record that was flushed.
   */
  setDecidedIndex(index: number): void {
    if (index === this.decided) return;
    this.decided = index;
    this.pendingDecided = true;
  }
  getLogLength(): number {
    return this.compacted + this.log.length;
  }
  appendEntries(entries: readonly T[]): void {
    if (entries.length === 0) return;
    const from = this.getLogLength();
    for (let i = 0; i < entries.length; i++) this.log.push(entries[i] as T);
    this.write({ t: 'E', from, e: entries as unknown[] });
  }
  appendOnPrefix(from: number, entries: readonly T[]): void {
    if (from < this.compacted || from > this.getLogLength()) {
      throw new RangeError(`appendOnPrefix(${from}) outside [${this.compacted}, ${this.getLogLength()}]`);
    }
    this.log.length = from - this.compacted;
    for (let i = 0; i < entries.length; i++) this.log.push(entries[i] as T);
    this.write({ t: 'E', from, e: entries as unknown[] });
  }
  getEntries(from: number, to: number): readonly T[] {
    if (from < this.compacted || to < from || to > this.getLogLength()) {
      throw new RangeError(`getEntries(${from}, ${to}) outside [${this.compacted}, ${this.getLogLength()}]`);
    }
    return this.log.slice(from - this.compacted, to - this.compacted);
  }
  getCompactedIndex(): number {
    return this.compacted;
  }
  getSnapshot(): Snapshot | undefined {
    return this.snapshot;
  }
  setSnapshot(snapshot: Snapshot): void {
    const file = snapshotFileName(snapshot.index);
    const bytes = encodeSnapshotFile(snapshot.data);
    const path = this.disk.join(this.dir, file);
    // The snapshot file is durable before the record that points at it is written.
    this.writePending();
    this.wal.appendBarrier(() => this.disk.writeFileAtomic(path, bytes));
    this.write({ t: 'S', i: snapshot.index, f: file });
    this.compactTo(snapshot.index);
    this.snapshot = snapshot;
    this.snapshotFile = file;
    this.needCheckpoint = true;
  }

  /**
   * Resolves when every write made so far is durable. After a snapshot, it also rewrites the WAL as a
   * checkpoint (whole state in a fresh segment) and deletes the segments and snapshot files it replaces.
   * @throws WalFailedError if the disk failed: the replica must stop and recover from disk.
   */
  async flush(): Promise<void> {
    this.writePending();
    await this.wal.flush();
    if (this.needCheckpoint && !this.checkpointing) {
      this.needCheckpoint = false;
      this.checkpointing = this.checkpoint()
        .catch((e: unknown) => {
          // The WAL is failed now; the next flush rejects with the cause. Nothing else to do here.
          this.logger.warn({ dir: this.dir, err: String(e) }, 'WAL checkpoint failed');
        })
        .finally(() => {
          this.checkpointing = undefined;
        });
    }
  }

  /** Writes the checkpoint now (normally triggered by {@link DurableStorage.flush} after a snapshot). */
  async checkpoint(): Promise<void> {
    this.writePending();
    const records: Uint8Array[] = [];
    records.push(
      encode({
        t: 'C',
        p: b2a(this.promise),
        a: b2a(this.accepted),
        r: this.ballotRound,
        d: this.decided,
        c: this.compacted,
        s: this.snapshotFile === undefined ? null : { i: this.compacted, f: this.snapshotFile },
        len: this.compacted,
      } satisfies Rec),
    );
    for (let i = 0; i < this.log.length; i += this.chunk) {
      records.push(
        encode({ t: 'E', from: this.compacted + i, e: this.log.slice(i, i + this.chunk) as unknown[] }),
      );
    }
    const keepFrom = this.compacted;
    await this.wal.checkpoint(records);
    await this.removeStaleSnapshots(keepFrom);
    this.logger.info(
      { dir: this.dir, compacted: this.compacted, entries: this.log.length },
      'WAL checkpoint written',
    );
  }

  private async removeStaleSnapshots(keepFrom: number): Promise<void> {
    for (const name of await this.disk.list(this.dir)) {
      if (name.startsWith('snap-') && name !== this.snapshotFile) {
        // Only files strictly older than the current snapshot are garbage; a newer one may be in flight.
        const m = /^snap-(\d{16})\.bin(\.tmp)?$/.exec(name);
        if (m && Number(m[1]) < keepFrom) await this.disk.remove(this.disk.join(this.dir, name));
      }
    }
  }

  /** WAL counters (records, bytes, fsyncs). */
  get walStats() {
    return this.wal.stats;
  }

  /** Number of WAL records not yet durable. */
  get pendingWrites(): number {
    return this.wal.pendingRecords;
  }

  /** Flushes and closes the WAL. */
  async close(): Promise<void> {
    await this.checkpointing;
    try {
      this.writePendingDecided();
    } catch {
      // The log failed or is closed: there is nothing more to save.
    }
    await this.wal.close();
  }
}
