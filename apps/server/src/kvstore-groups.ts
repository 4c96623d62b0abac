/**
 * The adapter from the server's {@link GroupFactory} port to `@paxkv/kvstore`'s `ReplicaGroup` over its
 * durable storage on the real file system (`NodeDisk`). All groups of the server share ONE write-ahead
 * log (`<data dir>/wal`, opened with the first group, closed after the last one): one write + sync per
 * event-loop turn covers every group. Each group keeps its snapshots in its own directory. Flush latency
 * is measured here (the storage's `flush()` is wrapped) for the `paxkv_fsync_duration_seconds` histogram:
 * one observation per sync of the shared log (the wait of the first group that saw it complete).
 */
import { dirname, join } from 'node:path';
import type { Consistency, KvOp, KvResult, NodeId, Session } from '@paxkv/common';
import {
  type CheckedGroupMessage,
  type ConfigurationEvent,
  CorruptDataError,
  checkGroupMessage,
  DEFAULT_TRANSFER_BUDGET_BYTES,
  GroupStorage,
  isKvLogEntry,
  type KvCommand,
  NodeDisk,
  ReplicaGroup,
  TransferBudget,
  WriteAheadLog,
} from '@paxkv/kvstore';
import {
  type GroupConfiguration,
  type GroupFactory,
  type GroupSpec,
  type PaxosMessageCheck,
  type ReplicaGroupPort,
  UnreadableGroupStateError,
  type WatchChange,
  type WatchOpened,
  type WatchRefused,
} from './group-port.js';
import type { ServerLogger } from './logger.js';
import { OpenQueue } from './open-queue.js';

/** Options of {@link kvstoreGroupFactory}. */
export interface KvstoreGroupOptions {
  /** Milliseconds per tick (to convert the request timeout into ticks). */
  readonly tickMs: number;
  /** Request timeout inside a group, in ms (becomes `requestTimeoutTicks`). */
  readonly requestTimeoutMs: number;
  /** Take a snapshot and compact the log every this many applied entries. */
  readonly snapshotEveryEntries: number;
  readonly logger: ServerLogger;
  /** Called if a group stops for good (disk failure): the server should exit and be restarted. */
  readonly onFatal: (partition: number, error: Error) => void;
}

/**
 * The paxos package's validation of a reconfigurable group's message (the configuration envelope, and
 * the wrapped Paxos message's shape, bounds and sender), or a chunk of a snapshot transfer and its
 * acknowledgement (every field bounded), for the peer hot path.
 */
export const paxosMessageCheck: PaxosMessageCheck = (from, m) => checkGroupMessage(from, m);

const resultOf = (r: { readonly result: KvResult }): KvResult => r.result;

class KvstoreGroup implements ReplicaGroupPort {
  constructor(
    private readonly group: ReplicaGroup,
    private readonly onClosed: () => Promise<void>,
  ) {}
  get partition(): number {
    return this.group.partition;
  }
  submit(
    op: KvOp,
    options: { readonly session?: Session; readonly consistency: Consistency },
  ): Promise<KvResult> {
    return this.group.submit(op, options).then(resultOf);
  }
  handle(from: NodeId, message: unknown): void {
    // GroupHost.deliver's one caller (inbound-peers.ts) hands on only messages that passed
    // paxosMessageCheck (checkGroupMessage): the group does not validate them again.
    this.group.handleChecked(from, message as CheckedGroupMessage<KvCommand>);
  }
  tick(): void {
    this.group.tick();
  }
  reconnected(peer: NodeId): void {
    this.group.reconnected(peer);
  }
  disconnected(peer: NodeId): void {
    this.group.disconnected(peer);
  }
  get leader(): NodeId | null {
    return this.group.leader ?? null;
  }
  get isolated(): boolean {
    return this.group.isolated;
  }
  get role(): 'leader' | 'follower' | 'stopped' {
    return this.group.failure ? 'stopped' : this.group.role;
  }
  get decidedIndex(): number {
    return this.group.decidedIndex;
  }
  get appliedIndex(): number {
    return this.group.appliedIndex;
  }
  get ballot(): { readonly n: number; readonly pid: NodeId } | undefined {
    return this.group.ballot;
  }
  get logLength(): number {
    return this.group.logLength;
  }
  get configuration(): GroupConfiguration | null {
    const c = this.group.configuration;
    return c ? { configId: c.configId, replicas: c.members } : null;
  }
  transferLeadership(): boolean {
    return this.group.transferLeadership();
  }
  async reconfigure(replicas: readonly NodeId[], expect?: GroupConfiguration): Promise<GroupConfiguration> {
    const c = await this.group.reconfigure(
      replicas,
      expect ? { configId: expect.configId, members: expect.replicas } : undefined,
    );
    return { configId: c.configId, replicas: c.members };
  }
  watch(
    filter: { readonly key?: string; readonly prefix?: string },
    fromRevision: number | undefined,
    sink: (events: readonly WatchChange[]) => void,
    end: (why: string) => void,
  ): WatchOpened | WatchRefused {
    const r = this.group.watch(filter, fromRevision, sink, end);
    if (!('reason' in r)) return r;
    if (r.reason === 'compacted') return r;
    if (r.reason === 'too-many-watchers')
      return {
        reason: 'unavailable',
        message: `partition ${this.partition} has ${r.limit} watchers on this replica (its limit); watch on another replica`,
      };
    return { reason: 'unavailable', message: `the replica of partition ${this.partition} is stopped` };
  }
  async close(): Promise<void> {
    try {
      await this.group.close();
    } finally {
      await this.onClosed();
    }
  }
}

/** `storage` seen with another `minConfigId` (testing only: see `UNSAFE_REJOIN_WITHOUT_FENCE`). */
function withMinConfigId<T>(storage: GroupStorage<T>, minConfigId: number): GroupStorage<T> {
  return new Proxy(storage, {
    get: (target, key) => (key === 'minConfigId' ? minConfigId : Reflect.get(target, key, target)),
  });
}

/** Per shared log: the sync count last reported to `onFlush` (see the flush wrapper below). */
const reportedFsyncs = new WeakMap<WriteAheadLog, number>();

/** Builds replica groups backed by `@paxkv/kvstore` on the local disk. */
export function kvstoreGroupFactory(options: KvstoreGroupOptions): GroupFactory {
  const disk = new NodeDisk();
  const storageLogger = {
    info: (obj: object, msg: string) => options.logger.info({ ...obj }, msg),
    warn: (obj: object, msg: string) => options.logger.warn({ ...obj }, msg),
  };
  // What incoming snapshot transfers of all this server's groups may stage together in memory.
  const transferBudget = new TransferBudget(DEFAULT_TRANSFER_BUDGET_BYTES);
  // The server's shared log: opened with the first group, closed once every group is closed.
  let wal: Promise<WriteAheadLog> | undefined;
  let users = 0;
  const release = async (): Promise<void> => {
    const open = wal;
    if (--users > 0 || !open) return;
    wal = undefined;
    await (await open).close();
  };
  // Per partition whose stored state could not be read: its log tags (a failed open has taken them).
  const unreadable = new Map<number, number[]>();
  // Per partition whose replica was closed holding no configuration (removed from its group, or a
  // joiner that never started): the lowest configuration it may join if it is opened again in this
  // process (its log tags were taken: it reopens empty, above every configuration it held).
  const vacated = new Map<number, number>();
  // Groups open one at a time (see OpenQueue); a partition a client waits for goes first.
  const queue = new OpenQueue();
  const factory: GroupFactory = (spec: GroupSpec) => queue.run(spec.partition, () => openGroup(spec));
  factory.prioritize = (partition) => queue.prioritize(partition);
  return factory;

  /**
   * One info line per opened group: how long the open took (waiting for the shared log's recovery,
   * reading the group's storage, rebuilding its state machine), the CPU the process spent meanwhile,
   * and what was read. The restart timeline (docs/performance.md) is built from these lines.
   */
  function logOpened(
    partition: number,
    storage: GroupStorage<KvCommand>,
    t: { started: number; cpuStarted: NodeJS.CpuUsage; walMs: number; storageMs: number },
  ): void {
    const ms = performance.now() - t.started;
    const cpu = process.cpuUsage(t.cpuStarted);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const r = storage.recovery;
    options.logger.info(
      {
        partition,
        ms: Math.round(ms),
        cpuMs: Math.round(cpuMs),
        walMs: Math.round(t.walMs),
        storageMs: Math.round(t.storageMs - t.walMs),
        replayMs: Math.round(ms - t.storageMs),
        ...r,
        uptimeMs: Math.round(process.uptime() * 1000),
      },
      `partition ${partition} opened in ${Math.round(ms)} ms (cpu ${Math.round(cpuMs)} ms): ${r.recoveredRecords} log records (${r.decodedRecords} decoded), snapshot ${r.snapshotBytes} bytes`,
    );
  }

  async function openGroup(spec: GroupSpec): Promise<ReplicaGroupPort> {
    users++;
    const started = performance.now();
    const cpuStarted = process.cpuUsage();
    let walMs = 0;
    let storage: GroupStorage<KvCommand>;
    let log: WriteAheadLog | undefined;
    let tags: number[] = [];
    try {
      wal ??= WriteAheadLog.open({
        disk,
        dir: join(dirname(spec.dataDir), 'wal'),
        fsync: spec.fsync,
        logger: storageLogger,
      }).then((r) => r.wal);
      log = await wal;
      walMs = performance.now() - started;
      tags = GroupStorage.tagsOf(log, spec.partition);
      const storageOptions = {
        wal: log,
        partition: spec.partition,
        disk,
        dir: spec.dataDir,
        bootMembers: [spec.pid, ...spec.peers.filter((p) => p !== spec.pid)],
        isEntry: isKvLogEntry,
        logger: storageLogger,
      };
      if (spec.rejoin) {
        const known = [...(unreadable.get(spec.partition) ?? []), ...tags];
        const floor = spec.rejoin.minConfigId;
        storage = await GroupStorage.discard(storageOptions, known, Math.max(1, floor), spec.pid);
        // 0 only under the test-only mutation UNSAFE_REJOIN_WITHOUT_FENCE: join any configuration.
        if (floor < 1) storage = withMinConfigId(storage, floor);
        unreadable.delete(spec.partition);
        options.logger.warn(
          { partition: spec.partition, minConfigId: spec.rejoin.minConfigId },
          `partition ${spec.partition}: this replica's unreadable state was discarded; it rejoins the group from configuration ${spec.rejoin.minConfigId} on`,
        );
      } else if (vacated.has(spec.partition)) {
        const floor = vacated.get(spec.partition) as number;
        storage = await GroupStorage.discard(storageOptions, tags, Math.max(1, floor), spec.pid);
        vacated.delete(spec.partition);
      } else {
        storage = await GroupStorage.open<KvCommand>(storageOptions);
      }
    } catch (e) {
      await release().catch(() => {});
      if (e instanceof CorruptDataError && log) {
        // Stop the half-opened storages from answering the log's checkpoint requests.
        for (const tag of new Set([spec.partition, ...tags])) log.release(tag);
        unreadable.set(spec.partition, tags);
        throw new UnreadableGroupStateError(spec.partition, e);
      }
      throw e;
    }
    const storageMs = performance.now() - started;
    const flush = storage.flush.bind(storage);
    // Time the flushes that made the WAL fsync (a no-op flush resolves at once and is not counted).
    // Called on every pump of every group: one promise, no stats object.
    const shared = log as WriteAheadLog;
    // One observation per sync of the shared log: every group that waited on it would otherwise repeat
    // it (16 histogram observations per write, 1.2 % of a loaded server's CPU).
    storage.flush = () => {
      const fsyncsBefore = shared.fsyncCount;
      const t0 = performance.now();
      return flush().then(() => {
        const fsyncs = shared.fsyncCount;
        if (fsyncs > fsyncsBefore && fsyncs > (reportedFsyncs.get(shared) ?? 0)) {
          reportedFsyncs.set(shared, fsyncs);
          spec.onFlush((performance.now() - t0) / 1000);
        }
      });
    };
    // Above every configuration this replica held or was removed by (see `vacated`).
    let floor = storage.minConfigId;
    for (const h of storage.held) floor = Math.max(floor, h.record.configId + 1);
    const group = new ReplicaGroup({
      partition: spec.partition,
      pid: spec.pid,
      peers: spec.peers,
      // A fresh preferred replica starts one election round ahead of the other (fresh) replicas: Ballot
      // Leader Election picks the highest quorum-connected ballot, so it wins the first election.
      preferredLeader: spec.preferredLeader,
      join: spec.join === true || spec.rejoin !== undefined,
      onConfigChange: (e: ConfigurationEvent) => {
        const id = e.configuration.configId;
        floor = Math.max(floor, e.kind === 'started' ? id + 1 : e.kind === 'removed' ? id : 0);
        // One line per reconfiguration step (a move's timeline: decided on the old leader, started on
        // each replica of the new configuration, removed on the one that left).
        options.logger.info(
          { partition: spec.partition, configId: id, members: e.configuration.members, kind: e.kind },
          `partition ${spec.partition}: configuration ${id} [${e.configuration.members.join(', ')}] ${e.kind}`,
        );
        spec.onConfigChange?.({
          kind: e.kind,
          configuration: { configId: id, replicas: e.configuration.members },
        });
      },
      storage,
      send: (to, message) => spec.send(to, message),
      addressOf: spec.addressOf,
      onFatal: (e) => options.onFatal(spec.partition, e),
      logger: storageLogger,
      transferBudget,
      config: {
        requestTimeoutTicks: Math.max(1, Math.ceil(options.requestTimeoutMs / options.tickMs)),
        snapshotEveryEntries: options.snapshotEveryEntries,
        tickMs: options.tickMs,
        // Lease time follows the real clock, bounded per tick (a late loop keeps TTLs real; a stall
        // does not expire leases whose keep-alives wait unread).
        monotonicNowMs: () => performance.now(),
      },
    });
    logOpened(spec.partition, storage, { started, cpuStarted, walMs, storageMs });
    return new KvstoreGroup(group, async () => {
      if (!group.configuration) vacated.set(spec.partition, floor);
      await release();
    });
  }
}
