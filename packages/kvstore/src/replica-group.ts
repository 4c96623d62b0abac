/**
 * A replica group: one reconfigurable Sequence Paxos replica (`ReconfigurablePaxos`: one instance per
 * configuration, joined by decided stop-signs) + the KV state machine + durable storage (one storage
 * per configuration in the server's shared log), for one partition on one server. The server app feeds it messages and ticks and wires its `send` callback to
 * the peer sockets; clients' requests enter through {@link ReplicaGroup.submit}.
 * @module
 */
import {
  BadRequestError,
  ConfigurationChangedError,
  checkKvOpLimits,
  DEFAULT_PROTOCOL_LIMITS,
  fnv1a32,
  isReadOnlyOp,
  type KvOp,
  type KvResult,
  type LeaderHint,
  NoLeaderError,
  NotLeaderError,
  PaxkvError,
  type ProtocolLimits,
  resolveDecodeLimits,
  type Session,
  scanMsgpack,
  TimeoutError,
  type TxnOp,
  UnavailableError,
} from '@paxkv/common';
import {
  type Ballot,
  type Checked,
  type DecidedItem,
  type HeldConfig,
  InvalidArgumentError,
  isMemberList,
  type LogEntry,
  type NodeId,
  type OutgoingReconfigMessage,
  OverloadedError,
  type PaxosConfig,
  type PaxosMessage,
  NoLeaderError as PaxosNoLeaderError,
  NotLeaderError as PaxosNotLeaderError,
  type Phase,
  type ReadResult,
  type ReconfigMessage,
  ReconfigurablePaxos,
  type Role,
  StoppedError,
  type Storage,
  validateReconfigMessage,
} from '@paxkv/paxos';
import type { KvCommand } from './command.js';
import { isKvLogEntry } from './command.js';
import { EarlyAccepts, type LateMessages } from './early-accepts.js';
import { estimateEntryBytes } from './estimate-bytes.js';
import { LeaseClock } from './leases.js';
import { ownStrings } from './own.js';
import {
  type CheckedGroupMessage,
  type GroupMessage,
  isSnapshotTransferMessage,
  MAX_TRANSFER_CHUNK_BYTES,
  SnapshotTransfer,
  type SnapshotTransferConfig,
  type SnapshotTransferMessage,
  type SnapshotTransferStats,
  type TransferBudget,
} from './snapshot-transfer.js';
import { type ApplyOutcome, KvStateMachine, type StateMachineConfig } from './state-machine.js';
import type { Disk } from './storage/disk.js';
import { GroupStorage } from './storage/group-storage.js';
import type { StorageLogger, WriteAheadLog } from './storage/wal.js';
import { silentLogger } from './storage/wal.js';
import {
  type ChangeEvent,
  type WatchFilter,
  WatchHub,
  type WatchHubConfig,
  type WatchRefusal,
} from './watch-hub.js';

/** A storage the group can make durable: paxos's `Storage` plus an async flush (group commit). */
export interface FlushableStorage<T> extends Storage<T> {
  /** Resolves when every write made so far is durable; rejects if the disk failed. */
  flush(): Promise<void>;
}

/** How a read is served. */
export type Consistency = 'linearizable' | 'stale';

/** Options of one {@link ReplicaGroup.submit} call. */
export interface SubmitOptions {
  /** Exactly-once identity of a write (ignored for `get`). */
  readonly session?: Session;
  /**
   * `linearizable` (default): writes go through the log, reads through a read-index round on the leader.
   * `stale`: a `get` is answered from this replica's applied state at once, on any replica, and marked
   * stale; it may miss recent writes. Writes are always linearizable.
   */
  readonly consistency?: Consistency;
}

/** The answer to a submitted operation. */
export interface SubmitResult {
  /** The operation's result (for a retried session write: the result of its first application). */
  readonly result: KvResult;
  /** True for a `stale` read (served without confirming it saw the latest writes). */
  readonly stale: boolean;
}

/** Tunables of a replica group. */
export interface ReplicaGroupConfig {
  /** Paxos tunables (ticks, batch sizes); see `DEFAULT_PAXOS_CONFIG` of `@paxkv/paxos`. */
  readonly paxos: Partial<PaxosConfig>;
  /** State machine tunables (session table size and expiry). */
  readonly stateMachine: Partial<StateMachineConfig>;
  /** Key and value size limits enforced by {@link ReplicaGroup.submit}. Default 4 KiB / 1 MiB. */
  readonly limits: ProtocolLimits;
  /**
   * Take a snapshot and compact the log every this many applied entries. Default 10 000.
   * Larger means fewer snapshot writes, more log to replay on restart and to keep on disk.
   */
  readonly snapshotEveryEntries: number;
  /**
   * Also take a snapshot once at least {@link ReplicaGroupConfig.snapshotMinEntries} entries were
   * applied since the last one AND they number at least this fraction of the keys held. Default 0.25.
   * Replaying a log entry on restart costs about 7 times restoring one key from a snapshot (decode,
   * apply, garbage), so this bounds the replay to a quarter of the state while a snapshot's cost
   * (about the number of keys) is spread over at least a quarter as many writes. 0 turns it off
   * (only `snapshotEveryEntries` then).
   */
  readonly snapshotLogRatio: number;
  /** Fewest entries since the last snapshot for the {@link ReplicaGroupConfig.snapshotLogRatio} trigger. Default 1 000. */
  readonly snapshotMinEntries: number;
  /**
   * Each replica draws, after every snapshot, a factor in `[1 - snapshotJitter, 1 + snapshotJitter)`
   * that scales the three thresholds above until its next snapshot. Default 0.5; 0 snapshots exactly
   * at the thresholds. Partitions fill at about the same rate, so without it the replicas of every
   * partition on a server (and across servers sharing a disk) reach their thresholds within a fraction
   * of a second of each other, and their snapshots (each about the state's size in encoding, writing
   * and syncing) land in one burst that stalls the puts of that second. The factor's mean is 1, so the
   * snapshot work per write is unchanged; a replay on restart is at most `1 + snapshotJitter` times the
   * bound the thresholds give. The draw is a hash of the replica's id, nonce and last snapshot index,
   * so a simulation with fixed nonces stays deterministic.
   */
  readonly snapshotJitter: number;
  /**
   * A submitted write or read whose outcome is not known after this many ticks fails with a
   * `TimeoutError` (outcome unknown: retry with the same session). Default 1000 ticks.
   */
  readonly requestTimeoutTicks: number;
  /** Most submitted requests waiting for an outcome; more are refused with `UnavailableError`. Default 100 000. */
  readonly maxPendingRequests: number;
  /**
   * TESTING ONLY: break one rule on purpose to show that the simulation test catches it.
   * `staleLeaderReads`: linearizable reads are served from local state without the read-index round
   * (and an isolated leader keeps serving: see {@link ReplicaGroup.isolated}).
   * `releaseBeforeFlush`: outputs are released before the storage writes they depend on are durable.
   * `assumeFlushed`: a pump with no release pending releases its outputs at once as if the storage were
   * flushed (the same-turn release of a pump that wrote nothing, without asking the storage).
   * `txnCompareAtSubmit`: a transaction's compares are evaluated by the leader when it is submitted
   * (on the state applied so far) and only the chosen branch goes through the log: check-then-act, not
   * atomic (two transfers that read the same revisions can both apply).
   * `leaseStaleDeadlines`: a replica keeps its lease deadlines when it stops leading and reuses them when
   * it leads again (instead of giving every lease its TTL plus the grace period afresh): leases kept
   * alive meanwhile through another leader are expired early.
   * `keepAliveWhileExpiring`: a keep-alive of a lease already due (its expiry proposed) answers "found"
   * and restarts its TTL, though the expiry entry in flight deletes its keys right after.
   * `watchResumeSkips`: a watch opened from a given revision (a client resuming) starts one revision
   * later, so the resumed stream misses an event.
   * `seedNotAtomic` (only through {@link ReplicaGroup.open}): the seed of a configuration's storage
   * is written as separate records, so a crash can keep its configuration record without its log.
   * `earlyAcceptUnclamped`: an `Accept` sent before the leader's flush (see `releaseEarly`) while an
   * earlier flush is pending keeps the leader's decided index, which counts the leader's own unsynced
   * copy of an entry toward the majority: a follower may apply an entry a leader crash undoes.
   * `earlyDecideUnclamped`: every `Decide` leaves before its pump's flush (see `releaseEarly`), even one
   * whose index counts the leader's own unsynced copy: the same loss as `earlyAcceptUnclamped`.
   * `ignoreExpectedConfiguration`: {@link ReplicaGroup.reconfigure} ignores the configuration the caller
   * expects to replace (no compare-and-set): a change planned from a stale view replaces a newer one.
   * `holdRequestsOfLostLeadership` (liveness, not safety): a replica that stops leading keeps the
   * requests it took as leader waiting until `requestTimeoutTicks` instead of failing them at once.
   * `refuseDuringReconfiguration` (liveness, not safety): a request that reaches a replica of the next
   * configuration while its configuration is stopping is refused at once (`NO_LEADER`) instead of held
   * until the next configuration runs.
   * Default `'none'`; anything else makes the store unsafe.
   */
  readonly unsafeMutation:
    | 'none'
    | 'ignoreExpectedConfiguration'
    | 'staleLeaderReads'
    | 'releaseBeforeFlush'
    | 'assumeFlushed'
    | 'txnCompareAtSubmit'
    | 'leaseStaleDeadlines'
    | 'keepAliveWhileExpiring'
    | 'watchResumeSkips'
    | 'seedNotAtomic'
    | 'earlyAcceptUnclamped'
    | 'earlyDecideUnclamped'
    | 'holdRequestsOfLostLeadership'
    | 'refuseDuringReconfiguration';
  /**
   * Send the leader's `Accept` messages without waiting for the flush of the pump that produced them.
   * The leader's own log write then overlaps the followers' instead of preceding it (as etcd's raft
   * does), which takes one fsync off the latency of every write. Safe because an `Accept` announces
   * nothing about the leader's own storage: a decision still needs the leader's copy durable (the
   * `Accepted` that completes a majority is handled in a later pump, released only after this pump's
   * flush), and every acknowledgement this replica sends about its own writes (`Promise`, `Accepted`,
   * ...), every decided entry and every read still waits for the flush. An early `Accept` never
   * overtakes a message to the same peer that still waits for a flush (links stay FIFO; a `Decide`
   * excepted) and, while an earlier flush is pending, carries only a decided index already announced
   * after a flush (the leader's own value follows as a `Decide` after the flush): see
   * `early-accepts.ts`. Default true; false restores "every output after the flush".
   */
  readonly releaseEarly: boolean;
  /**
   * A replica that heard from fewer peers than a majority needs within this many ticks is isolated
   * (see {@link ReplicaGroup.isolated}). Default: the election timeout minus one heartbeat round of
   * the paxos config (10 ticks at the defaults), at least one round plus one tick.
   */
  readonly isolationTicks?: number;
  /** Bounds of the change history kept for watchers (see `WatchHub`). */
  readonly watch: Partial<WatchHubConfig>;
  /**
   * Milliseconds per tick, as the caller drives {@link ReplicaGroup.tick} (the server's `--tick-ms`):
   * the lease clock converts TTLs with it. Default 20.
   */
  readonly tickMs: number;
  /**
   * Extra time every lease gets when this replica becomes leader, so that no lease expires because of
   * the election (etcd does the same). Default 2000 ms.
   */
  readonly leaseGraceMs: number;
  /**
   * A monotonic clock in milliseconds (the server passes `performance.now`). When given, lease time
   * advances by the real time between ticks, at most {@link ReplicaGroupConfig.leaseMaxAdvancePerTickMs}
   * per tick: a TTL lasts its real length on a machine whose event loop runs late, while a stalled
   * process that resumes does not expire leases whose keep-alives it has not read yet. Without it
   * (the simulations), lease time advances `tickMs` per tick.
   */
  readonly monotonicNowMs?: () => number;
  /** The most lease time one tick may add when {@link ReplicaGroupConfig.monotonicNowMs} is given. Default 200 ms. */
  readonly leaseMaxAdvancePerTickMs: number;
  /**
   * Chunked transfer of catch-up messages (snapshot + suffix) larger than one chunk: chunk size
   * (default 1 MiB), window, the receiver's cap (default 1 GiB), timeouts. See `SnapshotTransferConfig`.
   */
  readonly snapshotTransfer: Partial<SnapshotTransferConfig>;
}

/** Defaults of {@link ReplicaGroupConfig}. */
export const DEFAULT_REPLICA_GROUP_CONFIG: Readonly<ReplicaGroupConfig> = Object.freeze({
  paxos: {},
  stateMachine: {},
  limits: DEFAULT_PROTOCOL_LIMITS,
  snapshotEveryEntries: 10_000,
  snapshotLogRatio: 0.25,
  snapshotMinEntries: 1_000,
  snapshotJitter: 0.5,
  requestTimeoutTicks: 1_000,
  maxPendingRequests: 100_000,
  unsafeMutation: 'none',
  releaseEarly: true,
  watch: {},
  tickMs: 20,
  leaseGraceMs: 2_000,
  leaseMaxAdvancePerTickMs: 200,
  snapshotTransfer: {},
});

/** A configuration of a group: its id (consecutive from 0) and its replicas. */
export interface GroupConfiguration {
  readonly configId: number;
  readonly members: readonly NodeId[];
}

/**
 * A change of a group's configuration as this replica sees it, reported after the writes it depends
 * on are durable:
 * - `decided`: a stop-sign naming `configuration` was decided (and applied) here: the group moves there
 *   (update routing and the lookup table);
 * - `started`: this replica started running `configuration` (at first start, after a restart, or after
 *   joining by state transfer);
 * - `removed`: this replica is not a member of `configuration`, the group's latest, and has retired
 *   its older configurations (their data is discarded): close the group.
 */
export interface ConfigurationEvent {
  readonly kind: 'decided' | 'started' | 'removed';
  readonly configuration: GroupConfiguration;
}

/** The storage of every configuration of one group (see `GroupStorage`). */
export interface ReplicaGroupStorage {
  /** The configurations recovered from disk. */
  readonly held: readonly HeldConfig<KvCommand>[];
  /** The lowest configuration id the replica may join. */
  readonly minConfigId: number;
  /** Creates (synchronously) the storage of a configuration the replica starts. */
  create(record: {
    configId: number;
    members: readonly NodeId[];
    base: number;
  }): FlushableStorage<LogEntry<KvCommand>>;
  /** Retires a configuration's storage (tombstone with `minConfigId`). */
  retire(configId: number, minConfigId: number): void;
  /** Makes every write durable. */
  flush(): Promise<void>;
  /**
   * True when every write made so far is already durable (a {@link ReplicaGroupStorage.flush} now
   * would resolve at once without writing): the group then releases its outputs in the same turn
   * instead of through a flush. Optional; absent means "unknown" (always flush).
   */
  readonly flushed?: boolean;
  /** Detaches from the log. */
  close(): Promise<void>;
}

/** Constructor options of {@link ReplicaGroup}. */
export interface ReplicaGroupOptions {
  /** The partition this group replicates (used in error messages and hints). */
  readonly partition: number;
  /** This server's node id within the group. */
  readonly pid: NodeId;
  /**
   * The other replicas of configuration 0, the group's first: used only when the storage holds no
   * configuration and {@link ReplicaGroupOptions.join} is not set (the group is created here, at the
   * cluster's start), and to adopt data written before reconfiguration existed.
   */
  readonly peers: readonly NodeId[];
  /**
   * Set when this replica joins an existing group (a server added to it): it creates no configuration
   * and waits until a replica of the group's configuration that names it sends it the state to start
   * from. Default false.
   */
  readonly join?: boolean;
  /**
   * When this replica creates configuration 0 (fresh), it starts its election one round ahead, so it
   * wins the group's first election (the server spreads leadership this way). Default false.
   */
  readonly preferredLeader?: boolean;
  /** Every configuration's durable storage (see {@link ReplicaGroup.open}). */
  readonly storage: ReplicaGroupStorage;
  /**
   * Sends a message to a peer. Called only after the storage writes the message depends on are
   * durable, in the order the core produced the messages. Must not throw (drop the message instead: the
   * core resends, and a broken link is reported with {@link ReplicaGroup.reconnected}). Besides the
   * reconfiguration messages, the group sends the chunks of its snapshot transfers (see
   * `SnapshotTransfer`): the receiving side hands every message to {@link ReplicaGroup.handle}.
   */
  readonly send: (to: NodeId, message: GroupMessage<KvCommand>) => void;
  /** Called on every configuration change (see {@link ConfigurationEvent}). Must not throw. */
  readonly onConfigChange?: (event: ConfigurationEvent) => void;
  /** Address of a node, for the leader hints in `NotLeaderError`. */
  readonly addressOf?: (node: NodeId) => string | undefined;
  /** Called once if the group stops for good (disk failure, corrupt snapshot): restart the server. */
  readonly onFatal?: (error: Error) => void;
  /**
   * Observer called after each log entry is applied (index, command, outcome), for metrics and for the
   * simulation's cross-replica checks. Must not throw.
   */
  readonly onApplied?: (index: number, command: unknown, outcome: ApplyOutcome) => void;
  /** Unique per incarnation of this replica (default: random); makes proposal ids unique across restarts. */
  readonly nonce?: string;
  /** Where warnings (dropped messages, failures, WAL recovery) go; a pino logger fits. Default: silent. */
  readonly logger?: StorageLogger;
  /** Overrides of {@link DEFAULT_REPLICA_GROUP_CONFIG}. */
  readonly config?: Partial<ReplicaGroupConfig>;
  /**
   * Staging bytes of incoming snapshot transfers, shared by the groups of one server (see
   * `TransferBudget`). Default: a budget of this group's own (`DEFAULT_TRANSFER_BUDGET_BYTES`).
   */
  readonly transferBudget?: TransferBudget;
}

/** The election round a fresh preferred replica starts from (the others start from 0). */
export const PREFERRED_LEADER_INITIAL_ROUND = 1;

/** Options of {@link ReplicaGroup.open}: the group options minus storage, plus where the storage lives. */
export interface OpenReplicaGroupOptions extends Omit<ReplicaGroupOptions, 'storage'> {
  /**
   * The server's write-ahead log, shared by all its groups (open it once with `WriteAheadLog.open`;
   * its fsync mode and segment size apply to every group).
   */
  readonly wal: WriteAheadLog;
  /** The file port (`NodeDisk` in production). */
  readonly disk: Disk;
  /** Directory of this group's snapshot files. */
  readonly dir: string;
}

/** A request held while the replica's configuration changes (see `ReplicaGroup.holdsThroughReconfiguration`). */
interface HeldRequest {
  readonly op: KvOp;
  readonly options: SubmitOptions;
  readonly resolve: (r: SubmitResult) => void;
  readonly reject: (e: Error) => void;
  readonly deadline: number;
}

interface PendingWrite {
  readonly resolve: (r: SubmitResult) => void;
  readonly reject: (e: PaxkvError | Error) => void;
  readonly deadline: number;
  /** The configuration a write was proposed in. */
  readonly configId?: number;
}

interface PendingRead extends PendingWrite {
  /** The read-only operation (`get`, `range`, or a `txn` without writes). */
  readonly op: KvOp;
  /** Set once the read-index round completed: serve when `appliedIndex >= index`. */
  index?: number;
}

interface Outputs {
  readonly out: OutgoingReconfigMessage<KvCommand>[];
  readonly decided: DecidedItem<KvCommand>[];
  readonly reads: ReadResult[];
  /** Configuration events, reported once this pump's writes are durable. */
  readonly events: ConfigurationEvent[];
}

/**
 * Whether every log entry a message carries (a Paxos message's `entries`/`suffix`, a `JoinState`'s
 * `entries`) is a well-formed {@link KvCommand} or stop-sign.
 */
function carriesOnlyLogEntries(m: ReconfigMessage<unknown>): boolean {
  const entries = entriesOf(m);
  if (entries === undefined) return true;
  return Array.isArray(entries) && entries.every(isKvLogEntry);
}

/** The log entries a message carries (a Paxos message's `entries`/`suffix`, a `JoinState`'s `entries`). */
function entriesOf(m: ReconfigMessage<unknown>): unknown {
  const inner: unknown = m.type === 'Paxos' ? m.msg : m;
  return (inner as { entries?: unknown; suffix?: unknown }).entries ?? (inner as { suffix?: unknown }).suffix;
}

/** A pending {@link ReplicaGroup.reconfigure}. */
interface PendingReconfig {
  readonly configId: number;
  readonly members: readonly NodeId[];
  readonly resolve: (c: GroupConfiguration) => void;
  readonly reject: (e: PaxkvError | Error) => void;
  readonly deadline: number;
}

const sameMembers = (a: readonly NodeId[], b: readonly NodeId[]): boolean =>
  a.length === b.length &&
  [...a].sort((x, y) => x - y).every((x, i) => x === [...b].sort((p, q) => p - q)[i]);

function randomNonce(): string {
  return Math.floor(Math.random() * 2 ** 48).toString(36);
}

/**
 * Limits of the pre-scan of a snapshot received from a peer: an estimated decoded size of at most 32
 * times its bytes (a state-machine snapshot of tiny keys estimates at ~11), depth 32.
 */
export const SNAPSHOT_DECODE_LIMITS = resolveDecodeLimits({ maxExpansion: 32 });

/**
 * One partition's replica on one server. All methods are synchronous and never throw on bad peer input;
 * durability waits happen inside, and every output (messages, applied entries, read answers) is released
 * only after the storage writes it depends on are durable.
 */
export class ReplicaGroup {
  /** The partition this group replicates. */
  readonly partition: number;
  private readonly paxos: ReconfigurablePaxos<KvCommand>;
  private readonly storage: ReplicaGroupStorage;
  private readonly onConfigChange: ReplicaGroupOptions['onConfigChange'];
  /** Configuration events produced since the last pump (reported after its flush). */
  private events: ConfigurationEvent[] = [];
  private readonly reconfigs: PendingReconfig[] = [];
  /** Set once the `removed` event was produced. */
  private removedReported = false;
  private sm: KvStateMachine;
  private readonly config: ReplicaGroupConfig;
  private readonly sendFn: ReplicaGroupOptions['send'];
  private readonly addressOf: (node: NodeId) => string | undefined;
  private readonly onFatal: ((e: Error) => void) | undefined;
  private readonly onApplied: ReplicaGroupOptions['onApplied'];
  private readonly logger: StorageLogger;
  private readonly nonce: string;
  private proposalSeq = 0;
  private readSeq = 0;
  private now = 0;
  /** Lease time in ms (see `ReplicaGroupConfig.monotonicNowMs`). */
  private leaseNowMs = 0;
  /** The monotonic clock's reading at the last tick, when the config gives one. */
  private lastMonotonicMs: number | undefined;
  private readonly writes = new Map<string, PendingWrite>();
  private readonly reads = new Map<number, PendingRead>();
  /** Requests that arrived while the configuration was changing, submitted again once the next one runs. */
  private readonly held: HeldRequest[] = [];
  /** Reads whose index is known, waiting for the state machine to catch up. */
  private readonly readyReads: PendingRead[] = [];
  private lastSnapshotIndex: number;
  /** Multiplier of the snapshot thresholds until the next snapshot (see `snapshotJitter`). */
  private snapshotStagger = 1;
  private pumpScheduled = false;
  private releaseChain: Promise<void> = Promise.resolve();
  /** Pumps whose flush has not resolved or whose outputs are not released: while non-zero, nothing may overtake them. */
  private pendingReleases = 0;
  /** Which `Accept`s go before their pump's flush, per link (see {@link ReplicaGroupConfig.releaseEarly}). */
  private readonly earlyAccepts: EarlyAccepts;
  private fatal: Error | undefined;
  private closed = false;
  /** The tick at which each peer was last heard from (any valid message). */
  private readonly heardAt = new Map<NodeId, number>();
  /** Bumped whenever {@link heardAt} changes: with `now` and the members, the key of the memo below. */
  private heardVersion = 0;
  /** {@link isolated} as last computed (it is asked several times per request). */
  private isolatedMemo: { now: number; version: number; members: readonly NodeId[]; value: boolean } = {
    now: -1,
    version: -1,
    members: [],
    value: false,
  };
  private readonly isolationTicks: number;
  private wasIsolated = false;
  /** The configuration whose leader this replica's core was at the last check (-1: none). */
  private ledConfig = -1;
  /** Recent changes and open watchers (see {@link ReplicaGroup.watch}). */
  private hub: WatchHub;
  /** The leader's lease timekeeping (see `LeaseClock`); only used while this replica leads. */
  private readonly leaseClock: LeaseClock;
  /** True while this replica leads and keeps lease time. */
  private leasing = false;
  /** How each open watcher is told its stream ended (by the group, not by its own cancel). */
  private readonly watchEnds = new Map<object, (why: string) => void>();
  /** The state a peer's snapshot decoded to when {@link carriesValidSnapshot} checked it (until applied). */
  private checkedSnapshot: { readonly data: Uint8Array; readonly machine: KvStateMachine } | undefined;
  /** Tick of the last "snapshot transfer dropped" warning about a refused chunk. */
  private transferWarnedAt = Number.NEGATIVE_INFINITY;
  /** Chunked transfer of snapshot-carrying messages, both directions. */
  private readonly transfer: SnapshotTransfer;

  constructor(opts: ReplicaGroupOptions) {
    this.partition = opts.partition;
    this.config = { ...DEFAULT_REPLICA_GROUP_CONFIG, ...opts.config };
    this.earlyAccepts = new EarlyAccepts(
      this.config.unsafeMutation === 'earlyAcceptUnclamped',
      this.config.unsafeMutation === 'earlyDecideUnclamped',
    );
    for (const k of [
      'snapshotEveryEntries',
      'snapshotMinEntries',
      'requestTimeoutTicks',
      'maxPendingRequests',
    ] as const) {
      const v = this.config[k];
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new RangeError(`replica group config.${k} must be a positive integer, got ${String(v)}`);
      }
    }
    const ratio = this.config.snapshotLogRatio;
    if (typeof ratio !== 'number' || !Number.isFinite(ratio) || ratio < 0) {
      throw new RangeError(
        `replica group config.snapshotLogRatio must be a finite number >= 0 (0 turns it off), got ${String(ratio)}`,
      );
    }
    const jitter = this.config.snapshotJitter;
    if (typeof jitter !== 'number' || !Number.isFinite(jitter) || jitter < 0 || jitter >= 1) {
      throw new RangeError(
        `replica group config.snapshotJitter must be a number in [0, 1) (0 turns it off), got ${String(jitter)}`,
      );
    }
    this.storage = opts.storage;
    this.onConfigChange = opts.onConfigChange;
    this.sendFn = opts.send;
    this.addressOf = opts.addressOf ?? (() => undefined);
    this.onFatal = opts.onFatal;
    this.onApplied = opts.onApplied;
    this.logger = opts.logger ?? silentLogger;
    this.nonce = opts.nonce ?? randomNonce();
    this.transfer = new SnapshotTransfer(
      this.config.snapshotTransfer,
      (to, m) => this.sendTransfer(to, m),
      (e) => this.logger.info({ partition: this.partition, ...e }, `snapshot transfer ${e.event}`),
      opts.transferBudget,
    );
    this.sm = new KvStateMachine(this.config.stateMachine, this.partition);
    this.hub = new WatchHub(this.sm.revision, this.config.watch);
    this.leaseClock = new LeaseClock(
      this.config.leaseGraceMs,
      // An expiry proposal not applied after this long (lost in a leader change) is proposed again.
      this.config.requestTimeoutTicks * this.config.tickMs,
      this.config.unsafeMutation === 'leaseStaleDeadlines',
    );
    this.sm.onChange = (e) => this.hub.record(e);
    const held = [...opts.storage.held];
    if (held.length === 0 && opts.storage.minConfigId === 0 && !opts.join) {
      // The group starts here: configuration 0 of the boot members.
      const members = [opts.pid, ...opts.peers.filter((p) => p !== opts.pid)];
      const storage = opts.storage.create({ configId: 0, members, base: 0 });
      if (opts.preferredLeader) storage.setBallotRound(PREFERRED_LEADER_INITIAL_ROUND);
      held.push({ record: { configId: 0, members, base: 0 }, storage });
    }
    this.paxos = new ReconfigurablePaxos<KvCommand>({
      pid: opts.pid,
      configs: held,
      minConfigId: opts.storage.minConfigId,
      createStorage: (record) => opts.storage.create(record),
      // Half a frame at most: a follower catching up on big values is never sent an Accept that the
      // transport would drop at the frame limit (and drop again on every resend).
      config: {
        ...this.config.paxos,
        maxBatchBytes: Math.min(
          this.config.paxos.maxBatchBytes ?? MAX_TRANSFER_CHUNK_BYTES,
          MAX_TRANSFER_CHUNK_BYTES,
        ),
      },
      entryBytes: estimateEntryBytes,
      onConfigStart: (record) => this.configStarted(record),
    });
    this.lastSnapshotIndex = this.paxos.compactedIndex;
    this.snapshotStagger = this.nextStagger();
    if (
      this.paxos.configId >= 0 &&
      !this.events.some((e) => e.configuration.configId === this.paxos.configId)
    ) {
      this.events.push({
        kind: 'started',
        configuration: { configId: this.paxos.configId, members: this.paxos.members },
      });
    }
    // Every peer counts as just heard at start: a fresh replica is not isolated before it had a chance.
    for (const p of this.paxos.members) if (p !== opts.pid) this.heardAt.set(p, 0);
    this.heardVersion++;
    const { electionTimeoutTicks, heartbeatTicks } = this.paxos.paxosConfig;
    this.isolationTicks =
      this.config.isolationTicks ?? Math.max(heartbeatTicks + 1, electionTimeoutTicks - heartbeatTicks);
    this.schedule();
  }

  /**
   * Opens the group's durable storage (its records in the server's shared log, its snapshots in
   * `opts.dir`) and builds the group over it. The state machine is rebuilt from the snapshot and
   * decided entries.
   */
  static async open(opts: OpenReplicaGroupOptions): Promise<ReplicaGroup> {
    const storage = await GroupStorage.open<KvCommand>({
      wal: opts.wal,
      partition: opts.partition,
      disk: opts.disk,
      dir: opts.dir,
      bootMembers: [opts.pid, ...opts.peers.filter((p) => p !== opts.pid)],
      isEntry: isKvLogEntry,
      ...(opts.logger ? { logger: opts.logger } : {}),
      unsafeSeedNotAtomic: opts.config?.unsafeMutation === 'seedNotAtomic',
    });
    return new ReplicaGroup({ ...opts, storage: storage as ReplicaGroupStorage });
  }

  // ------------------------------------------------------------------ status

  /** The id of this replica. */
  get pid(): NodeId {
    return this.paxos.pid;
  }
  /**
   * The replica believed to lead the group, if any. An {@link ReplicaGroup.isolated} leader does not
   * name itself: it cannot act as leader (its clients must go elsewhere).
   */
  get leader(): NodeId | undefined {
    if (this.paxos.stopping) return undefined;
    const l = this.paxos.leader;
    return l === this.paxos.pid && this.isolated ? undefined : l;
  }
  /**
   * `leader` or `follower`. A leader that is {@link ReplicaGroup.isolated} reports `follower`: it
   * refuses requests until it hears a majority again (the protocol state underneath is unchanged, so
   * it resumes at once if no other replica took over meanwhile).
   */
  get role(): Role {
    return this.isolated || this.paxos.stopping ? 'follower' : this.paxos.role;
  }
  /**
   * True when, within the last `isolationTicks` (default: election timeout minus one heartbeat
   * round, 10 ticks at the default 5 / 15), this replica heard from fewer peers than it needs for a
   * majority of its group (itself included). Every replica sends every peer a heartbeat each round,
   * so a connected peer is heard at least once per round; two silent rounds mean the link is gone. An isolated replica refuses every request with `UnavailableError` at once,
   * and an isolated leader fails its waiting requests (writes with `TimeoutError`, outcome unknown;
   * reads with `UnavailableError`) instead of letting them wait for `requestTimeoutTicks`: a
   * cut-off leader stops acting as leader, and its clients go to another server.
   */
  get isolated(): boolean {
    // The stale-reads mutation models a deposed leader that keeps serving from its local state; refusing
    // while isolated would hide exactly what the mutation check must show the harness catches.
    if (this.config.unsafeMutation === 'staleLeaderReads') return false;
    const members = this.paxos.members;
    const memo = this.isolatedMemo;
    if (memo.now === this.now && memo.version === this.heardVersion && memo.members === members)
      return memo.value;
    let value = false;
    if (members.includes(this.paxos.pid)) {
      let heard = 1; // itself
      for (const p of members) {
        const at = this.heardAt.get(p);
        if (p !== this.paxos.pid && at !== undefined && this.now - at <= this.isolationTicks) heard++;
      }
      value = heard < Math.floor(members.length / 2) + 1;
    }
    this.isolatedMemo = { now: this.now, version: this.heardVersion, members, value };
    return value;
  }

  /** Records that `peer` was heard now. */
  private heard(peer: NodeId): void {
    if (this.heardAt.get(peer) === this.now) return;
    this.heardAt.set(peer, this.now);
    this.heardVersion++;
  }
  /** Protocol phase (`accept` is the steady state). */
  get phase(): Phase {
    return this.paxos.phase;
  }
  /** Number of decided log entries known to the core. */
  get decidedIndex(): number {
    return this.paxos.decidedIndex;
  }
  /** Number of log entries applied to the state machine (and released). */
  get appliedIndex(): number {
    return this.sm.appliedIndex;
  }
  /** Log length, counting the compacted prefix. */
  get logLength(): number {
    return this.paxos.logLength;
  }
  /** Entries replaced by the latest snapshot. */
  get compactedIndex(): number {
    return this.paxos.compactedIndex;
  }
  /** Requests waiting for an outcome. */
  get pendingRequests(): number {
    return this.writes.size + this.reads.size + this.readyReads.length + this.held.length;
  }
  /** Number of keys in the applied state. */
  get keyCount(): number {
    return this.sm.size;
  }
  /** The partition's revision in this replica's applied state. */
  get revision(): number {
    return this.sm.revision;
  }
  /** Watchers open on this replica. */
  get watcherCount(): number {
    return this.hub.watcherCount;
  }
  /** Set once the group stopped for good. */
  get failure(): Error | undefined {
    return this.fatal;
  }

  /**
   * The configuration this replica runs (the group's current one, unless this replica lags behind or
   * was removed), or undefined while it waits to join.
   */
  get configuration(): GroupConfiguration | undefined {
    const id = this.paxos.configId;
    return id < 0 ? undefined : { configId: id, members: this.paxos.members };
  }

  /**
   * The ballot this replica follows or leads in the configuration it runs (its promise; `{n: 0, pid: 0}`
   * before any), or undefined while it waits to join. For status reports: a ballot nobody proposed (a
   * forged one) shows here.
   */
  get ballot(): Ballot | undefined {
    return this.paxos.paxos(this.paxos.configId)?.ballot;
  }

  /**
   * A change of configuration in progress or known here: a stop-sign in the current configuration's
   * log (decided or not), or a later configuration this replica heard of.
   */
  get pendingConfiguration(): { readonly configId: number; readonly decided: boolean } | undefined {
    const cur = this.paxos.configurations().at(-1);
    if (cur?.stopSign) return { configId: cur.stopSign.next, decided: cur.stopSign.decided };
    const known = this.paxos.knownConfigId;
    return known > this.paxos.configId ? { configId: known, decided: true } : undefined;
  }

  /**
   * True once this replica is out of the group: the latest configuration it knows does not include
   * it. It keeps helping the new configuration start, retires its data, then reports `removed`.
   */
  get removed(): boolean {
    return this.paxos.removed;
  }

  /** Every configuration this replica holds, oldest first (status and tests). */
  configurations(): ReturnType<ReconfigurablePaxos<KvCommand>['configurations']> {
    return this.paxos.configurations();
  }

  /**
   * Moves the group to `members` (add, remove or replace replicas, change the replication degree):
   * the leader proposes a stop-sign naming the next configuration; once it is decided, the new
   * configuration starts from the decided log (its new replicas receive a snapshot + suffix). Resolves
   * with the new configuration once the stop-sign is decided and applied here. Members equal to the
   * current ones resolve at once with the current configuration. Writes pending while the change
   * happens are either applied before the stop-sign or fail with a retryable error.
   *
   * Rejects with `NotLeaderError`/`NoLeaderError` (call the leader), `BadRequestError` (members must be
   * 1 to 64 distinct positive node ids), `UnavailableError` when a change is already in progress or
   * another change won (read {@link configuration} and retry), and `TimeoutError` when the stop-sign
   * was not decided within `requestTimeoutTicks` (it may still be: read {@link configuration}).
   *
   * `expect` (compare-and-set, what every planner should pass): the configuration the change must
   * replace, as the caller saw it. The leader refuses with `ConfigurationChangedError` unless it runs
   * exactly `expect` (or already runs `members` as the configuration right after `expect`: the same
   * change, retried after its answer was lost). Only one stop-sign can be decided in a configuration,
   * so a change checked here against the leader's current configuration can never replace a newer one.
   */
  reconfigure(
    members: readonly NodeId[],
    expect?: { readonly configId: number; readonly members: readonly NodeId[] },
  ): Promise<GroupConfiguration> {
    if (this.fatal || this.closed) {
      return Promise.reject(
        new UnavailableError({ reason: `replica of partition ${this.partition} is stopped` }),
      );
    }
    if (!isMemberList(members)) {
      return Promise.reject(
        new BadRequestError({
          field: 'members',
          problem: `members of partition ${this.partition} must be 1 to 64 distinct positive node ids, got ${JSON.stringify(members)}`,
        }),
      );
    }
    const pending = this.pendingConfiguration;
    if (pending) {
      return Promise.reject(
        new UnavailableError({
          reason: `partition ${this.partition} is already moving to configuration ${pending.configId}; wait for it, read the configuration and retry`,
        }),
      );
    }
    const cur = this.configuration;
    if (expect && this.config.unsafeMutation !== 'ignoreExpectedConfiguration') {
      // The change already ran (configurations start only once decided, so any replica may say so).
      if (cur && cur.configId === expect.configId + 1 && sameMembers(cur.members, members)) {
        return Promise.resolve(cur);
      }
      // Only the leader's configuration is the newest: a follower may lag behind.
      if (this.role !== 'leader') return Promise.reject(this.notLeader());
      if (!cur || cur.configId !== expect.configId || !sameMembers(cur.members, expect.members)) {
        return Promise.reject(
          new ConfigurationChangedError({
            partition: this.partition,
            expected: { configId: expect.configId, members: [...expect.members] },
            current: cur
              ? { configId: cur.configId, members: [...cur.members] }
              : { configId: -1, members: [] },
          }),
        );
      }
    }
    if (cur && sameMembers(cur.members, members)) return Promise.resolve(cur);
    if (this.role !== 'leader') return Promise.reject(this.notLeader());
    try {
      this.paxos.reconfigure(members);
    } catch (e) {
      return Promise.reject(this.mapError(e));
    }
    this.schedule();
    const configId = this.paxos.configId + 1;
    return new Promise((resolve, reject) =>
      this.reconfigs.push({
        configId,
        members: [...members],
        resolve,
        reject,
        deadline: this.now + this.config.requestTimeoutTicks,
      }),
    );
  }

  /** The core started configuration `record` here (reported after the next flush). */
  private configStarted(record: { configId: number; members: readonly NodeId[] }): void {
    // Called from the core's constructor too (a held configuration whose stop-sign is decided starts
    // the next one at once): `this.paxos` may not be set yet.
    for (const p of record.members) if (!this.heardAt.has(p)) this.heard(p);
    this.events.push({
      kind: 'started',
      configuration: { configId: record.configId, members: record.members },
    });
  }

  /** Retires the configurations this replica no longer needs (their storage gets a tombstone). */
  private retireOld(): void {
    for (const c of this.paxos.configurations()) {
      if (!this.paxos.canRetire(c.configId)) continue;
      const min = this.paxos.retire(c.configId);
      this.storage.retire(c.configId, min);
      this.logger.info({ partition: this.partition, configId: c.configId }, 'configuration retired');
    }
    if (this.paxos.removed && this.paxos.configId < 0 && !this.removedReported) {
      this.removedReported = true;
      const k = this.paxos.knownConfig;
      if (k) this.events.push({ kind: 'removed', configuration: k });
    }
  }

  /** The applied state serialized as a state-machine snapshot (for diagnostics and replica comparison). */
  exportState(): Uint8Array {
    return this.sm.snapshot();
  }

  /** The applied session entry of `client` (latest sequence number and its log index), if remembered. */
  sessionOf(client: string): { readonly seq: number; readonly lastIndex: number } | undefined {
    return this.sm.session(client);
  }

  /** Where the leader can be reached, for a `NotLeaderError`. */
  leaderHint(): LeaderHint | undefined {
    // The group-level leader: none while this replica's configuration is stopping (a stopped
    // configuration's core may still name itself leader, and a hint to oneself sends clients in a loop).
    const node = this.successor() ?? this.leader;
    if (node === undefined || node === this.pid) return undefined;
    const address = this.addressOf(node);
    return address === undefined ? undefined : { node, address };
  }

  /**
   * While this replica's configuration stops into one it is not part of (it is being moved out), or
   * once it knows it was moved out: the replica expected to lead the next configuration, the first of
   * its members that held the old log (the paxos successor rule; it holds the requests until it runs
   * the next configuration), else its first member. Clients are sent there at once instead of backing
   * off. Undefined otherwise.
   */
  private successor(): NodeId | undefined {
    if (this.config.unsafeMutation === 'refuseDuringReconfiguration') return undefined;
    const p = this.paxos;
    const next = p.nextMembers ?? (p.knownConfigId > p.configId ? p.knownConfig?.members : undefined);
    if (next === undefined || next.includes(this.pid)) return undefined;
    const old = p.members;
    return next.find((m) => old.includes(m)) ?? next[0];
  }

  // ------------------------------------------------------------------ inputs

  /** A peer message arrived. Messages that are malformed for the current state are ignored by the core. */
  handle(from: NodeId, message: GroupMessage<KvCommand>): void {
    if (isSnapshotTransferMessage(message)) this.handleChecked(from, message);
    else if (validateReconfigMessage(from, message).ok)
      this.handleChecked(from, message as Checked<ReconfigMessage<KvCommand>>);
    else if (!this.fatal && !this.closed)
      this.logger.warn({ partition: this.partition, from }, 'malformed paxos message dropped');
  }

  /**
   * {@link ReplicaGroup.handle} for a message that already passed `checkGroupMessage` (the server's
   * boundary check): the paxos envelope and message are not validated again (see `Checked` of
   * `@paxkv/paxos`); the log entries' commands and a snapshot's state, which only this package can
   * read, still are.
   */
  handleChecked(from: NodeId, message: CheckedGroupMessage<KvCommand>): void {
    if (this.fatal || this.closed) return;
    if (message.type === 'SnapshotChunk' || message.type === 'SnapshotAck') {
      this.handleTransfer(from, message);
      return;
    }
    if (
      !carriesOnlyLogEntries(message) ||
      !this.carriesValidSnapshot(message.type === 'Paxos' ? message.msg : message)
    ) {
      // Never let a malformed entry reach the log: it would be persisted and replicated.
      this.logger.warn({ partition: this.partition, from }, 'malformed paxos message dropped');
      return;
    }
    this.heard(from);
    // The entries stay in the log until the next snapshot: copy them out of the decoded message.
    ownStrings(entriesOf(message));
    try {
      this.paxos.handleChecked(from, message);
    } catch (e) {
      this.logger.warn({ partition: this.partition, from, err: String(e) }, 'paxos message rejected');
    }
    this.failRequestsOfLostLeadership();
    this.releaseHeld();
    // A checked snapshot the core did not install (a stale ballot, say) is not kept in memory.
    if (this.checkedSnapshot && this.paxos.compactedIndex !== this.checkedSnapshot.machine.appliedIndex)
      this.checkedSnapshot = undefined;
    this.schedule();
  }

  /**
   * Counters of this group's chunked snapshot transfers (see `SnapshotTransfer`), and the bytes it
   * stages from senders right now.
   */
  get transferStats(): Readonly<SnapshotTransferStats & { readonly stagedBytes: number }> {
    return { ...this.transfer.stats, stagedBytes: this.transfer.stagedBytes };
  }

  private handleTransfer(from: NodeId, m: SnapshotTransferMessage): void {
    this.heard(from);
    if (m.type === 'SnapshotAck') {
      this.transfer.onAck(from, m);
      return;
    }
    const r = this.transfer.receive(from, m);
    if (r.kind === 'refused' || r.kind === 'discarded') {
      // A refused transfer is resent chunk by chunk: one line per resend period, not one per chunk.
      if (r.kind === 'discarded' || this.now - this.transferWarnedAt >= this.config.requestTimeoutTicks) {
        this.transferWarnedAt = this.now;
        this.logger.warn({ partition: this.partition, from, reason: r.reason }, 'snapshot transfer dropped');
      }
    } else if (r.kind === 'delivered') {
      this.logger.info(
        { partition: this.partition, from, type: m.kind, bytes: r.bytes, index: m.index },
        'snapshot transfer received',
      );
      this.handle(from, r.message as ReconfigMessage<KvCommand>);
    }
  }

  private sendTransfer(to: NodeId, m: SnapshotTransferMessage): void {
    if (this.fatal || this.closed) return;
    try {
      this.sendFn(to, m);
    } catch (e) {
      this.logger.warn({ partition: this.partition, to, err: String(e) }, 'send failed');
    }
  }

  /**
   * A snapshot carried by a message must decode to a state at its index, or the message is dropped. Its
   * bytes are pre-scanned first ({@link SNAPSHOT_DECODE_LIMITS}): a binary field is cheap in the frame's
   * own bounded decode, so a hostile snapshot of empty maps would otherwise expand ~70-fold here.
   */
  private carriesValidSnapshot(m: PaxosMessage<unknown> | ReconfigMessage<unknown>): boolean {
    const snap = (m as { snapshot?: unknown }).snapshot;
    if (snap === undefined || snap === null) return true;
    const { index, data } = snap as { index?: unknown; data?: unknown };
    if (!(data instanceof Uint8Array) || !Number.isSafeInteger(index)) return false;
    if (scanMsgpack(data, SNAPSHOT_DECODE_LIMITS) !== null) return false;
    const restored = KvStateMachine.fromSnapshot(data, this.config.stateMachine, this.partition);
    if (restored instanceof Error || restored.appliedIndex !== index) return false;
    this.checkedSnapshot = { data, machine: restored };
    return true;
  }

  /** One unit of time passed (the server calls it on a fixed interval). Expires timed-out requests. */
  tick(): void {
    if (this.fatal || this.closed) return;
    this.now++;
    this.advanceLeaseTime();
    this.paxos.tick();
    this.transfer.tick();
    this.retireOld();
    const isolated = this.isolated;
    if (isolated && !this.wasIsolated) this.failIsolatedRequests();
    this.wasIsolated = isolated;
    this.failRequestsOfLostLeadership();
    this.releaseHeld();
    this.expireRequests();
    this.driveLeases();
    this.schedule();
  }

  /**
   * When this replica's core stops leading the configuration it led (another replica was elected: a
   * leadership transfer, or a competing candidate), the requests it took as leader fail at once
   * instead of waiting for `requestTimeoutTicks`: its writes with `TimeoutError` (outcome unknown: an
   * entry accepted by a majority is still decided by the new leader; a session retry is applied
   * once), its reads with `NotLeaderError` naming the new leader. A write decided meanwhile has no
   * waiter left; nothing else changes. (Without this, every leadership change under load left the old
   * leader's in-flight writes hanging for the whole request timeout, and the clients' closed loops
   * stalled behind them: the 3 s puts of `bench:cluster --reconfig`.) A stop-sign is handled by
   * `stopSignApplied`, not here.
   */
  private failRequestsOfLostLeadership(): void {
    const led = this.paxos.role === 'leader' ? this.paxos.configId : -1;
    const lost = this.ledConfig;
    this.ledConfig = led;
    if (lost < 0 || led === lost || this.config.unsafeMutation === 'holdRequestsOfLostLeadership') return;
    if (this.paxos.configId !== lost || this.paxos.stopping) return;
    const to = this.paxos.leader;
    for (const [id, w] of this.writes) {
      if ((w.configId ?? -1) !== lost) continue;
      this.writes.delete(id);
      w.reject(
        new TimeoutError({
          operation: `write on partition ${this.partition} (the leadership moved${to === undefined ? '' : ` to node ${to}`} while it was in flight; it may or may not be applied: retry with the same session)`,
        }),
      );
    }
    for (const [token, r] of this.reads) {
      this.reads.delete(token);
      r.reject(this.notLeader());
    }
  }

  /**
   * Whether a request that reaches this replica now is held rather than refused: its configuration is
   * stopping (a stop-sign is in its log, or proposed by it as leader) and this replica is a member of
   * the next one. The next
   * configuration starts within a round trip or two (its successor claims the leadership at once), so
   * the request is submitted again as soon as it runs here ({@link releaseHeld}): served at once by
   * the new leader, or refused with a hint naming it. (Refused at once, as before, every request of a
   * moving partition sent its client into backoff and a table refresh: 300-600 ms puts per move in
   * `bench:cluster --reconfig`.) Held requests count as pending and wait at most `requestTimeoutTicks`.
   */
  private holdsThroughReconfiguration(): boolean {
    if (this.config.unsafeMutation === 'refuseDuringReconfiguration') return false;
    if (this.paxos.removed) return false;
    return this.paxos.nextMembers?.includes(this.pid) === true;
  }

  /**
   * Submits the held requests again once this replica's configuration no longer changes (the next one
   * runs here, or the replica left, or the change is over) and the new configuration has a leader; a
   * held request whose deadline passed is refused (`UNAVAILABLE`: never proposed, safe to retry).
   */
  private releaseHeld(): void {
    if (this.held.length === 0) return;
    const waiting =
      this.holdsThroughReconfiguration() ||
      (!this.paxos.stopping && !this.isolated && this.paxos.leader === undefined);
    if (waiting) {
      let kept = 0;
      for (const h of this.held) {
        if (h.deadline > this.now) this.held[kept++] = h;
        else
          h.reject(
            new UnavailableError({
              reason: `partition ${this.partition}'s configuration is still changing (the request was not proposed: retry)`,
            }),
          );
      }
      this.held.length = kept;
      return;
    }
    for (const h of this.held.splice(0)) this.submit(h.op, h.options).then(h.resolve, h.reject);
  }

  /** The session to `peer` came back after a break. */
  reconnected(peer: NodeId): void {
    if (this.fatal || this.closed) return;
    this.transfer.peerReset(peer);
    this.paxos.reconnected(peer);
    this.schedule();
  }

  /**
   * Asks to lead the group: a gentle leadership transfer to this replica (its ballot is raised above
   * the leader's; the next heartbeat round elects it if it is quorum-connected; the prepare phase
   * keeps every accepted entry). Returns false when it leads already, knows no leader, is not
   * quorum-connected, is joining or stopping, or is not synchronised with the leader (not in the accept
   * phase, e.g. still receiving a snapshot: as leader it would first have to pull the whole state
   * through its peers' promises, and the group would have no leader meanwhile).
   */
  transferLeadership(): boolean {
    if (this.fatal || this.closed || this.paxos.phase !== 'accept') return false;
    const ok = this.paxos.campaign();
    if (ok) this.schedule();
    return ok;
  }

  /**
   * The session to `peer` broke (closed, reset, or declared dead by the link's liveness check). When
   * `peer` led the group, the election starts at once instead of after missed heartbeat rounds (see
   * `SequencePaxos.disconnected`).
   */
  disconnected(peer: NodeId): void {
    if (this.fatal || this.closed) return;
    this.transfer.peerReset(peer);
    this.paxos.disconnected(peer);
    this.schedule();
  }

  /**
   * Submits a client operation. Writes (`put`, `cas`, `delete`, a `txn` that writes, ...) are proposed
   * through the log and resolve once applied; reads (`get`, `range`, a `txn` without writes) are served
   * after a read-index round, at one revision (or at once with `consistency: 'stale'`). The caller
   * routes `op` to this partition (`partitionOfOp`): the group does not check that its keys hash here.
   *
   * Rejects with `NotLeaderError` (with a leader hint when known) or `NoLeaderError` on a replica that
   * cannot serve it now, `KeyTooLargeError`/`ValueTooLargeError` on oversized input, `UnavailableError`
   * when overloaded or stopped, and `TimeoutError` when the outcome stayed unknown for
   * `requestTimeoutTicks` (a write may still have been applied: retry with the same session).
   */
  submit(op: KvOp, options: SubmitOptions = {}): Promise<SubmitResult> {
    if (this.fatal || this.closed) {
      return Promise.reject(
        new UnavailableError({ reason: `replica of partition ${this.partition} is stopped` }),
      );
    }
    const tooLarge = checkKvOpLimits(op, this.config.limits);
    if (tooLarge) return Promise.reject(tooLarge);
    const read = isReadOnlyOp(op);
    if (read && options.consistency === 'stale') {
      return Promise.resolve({ result: this.sm.query(op), stale: true });
    }
    if (this.isolated) return Promise.reject(this.isolatedError());
    const holds = this.holdsThroughReconfiguration();
    // Moving out (a stop-sign without this replica is pending): send the client to the successor.
    if ((this.role !== 'leader' && !holds) || this.successor() !== undefined)
      return Promise.reject(this.notLeader());
    if (this.pendingRequests >= this.config.maxPendingRequests) {
      return Promise.reject(
        new UnavailableError({
          reason: `partition ${this.partition} has ${this.pendingRequests} requests in flight`,
        }),
      );
    }
    const deadline = this.now + this.config.requestTimeoutTicks;
    if (holds) {
      return new Promise((resolve, reject) => this.held.push({ op, options, resolve, reject, deadline }));
    }
    if (read) {
      if (this.config.unsafeMutation === 'staleLeaderReads') {
        return Promise.resolve({ result: this.sm.query(op), stale: false });
      }
      const token = ++this.readSeq;
      try {
        this.paxos.readIndex(token);
      } catch (e) {
        return Promise.reject(this.mapError(e));
      }
      this.schedule();
      return new Promise((resolve, reject) => this.reads.set(token, { op, resolve, reject, deadline }));
    }
    if (this.config.unsafeMutation === 'txnCompareAtSubmit' && op.op === 'txn' && op.compare.length > 0) {
      return this.submitTxnNonAtomically(op, options);
    }
    const id = `${this.paxos.pid}.${this.nonce}.${++this.proposalSeq}`;
    // Kept in the log until the next snapshot: copied out of the decoded request.
    ownStrings(op);
    ownStrings(options.session);
    const command: KvCommand = options.session ? { id, op, session: options.session } : { id, op };
    try {
      this.paxos.propose(command);
    } catch (e) {
      return Promise.reject(this.mapError(e));
    }
    this.schedule();
    const configId = this.paxos.configId;
    return new Promise((resolve, reject) => this.writes.set(id, { resolve, reject, deadline, configId }));
  }

  /**
   * TESTING ONLY (`unsafeMutation: 'txnCompareAtSubmit'`): the compares are decided here, on the
   * state applied so far, and the chosen branch is proposed without them; the answer still says which
   * branch ran. Broken on purpose: another transaction can change the compared keys in between.
   */
  private submitTxnNonAtomically(op: TxnOp, options: SubmitOptions): Promise<SubmitResult> {
    const probe = this.sm.query({ op: 'txn', compare: op.compare, success: [], failure: [] });
    const succeeded = probe.op === 'txn' && probe.succeeded;
    const branch: TxnOp = {
      op: 'txn',
      compare: [],
      success: succeeded ? op.success : op.failure,
      failure: [],
    };
    return this.submit(branch, options).then((r) =>
      r.result.op === 'txn' ? { ...r, result: { ...r.result, succeeded } } : r,
    );
  }

  private isolatedError(): UnavailableError {
    return new UnavailableError({
      reason: `the replica of partition ${this.partition} on node ${this.paxos.pid} cannot reach a majority of its group; try another server`,
    });
  }

  /**
   * This replica just became isolated: fail what waits on it. A write may still be decided (the
   * leader may reach a majority again): its outcome is unknown. A read waiting for its read index
   * is simply refused; reads whose index is known are still answered from the local state.
   */
  private failIsolatedRequests(): void {
    for (const [id, w] of this.writes) {
      this.writes.delete(id);
      w.reject(
        new TimeoutError({
          operation: `write on partition ${this.partition} (the leader lost its majority; it may or may not be applied)`,
        }),
      );
    }
    for (const [token, r] of this.reads) {
      this.reads.delete(token);
      r.reject(this.isolatedError());
    }
  }

  /**
   * Opens a watch on this replica's applied changes (see `WatchHub`): the changes to `filter` from
   * `fromRevision` on (default: after the current revision) go to `sink` in revision order, every event
   * of one revision in one call. Served from applied state on any replica, leader or not. `end` is
   * called (once) if the group ends the stream: it stopped, or a snapshot replaced its state past
   * changes it never applied; resume elsewhere from the revision after the last one delivered.
   * Returns the open watch (with the revision it starts from) or why it was refused.
   */
  watch(
    filter: WatchFilter,
    fromRevision: number | undefined,
    sink: (events: readonly ChangeEvent[]) => void,
    end: (why: string) => void,
  ):
    | { readonly from: number; readonly revision: number; replay(): void; cancel(): void }
    | WatchRefusal
    | { readonly reason: 'stopped' } {
    if (this.fatal || this.closed) return { reason: 'stopped' };
    const skip = this.config.unsafeMutation === 'watchResumeSkips' && fromRevision !== undefined ? 1 : 0;
    const from = (fromRevision ?? this.sm.revision + 1) + skip;
    const opened = this.hub.watch(filter, from, sink);
    if (!('cancel' in opened)) return opened;
    const key = {};
    this.watchEnds.set(key, end);
    return {
      from,
      revision: this.sm.revision,
      replay: () => opened.replay(),
      cancel: () => {
        this.watchEnds.delete(key);
        opened.cancel();
      },
    };
  }

  /** Ends every open watch (the group stopped, or its state was replaced by a snapshot). */
  private endWatches(why: string): void {
    const ends = [...this.watchEnds.values()];
    this.watchEnds.clear();
    this.hub.cancelAll();
    for (const end of ends) end(why);
  }

  private notLeader(): PaxkvError {
    const leader = this.successor() ?? this.leader;
    if (leader === undefined || leader === this.pid) return new NoLeaderError({ partition: this.partition });
    return new NotLeaderError({ leaderHint: this.leaderHint(), partition: this.partition });
  }

  private mapError(e: unknown): PaxkvError | Error {
    if (e instanceof PaxosNotLeaderError || e instanceof PaxosNoLeaderError) return this.notLeader();
    if (e instanceof OverloadedError || e instanceof StoppedError)
      return new UnavailableError({ reason: `partition ${this.partition}: ${e.message}` });
    if (e instanceof InvalidArgumentError) return new BadRequestError({ problem: e.message });
    if (e instanceof PaxkvError) return e;
    return e instanceof Error ? e : new Error(String(e));
  }

  private expireRequests(): void {
    const timeout = (what: string) =>
      new TimeoutError({ operation: `${what} on partition ${this.partition}` }, {});
    for (const [id, w] of this.writes) {
      if (w.deadline <= this.now) {
        this.writes.delete(id);
        w.reject(timeout('write'));
      }
    }
    for (const [token, r] of this.reads) {
      if (r.deadline <= this.now) {
        this.reads.delete(token);
        r.reject(timeout('read'));
      }
    }
    for (let i = this.reconfigs.length - 1; i >= 0; i--) {
      const r = this.reconfigs[i]!;
      if (r.deadline > this.now) continue;
      this.reconfigs.splice(i, 1);
      r.reject(
        new TimeoutError({
          operation: `reconfiguration of partition ${this.partition} to [${r.members.join(', ')}] (it may still be decided: read the configuration)`,
        }),
      );
    }
    if (this.readyReads.some((r) => r.deadline <= this.now)) {
      const keep = this.readyReads.filter((r) => r.deadline > this.now);
      for (const r of this.readyReads) if (r.deadline <= this.now) r.reject(timeout('read'));
      this.readyReads.length = 0;
      this.readyReads.push(...keep);
    }
  }

  // ------------------------------------------------------------------ output pump

  private schedule(): void {
    if (this.pumpScheduled || this.fatal) return;
    this.pumpScheduled = true;
    queueMicrotask(() => this.pump());
  }

  /**
   * Drains the core's outputs and releases them after the storage flush that covers every write made
   * so far. Pumps release in order (a chain), so messages keep their per-link order and entries are
   * applied in log order.
   */
  private pump(): void {
    this.pumpScheduled = false;
    if (this.fatal || this.closed) return;
    let outputs: Outputs;
    try {
      outputs = {
        out: this.paxos.drainOutbox(),
        decided: this.paxos.drainDecided(),
        reads: this.paxos.drainReads(),
        events: this.events,
      };
    } catch (e) {
      // The core found its storage inconsistent (a bug, or a disk that lost part of what it held):
      // stop rather than serve from it.
      this.fail(e);
      return;
    }
    this.events = [];
    // Nothing written since the last durable point (a read-index round, a heartbeat reply, a read's
    // answer) and nothing waiting in the release chain: release now, in this turn, instead of through
    // a flush that would resolve at once (a chain of promises per pump; the read path's main cost).
    if (
      this.pendingReleases === 0 &&
      (this.storage.flushed === true || this.config.unsafeMutation === 'assumeFlushed')
    ) {
      this.earlyAccepts.releasedNow(outputs.out);
      this.release(outputs);
      return;
    }
    if (this.config.unsafeMutation === 'releaseBeforeFlush') {
      this.release(outputs);
      void this.storage.flush().catch((e: unknown) => this.fail(e));
      return;
    }
    const flushed = this.storage.flush();
    let late: LateMessages | undefined;
    let rest = outputs;
    if (this.config.releaseEarly) {
      const split = this.earlyAccepts.split(outputs.out, this.pendingReleases === 0);
      if (split.early.length > 0) this.release({ out: split.early, decided: [], reads: [], events: [] });
      late = split.late;
      rest = { ...outputs, out: [] };
    }
    this.pendingReleases++;
    this.releaseChain = this.releaseChain
      .then(() => flushed)
      .then(
        () => {
          this.pendingReleases--;
          this.release(late === undefined ? rest : { ...rest, out: this.earlyAccepts.released(late) });
        },
        (e: unknown) => {
          this.pendingReleases--;
          this.fail(e);
        },
      );
  }

  private release(o: Outputs): void {
    if (this.fatal || this.closed) return;
    try {
      this.releaseOutputs(o);
    } catch (e) {
      // A bug (e.g. an entry out of order): stop rather than serve from a state we cannot trust.
      this.fail(e);
    }
  }

  private releaseOutputs(o: Outputs): void {
    for (const { to, message } of o.out) {
      // A peer streaming us the answer to this request is alive: asking again would only rebuild it.
      if (this.transfer.answersInFlight(to, message)) continue;
      if (this.transfer.offer(to, message)) continue;
      try {
        this.sendFn(to, message);
      } catch (e) {
        this.logger.warn({ partition: this.partition, to, err: String(e) }, 'send failed');
      }
    }
    for (const item of o.decided) this.applyItem(item);
    for (const r of o.reads) {
      const pending = this.reads.get(r.token);
      if (!pending) continue;
      if ('error' in r) {
        this.reads.delete(r.token);
        pending.reject(this.notLeader());
      } else {
        pending.index = r.index;
        this.readyReads.push(pending);
        this.reads.delete(r.token);
      }
    }
    this.serveReadyReads();
    this.maybeSnapshot();
    for (const e of o.events) this.emit(e);
  }

  private emit(e: ConfigurationEvent): void {
    try {
      this.onConfigChange?.(e);
    } catch (err) {
      this.logger.warn({ partition: this.partition, err: String(err) }, 'onConfigChange threw');
    }
  }

  private applyItem(item: DecidedItem<KvCommand>): void {
    if (item.kind === 'snapshot') {
      // A snapshot received from a peer was decoded once to check it: apply that state, not a second decode.
      const checked = this.checkedSnapshot;
      this.checkedSnapshot = undefined;
      const restored =
        checked !== undefined && checked.data === item.data
          ? checked.machine
          : KvStateMachine.fromSnapshot(item.data, this.config.stateMachine, this.partition);
      if (restored instanceof Error) {
        this.fail(restored);
        return;
      }
      if (restored.appliedIndex !== item.index) {
        this.fail(
          new Error(`snapshot claims index ${item.index} but holds state after ${restored.appliedIndex}`),
        );
        return;
      }
      this.sm = restored;
      this.sm.onChange = (e) => this.hub.record(e);
      this.hub.reset(restored.revision);
      this.endWatches(`partition ${this.partition} installed a snapshot at revision ${restored.revision}`);
      this.lastSnapshotIndex = Math.max(this.lastSnapshotIndex, item.index);
      return;
    }
    if (item.index < this.sm.appliedIndex) return;
    // A stop-sign takes one log position and changes no key (the state machine skips it).
    const entry = item.kind === 'entry' ? item.entry : item.stopSign;
    const outcome = this.sm.apply(item.index, entry);
    if (item.kind === 'stopsign') {
      this.hub.endEntry();
      this.onApplied?.(item.index, entry, outcome);
      this.stopSignApplied({ configId: item.stopSign.configId, members: item.stopSign.members });
      return;
    }
    if (outcome.ok && this.leasing && item.kind === 'entry')
      this.leaseApplied((item.entry as KvCommand).op, outcome.result);
    this.hub.endEntry();
    this.onApplied?.(item.index, entry, outcome);
    const id = (entry as { id?: unknown })?.id;
    if (typeof id !== 'string') return;
    const waiting = this.writes.get(id);
    if (!waiting) return;
    this.writes.delete(id);
    if (outcome.ok) waiting.resolve({ result: outcome.result, stale: false });
    else waiting.reject(outcome.error);
  }

  /**
   * The stop-sign naming `next` was applied: the configuration before it decides nothing more. Every
   * write still waiting here was not in the log before the stop-sign, and cannot be decided later (the
   * next configuration starts from this log): it failed, and is safe to retry.
   */
  private stopSignApplied(next: GroupConfiguration): void {
    for (const [id, w] of this.writes) {
      // A write proposed in the next configuration already (this replica leads it) is still live.
      if ((w.configId ?? -1) >= next.configId) continue;
      this.writes.delete(id);
      w.reject(
        new UnavailableError({
          reason: `partition ${this.partition} moved to configuration ${next.configId} (replicas ${next.members.join(', ')}) before the write was ordered; it was not applied: retry`,
        }),
      );
    }
    for (const [token, r] of this.reads) {
      this.reads.delete(token);
      r.reject(this.notLeader());
    }
    for (let i = this.reconfigs.length - 1; i >= 0; i--) {
      const r = this.reconfigs[i]!;
      this.reconfigs.splice(i, 1);
      if (r.configId === next.configId && sameMembers(r.members, next.members)) r.resolve(next);
      else
        r.reject(
          new UnavailableError({
            reason: `another change of partition ${this.partition} won: configuration ${next.configId} has replicas ${next.members.join(', ')}; read the configuration and retry`,
          }),
        );
    }
    this.emit({ kind: 'decided', configuration: next });
  }

  private serveReadyReads(): void {
    if (this.readyReads.length === 0) return;
    const applied = this.sm.appliedIndex;
    let kept = 0;
    for (const r of this.readyReads) {
      if ((r.index ?? 0) <= applied) r.resolve({ result: this.serveRead(r.op), stale: false });
      else this.readyReads[kept++] = r;
    }
    this.readyReads.length = kept;
  }

  /**
   * Serves a read-only operation after its read index: from the state machine, except that a
   * keep-alive also restarts the lease's TTL on this leader's clock (it confirmed leadership by the
   * read-index round; a keep-alive is never logged, as in etcd).
   */
  private serveRead(op: KvOp): KvResult {
    const result = this.sm.query(op);
    if (op.op === 'lease-keepalive' && result.op === 'lease-keepalive' && result.found && this.leasing) {
      // A lease already due on this leader's clock is ending: its expiry may be in the log, so a
      // keep-alive that answered "found" could be followed by the key's deletion. Answer "not found".
      if (
        this.config.unsafeMutation !== 'keepAliveWhileExpiring' &&
        this.leaseClock.ending(op.lease, this.nowMs())
      )
        return { ...result, found: false, ttlMs: 0 };
      this.leaseClock.refresh(op.lease, result.ttlMs, this.nowMs());
    }
    if (result.op === 'lease-timetolive' && result.found) return this.withRemaining(result);
    return result;
  }

  /**
   * A `lease-timetolive` answer with the time left on this leader's clock. Before this replica keeps
   * lease time (it has just been elected and not driven its clock yet) it answers what a takeover would
   * give: the TTL plus the grace period.
   */
  private withRemaining(result: Extract<KvResult, { op: 'lease-timetolive' }>): KvResult {
    const left = this.leasing ? this.leaseClock.remaining(result.lease, this.nowMs()) : undefined;
    const remainingMs = left ?? result.ttlMs + this.config.leaseGraceMs;
    return { ...result, remainingMs: Math.max(0, Math.round(remainingMs)) };
  }

  private nowMs(): number {
    return this.leaseNowMs;
  }

  /** One tick's lease time: `tickMs`, or the real time since the last tick up to the per-tick bound. */
  private advanceLeaseTime(): void {
    const clock = this.config.monotonicNowMs;
    if (clock === undefined) {
      this.leaseNowMs += this.config.tickMs;
      return;
    }
    const t = clock();
    const last = this.lastMonotonicMs ?? t - this.config.tickMs;
    this.lastMonotonicMs = t;
    this.leaseNowMs += Math.min(Math.max(0, t - last), this.config.leaseMaxAdvancePerTickMs);
  }

  /**
   * Lease time, kept by the leader only: on becoming leader every lease gets its TTL plus the grace
   * period; a lease whose time ran out is expired by proposing `lease-expire` through the log (never
   * applied by any replica on its own clock). A replica that stops leading (or is cut off from its
   * majority) forgets lease time.
   */
  private driveLeases(): void {
    const leading = this.paxos.role === 'leader' && this.paxos.phase === 'accept' && !this.isolated;
    if (!leading) {
      if (this.leasing) {
        this.leasing = false;
        this.leaseClock.stepDown();
      }
      return;
    }
    const now = this.nowMs();
    if (!this.leasing) {
      this.leasing = true;
      this.leaseClock.takeOver(now, this.sm.leaseTtls());
    }
    for (const lease of this.leaseClock.due(now)) {
      const id = `${this.paxos.pid}.${this.nonce}.${++this.proposalSeq}`;
      try {
        this.paxos.propose({ id, op: { op: 'lease-expire', lease } });
      } catch (e) {
        this.logger.warn({ partition: this.partition, lease, err: String(e) }, 'lease expiry not proposed');
      }
    }
  }

  /** Keeps the leader's lease clock in step with applied lease entries. */
  private leaseApplied(op: KvOp, result: KvResult): void {
    if (result.op === 'lease-grant' && result.granted)
      this.leaseClock.refresh(result.lease, result.ttlMs, this.nowMs());
    else if (op.op === 'lease-revoke' || op.op === 'lease-expire') this.leaseClock.forget(op.lease);
    else if (result.op === 'restore' && result.outcome === 'restored') {
      // The restored leases start their TTL now, as on a leader change.
      const now = this.nowMs();
      for (const [lease, ttlMs] of this.sm.leaseTtls()) this.leaseClock.refresh(lease, ttlMs, now);
    }
  }

  private maybeSnapshot(): void {
    const applied = this.sm.appliedIndex;
    const since = applied - this.lastSnapshotIndex;
    const { snapshotEveryEntries, snapshotMinEntries, snapshotLogRatio } = this.config;
    const k = this.snapshotStagger;
    const byRatio =
      snapshotLogRatio > 0 && since >= snapshotMinEntries * k && since >= this.sm.size * snapshotLogRatio * k;
    if (since < snapshotEveryEntries * k && !byRatio) return;
    try {
      this.paxos.compact(applied, this.sm.snapshot());
      this.lastSnapshotIndex = applied;
      this.snapshotStagger = this.nextStagger();
      this.schedule();
    } catch (e) {
      this.logger.warn({ partition: this.partition, err: String(e) }, 'snapshot skipped');
    }
  }

  /** The factor of the snapshot thresholds until the next snapshot (see `snapshotJitter`). */
  private nextStagger(): number {
    const j = this.config.snapshotJitter;
    if (j === 0) return 1;
    const u =
      (fnv1a32(`${this.pid}:${this.nonce}:${this.partition}:${this.lastSnapshotIndex}`) >>> 0) / 2 ** 32;
    return 1 - j + 2 * j * u;
  }

  private fail(e: unknown): void {
    if (this.fatal) return;
    const err = e instanceof Error ? e : new Error(String(e));
    this.fatal = err;
    this.logger.warn({ partition: this.partition, err: err.message }, 'replica group stopped');
    const stopped = new UnavailableError({
      reason: `replica of partition ${this.partition} stopped: ${err.message}`,
    });
    for (const w of this.writes.values()) w.reject(stopped);
    for (const r of this.reads.values()) r.reject(stopped);
    for (const r of this.readyReads) r.reject(stopped);
    for (const h of this.held.splice(0)) h.reject(stopped);
    this.writes.clear();
    this.reads.clear();
    this.readyReads.length = 0;
    this.endWatches(`replica of partition ${this.partition} stopped`);
    this.transfer.clear();
    this.onFatal?.(err);
  }

  /**
   * Waits until every output produced so far is released (testing and orderly shutdown).
   */
  async settle(): Promise<void> {
    for (;;) {
      const chain = this.releaseChain;
      await chain;
      if (!this.pumpScheduled && chain === this.releaseChain) return;
      await Promise.resolve();
    }
  }

  /**
   * Stops the group: pending requests fail with `UnavailableError`, outputs are flushed, storage closed
   * if it has a `close()`.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.settle().catch(() => {});
    this.closed = true;
    const stopped = new UnavailableError({
      reason: `replica of partition ${this.partition} is shutting down`,
    });
    for (const w of this.writes.values()) w.reject(stopped);
    for (const r of this.reads.values()) r.reject(stopped);
    for (const r of this.readyReads) r.reject(stopped);
    for (const h of this.held.splice(0)) h.reject(stopped);
    this.writes.clear();
    this.reads.clear();
    this.readyReads.length = 0;
    this.endWatches(`replica of partition ${this.partition} is shutting down`);
    this.transfer.clear();
    const closable = this.storage as { close?: () => Promise<void> };
    await closable.close?.();
  }
}
