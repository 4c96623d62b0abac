/**
 * A replica group: one Sequence Paxos instance + the KV state machine + durable storage, for one
 * partition on one server. The server app feeds it messages and ticks and wires its `send` callback to
 * the peer sockets; clients' requests enter through {@link ReplicaGroup.submit}.
 * @module
 */
import {
  checkKvOpLimits,
  DEFAULT_PROTOCOL_LIMITS,
  isReadOnlyOp,
  type KvOp,
  type KvResult,
  type LeaderHint,
  NoLeaderError,
  NotLeaderError,
  type PaxkvError,
  type ProtocolLimits,
  resolveDecodeLimits,
  type Session,
  scanMsgpack,
  TimeoutError,
  type TxnOp,
  UnavailableError,
} from '@paxkv/common';
import {
  type DecidedItem,
  type LogEntry,
  type NodeId,
  OverloadedError,
  type PaxosConfig,
  type PaxosMessage,
  NoLeaderError as PaxosNoLeaderError,
  NotLeaderError as PaxosNotLeaderError,
  type Phase,
  type ReadResult,
  type Role,
  SequencePaxos,
  type Storage,
  validatePaxosMessage,
} from '@paxkv/paxos';
import type { KvCommand } from './command.js';
import { isKvCommand } from './command.js';
import { LeaseClock } from './leases.js';
import { type ApplyOutcome, KvStateMachine, type StateMachineConfig } from './state-machine.js';
import type { Disk } from './storage/disk.js';
import { DurableStorage } from './storage/durable-storage.js';
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
   * Default `'none'`; anything else makes the store unsafe.
   */
  readonly unsafeMutation:
    | 'none'
    | 'staleLeaderReads'
    | 'releaseBeforeFlush'
    | 'txnCompareAtSubmit'
    | 'leaseStaleDeadlines'
    | 'keepAliveWhileExpiring'
    | 'watchResumeSkips';
  /**
   * Send the leader's `Accept` messages without waiting for the flush of the pump that produced them,
   * when every earlier output has been released (so every earlier write is durable). The leader's
   * own log write then overlaps the followers' instead of preceding it (as etcd's raft does), which
   * takes one fsync off the latency of every write. Safe because an `Accept` announces nothing about
   * the leader's own storage: a decision still needs the leader's copy durable (the `Accepted` that
   * completes a majority is handled in a later pump, released only after this pump's flush), and
   * every acknowledgement this replica sends about its own writes (`Promise`, `Accepted`, ...),
   * every decided entry and every read still waits for the flush. Only a per-link prefix of
   * `Accept`s goes early, so links stay FIFO. Default true; false restores "every output after the
   * flush".
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
}

/** Messages that announce nothing about this replica's own pending writes (see `releaseEarly`). */
const EARLY_MESSAGE_TYPES: ReadonlySet<string> = new Set(['Accept']);

/** Defaults of {@link ReplicaGroupConfig}. */
export const DEFAULT_REPLICA_GROUP_CONFIG: Readonly<ReplicaGroupConfig> = Object.freeze({
  paxos: {},
  stateMachine: {},
  limits: DEFAULT_PROTOCOL_LIMITS,
  snapshotEveryEntries: 10_000,
  requestTimeoutTicks: 1_000,
  maxPendingRequests: 100_000,
  unsafeMutation: 'none',
  releaseEarly: true,
  watch: {},
  tickMs: 20,
  leaseGraceMs: 2_000,
});

/** Constructor options of {@link ReplicaGroup}. */
export interface ReplicaGroupOptions {
  /** The partition this group replicates (used in error messages and hints). */
  readonly partition: number;
  /** This server's node id within the group. */
  readonly pid: NodeId;
  /** The other replicas of the group. */
  readonly peers: readonly NodeId[];
  /** Durable storage (see {@link ReplicaGroup.open}) or a `MemoryStorage` with a no-op flush in tests. */
  readonly storage: FlushableStorage<KvCommand>;
  /**
   * Sends a paxos message to a peer. Called only after the storage writes the message depends on are
   * durable, in the order the core produced the messages. Must not throw (drop the message instead: the
   * core resends, and a broken link is reported with {@link ReplicaGroup.reconnected}).
   */
  readonly send: (to: NodeId, message: PaxosMessage<LogEntry<KvCommand>>) => void;
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
}

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

interface PendingWrite {
  readonly resolve: (r: SubmitResult) => void;
  readonly reject: (e: PaxkvError | Error) => void;
  readonly deadline: number;
}

interface PendingRead extends PendingWrite {
  /** The read-only operation (`get`, `range`, or a `txn` without writes). */
  readonly op: KvOp;
  /** Set once the read-index round completed: serve when `appliedIndex >= index`. */
  index?: number;
}

interface Outputs {
  readonly out: { to: NodeId; message: PaxosMessage<LogEntry<KvCommand>> }[];
  readonly decided: DecidedItem<KvCommand>[];
  readonly reads: ReadResult[];
}

/** Whether every log entry a paxos message carries is a well-formed {@link KvCommand}. */
function carriesOnlyCommands(m: PaxosMessage<unknown>): boolean {
  const entries =
    (m as { entries?: unknown; suffix?: unknown }).entries ?? (m as { suffix?: unknown }).suffix;
  if (entries === undefined) return true;
  return Array.isArray(entries) && entries.every(isKvCommand);
}

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
  private readonly paxos: SequencePaxos<KvCommand>;
  private readonly storage: FlushableStorage<KvCommand>;
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
  private readonly writes = new Map<string, PendingWrite>();
  private readonly reads = new Map<number, PendingRead>();
  /** Reads whose index is known, waiting for the state machine to catch up. */
  private readonly readyReads: PendingRead[] = [];
  private lastSnapshotIndex: number;
  private pumpScheduled = false;
  private releaseChain: Promise<void> = Promise.resolve();
  /** Pumps whose flush has not resolved or whose outputs are not released: while non-zero, nothing may overtake them. */
  private pendingReleases = 0;
  private fatal: Error | undefined;
  private closed = false;
  /** The tick at which each peer was last heard from (any valid message). */
  private readonly heardAt = new Map<NodeId, number>();
  private readonly peerIds: readonly NodeId[];
  private readonly isolationTicks: number;
  private wasIsolated = false;
  /** Recent changes and open watchers (see {@link ReplicaGroup.watch}). */
  private hub: WatchHub;
  /** The leader's lease timekeeping (see `LeaseClock`); only used while this replica leads. */
  private readonly leaseClock: LeaseClock;
  /** True while this replica leads and keeps lease time. */
  private leasing = false;
  /** How each open watcher is told its stream ended (by the group, not by its own cancel). */
  private readonly watchEnds = new Map<object, (why: string) => void>();

  constructor(opts: ReplicaGroupOptions) {
    this.partition = opts.partition;
    this.config = { ...DEFAULT_REPLICA_GROUP_CONFIG, ...opts.config };
    for (const k of ['snapshotEveryEntries', 'requestTimeoutTicks', 'maxPendingRequests'] as const) {
      const v = this.config[k];
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new RangeError(`replica group config.${k} must be a positive integer, got ${String(v)}`);
      }
    }
    this.storage = opts.storage;
    this.sendFn = opts.send;
    this.addressOf = opts.addressOf ?? (() => undefined);
    this.onFatal = opts.onFatal;
    this.onApplied = opts.onApplied;
    this.logger = opts.logger ?? silentLogger;
    this.nonce = opts.nonce ?? randomNonce();
    this.sm = new KvStateMachine(this.config.stateMachine, this.partition);
    this.hub = new WatchHub(this.sm.revision, this.config.watch);
    this.leaseClock = new LeaseClock(
      this.config.leaseGraceMs,
      // An expiry proposal not applied after this long (lost in a leader change) is proposed again.
      this.config.requestTimeoutTicks * this.config.tickMs,
      this.config.unsafeMutation === 'leaseStaleDeadlines',
    );
    this.sm.onChange = (e) => this.hub.record(e);
    this.paxos = new SequencePaxos<KvCommand>({
      pid: opts.pid,
      peers: opts.peers,
      storage: opts.storage,
      config: this.config.paxos,
    });
    this.lastSnapshotIndex = opts.storage.getCompactedIndex();
    this.peerIds = [...opts.peers];
    // Every peer counts as just heard at start: a fresh replica is not isolated before it had a chance.
    for (const p of this.peerIds) this.heardAt.set(p, 0);
    const { electionTimeoutTicks, heartbeatTicks } = this.paxos.config;
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
    const storage = await DurableStorage.open<KvCommand>({
      wal: opts.wal,
      partition: opts.partition,
      disk: opts.disk,
      dir: opts.dir,
      isEntry: isKvCommand,
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
    return new ReplicaGroup({ ...opts, storage });
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
    const l = this.paxos.leader;
    return l === this.paxos.pid && this.isolated ? undefined : l;
  }
  /**
   * `leader` or `follower`. A leader that is {@link ReplicaGroup.isolated} reports `follower`: it
   * refuses requests until it hears a majority again (the protocol state underneath is unchanged, so
   * it resumes at once if no other replica took over meanwhile).
   */
  get role(): Role {
    return this.isolated ? 'follower' : this.paxos.role;
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
    let heard = 1; // itself
    for (const at of this.heardAt.values()) if (this.now - at <= this.isolationTicks) heard++;
    return heard < Math.floor((this.peerIds.length + 1) / 2) + 1;
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
    return this.writes.size + this.reads.size + this.readyReads.length;
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
    const node = this.paxos.leader;
    if (node === undefined) return undefined;
    const address = this.addressOf(node);
    return address === undefined ? undefined : { node, address };
  }

  // ------------------------------------------------------------------ inputs

  /** A peer message arrived. Messages that are malformed for the current state are ignored by the core. */
  handle(from: NodeId, message: PaxosMessage<LogEntry<KvCommand>>): void {
    if (this.fatal || this.closed) return;
    if (
      !validatePaxosMessage(from, message).ok ||
      !carriesOnlyCommands(message) ||
      !this.carriesValidSnapshot(message)
    ) {
      // Never let a malformed entry reach the log: it would be persisted and replicated.
      this.logger.warn({ partition: this.partition, from }, 'malformed paxos message dropped');
      return;
    }
    if (this.heardAt.has(from)) this.heardAt.set(from, this.now);
    try {
      this.paxos.handle(from, message);
    } catch (e) {
      this.logger.warn({ partition: this.partition, from, err: String(e) }, 'paxos message rejected');
    }
    this.schedule();
  }

  /**
   * A snapshot carried by a message must decode to a state at its index, or the message is dropped. Its
   * bytes are pre-scanned first ({@link SNAPSHOT_DECODE_LIMITS}): a binary field is cheap in the frame's
   * own bounded decode, so a hostile snapshot of empty maps would otherwise expand ~70-fold here.
   */
  private carriesValidSnapshot(m: PaxosMessage<unknown>): boolean {
    const snap = (m as { snapshot?: unknown }).snapshot;
    if (snap === undefined || snap === null) return true;
    const { index, data } = snap as { index?: unknown; data?: unknown };
    if (!(data instanceof Uint8Array) || !Number.isSafeInteger(index)) return false;
    if (scanMsgpack(data, SNAPSHOT_DECODE_LIMITS) !== null) return false;
    const restored = KvStateMachine.fromSnapshot(data, this.config.stateMachine, this.partition);
    return !(restored instanceof Error) && restored.appliedIndex === index;
  }

  /** One unit of time passed (the server calls it on a fixed interval). Expires timed-out requests. */
  tick(): void {
    if (this.fatal || this.closed) return;
    this.now++;
    this.paxos.tick();
    const isolated = this.isolated;
    if (isolated && !this.wasIsolated) this.failIsolatedRequests();
    this.wasIsolated = isolated;
    this.expireRequests();
    this.driveLeases();
    this.schedule();
  }

  /** The session to `peer` came back after a break. */
  reconnected(peer: NodeId): void {
    if (this.fatal || this.closed) return;
    this.paxos.reconnected(peer);
    this.schedule();
  }

  /**
   * The session to `peer` broke (closed, reset, or declared dead by the link's liveness check). When
   * `peer` led the group, the election starts at once instead of after missed heartbeat rounds (see
   * `SequencePaxos.disconnected`).
   */
  disconnected(peer: NodeId): void {
    if (this.fatal || this.closed) return;
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
    if (this.paxos.role !== 'leader') return Promise.reject(this.notLeader());
    if (this.pendingRequests >= this.config.maxPendingRequests) {
      return Promise.reject(
        new UnavailableError({
          reason: `partition ${this.partition} has ${this.pendingRequests} requests in flight`,
        }),
      );
    }
    const deadline = this.now + this.config.requestTimeoutTicks;
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
    const command: KvCommand = options.session ? { id, op, session: options.session } : { id, op };
    try {
      this.paxos.propose(command);
    } catch (e) {
      return Promise.reject(this.mapError(e));
    }
    this.schedule();
    return new Promise((resolve, reject) => this.writes.set(id, { resolve, reject, deadline }));
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
    if (this.paxos.leader === undefined) return new NoLeaderError({ partition: this.partition });
    return new NotLeaderError({ leaderHint: this.leaderHint(), partition: this.partition });
  }

  private mapError(e: unknown): PaxkvError | Error {
    if (e instanceof PaxosNotLeaderError || e instanceof PaxosNoLeaderError) return this.notLeader();
    if (e instanceof OverloadedError) return new UnavailableError({ reason: e.message });
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
    const outputs: Outputs = {
      out: this.paxos.drainOutbox(),
      decided: this.paxos.drainDecided(),
      reads: this.paxos.drainReads(),
    };
    if (this.config.unsafeMutation === 'releaseBeforeFlush') {
      this.release(outputs);
      void this.storage.flush().catch((e: unknown) => this.fail(e));
      return;
    }
    const flushed = this.storage.flush();
    const late =
      this.config.releaseEarly && this.pendingReleases === 0 ? this.releaseEarlyPart(outputs) : outputs;
    // Counted even when nothing is left to release: a later pump may only send early once this
    // flush is done.
    this.pendingReleases++;
    this.releaseChain = this.releaseChain
      .then(() => flushed)
      .then(
        () => {
          this.pendingReleases--;
          this.release(late);
        },
        (e: unknown) => {
          this.pendingReleases--;
          this.fail(e);
        },
      );
  }

  /**
   * Sends at once the per-link prefix of `o.out` made of {@link EARLY_MESSAGE_TYPES} (see
   * {@link ReplicaGroupConfig.releaseEarly}); returns the rest, to be released after the flush.
   * Only called when every earlier output has been released.
   */
  private releaseEarlyPart(o: Outputs): Outputs {
    const early: Outputs['out'] = [];
    const late: Outputs['out'] = [];
    const blocked = new Set<NodeId>();
    for (const m of o.out) {
      if (EARLY_MESSAGE_TYPES.has(m.message.type) && !blocked.has(m.to)) {
        early.push(m);
      } else {
        blocked.add(m.to);
        late.push(m);
      }
    }
    if (early.length === 0) return o;
    this.release({ out: early, decided: [], reads: [] });
    return { out: late, decided: o.decided, reads: o.reads };
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
  }

  private applyItem(item: DecidedItem<KvCommand>): void {
    if (item.kind === 'snapshot') {
      const restored = KvStateMachine.fromSnapshot(item.data, this.config.stateMachine, this.partition);
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
    return this.now * this.config.tickMs;
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
    if (applied - this.lastSnapshotIndex < this.config.snapshotEveryEntries) return;
    try {
      this.paxos.compact(applied, this.sm.snapshot());
      this.lastSnapshotIndex = applied;
      this.schedule();
    } catch (e) {
      this.logger.warn({ partition: this.partition, err: String(e) }, 'snapshot skipped');
    }
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
    this.writes.clear();
    this.reads.clear();
    this.readyReads.length = 0;
    this.endWatches(`replica of partition ${this.partition} stopped`);
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
    this.writes.clear();
    this.reads.clear();
    this.readyReads.length = 0;
    this.endWatches(`replica of partition ${this.partition} is shutting down`);
    const closable = this.storage as { close?: () => Promise<void> };
    await closable.close?.();
  }
}
