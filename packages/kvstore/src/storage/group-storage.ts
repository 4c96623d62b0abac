/**
 * The durable storage of a reconfigurable replica group: one {@link DurableStorage} per configuration
 * the replica holds, all in the server's ONE shared write-ahead log, each under its own record tag.
 *
 * Tags: configuration `c` of partition `p` writes under `configTag(p, c) = slot(c) * 2^21 + p` (the
 * partition in the low 21 bits, so the metadata group's partition 2^20 fits), where `slot(0) = 0` (so
 * configuration 0 keeps the tag a group had before reconfiguration existed: its records are read as
 * they are) and `slot(c) = ((c - 1) mod 2047) + 1` for `c > 0`. A replica holds at most a few
 * consecutive configurations at once, so two held configurations never share a slot (checked); a slot
 * is reused 2047 configurations later, and the new configuration's seed checkpoint supersedes whatever
 * the retired one left under the tag. Snapshot files of slot 0 live in the group directory,
 * those of slot `s` in its subdirectory `config-slot-<s>`.
 *
 * A configuration's storage starts with a *seed* written as one checkpoint (see
 * {@link DurableStorage.create}), and its configuration record rides in every checkpoint header.
 * Retiring a configuration writes a *tombstone* under its tag, which records `minConfigId` (the
 * lowest configuration id the replica may still join: it must never join one it held again); recovery
 * takes the highest. Once the tombstone is durable the configuration's older records and snapshot
 * files are garbage.
 * @module
 */
import type { ConfigRecord, HeldConfig, LogEntry, NodeId } from '@paxkv/paxos';
import type { Disk } from './disk.js';
import { DurableStorage } from './durable-storage.js';
import { type StorageLogger, silentLogger, WalRecordError, type WriteAheadLog } from './wal.js';

/** Bits of a tag that hold the partition. */
const PARTITION_BITS = 21;
/** Largest partition number a reconfigurable group can have (its tag's low 21 bits). */
export const MAX_GROUP_PARTITION = 2 ** PARTITION_BITS - 1;
/** Slots of configurations above 0 (slot 0 is configuration 0's): the tag's high 11 bits. */
const CONFIG_SLOTS = 2 ** (32 - PARTITION_BITS) - 1;

/** The slot of configuration `configId` (see the module notes). */
export function configSlot(configId: number): number {
  return configId === 0 ? 0 : ((configId - 1) % CONFIG_SLOTS) + 1;
}

/** The write-ahead-log tag of configuration `configId` of `partition` (see the module notes). */
export function configTag(partition: number, configId: number): number {
  return configSlot(configId) * 2 ** PARTITION_BITS + partition;
}

/** The directory of the snapshot files of configuration `configId` of the group whose directory is `dir`. */
export function configDir(disk: Disk, dir: string, configId: number): string {
  return slotDir(disk, dir, configSlot(configId));
}

function slotDir(disk: Disk, dir: string, slot: number): string {
  return slot === 0 ? dir : disk.join(dir, `config-slot-${slot}`);
}

/** A storage the group can make durable: paxos's `Storage` plus an async flush (group commit). */
export type FlushableConfigStorage<T> = HeldConfig<T>['storage'] & { flush(): Promise<void> };

/** Options of {@link GroupStorage.open}; `T` is the command type (log entries are `LogEntry<T>`). */
export interface GroupStorageOptions<T> {
  /** The server's shared write-ahead log. */
  readonly wal: WriteAheadLog;
  /** The file port. */
  readonly disk: Disk;
  /** The group's directory (snapshot files; created if missing). */
  readonly dir: string;
  /** The partition (at most {@link MAX_GROUP_PARTITION}). */
  readonly partition: number;
  /**
   * The replicas of configuration 0, for data written before reconfiguration existed (no
   * configuration record): it is adopted as configuration 0 with these members. Without it, such
   * data makes opening fail.
   */
  readonly bootMembers?: readonly NodeId[];
  /** Checks every log entry written and read back (commands and stop-signs). */
  readonly isEntry?: (x: unknown) => x is LogEntry<T>;
  /** Recovery messages. Default: silent. */
  readonly logger?: StorageLogger;
  /** Most log entries per checkpoint record. Default 1024. */
  readonly checkpointChunkEntries?: number;
  /** TESTING ONLY: seeds written non-atomically (see `DurableStorageOptions.unsafeSeedNotAtomic`). */
  readonly unsafeSeedNotAtomic?: boolean;
}

/** Counters of a {@link GroupStorage}. */
export interface GroupStorageStats {
  /** Configurations whose storage is live. */
  readonly live: number;
  /** Configurations retired since open. */
  readonly retired: number;
}

/** What {@link GroupStorage.open} read from disk (all configurations of the group together). */
export interface GroupRecoveryStats {
  /** Log records of the group that the shared log recovered. */
  readonly recoveredRecords: number;
  /** Of those, the records decoded (from each configuration's last complete checkpoint on). */
  readonly decodedRecords: number;
  /** Bytes of the snapshot files read. */
  readonly snapshotBytes: number;
}

/**
 * Every configuration storage of one replica group (see the module notes). Build with
 * {@link GroupStorage.open}; hand {@link held}, {@link minConfigId} and {@link create} to
 * `ReconfigurablePaxos`; {@link flush} makes every configuration's writes durable.
 */
export class GroupStorage<T> {
  /** The partition. */
  readonly partition: number;
  /** The configurations recovered at open (their storages), oldest first. */
  readonly held: readonly HeldConfig<T>[];
  /** The lowest configuration id the replica may join (from the latest durable tombstone; 0 if none). */
  readonly minConfigId: number;
  private readonly live = new Map<number, DurableStorage<LogEntry<T>>>();
  private readonly tombstones: DurableStorage<LogEntry<T>>[] = [];
  private readonly opts: GroupStorageOptions<T>;
  private retiring: Promise<void> = Promise.resolve();
  private retiredCount = 0;
  private failure: Error | undefined;
  private closed = false;

  private constructor(
    opts: GroupStorageOptions<T>,
    held: HeldConfig<T>[],
    live: DurableStorage<LogEntry<T>>[],
    tombstones: DurableStorage<LogEntry<T>>[],
    minConfigId: number,
  ) {
    this.opts = opts;
    this.partition = opts.partition;
    this.held = held;
    for (const s of live) this.live.set(s.configRecord!.configId, s);
    this.tombstones = tombstones;
    this.minConfigId = minConfigId;
  }

  /**
   * Opens the group's storages: every tag of the partition that has records in the log, and slot 0
   * (where data of the old format is imported). Incomplete seeds are ignored (never held).
   * @throws WalRecordError for a partition above {@link MAX_GROUP_PARTITION}, or data without a
   *   configuration record and no `bootMembers`.
   * @throws CorruptDataError as {@link DurableStorage.open}.
   */
  static async open<T>(opts: GroupStorageOptions<T>): Promise<GroupStorage<T>> {
    const p = opts.partition;
    if (!Number.isInteger(p) || p < 0 || p > MAX_GROUP_PARTITION) {
      throw new WalRecordError(
        `partition ${p} is outside [0, ${MAX_GROUP_PARTITION}]: a reconfigurable group's log tag holds its partition in ${PARTITION_BITS} bits; use a smaller partition number`,
      );
    }
    const logger = opts.logger ?? silentLogger;
    const slots = [0];
    for (const tag of opts.wal.untakenPartitions) {
      if (tag % 2 ** PARTITION_BITS === p && tag !== p) slots.push(Math.floor(tag / 2 ** PARTITION_BITS));
    }
    const held: HeldConfig<T>[] = [];
    const live: DurableStorage<LogEntry<T>>[] = [];
    const tombstones: DurableStorage<LogEntry<T>>[] = [];
    let minConfigId = 0;
    for (const slot of slots) {
      const st = await DurableStorage.open<LogEntry<T>>({
        wal: opts.wal,
        partition: p,
        tag: slot * 2 ** PARTITION_BITS + p,
        disk: opts.disk,
        dir: slotDir(opts.disk, opts.dir, slot),
        ...(opts.isEntry ? { isEntry: opts.isEntry } : {}),
        ...(opts.logger ? { logger: opts.logger } : {}),
        ...(opts.checkpointChunkEntries ? { checkpointChunkEntries: opts.checkpointChunkEntries } : {}),
      });
      const retired = st.retiredMinConfigId;
      if (retired !== undefined) {
        minConfigId = Math.max(minConfigId, retired);
        tombstones.push(st);
        continue;
      }
      let record = st.configRecord;
      if (!record && slot === 0 && st.recoveredRecords > 0) {
        if (!opts.bootMembers) {
          throw new WalRecordError(
            `partition ${p} holds data written before reconfiguration existed; open it with its boot members (bootMembers) so it is adopted as configuration 0`,
          );
        }
        st.adoptConfig({ configId: 0, members: opts.bootMembers, base: 0 });
        record = st.configRecord;
        logger.info({ partition: p, members: opts.bootMembers }, 'adopted old data as configuration 0');
      }
      if (!record) {
        // Nothing durable under this tag (or a torn seed): never held.
        opts.wal.release(st.tag);
        continue;
      }
      held.push({ record, storage: st as FlushableConfigStorage<T> });
      live.push(st);
    }
    held.sort((a, b) => a.record.configId - b.record.configId);
    // Only the latest tombstone matters; the older ones stop pinning the log.
    tombstones.sort((a, b) => (a.retiredMinConfigId ?? 0) - (b.retiredMinConfigId ?? 0));
    for (const t of tombstones.slice(0, -1)) {
      opts.wal.setAnchor(t.tag, opts.wal.currentSegment);
      opts.wal.release(t.tag);
    }
    return new GroupStorage(opts, held, live, tombstones.slice(-1), minConfigId);
  }

  /**
   * The log tags of `partition` that had records when `wal` was opened and were not taken yet (one per
   * configuration slot). Read it before {@link open}: a failed open has taken them.
   */
  static tagsOf(wal: WriteAheadLog, partition: number): number[] {
    return wal.untakenPartitions.filter((tag) => tag % 2 ** PARTITION_BITS === partition);
  }

  /**
   * Discards the group's stored state, which could not be read ({@link open} failed): `tags` (from
   * {@link tagsOf}) and the partition's slot-0 tag each get a durable tombstone carrying
   * `minConfigId`, which supersedes their records, and their snapshot files are deleted. Returns an
   * empty storage (nothing held) that never joins a configuration below `minConfigId`, at once and
   * after every restart: the replica rejoins its group as a new replica, never as the acceptor whose
   * promises it lost. `pid`: this replica's id (kept in the tombstones' records).
   * @throws RangeError if `minConfigId` is below 1; WalFailedError if the log failed.
   */
  static async discard<T>(
    opts: GroupStorageOptions<T>,
    tags: readonly number[],
    minConfigId: number,
    pid: NodeId,
  ): Promise<GroupStorage<T>> {
    if (!Number.isSafeInteger(minConfigId) || minConfigId < 1) {
      throw new RangeError(`minConfigId must be a positive integer, got ${minConfigId}`);
    }
    const p = opts.partition;
    const tombstones: DurableStorage<LogEntry<T>>[] = [];
    for (const tag of new Set([p, ...tags.filter((t) => t % 2 ** PARTITION_BITS === p)])) {
      const slot = Math.floor(tag / 2 ** PARTITION_BITS);
      const dir = slotDir(opts.disk, opts.dir, slot);
      await opts.disk.mkdirp(dir);
      const st = DurableStorage.create<LogEntry<T>>(
        {
          wal: opts.wal,
          partition: p,
          tag,
          disk: opts.disk,
          dir,
          ...(opts.isEntry ? { isEntry: opts.isEntry } : {}),
          ...(opts.logger ? { logger: opts.logger } : {}),
        },
        { configId: 0, members: [pid], base: 0 },
      );
      await st.retire(minConfigId);
      tombstones.push(st);
    }
    return new GroupStorage(opts, [], [], tombstones, minConfigId);
  }

  /**
   * Creates the storage of a configuration this replica starts (synchronous, for
   * `ReconfigurablePaxos.createStorage`); it is seeded in memory and written as one checkpoint at
   * the next {@link flush}.
   * @throws WalRecordError if a live configuration holds the same slot, or the record is invalid.
   */
  create(record: ConfigRecord): FlushableConfigStorage<T> {
    if (this.closed) throw new WalRecordError(`storage of partition ${this.partition} is closed`);
    const slot = configSlot(record.configId);
    for (const [id] of this.live) {
      if (configSlot(id) === slot) {
        throw new WalRecordError(
          `configuration ${record.configId} of partition ${this.partition} would share its log tag with held configuration ${id}; retire the old configurations first`,
        );
      }
    }
    const st = DurableStorage.create<LogEntry<T>>(
      {
        wal: this.opts.wal,
        partition: this.partition,
        tag: configTag(this.partition, record.configId),
        disk: this.opts.disk,
        dir: slotDir(this.opts.disk, this.opts.dir, slot),
        ...(this.opts.isEntry ? { isEntry: this.opts.isEntry } : {}),
        ...(this.opts.logger ? { logger: this.opts.logger } : {}),
        ...(this.opts.checkpointChunkEntries
          ? { checkpointChunkEntries: this.opts.checkpointChunkEntries }
          : {}),
        unsafeSeedNotAtomic: this.opts.unsafeSeedNotAtomic === true,
      },
      record,
    );
    this.live.set(record.configId, st);
    return st as FlushableConfigStorage<T>;
  }

  /**
   * Retires configuration `configId` (after `ReconfigurablePaxos.retire`, which returned
   * `minConfigId`): its storage writes a tombstone in the background and is dropped; the previous
   * tombstone stops pinning the log once the new one is durable. A failure fails later flushes.
   */
  retire(configId: number, minConfigId: number): void {
    const st = this.live.get(configId);
    if (!st) return;
    this.live.delete(configId);
    this.retiredCount++;
    this.retiring = this.retiring
      .then(async () => {
        // The later configurations' seeds first: the tombstone must never be durable without them.
        await Promise.all([...this.live.values()].map((s) => s.seeded));
        await st.retire(minConfigId);
        const wal = this.opts.wal;
        for (const t of this.tombstones) {
          wal.setAnchor(t.tag, wal.currentSegment);
          wal.release(t.tag);
        }
        this.tombstones.length = 0;
        this.tombstones.push(st);
      })
      .catch((e: unknown) => {
        this.failure ??= e instanceof Error ? e : new Error(String(e));
      });
  }

  /**
   * True when every write of every configuration is durable and {@link GroupStorage.flush} would resolve
   * at once (see `DurableStorage.flushed`).
   */
  get flushed(): boolean {
    if (this.failure) return false;
    for (const s of this.live.values()) if (!s.flushed) return false;
    return true;
  }

  /** Resolves when every write of every configuration is durable; rejects if the disk failed. */
  async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    const all = [...this.live.values()];
    if (all.length === 1) await all[0]!.flush();
    else await Promise.all(all.map((s) => s.flush()));
    if (this.failure) throw this.failure;
  }

  /** Counters. */
  get stats(): GroupStorageStats {
    return { live: this.live.size, retired: this.retiredCount };
  }

  /** What the open read from disk (counted once, at open; 0 for a storage created empty). */
  get recovery(): GroupRecoveryStats {
    let recoveredRecords = 0;
    let decodedRecords = 0;
    let snapshotBytes = 0;
    for (const s of [...this.live.values(), ...this.tombstones]) {
      recoveredRecords += s.recoveredRecords;
      decodedRecords += s.decodedRecords;
      snapshotBytes += s.recoveredSnapshotBytes;
    }
    return { recoveredRecords, decodedRecords, snapshotBytes };
  }

  /** Counters of the shared log (all partitions). */
  get walStats() {
    return this.opts.wal.stats;
  }

  /** Waits for retirements in progress, flushes and detaches every storage from the log. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.retiring;
    for (const s of this.live.values()) await s.close();
    for (const t of this.tombstones) await t.close();
  }
}
