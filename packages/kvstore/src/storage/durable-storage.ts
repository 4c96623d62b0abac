/**
 * The durable implementation of paxos's `Storage<T>` interface for ONE partition of a server: an
 * in-memory copy of the replica's persistent state, with every change also appended, tagged with the
 * partition, to the server's shared {@link WriteAheadLog}. Writes are synchronous and buffered;
 * {@link DurableStorage.flush} makes them durable (group commit, across every group of the server). The
 * host must release the outputs it drained from SequencePaxos only after the flush that follows them
 * resolves (the ordering duty of the `Storage` interface); {@link ReplicaGroup} does exactly that.
 *
 * Records are described in `records.ts`; every record is checked against the schema the decoder
 * enforces before anything changes, so a value the log could not read back (an unsafe integer from a
 * forged message, say) is refused with a {@link WalRecordError} and never written.
 *
 * Snapshots: the snapshot bytes go to their own file in the group's directory; the `S` record that
 * points at it is held back (with every later record of this partition, and of no other) until the file
 * is durable. After a snapshot, and whenever the log asks because this partition pins an old segment,
 * the storage writes a checkpoint: a `C` header and `n` `E` records holding its whole state. Replay
 * starts at the last complete checkpoint; an incomplete one (torn by a crash) is ignored. Once a
 * checkpoint is durable, the log no longer keeps older segments for this partition.
 * @module
 */
import { BALLOT_ZERO, type Ballot, type Snapshot, type Storage } from '@paxkv/paxos';
import { CorruptDataError, decode } from '../codec.js';
import type { Disk } from './disk.js';
import {
  assertWritable,
  checkRecord,
  decodeRecordPayload,
  decodeSnapshotFile,
  encodeRecordPayload,
  encodeSnapshotFile,
  mayBeCheckpointHeader,
  type StoredBallot,
  type StoredConfig,
  snapshotFileName,
  snapshotIndexOf,
  type WalRecord,
} from './records.js';
import {
  type PartitionRecords,
  readLegacyGroupLog,
  type StorageLogger,
  silentLogger,
  WalFailedError,
  WalRecordError,
  type WriteAheadLog,
} from './wal.js';

export { snapshotFileName } from './records.js';

/** Options of {@link DurableStorage.open}. */
export interface DurableStorageOptions<T> {
  /** The server's shared write-ahead log (opened once per server with {@link WriteAheadLog.open}). */
  readonly wal: WriteAheadLog;
  /** The partition whose state this storage holds. */
  readonly partition: number;
  /**
   * The tag of its records in the log. Default: `partition`. A reconfigurable group keeps one storage
   * per configuration, each under its own tag (see `configTag`).
   */
  readonly tag?: number;
  /** The file port (for snapshot files). */
  readonly disk: Disk;
  /**
   * Directory of this group's snapshot files (created if missing). A write-ahead log of the old
   * one-log-per-group format found here is imported into the shared log once, then removed.
   */
  readonly dir: string;
  /** Most log entries per `E` record written by a checkpoint. Default 1024. */
  readonly checkpointChunkEntries?: number;
  /** Recovery and checkpoint messages. Default: silent. */
  readonly logger?: StorageLogger;
  /**
   * Checks a log entry, both before it is written and after it is read back. Default: accepts anything.
   * An entry it rejects is refused at write time ({@link WalRecordError}); read back from disk, it means
   * the stored data is not what this version wrote: opening fails with {@link CorruptDataError}.
   */
  readonly isEntry?: (x: unknown) => x is T;
  /**
   * TESTING ONLY: write the seed of {@link DurableStorage.create} non-atomically (a checkpoint header
   * that claims no entries, then the entries as ordinary records), so that a crash can keep the
   * configuration record and decided index without the log: the mutation check of the seed's
   * atomicity. Default false.
   */
  readonly unsafeSeedNotAtomic?: boolean;
  /**
   * TESTING ONLY (mutation checks of recovery's skipping of superseded records, never set it
   * elsewhere): `'tornCheckpoint'` starts replay at the last checkpoint header even when its records
   * are not all there (a checkpoint torn by a crash); `'fromLastSnapshot'` starts replay at the last
   * `S` record when that comes after the last checkpoint, skipping the records before it as if the
   * snapshot superseded them. Default: neither.
   */
  readonly unsafeRecovery?: 'tornCheckpoint' | 'fromLastSnapshot';
}

const b2a = (b: Ballot): StoredBallot => [b.n, b.pid];
const a2b = (x: StoredBallot): Ballot => (x[0] === 0 && x[1] === 0 ? BALLOT_ZERO : { n: x[0], pid: x[1] });

/** The persistent state of one replica, as replay rebuilds it. */
interface State<T> {
  promise: Ballot;
  accepted: Ballot;
  ballotRound: number;
  decided: number;
  compacted: number;
  snapshotFile: string | undefined;
  /** `log[i]` is the entry at absolute index `compacted + i`. */
  log: T[];
  /** The configuration record this storage holds (a reconfigurable group's storage), if any. */
  config: StoredConfig | undefined;
}

function freshState<T>(): State<T> {
  return {
    promise: BALLOT_ZERO,
    accepted: BALLOT_ZERO,
    ballotRound: 0,
    decided: 0,
    compacted: 0,
    snapshotFile: undefined,
    log: [],
    config: undefined,
  };
}

/** What {@link readFromLastCheckpoint} found. */
interface ReplayStart {
  /** Index (in the partition's recovered records) of the first record to replay. */
  readonly start: number;
  /** The decoded records from `start` on. */
  readonly recs: WalRecord[];
  /** Records decoded in all (those from `start` on, plus checkpoint candidates before it). */
  readonly decoded: number;
}

/**
 * Finds the start of a partition's last complete checkpoint (a `C` header and its `n` checkpoint `E`
 * records; index 0 when there is none) and decodes the records from there on, and only those: every
 * record before that checkpoint is superseded by it (replay would replace the state whole), so it is
 * neither decoded nor checked (the log's checksum already vouches that it is what was written).
 * Headers are found from the end with {@link mayBeCheckpointHeader} and confirmed by decoding; a
 * candidate whose records are not all there (a checkpoint torn by a crash, possibly followed by later
 * records) is skipped for the one before it.
 * @throws CorruptDataError from `decodeAt` for a record from the start on that does not decode.
 */
function readFromLastCheckpoint(
  records: PartitionRecords,
  decodeAt: (payload: Uint8Array, index: number) => WalRecord,
  mutation: DurableStorageOptions<unknown>['unsafeRecovery'],
): ReplayStart {
  const cache = new Map<number, WalRecord>();
  const at = (i: number): WalRecord => {
    let r = cache.get(i);
    if (r === undefined) {
      r = decodeAt(records.payload(i), i);
      cache.set(i, r);
    }
    return r;
  };
  let start = -1;
  const n = records.count;
  for (let i = n - 1; i >= 0 && start < 0; i--) {
    if (!mayBeCheckpointHeader(records.payload(i))) continue;
    const r = at(i);
    if (r.t !== 'C') continue;
    let ok = i + r.n < n;
    for (let j = 1; ok && j <= r.n; j++) {
      const e = at(i + j);
      ok = e.t === 'E' && e.k === 1;
    }
    if (ok || mutation === 'tornCheckpoint') start = i;
  }
  start = Math.max(start, 0);
  const recs: WalRecord[] = [];
  for (let i = start; i < n; i++) recs.push(at(i));
  if (mutation === 'fromLastSnapshot') {
    const s = recs.findLastIndex((r) => r.t === 'S');
    if (s > 0) return { start: start + s, recs: recs.slice(s), decoded: cache.size };
  }
  return { start, recs, decoded: cache.size };
}

/**
 * Snapshot bytes that a durable snapshot file already holds (the file is `encodeSnapshotFile(data)`),
 * with the disk and path of that file. A configuration's storage seeded with a snapshot its replica
 * held in the previous configuration links that file (`Disk.link`) instead of checksumming and writing
 * the same bytes again: a reconfiguration's replicas that stay start the next configuration without a
 * snapshot-sized write and fsync on the way to answering its leader. Weak keys: an entry lives as long
 * as the bytes do.
 */
const snapshotFiles = new WeakMap<Uint8Array, { readonly disk: Disk; readonly path: string }>();

/**
 * Disks whose file system refused a hard link for a reason that will not go away (no link support,
 * too many links): their seeds are written as copies from then on, and that is said once, not on every
 * reconfiguration.
 */
const disksWithoutLinks = new WeakSet<Disk>();

/** The `code` of a file-system error (`ENOENT`, `EEXIST`, ...), if it has one. */
function errorCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : undefined;
}

/** Error codes of a file system that cannot make a hard link at all (as opposed to a transient failure). */
const LINK_UNSUPPORTED_CODES: ReadonlySet<string> = new Set([
  'EPERM',
  'ENOTSUP',
  'EOPNOTSUPP',
  'EXDEV',
  'EMLINK',
]);

/**
 * A paxos {@link Storage} for one partition, backed by the server's shared {@link WriteAheadLog} and this
 * group's snapshot files. Open with {@link DurableStorage.open}; hand it to `SequencePaxos`; after each
 * batch of calls into the core, `await storage.flush()` before releasing the core's outputs.
 */
export class DurableStorage<T> implements Storage<T> {
  private s: State<T> = freshState<T>();
  /** The latest snapshot, while its bytes are kept in memory (see {@link DurableStorage.getSnapshot}). */
  private snapshot: Snapshot | undefined;
  /**
   * The index of the latest snapshot once its bytes were dropped from memory: they are only in its
   * durable file (`s.snapshotFile`), read again when needed. Undefined while {@link snapshot} holds them.
   */
  private snapshotInFile: number | undefined;
  /** The bytes {@link DurableStorage.getSnapshot} last read from the file, while anything holds them. */
  private snapshotRead: { readonly index: number; readonly data: WeakRef<Uint8Array> } | undefined;
  /** The snapshot {@link DurableStorage.open} read stays in memory until its first read only. */
  private dropSnapshotOnRead = false;
  private needCheckpoint = false;
  /** An accepted-round write not yet in the WAL (see {@link DurableStorage.setAcceptedRound}). */
  private pendingAccepted: Ballot | undefined;
  /** A decided-index change not yet in the WAL (see {@link DurableStorage.setDecidedIndex}). */
  private pendingDecided = false;
  /** Records held back until a snapshot file is durable (undefined when nothing is held). */
  private held: Uint8Array[] | undefined;
  private holding: Promise<void> | undefined;
  private failure: Error | undefined;
  private checkpointing: Promise<void> | undefined;
  private closed = false;
  /** Partition of this storage. */
  readonly partition: number;
  /** Tag of its records in the shared log. */
  readonly tag: number;
  /**
   * True from {@link DurableStorage.create} until the first flush: writes only change memory, and the
   * first flush writes the whole state (the seed) as ONE checkpoint, which recovery takes whole or not
   * at all.
   */
  private seeding = false;
  /** Set once {@link DurableStorage.retire} was called: the storage accepts no more writes. */
  private retiredAt: number | undefined;
  private readonly wal: WriteAheadLog;
  private readonly disk: Disk;
  private readonly dir: string;
  private readonly chunk: number;
  private readonly logger: StorageLogger;
  private readonly isEntry: (x: unknown) => x is T;
  private readonly unsafeSeedNotAtomic: boolean;

  private constructor(opts: DurableStorageOptions<T>) {
    this.wal = opts.wal;
    this.partition = opts.partition;
    this.tag = opts.tag ?? opts.partition;
    this.disk = opts.disk;
    this.dir = opts.dir;
    this.chunk = opts.checkpointChunkEntries ?? 1024;
    this.logger = opts.logger ?? silentLogger;
    this.isEntry = opts.isEntry ?? ((_x: unknown): _x is T => true);
    this.unsafeSeedNotAtomic = opts.unsafeSeedNotAtomic === true;
    if (!Number.isSafeInteger(this.chunk) || this.chunk < 1) {
      throw new RangeError(`checkpointChunkEntries must be a positive integer, got ${String(this.chunk)}`);
    }
  }

  /**
   * Opens the storage of `opts.partition`: takes the partition's records that the shared log recovered,
   * replays them from the last complete checkpoint and loads the latest snapshot. A partition may be
   * opened once per opening of the log.
   * @throws CorruptDataError if a checksummed record decodes to something this version never writes
   * (data from another program or version); the replica must not start on such data.
   * @throws WalRecordError if the partition was already opened on this log.
   */
  static async open<T>(opts: DurableStorageOptions<T>): Promise<DurableStorage<T>> {
    const st = new DurableStorage<T>(opts);
    await opts.disk.mkdirp(opts.dir);
    // The log may ask for a checkpoint only once the storage is whole (attached at the end).
    const recovered = opts.wal.takeRecovered(st.tag);
    const { segments } = recovered;
    const what = `WAL record of partition ${opts.partition}${st.tag !== opts.partition ? ` (tag ${st.tag})` : ''}`;
    // A payload is a view into its segment's bytes: decode a copy, so that nothing kept (a value in a
    // log entry) holds the whole segment in memory.
    const { start, recs, decoded } = readFromLastCheckpoint(
      recovered,
      (p, i) => decodeRecordPayload(p.slice(), st.isEntry, `${what} #${i}`),
      opts.unsafeRecovery,
    );
    st.replayAll(recs, what);
    if (segments.length > 0) opts.wal.setAnchor(st.tag, segments[start]!);
    st.recoveredRecords = recovered.count;
    st.decodedRecords = decoded;
    const g = st.s.config;
    if (g?.x !== undefined) {
      st.markRetired(g, st.encode({ t: 'C', p: [0, 0], a: [0, 0], r: 0, d: 0, c: 0, s: null, n: 0, g }));
    }
    if (st.tag === opts.partition) {
      const legacy = await readLegacyGroupLog(opts.disk, opts.dir);
      if (recovered.count === 0 && legacy.records.length > 0) {
        await st.importLegacy(legacy.records);
        st.recoveredRecords = legacy.records.length;
      }
      for (const f of legacy.files) await opts.disk.remove(opts.disk.join(opts.dir, f));
      if (legacy.files.length > 0) await opts.disk.syncDir(opts.dir);
    }
    if (st.s.snapshotFile !== undefined) {
      const path = opts.disk.join(opts.dir, st.s.snapshotFile);
      const bytes = await opts.disk.readFile(path);
      const data = bytes && decodeSnapshotFile(bytes);
      if (!data)
        throw new CorruptDataError(`snapshot file ${st.s.snapshotFile} (missing or failed its checksum)`);
      snapshotFiles.set(data, { disk: opts.disk, path });
      // Kept in memory until its first read (the group restores its state from it right after open):
      // dropping it now would read and check the file a second time.
      st.snapshot = { index: st.s.compacted, data };
      st.dropSnapshotOnRead = true;
      st.recoveredSnapshotBytes = bytes.length;
    }
    await st.removeStaleSnapshots(st.s.compacted);
    opts.wal.attach(st.tag, { requestCheckpoint: () => st.startCheckpoint() });
    return st;
  }

  /**
   * Creates, synchronously, the storage of a configuration this replica starts (a reconfigurable
   * group: `ReconfigurablePaxos.createStorage`), under `opts.tag`, which must hold no live storage.
   * The storage starts in *seeding* mode: the writes that seed it (snapshot, log suffix, decided
   * index) and any other write before the first {@link DurableStorage.flush} only change memory; that
   * flush writes the snapshot file (in `opts.dir`, created then), then the whole state with `record`
   * as ONE checkpoint (a `C` header carrying the configuration record and its `E` records). Recovery
   * takes a checkpoint whole or not at all, so a crash never leaves the record without its seed, or
   * half a seed: a torn seed means the configuration was never held here (nothing was released
   * before the flush, so nobody relies on it). Records an older storage left under the same tag are
   * superseded by the seed checkpoint.
   * @throws WalRecordError for an invalid record or a tag opened before on this log.
   */
  static create<T>(
    opts: DurableStorageOptions<T>,
    record: { readonly configId: number; readonly members: readonly number[]; readonly base: number },
  ): DurableStorage<T> {
    const st = new DurableStorage<T>(opts);
    const config: StoredConfig = { i: record.configId, m: [...record.members], b: record.base };
    assertWritable({ t: 'C', p: [0, 0], a: [0, 0], r: 0, d: 0, c: 0, s: null, n: 0, g: config }, st.isEntry);
    opts.wal.takeRecovered(st.tag, { requestCheckpoint: () => st.startCheckpoint() }, true);
    st.s.config = config;
    st.seeding = true;
    st.seeded = new Promise<void>((resolve) => {
      st.onSeeded = resolve;
    });
    return st;
  }

  /** Writes the seed (see {@link DurableStorage.create}): snapshot file, then one checkpoint. */
  private async writeSeed(): Promise<void> {
    this.seeding = false;
    const dir = this.dir;
    const snap = this.snapshot;
    const file = this.s.snapshotFile;
    const startedAt = performance.now();
    let snapshotMs = 0;
    let linked = false;
    this.hold(
      (async () => {
        // Each disk call is a hop through libuv's thread pool, queued behind the WAL's writes and
        // syncs under load: the link path makes only the calls it needs (link, directory sync).
        if (snap && file !== undefined) {
          const path = this.disk.join(dir, file);
          linked = await this.linkSnapshotFile(snap.data, path);
          if (!linked) {
            await this.disk.mkdirp(dir);
            await this.disk.writeFileAtomic(path, encodeSnapshotFile(snap.data));
          }
          this.keepSnapshotInFile(snap);
        } else {
          await this.disk.mkdirp(dir);
        }
        snapshotMs = performance.now() - startedAt;
      })(),
    );
    await this.checkpoint(this.unsafeSeedNotAtomic);
    // A new configuration starts once its seed is durable: this is the storage's share of a move's pause.
    this.logger.info(
      {
        partition: this.partition,
        tag: this.tag,
        configId: this.s.config?.i,
        ms: Math.round(performance.now() - startedAt),
        snapshotMs: Math.round(snapshotMs),
        snapshot: snap && file !== undefined ? (linked ? 'linked' : 'written') : 'none',
        entries: this.s.log.length,
      },
      'configuration seed durable',
    );
    this.onSeeded?.();
  }

  /**
   * Makes `path` a durable second name of the snapshot file that already holds `data` on this disk (see
   * {@link snapshotFiles}). False when there is none or the disk cannot link it: the caller writes a copy.
   */
  private async linkSnapshotFile(data: Uint8Array, path: string): Promise<boolean> {
    const source = snapshotFiles.get(data);
    const disk = this.disk;
    if (!source || source.disk !== disk || source.path === path || !disk.link) return false;
    if (disksWithoutLinks.has(disk)) return false;
    const link = disk.link.bind(disk);
    try {
      try {
        await link(source.path, path);
      } catch (e) {
        const code = errorCode(e);
        if (code === 'EEXIST') {
          // A file of that name can only be left from a seed that never became durable here.
          await disk.remove(path);
        } else if (code === 'ENOENT') {
          // The configuration slot's directory does not exist yet (its first configuration here).
          await disk.mkdirp(this.dir);
        } else {
          throw e;
        }
        await link(source.path, path);
      }
      await disk.syncDir(this.dir);
      return true;
    } catch (e) {
      const code = errorCode(e);
      if (code !== undefined && LINK_UNSUPPORTED_CODES.has(code)) {
        disksWithoutLinks.add(disk);
        this.logger.info(
          { partition: this.partition, tag: this.tag, dir: this.dir, err: String(e) },
          "this data directory's file system cannot hard-link files: a new configuration's snapshot is written as a copy from now on",
        );
      } else {
        this.logger.warn(
          { partition: this.partition, tag: this.tag, err: String(e) },
          'cannot link the snapshot file of the previous configuration; writing a copy',
        );
      }
      return false;
    }
  }

  /**
   * Resolves once the seed is durable (at once for a storage recovered by {@link DurableStorage.open}).
   * A configuration must not retire the one before it until then: with the older one's tombstone
   * durable and the seed lost, the replica could never join the configuration it belongs to.
   */
  seeded: Promise<void> = Promise.resolve();
  private onSeeded: (() => void) | undefined;

  /**
   * Retires this configuration's storage: writes a tombstone (a checkpoint of an empty state that
   * keeps the configuration record, marked with `minConfigId`, the lowest configuration id the
   * replica may still join), waits until it is durable, then deletes the snapshot files. From then on
   * the log keeps none of the configuration's older records, and the storage accepts no writes.
   * @throws WalFailedError if the log failed.
   */
  async retire(minConfigId: number): Promise<void> {
    if (this.retiredAt !== undefined) return;
    const config = this.s.config;
    if (!config) {
      throw new WalRecordError(
        `storage of partition ${this.partition} (tag ${this.tag}) holds no configuration record; only a configuration's storage can be retired`,
      );
    }
    await this.checkpointing;
    const g: StoredConfig = { i: config.i, m: config.m, b: config.b, x: minConfigId };
    const rec = this.encode({ t: 'C', p: [0, 0], a: [0, 0], r: 0, d: 0, c: 0, s: null, n: 0, g });
    this.seeding = false;
    this.pendingDecided = false;
    this.pendingAccepted = undefined;
    const segment = this.wal.currentSegment;
    this.put(rec);
    this.markRetired(g, rec);
    this.snapshot = undefined;
    this.snapshotInFile = undefined;
    await this.flushDurable();
    this.wal.setAnchor(this.tag, segment);
    for (const name of await this.disk.list(this.dir)) {
      const base = name.endsWith('.tmp') ? name.slice(0, -4) : name;
      if (snapshotIndexOf(base) !== undefined) await this.disk.remove(this.disk.join(this.dir, name));
    }
  }

  private markRetired(g: StoredConfig, rec: Uint8Array): void {
    this.retiredAt = g.x;
    this.tombstone = rec;
    this.s = { ...freshState<T>(), config: g };
  }

  /** The log asks a tombstone's tag to move off an old segment: write the tombstone again at the tail. */
  private rewriteTombstone(): void {
    const rec = this.tombstone;
    if (this.checkpointing || this.closed || this.failure || !rec) return;
    const segment = this.wal.currentSegment;
    this.wal.append(this.tag, rec);
    this.checkpointing = this.flushDurable()
      .then(() => this.wal.setAnchor(this.tag, segment))
      .catch((e: unknown) => {
        this.logger.warn(
          { partition: this.partition, tag: this.tag, err: String(e) },
          'tombstone rewrite failed',
        );
      })
      .finally(() => {
        this.checkpointing = undefined;
      });
  }

  /** The tombstone record of a retired storage (rewritten when the log asks). */
  private tombstone: Uint8Array | undefined;

  /** Number of records of this storage that recovery read (0 for a created or empty storage). */
  recoveredRecords = 0;

  /**
   * Number of those records recovery decoded: the records from the last complete checkpoint on, plus
   * any checkpoint header it looked at before it (the older records are superseded and not decoded).
   */
  decodedRecords = 0;

  /** Size of the snapshot file recovery read at open (0 if none). */
  recoveredSnapshotBytes = 0;

  /**
   * The configuration record this storage holds (a reconfigurable group's storage), or undefined
   * (a storage written before reconfiguration existed, or not a configuration's storage).
   */
  get configRecord():
    | { readonly configId: number; readonly members: readonly number[]; readonly base: number }
    | undefined {
    const g = this.s.config;
    return g ? { configId: g.i, members: g.m, base: g.b } : undefined;
  }

  /** Set when this storage is a retired configuration's tombstone: the `minConfigId` it recorded. */
  get retiredMinConfigId(): number | undefined {
    return this.retiredAt;
  }

  /**
   * Gives a storage recovered without a configuration record (written before reconfiguration
   * existed) its record; it is written with the next checkpoint, which starts now.
   */
  adoptConfig(record: {
    readonly configId: number;
    readonly members: readonly number[];
    readonly base: number;
  }): void {
    const g: StoredConfig = { i: record.configId, m: [...record.members], b: record.base };
    assertWritable({ t: 'C', p: [0, 0], a: [0, 0], r: 0, d: 0, c: 0, s: null, n: 0, g }, this.isEntry);
    this.s.config = g;
    this.startCheckpoint();
  }

  /** Replays the records of one group from the start of its last complete checkpoint. */
  private replayAll(recs: readonly WalRecord[], what: string): void {
    /** A checkpoint being read: its state replaces the live one once its `n` records are all seen. */
    let staged: { state: State<T>; remaining: number } | undefined;
    for (let i = 0; i < recs.length; i++) {
      const r = recs[i]!;
      if (staged && r.t === 'E' && r.k === 1) {
        this.apply(staged.state, r, what);
        if (--staged.remaining === 0) {
          this.s = staged.state;
          staged = undefined;
        }
        continue;
      }
      // Anything else ends an incomplete checkpoint: it was torn by a crash and the state before it stands.
      staged = undefined;
      if (r.t === 'C') {
        const state: State<T> = {
          promise: a2b(r.p),
          accepted: a2b(r.a),
          ballotRound: r.r,
          decided: r.d,
          compacted: r.c,
          snapshotFile: r.s === null ? undefined : r.s.f,
          log: [],
          config: r.g,
        };
        if (r.n === 0) this.s = state;
        else staged = { state, remaining: r.n };
        continue;
      }
      if (r.t === 'E' && r.k === 1)
        throw new CorruptDataError(`${what} "E" (checkpoint entries without a checkpoint)`);
      this.apply(this.s, r, what);
    }
  }

  private apply(s: State<T>, r: WalRecord, what: string): void {
    switch (r.t) {
      case 'P':
        s.promise = a2b(r.b);
        return;
      case 'A':
        s.accepted = a2b(r.b);
        return;
      case 'R':
        s.ballotRound = r.r;
        return;
      case 'D':
        s.decided = r.i;
        return;
      case 'E': {
        const len = s.compacted + s.log.length;
        if (r.from < s.compacted || r.from > len) {
          throw new CorruptDataError(`${what} "E" (append at ${r.from} outside [${s.compacted}, ${len}])`);
        }
        if (r.a !== undefined) s.accepted = a2b(r.a);
        s.log.length = r.from - s.compacted;
        for (const e of r.e) s.log.push(e as T);
        return;
      }
      case 'S':
        compactState(s, r.i);
        s.snapshotFile = r.f;
        return;
      case 'C':
        throw new CorruptDataError(`${what} "C" (nested checkpoint)`);
    }
  }

  /**
   * Imports a group's log of the old one-log-per-group format (its records carry the same schema,
   * except that a checkpoint header had `len` instead of `n` and was followed by plain `E` records):
   * replays it, then writes the state as a checkpoint to the shared log and waits until it is durable.
   */
  private async importLegacy(records: Uint8Array[]): Promise<void> {
    const what = `legacy WAL record in ${this.dir}`;
    const recs = records.map((p, i) => {
      const raw = decode(p, `${what} #${i}`);
      if (raw instanceof CorruptDataError) throw raw;
      const o = raw as Record<string, unknown>;
      if (o?.t === 'C' && 'len' in o) {
        delete o.len;
        o.n = 0;
      }
      const bad = checkRecord(o, this.isEntry);
      if (bad !== undefined) throw new CorruptDataError(`${what} #${i} ${JSON.stringify(o?.t)} (${bad})`);
      return o as WalRecord;
    });
    this.replayAll(recs, what);
    await this.checkpoint();
    this.logger.info(
      { dir: this.dir, partition: this.partition, records: recs.length, entries: this.s.log.length },
      `imported the old per-group write-ahead log of partition ${this.partition} into the server's log`,
    );
  }

  // ------------------------------------------------------------------ writing

  /** Encodes a record, refusing (before any state changes) what could not be read back. */
  private encode(rec: WalRecord): Uint8Array {
    if (this.failure) throw this.failure;
    const bytes = encodeRecordPayload(rec, this.isEntry);
    if (bytes.length > this.wal.recordLimit) {
      throw new WalRecordError(
        `refusing to write a WAL record of ${bytes.length} bytes (maxRecordBytes=${this.wal.recordLimit}); write smaller batches or raise the limit`,
      );
    }
    return bytes;
  }

  private put(bytes: Uint8Array): void {
    if (this.seeding) return;
    if (this.retiredAt !== undefined) {
      throw new WalRecordError(
        `configuration storage of partition ${this.partition} (tag ${this.tag}) was retired; it accepts no writes`,
      );
    }
    if (this.held) this.held.push(bytes);
    else this.wal.append(this.tag, bytes);
  }

  /**
   * Writes the lazily recorded accepted round and decided index, if any (before the next record). The
   * accepted round goes first: a crash that keeps a prefix of the records then never pairs a later
   * decided index with an earlier accepted round (a state the replica was never in).
   */
  private writePending(mergeAccepted = false): void {
    if (this.pendingAccepted && !mergeAccepted) {
      this.put(this.encode({ t: 'A', b: b2a(this.pendingAccepted) }));
      this.pendingAccepted = undefined;
    }
    if (this.pendingDecided) {
      this.pendingDecided = false;
      this.put(this.encode({ t: 'D', i: this.s.decided }));
    }
  }

  getPromise(): Ballot {
    return this.s.promise;
  }
  setPromise(ballot: Ballot): void {
    const bytes = this.encode({ t: 'P', b: b2a(ballot) });
    this.writePending();
    this.s.promise = ballot;
    this.put(bytes);
  }
  getAcceptedRound(): Ballot {
    return this.s.accepted;
  }
  /**
   * Records the accepted round. The record is held back and merged into the next log write when that
   * write comes right after it (SequencePaxos sets the round, then replaces the log): the pair is then
   * atomic on disk. Otherwise it is written on its own before the next record or at the next flush.
   * @throws WalRecordError for a ballot the log could not read back (nothing changes).
   */
  setAcceptedRound(ballot: Ballot): void {
    assertWritable({ t: 'A', b: b2a(ballot) }, this.isEntry);
    this.writePending();
    this.s.accepted = ballot;
    this.pendingAccepted = ballot;
  }
  getBallotRound(): number {
    return this.s.ballotRound;
  }
  setBallotRound(round: number): void {
    const bytes = this.encode({ t: 'R', r: round });
    this.writePending();
    this.s.ballotRound = round;
    this.put(bytes);
  }
  getDecidedIndex(): number {
    return this.s.decided;
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
    if (index === this.s.decided) return;
    assertWritable({ t: 'D', i: index }, this.isEntry);
    this.s.decided = index;
    this.pendingDecided = true;
  }
  getLogLength(): number {
    return this.s.compacted + this.s.log.length;
  }
  appendEntries(entries: readonly T[]): void {
    if (entries.length === 0) return;
    this.writeEntries(this.getLogLength(), entries);
  }
  appendOnPrefix(from: number, entries: readonly T[]): void {
    if (from < this.s.compacted || from > this.getLogLength()) {
      throw new RangeError(`appendOnPrefix(${from}) outside [${this.s.compacted}, ${this.getLogLength()}]`);
    }
    this.writeEntries(from, entries);
  }
  private writeEntries(from: number, entries: readonly T[]): void {
    // The accepted round and the log it describes change together: one record, so a crash keeps both or neither.
    const a = this.pendingAccepted;
    const rec: WalRecord = { t: 'E', from, e: entries as unknown[], ...(a ? { a: b2a(a) } : {}) };
    // While seeding only memory changes (`put` writes nothing) and the seed's checkpoint encodes the
    // whole log once: check the entries now, as the encoder would, but do not encode them twice.
    let bytes: Uint8Array | undefined;
    if (this.seeding) {
      if (this.failure) throw this.failure;
      assertWritable(rec, this.isEntry);
    } else bytes = this.encode(rec);
    // A pending decided index follows a record that carries the accepted round, for the reason in
    // `writePending` (replayed after the record or before it, it gives the same state).
    const decidedAfter = a !== undefined && this.pendingDecided;
    if (!decidedAfter) this.writePending(true);
    this.pendingAccepted = undefined;
    this.s.log.length = from - this.s.compacted;
    for (let i = 0; i < entries.length; i++) this.s.log.push(entries[i] as T);
    if (bytes !== undefined) this.put(bytes);
    if (decidedAfter) {
      this.pendingDecided = false;
      this.put(this.encode({ t: 'D', i: this.s.decided }));
    }
  }
  getEntries(from: number, to: number): readonly T[] {
    if (from < this.s.compacted || to < from || to > this.getLogLength()) {
      throw new RangeError(
        `getEntries(${from}, ${to}) outside [${this.s.compacted}, ${this.getLogLength()}]`,
      );
    }
    return this.s.log.slice(from - this.s.compacted, to - this.s.compacted);
  }
  getCompactedIndex(): number {
    return this.s.compacted;
  }
  /**
   * The latest snapshot. Its bytes stay in memory only until its file is durable (a group's snapshot
   * is its whole state, ~120 bytes per key of 100-byte values), if the disk can read synchronously:
   * after that a call reads the file again (rare: a follower that fell behind the log, a joining
   * replica, the seed of a new configuration). The bytes dropped, and the bytes read, stay reachable
   * through a weak reference while something else holds them or until the garbage collector takes them
   * (a move reads its group's snapshot to seed the new configuration, whose leader reads it again
   * moments later for the joiner; a transfer to a peer streams them for seconds, and the core asks
   * again on every re-synchronisation of that peer): no second read, no second copy.
   * The snapshot recovery read at open stays in memory until its first read (the drain of the group
   * that opens the storage), so a restart reads and checks the file once.
   * @throws CorruptDataError if the file is gone or fails its checksum.
   */
  getSnapshot(): Snapshot | undefined {
    const kept = this.snapshot;
    if (kept !== undefined) {
      if (this.dropSnapshotOnRead) {
        this.dropSnapshotOnRead = false;
        this.keepSnapshotInFile(kept);
      }
      return kept;
    }
    const index = this.snapshotInFile;
    const file = this.s.snapshotFile;
    if (index === undefined || file === undefined || this.disk.readFileSync === undefined) return undefined;
    const held = this.snapshotRead?.index === index ? this.snapshotRead.data.deref() : undefined;
    if (held !== undefined) return { index, data: held };
    const path = this.disk.join(this.dir, file);
    const bytes = this.disk.readFileSync(path);
    const data = bytes && decodeSnapshotFile(bytes);
    if (!data) throw new CorruptDataError(`snapshot file ${file} (missing or failed its checksum)`);
    snapshotFiles.set(data, { disk: this.disk, path });
    this.snapshotRead = { index, data: new WeakRef(data) };
    return { index, data };
  }
  setSnapshot(snapshot: Snapshot): void {
    const file = snapshotFileName(snapshot.index);
    const rec = this.encode({ t: 'S', i: snapshot.index, f: file });
    this.snapshotInFile = undefined;
    this.dropSnapshotOnRead = false;
    if (this.seeding) {
      // The seed's first flush writes the file, then the checkpoint that points at it.
      compactState(this.s, snapshot.index);
      this.snapshot = snapshot;
      this.s.snapshotFile = file;
      return;
    }
    this.writePending();
    // The snapshot file is durable before the record that points at it (and every later record of
    // this partition) is written; the other partitions' records do not wait for it.
    this.hold(
      this.disk
        .writeFileAtomic(this.disk.join(this.dir, file), encodeSnapshotFile(snapshot.data))
        .then(() => this.keepSnapshotInFile(snapshot)),
    );
    this.put(rec);
    compactState(this.s, snapshot.index);
    this.snapshot = snapshot;
    this.s.snapshotFile = file;
    this.needCheckpoint = true;
  }

  /**
   * Drops the bytes of `snapshot`, whose file is durable, from memory if it is still the latest and the
   * disk can read them back synchronously ({@link DurableStorage.getSnapshot}).
   */
  private keepSnapshotInFile(snapshot: Snapshot): void {
    if (this.s.snapshotFile !== undefined && this.snapshot === snapshot)
      snapshotFiles.set(snapshot.data, {
        disk: this.disk,
        path: this.disk.join(this.dir, this.s.snapshotFile),
      });
    if (this.snapshot !== snapshot || this.disk.readFileSync === undefined) return;
    this.snapshot = undefined;
    this.snapshotInFile = snapshot.index;
    // Until the bytes are collected, a read is served from them instead of the file (a new
    // configuration's leader sends its joiner the snapshot it was seeded with moments before).
    this.snapshotRead = { index: snapshot.index, data: new WeakRef(snapshot.data) };
  }

  /** Holds this partition's later records back until `task` (making a side file durable) is done. */
  private hold(task: Promise<void>): void {
    this.held ??= [];
    const h: Promise<void> = (this.holding ?? Promise.resolve())
      .then(() => task)
      .then(() => {
        if (this.holding !== h) return;
        const held = this.held ?? [];
        this.held = undefined;
        this.holding = undefined;
        for (const b of held) this.wal.append(this.tag, b);
      })
      .catch((e: unknown) => {
        this.failure ??= e instanceof WalFailedError ? e : new WalFailedError(e);
        if (this.holding === h) this.holding = undefined;
      });
    this.holding = h;
    // The task's own rejection is handled through `h`.
    task.catch(() => {});
  }

  /** Waits for held records to reach the log, then for the log to make everything durable. */
  private async flushDurable(): Promise<void> {
    if (this.pendingAccepted) this.writePending();
    while (this.holding) await this.holding;
    if (this.failure) throw this.failure;
    await this.wal.flush();
  }

  /**
   * True when every write made so far is durable and a {@link DurableStorage.flush} called now would
   * have nothing to do (no seed, accepted round, held record or checkpoint start pending, nothing of the
   * shared log unsynced, no failure): a caller may then release outputs without waiting for a flush.
   * Conservative: records of other partitions still being synced make it false.
   */
  get flushed(): boolean {
    return (
      !this.seeding &&
      this.pendingAccepted === undefined &&
      this.holding === undefined &&
      !this.needCheckpoint &&
      this.failure === undefined &&
      !this.closed &&
      this.wal.flushed
    );
  }

  /**
   * Resolves when every write made so far is durable. After a snapshot, it also starts a checkpoint
   * (see the module notes).
   * @throws WalFailedError if the disk failed: the replica must stop and recover from disk.
   */
  async flush(): Promise<void> {
    if (this.seeding) {
      await this.writeSeed();
      return;
    }
    await this.flushDurable();
    if (this.needCheckpoint) {
      this.needCheckpoint = false;
      this.startCheckpoint();
    }
  }

  /** Starts a checkpoint in the background unless one is running (a failure fails later flushes). */
  private startCheckpoint(): void {
    if (this.retiredAt !== undefined) {
      this.rewriteTombstone();
      return;
    }
    if (this.checkpointing || this.closed || this.failure || this.seeding) return;
    this.checkpointing = this.checkpoint()
      .catch((e: unknown) => {
        this.logger.warn(
          { dir: this.dir, partition: this.partition, err: String(e) },
          'WAL checkpoint failed',
        );
      })
      .finally(() => {
        this.checkpointing = undefined;
      });
  }

  /**
   * Writes this partition's whole state to the tail of the log (a `C` header and its `E` records) and
   * waits until it is durable; from then on the log keeps no older segment for this partition, and
   * snapshot files older than the current one are deleted.
   */
  async checkpoint(unsafeSplit = false): Promise<void> {
    const s = this.s;
    const chunks: unknown[][] = [];
    for (let i = 0; i < s.log.length; i += this.chunk) chunks.push(s.log.slice(i, i + this.chunk));
    const recs: Uint8Array[] = [
      this.encode({
        t: 'C',
        p: b2a(s.promise),
        a: b2a(this.pendingAccepted ?? s.accepted),
        r: s.ballotRound,
        d: s.decided,
        c: s.compacted,
        s: s.snapshotFile === undefined ? null : { i: s.compacted, f: s.snapshotFile },
        n: unsafeSplit ? 0 : chunks.length,
        ...(s.config ? { g: s.config } : {}),
      }),
    ];
    chunks.forEach((e, i) => {
      const from = s.compacted + i * this.chunk;
      recs.push(this.encode(unsafeSplit ? { t: 'E', from, e } : { t: 'E', from, e, k: 1 }));
    });
    // The header carries the decided index and the accepted round: nothing of them is pending anymore.
    this.pendingDecided = false;
    this.pendingAccepted = undefined;
    const segment = this.wal.currentSegment;
    for (const r of recs) this.put(r);
    const keepFrom = s.compacted;
    await this.flushDurable();
    this.wal.setAnchor(this.tag, segment);
    await this.removeStaleSnapshots(keepFrom);
    this.logger.info(
      { dir: this.dir, partition: this.partition, compacted: s.compacted, entries: s.log.length, segment },
      'WAL checkpoint written',
    );
  }

  private async removeStaleSnapshots(keepFrom: number): Promise<void> {
    for (const name of await this.disk.list(this.dir)) {
      if (name === this.s.snapshotFile) continue;
      // Only files strictly older than the current snapshot are garbage; a newer one may be in flight.
      const index = snapshotIndexOf(name.endsWith('.tmp') ? name.slice(0, -4) : name);
      if (index !== undefined && index < keepFrom) await this.disk.remove(this.disk.join(this.dir, name));
    }
  }

  /** Counters of the shared log (records, bytes, fsyncs: all partitions). */
  get walStats() {
    return this.wal.stats;
  }

  /** Number of records not yet durable (all partitions of the shared log, plus this one's held records). */
  get pendingWrites(): number {
    return this.wal.pendingRecords + (this.held?.length ?? 0);
  }

  /** Flushes this partition's writes and detaches it from the log (which stays open for the others). */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.checkpointing;
    this.closed = true;
    try {
      this.writePending();
      await this.flushDurable();
    } catch {
      // The log failed or is closed: there is nothing more to save.
    }
    this.wal.release(this.tag);
  }
}

function compactState<T>(s: State<T>, index: number): void {
  if (index >= s.compacted + s.log.length) s.log = [];
  else s.log = s.log.slice(index - s.compacted);
  s.compacted = index;
  if (s.decided < index) s.decided = index;
}
