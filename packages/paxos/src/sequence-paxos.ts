/**
 * Sequence Paxos with Ballot Leader Election, as a sans-IO state machine.
 * @module
 */

import { BALLOT_ZERO, type Ballot, compareBallots, isNodeId, type NodeId } from './ballot.js';
import { BallotLeaderElection } from './ballot-leader-election.js';
import { type PaxosConfig, resolveConfig } from './config.js';
import {
  InvalidArgumentError,
  NoLeaderError,
  NotLeaderError,
  OverloadedError,
  PaxosConfigError,
  StoppedError,
} from './errors.js';
import type {
  Accept,
  Accepted,
  AcceptSync,
  Decide,
  Forward,
  Nack,
  PaxosMessage,
  Prepare,
  PrepareReq,
  PromiseMessage,
  ReadIndexReply,
  ReadIndexRequest,
} from './messages.js';
import { type Checked, isPaxosMessage } from './messages.js';
import { kthLargestInPlace } from './order-stat.js';
import { isMemberList, isStopSign, type LogEntry, makeStopSign, type StopSign } from './stop-sign.js';
import type { Snapshot, Storage } from './storage.js';

/** Whether this replica leads its ballot or follows another's. */
export type Role = 'leader' | 'follower';

/**
 * Protocol phase of the replica in its current role.
 * - `none`: a follower that has not (re)synchronised with any leader since it started or stepped down.
 * - `prepare`: a leader collecting promises, or a follower that promised and waits for `AcceptSync`.
 * - `accept`: steady state: the leader streams entries, the follower accepts them.
 */
export type Phase = 'none' | 'prepare' | 'accept';

/** One item of the decided output, in log order. */
export type DecidedItem<T> =
  /** The entry at 0-based position `index` is decided: apply it. */
  | { readonly kind: 'entry'; readonly index: number; readonly entry: T }
  /**
   * The entry at `index` is a decided stop-sign. When it names a later configuration than the
   * replica's own, the replica's configuration is stopped: nothing follows it in this log.
   */
  | { readonly kind: 'stopsign'; readonly index: number; readonly stopSign: StopSign }
  /**
   * Replace the application state with this snapshot, which covers entries `[0, index)` (so the next
   * item, if any, is the entry at position `index`).
   */
  | { readonly kind: 'snapshot'; readonly index: number; readonly data: Uint8Array };

/** A message to send, drained from {@link SequencePaxos.drainOutbox}. */
export interface OutgoingMessage<T> {
  readonly to: NodeId;
  readonly message: PaxosMessage<LogEntry<T>>;
}

/**
 * A completed read-index request: serve the read once the application has applied every entry with a
 * position below `index` (that is, once `index` entries are applied). Or the request failed because
 * leadership was lost: retry on `error.leaderHint`.
 */
export type ReadResult =
  | { readonly token: number; readonly index: number }
  | { readonly token: number; readonly error: NotLeaderError };

/** Constructor options of {@link SequencePaxos}. */
export interface SequencePaxosOptions<T> {
  /** This replica's id: a positive integer. */
  readonly pid: NodeId;
  /** The other replicas of the group (not including `pid`). */
  readonly peers: readonly NodeId[];
  /**
   * Persistent state; a replica restarted over the same storage recovers from it. The log holds
   * commands and {@link StopSign}s.
   */
  readonly storage: Storage<LogEntry<T>>;
  /**
   * Id of the configuration this replica belongs to (default `0`). Stop-signs naming a later
   * configuration stop it; a stop-sign naming this one (the base of its log) is history.
   */
  readonly configId?: number;
  /** Overrides of {@link DEFAULT_PAXOS_CONFIG}. */
  readonly config?: Partial<PaxosConfig>;
  /**
   * Claim the leadership at once with this replica's initial ballot (start the prepare phase) instead
   * of waiting for the end of the first BLE round. For the replica that led the configuration before
   * this one (`ReconfigurablePaxos`): a new configuration then runs within one round trip of its
   * start. Liveness only: the prepare phase needs a majority as always, a higher ballot still wins,
   * and the first BLE round confirms or replaces the claim like any election. Default false.
   */
  readonly claimLeadership?: boolean;
  /**
   * Follow this ballot's replica from the start, as if the first BLE round had elected it (for the
   * other replicas of a new configuration whose successor leader claims: `ReconfigurablePaxos`), so
   * that a round that missed the successor's reply does not make this replica raise its own ballot
   * against it. Liveness only: the leader is replaced by the usual rules when it is not heard, and a
   * higher quorum-connected ballot still wins. Ignored when not above this replica's own ballot.
   */
  readonly presumedLeader?: Ballot;
  /**
   * Until BLE knows a leader, follow the ballot of a Prepare this replica promises, as if a BLE round
   * had elected it (for a replica that joins a running configuration from a transferred state:
   * `ReconfigurablePaxos`). Its first round may hear only peers that are not quorum-connected yet (they
   * started the configuration a moment ago), and it would elect its own ballot, find it below the
   * promise, raise above it and depose the leader it just promised. Liveness only, like
   * {@link presumedLeader}. Default false.
   */
  readonly followPromised?: boolean;
  /**
   * Size of an entry in bytes as the host's transport encodes it (an upper estimate will do). With it the
   * leader cuts its `Accept` batches at `maxBatchBytes` of entries as well as at `maxBatchSize` entries.
   * Called on the leader's send path for every entry of a batch of two or more: keep it cheap. A value
   * that is not a finite number of at least 0 (`NaN`, negative, `Infinity`) counts as over the budget:
   * that entry goes alone, so a broken sizer costs batching, never the bound. Default: none (batches
   * bounded by count only).
   */
  readonly entryBytes?: (entry: LogEntry<T>) => number;
}

/** What the leader learned from one follower's promise. */
interface PromiseInfo<T> {
  readonly acceptedRound: Ballot;
  readonly logLength: number;
  readonly decidedIndex: number;
  readonly suffixStart: number;
  readonly suffix: readonly LogEntry<T>[];
  readonly snapshot: Snapshot | null;
}

/** Replication progress of one follower in the accept phase. */
interface FollowerProgress {
  /** Log length the follower confirmed for this ballot (`Accepted`); entries below are the leader's. */
  acked: number;
  /** Next position to send. */
  sent: number;
  /** Position the last `AcceptSync` started from: the pipelining window is measured from `max(acked, base)`. */
  base: number;
  /** Highest decided index sent to the follower. */
  decidedSent: number;
  /** Tick of the last progress (or resend) for this follower. */
  lastProgress: number;
  /** Tick of the last `Decide` (or `Accept`) sent, to refresh the decided index periodically. */
  lastDecide: number;
}

/** Volatile state of a leader for one ballot. */
interface LeaderState<T> {
  readonly n: Ballot;
  /** Promises received in this ballot, by follower. */
  readonly promises: Map<NodeId, PromiseInfo<T>>;
  /** Tick at which `Prepare` was last sent to a follower not yet in the accept phase. */
  readonly prepareSent: Map<NodeId, number>;
  /** Followers in the accept phase, with their progress. */
  readonly progress: Map<NodeId, FollowerProgress>;
  /** Accepted ballot of the log adopted at the end of the prepare phase. */
  adoptedRound: Ballot;
  /** Log length right after adoption: every entry decided by an earlier ballot is below it. */
  adoptedLength: number;
}

interface PendingRead {
  readonly token: number;
  /** `-1` until the leader reaches the accept phase. */
  index: number;
}

interface ReadRound {
  readonly id: number;
  readonly reads: PendingRead[];
  readonly acks: Set<NodeId>;
  sentAt: number;
  /** The peers asked so far, while only some were (see `PaxosConfig.readFallbackTicks`); undefined once every peer was. */
  asked: Set<NodeId> | undefined;
}

/**
 * One replica of Sequence Paxos with Ballot Leader Election, as a deterministic, sans-IO state machine.
 *
 * Drive it with {@link handle} (a message arrived), {@link tick} (a unit of time passed),
 * {@link propose}, {@link readIndex} and {@link compact}; collect its outputs with
 * {@link drainOutbox}, {@link drainDecided} and {@link drainReads}. It never does IO, reads no
 * clock and draws no random numbers: the same inputs give the same outputs.
 *
 * **Ordering duty** (see {@link Storage}): the core writes its storage synchronously while handling
 * an input; outputs drained afterwards may announce those writes, so the host must make the storage
 * durable before releasing them (sending messages, applying decided entries, answering reads).
 *
 * **Links**: the core is safe under any message loss, reordering or duplication; it is live when
 * every link between live replicas is a FIFO session that breaks rather than loses a message in the
 * middle, with {@link reconnected} called when a session comes back (it also recovers from isolated
 * losses through its resend timers, more slowly).
 *
 * **Indexes** are 0-based log positions; `decidedIndex`, `logLength` and `compactedIndex` are counts
 * (the number of entries decided, stored, or replaced by the snapshot).
 *
 * **Restart** = construct a new instance over the same storage: the promise, accepted ballot, log,
 * decided index and snapshot are recovered, the election ballot is at least the one used before, and
 * {@link drainDecided} replays the snapshot (if any) and the decided entries from the start, so the
 * application can rebuild its state.
 *
 * @typeParam T the command type: any value the host can serialise; the core never inspects it.
 */
export class SequencePaxos<T> {
  /** This replica's id. */
  readonly pid: NodeId;
  /** The other replicas. */
  readonly peers: readonly NodeId[];
  /** The resolved configuration. */
  readonly config: Readonly<PaxosConfig>;
  /** Id of the configuration this replica belongs to. */
  readonly configId: number;

  private readonly storage: Storage<LogEntry<T>>;
  private readonly majority: number;
  /** Scratch space of the decide step (one length per replica), reused so that it allocates nothing. */
  private readonly ackScratch: number[] = [];
  /** See {@link SequencePaxosOptions.followPromised}. */
  private readonly followPromised: boolean;
  private readonly entryBytes: ((entry: LogEntry<T>) => number) | undefined;
  private readonly peerSet: Set<NodeId>;
  private readonly ble: BallotLeaderElection;

  private _role: Role = 'follower';
  private _phase: Phase = 'none';
  private now = 0;
  private leaderState: LeaderState<T> | undefined = undefined;
  /** Follower: tick at which it last asked its leader for a re-sync (or entered its phase). */
  private followerWaitSince = 0;

  private outbox: OutgoingMessage<T>[] = [];
  /** Leader: proposals not yet appended. Follower: nothing (see `forwardBuf`). */
  private proposalBuf: LogEntry<T>[] = [];
  /** Follower: proposals to forward to `forwardTo`. */
  private forwardBuf: LogEntry<T>[] = [];
  /** The stop-sign of a later configuration at the end of the log, with its index, if any. */
  private stop: { readonly index: number; readonly sign: StopSign } | undefined = undefined;
  /** Leader: a stop-sign waiting in `proposalBuf`. */
  private stopBuffered: StopSign | undefined = undefined;
  private forwardTo: NodeId | undefined = undefined;
  /** Number of log entries already returned by `drainDecided`. */
  private drainedIndex = 0;

  private pendingReads: PendingRead[] = [];
  private readRound: ReadRound | undefined = undefined;
  private readRoundSeq = 0;
  /** The peers whose answers completed the last read round: the next round asks them first. */
  private readPeers: NodeId[] = [];
  private readResults: ReadResult[] = [];

  /**
   * Creates a replica, recovering its persistent state from `opts.storage`.
   * @throws PaxosConfigError if `pid` or `peers` are not distinct positive integers, or a config field is invalid.
   */
  constructor(opts: SequencePaxosOptions<T>) {
    if (!isNodeId(opts.pid)) throw new PaxosConfigError(`pid must be a positive integer, got ${opts.pid}`);
    const peerSet = new Set<NodeId>();
    for (const p of opts.peers) {
      if (!isNodeId(p) || p === opts.pid || peerSet.has(p)) {
        throw new PaxosConfigError(
          `peers must be distinct positive integers other than pid ${opts.pid}, got [${opts.peers.join(', ')}]`,
        );
      }
      peerSet.add(p);
    }
    const configId = opts.configId ?? 0;
    if (!Number.isSafeInteger(configId) || configId < 0) {
      throw new PaxosConfigError(`configId must be a non-negative integer, got ${String(configId)}`);
    }
    this.configId = configId;
    this.followPromised = opts.followPromised === true;
    this.entryBytes = opts.entryBytes;
    this.pid = opts.pid;
    this.peers = [...opts.peers];
    this.peerSet = peerSet;
    this.storage = opts.storage;
    this.config = Object.freeze(resolveConfig(opts.config));
    this.majority = Math.floor((this.peers.length + 1) / 2) + 1;
    const promise = this.storage.getPromise();
    // A replica restarted on a promise (it held a running configuration) starts its candidacy one round
    // below it: stale, like every restarted replica of its group, so the first to top a start-up round
    // raises above its promise and leads, and a replica that comes up later (of a higher id) follows that
    // leader instead of taking over with a ballot of the old round (see BallotLeaderElection "Start-up").
    // Leading still takes a ballot above the promise, which this replica never used.
    const initialRound = promise.n > 0 ? promise.n - 1 : this.storage.getBallotRound();
    this.ble = new BallotLeaderElection(
      this.pid,
      this.peers,
      initialRound,
      this.config.heartbeatTicks,
      this.config.electionTimeoutTicks,
      {
        send: (to, message) => this.outbox.push({ to, message }),
        onLeader: (b) => this.onBleLeader(b),
        promise: () => this.storage.getPromise(),
        persistRound: (n) => {
          if (n > this.storage.getBallotRound()) this.storage.setBallotRound(n);
        },
      },
      this.config.unsafeMutation === 'raiseOnLeaderSessionBreak' ||
        this.config.unsafeMutation === 'earlyRoundOnMajority' ||
        this.config.unsafeMutation === 'noStartGrace'
        ? this.config.unsafeMutation
        : 'none',
    );
    this.scanStop();
    this.ble.startRound();
    if (opts.claimLeadership === true) this.ble.claim();
    else if (opts.presumedLeader !== undefined) this.ble.presume(opts.presumedLeader);
  }

  // ---------------------------------------------------------------- read-only state

  /** The replica believed to lead (this one when it is leader), or `undefined` during an election. */
  get leader(): NodeId | undefined {
    if (this._role === 'leader') return this.pid;
    if (this._phase !== 'none') {
      const p = this.storage.getPromise().pid;
      if (p !== 0 && p !== this.pid) return p;
    }
    const b = this.ble.leader;
    return b !== undefined && b.pid !== this.pid ? b.pid : undefined;
  }
  /** The leader's ballot this replica follows or leads: its promise. */
  get ballot(): Ballot {
    return this.storage.getPromise();
  }
  /** This replica's own election ballot (its candidacy in BLE). */
  get electionBallot(): Ballot {
    return this.ble.ballot;
  }
  /** Whether this replica heard a majority in its last BLE round. */
  get quorumConnected(): boolean {
    return this.ble.quorumConnected;
  }
  /** Leader or follower. */
  get role(): Role {
    return this._role;
  }
  /** Protocol phase, see {@link Phase}. */
  get phase(): Phase {
    return this._phase;
  }
  /** Number of decided entries (entries `[0, decidedIndex)` are decided). */
  get decidedIndex(): number {
    return this.storage.getDecidedIndex();
  }
  /** Number of entries in the log, including the compacted prefix. */
  get logLength(): number {
    return this.storage.getLogLength();
  }
  /** Number of entries replaced by the snapshot. */
  get compactedIndex(): number {
    return this.storage.getCompactedIndex();
  }
  /** The accepted ballot (the leader whose log this replica last synchronised with). */
  get acceptedRound(): Ballot {
    return this.storage.getAcceptedRound();
  }
  /**
   * The stop-sign at the end of this replica's log that names a later configuration, if any: its
   * position, the stop-sign, and whether it is decided (then this configuration is stopped for good;
   * otherwise it is stopping, and a leader change may still drop it).
   */
  get stopSign(): { readonly index: number; readonly sign: StopSign; readonly decided: boolean } | undefined {
    const st = this.stop;
    if (!st) return undefined;
    return { index: st.index, sign: st.sign, decided: this.storage.getDecidedIndex() > st.index };
  }

  /**
   * The stop-sign this configuration is stopping with: the one at the end of the log (see
   * {@link stopSign}), or the one this leader proposed that is still buffered (not yet in its log).
   */
  get pendingStopSign(): StopSign | undefined {
    return this.stop?.sign ?? this.stopBuffered;
  }

  /** Recomputes {@link stop} from the log's last entry (after anything that changed the log). */
  private scanStop(): void {
    const st = this.storage;
    const len = st.getLogLength();
    this.stop = undefined;
    if (len === 0 || len <= st.getCompactedIndex()) return;
    const last = st.getEntries(len - 1, len)[0];
    if (isStopSign(last) && last.configId > this.configId) this.stop = { index: len - 1, sign: last };
  }

  /** The error for a proposal, read or reconfiguration made while this configuration stops. */
  private stoppedError(): StoppedError | undefined {
    const sign = this.stop?.sign ?? this.stopBuffered;
    if (!sign) return undefined;
    const decided = this.stop !== undefined && this.storage.getDecidedIndex() > this.stop.index;
    return new StoppedError(this.configId, sign.configId, sign.members, decided);
  }

  // ---------------------------------------------------------------- inputs

  /**
   * Handles a message from peer `from`. Messages from unknown peers, malformed messages, and messages
   * that are stale for the replica's state (older ballots, other rounds) are ignored. Never throws
   * for bad input.
   */
  handle(from: NodeId, message: PaxosMessage<LogEntry<T>>): void {
    if (isPaxosMessage(message)) this.handleChecked(from, message as Checked<PaxosMessage<LogEntry<T>>>);
  }

  /**
   * {@link SequencePaxos.handle} for a message that already passed validation (see {@link Checked}):
   * its shape and bounds are not checked again. Messages from unknown peers and stale messages are
   * still ignored.
   */
  handleChecked(from: NodeId, message: Checked<PaxosMessage<LogEntry<T>>>): void {
    if (!this.peerSet.has(from)) return;
    switch (message.type) {
      case 'Prepare':
      case 'AcceptSync':
      case 'Accept':
      case 'Decide':
      case 'ReadIndexRequest':
        if (this.rejectStale(from, message.n, message.type)) return;
        break;
      default:
        break;
    }
    switch (message.type) {
      case 'HeartbeatRequest':
        this.ble.handleRequest(from, message);
        return;
      case 'HeartbeatReply':
        this.ble.handleReply(from, message);
        return;
      case 'Prepare':
        this.handlePrepare(from, message);
        return;
      case 'AcceptSync':
        this.handleAcceptSync(from, message);
        return;
      case 'Accept':
        this.handleAccept(from, message);
        return;
      case 'Decide':
        this.handleDecide(from, message);
        return;
      case 'ReadIndexRequest':
        this.handleReadIndexRequest(from, message);
        return;
      case 'Forward':
        this.handleForward(from, message);
        return;
      case 'PrepareReq':
        if (this.leaderState) this.leaderHandlePrepareReq(from, message);
        return;
      case 'Promise':
        if (this.leaderState) this.leaderHandlePromise(from, message);
        return;
      case 'Accepted':
        if (this.leaderState) this.leaderHandleAccepted(from, message);
        return;
      case 'ReadIndexReply':
        if (this.leaderState) this.leaderHandleReadIndexReply(from, message);
        return;
      case 'Nack':
        if (this.leaderState) this.leaderHandleNack(message);
        return;
    }
  }

  /**
   * A leader message of a ballot below our promise: tell its sender (so a stale leader steps down
   * instead of waiting forever for a quorum it cannot get) and ignore it. Returns whether it was stale.
   */
  private rejectStale(from: NodeId, n: Ballot, type: PaxosMessage<T>['type']): boolean {
    const promise = this.storage.getPromise();
    if (n.pid !== from || compareBallots(n, promise) >= 0) return false;
    if (type === 'Accept' && this.config.unsafeMutation === 'acceptLowerBallot') return false;
    this.outbox.push({ to: from, message: { type: 'Nack', n, promise } });
    return true;
  }

  /** Advances time by one tick: runs the election, resends what got no answer, flushes batches. */
  tick(): void {
    this.now++;
    this.ble.tick();
    const ls = this.leaderState;
    if (ls) {
      this.leaderTick(ls);
    } else if (this._phase !== 'accept' && this.now - this.followerWaitSince >= this.config.resendTicks) {
      // A promise or AcceptSync was lost, or the leader forgot us: ask to be re-synchronised.
      const promise = this.storage.getPromise();
      if (promise.pid !== 0 && promise.pid !== this.pid) {
        this.outbox.push({ to: promise.pid, message: { type: 'PrepareReq', n: promise } });
      }
      this.followerWaitSince = this.now;
    }
  }

  /**
   * Proposes a command. At the leader it is appended (in batches of `maxBatchSize`, flushed at the
   * latest by the next `drainOutbox` or `tick`); at a follower that knows the leader it is forwarded
   * there. Over links that do not duplicate messages (TCP) a proposal is appended at most once per
   * call, but it may be lost if leadership changes before it is appended (a forward in flight, a
   * candidate that never wins): use client sessions or idempotent commands to retry safely.
   * @throws NoLeaderError if no leader is known: nothing was recorded; retry later.
   * @throws OverloadedError if the leader is still in its prepare phase and already buffers
   *   `maxPendingProposals` proposals.
   */
  propose(command: T): void {
    if (isStopSign(command)) {
      throw new InvalidArgumentError(
        'propose: a stop-sign is proposed with reconfigure(), never as a command',
      );
    }
    this.proposeEntry(command);
  }

  private proposeEntry(command: LogEntry<T>): void {
    if (this.config.unsafeMutation !== 'appendAfterStopSign') {
      const stopped = this.stoppedError();
      if (stopped) throw stopped;
    }
    if (this._role === 'leader') {
      if (this._phase === 'accept') {
        this.proposalBuf.push(command);
        if (this.proposalBuf.length >= this.config.maxBatchSize) this.flushProposals();
        return;
      }
      if (this.proposalBuf.length >= this.config.maxPendingProposals) {
        throw new OverloadedError(
          `the leader is electing itself and already buffers ${this.proposalBuf.length} proposals (config.maxPendingProposals): retry shortly`,
        );
      }
      this.proposalBuf.push(command);
      return;
    }
    const leader = this.leader;
    if (leader === undefined) throw new NoLeaderError();
    if (this.forwardTo !== leader) {
      this.flushForward();
      this.forwardTo = leader;
    }
    this.forwardBuf.push(command);
    if (this.forwardBuf.length >= this.config.maxBatchSize) this.flushForward();
  }

  /**
   * Starts a linearizable read barrier identified by `token` (the caller's choice). The leader
   * records the index every completed write is below, then confirms with one quorum round (shared by
   * every read pending at that moment) that it still leads; the result appears in
   * {@link drainReads}. If leadership is lost first, the token fails with `NotLeaderError`.
   * @throws NotLeaderError if this replica is not the leader; `leaderHint` says where to retry.
   */
  readIndex(token: number): void {
    if (this._role !== 'leader' || !this.leaderState) throw new NotLeaderError(this.leader);
    // Once a stop-sign is in the log, later writes go to the next configuration: a read here could miss them.
    const stopped = this.stoppedError();
    if (stopped) throw stopped;
    this.pendingReads.push({ token, index: this._phase === 'accept' ? this.readIndexNow() : -1 });
  }

  /**
   * Asks to lead: a gentle leadership transfer to this replica (see
   * `BallotLeaderElection.campaign`); it is elected at the end of the next heartbeat round when it is
   * quorum-connected. Returns false when it leads already, knows no leader, is not quorum-connected, or
   * this configuration is stopping.
   */
  campaign(): boolean {
    if (this._role === 'leader' || this.stopSign) return false;
    return this.ble.campaign();
  }

  /**
   * Proposes to end this configuration: a stop-sign naming configuration `configId` with replicas
   * `members` is appended after every proposal made before (at a follower it is forwarded to the
   * leader). Once it is decided, this configuration decides nothing more and configuration
   * `configId` starts from the decided log (see `ReconfigurablePaxos`). Until then every
   * `propose`, `readIndex` and `reconfigure` on this replica throws {@link StoppedError}. Like a
   * proposal, the stop-sign may be lost if the leader changes before a majority accepted it: check
   * {@link stopSign} (or the decided output) and retry.
   * @throws InvalidArgumentError if `configId` is not above this configuration's id, or `members`
   *   is not a non-empty list of distinct node ids.
   * @throws StoppedError if a stop-sign is already in the log or waiting to be appended.
   * @throws NoLeaderError if no leader is known.
   */
  reconfigure(configId: number, members: readonly NodeId[], metadata: Uint8Array | null = null): void {
    if (!Number.isSafeInteger(configId) || configId <= this.configId) {
      throw new InvalidArgumentError(
        `reconfigure: the next configuration id must be an integer above ${this.configId}, got ${configId}`,
      );
    }
    if (!isMemberList(members)) {
      throw new InvalidArgumentError(
        `reconfigure: members must be 1 to 64 distinct positive integers, got [${String(members)}]`,
      );
    }
    if (metadata !== null && !(metadata instanceof Uint8Array)) {
      throw new InvalidArgumentError('reconfigure: metadata must be a Uint8Array or null');
    }
    const stopped = this.stoppedError();
    if (stopped) throw stopped;
    const sign = makeStopSign(configId, members, metadata);
    this.proposeEntry(sign);
    if (this._role === 'leader') this.stopBuffered = sign;
  }

  /** Notes the tail of the log after `entries` were appended at its end. */
  private noteAppended(entries: readonly LogEntry<T>[]): void {
    if (entries.length === 0) return;
    const last = entries[entries.length - 1];
    this.stop =
      isStopSign(last) && last.configId > this.configId
        ? { index: this.storage.getLogLength() - 1, sign: last }
        : undefined;
  }

  /**
   * Records that the application took `snapshot` of its state after applying the first `index`
   * entries, and trims the log below `index`. A replica that later needs trimmed entries receives
   * the snapshot instead (as a `snapshot` {@link DecidedItem}). A call with `index <= compactedIndex`
   * does nothing.
   * @throws InvalidArgumentError if `index` is not an integer, or is beyond the entries already
   *   drained through {@link drainDecided} (the application cannot have applied them).
   */
  compact(index: number, snapshot: Uint8Array): void {
    if (!Number.isSafeInteger(index) || index < 0) {
      throw new InvalidArgumentError(`compact: index must be a non-negative integer, got ${index}`);
    }
    if (!(snapshot instanceof Uint8Array))
      throw new InvalidArgumentError('compact: snapshot must be a Uint8Array');
    if (index > this.drainedIndex) {
      throw new InvalidArgumentError(
        `compact(${index}): only ${this.drainedIndex} decided entries were drained; snapshot at most that far`,
      );
    }
    if (index <= this.storage.getCompactedIndex()) return;
    // The stop-sign stays in the log: a restarted replica must still know its configuration stopped.
    if (this.stop && index > this.stop.index) {
      throw new InvalidArgumentError(
        `compact(${index}): the stop-sign at ${this.stop.index} must stay in the log; snapshot at most that far`,
      );
    }
    this.storage.setSnapshot({ index, data: snapshot });
  }

  /**
   * Tells the replica that the session to `peer` came back after a break (messages may have been
   * lost). A follower asks its leader to re-synchronise it; a leader re-prepares the peer.
   */
  reconnected(peer: NodeId): void {
    if (!this.peerSet.has(peer)) return;
    this.ble.peerConnected(peer);
    const ls = this.leaderState;
    if (ls) {
      this.sendPrepare(ls, peer);
      return;
    }
    const promise = this.storage.getPromise();
    if (promise.pid === peer) {
      this.outbox.push({ to: peer, message: { type: 'PrepareReq', n: promise } });
      this.followerWaitSince = this.now;
    }
  }

  /**
   * Tells the replica that the session to `peer` broke (the peer closed it, crashed, or the link's
   * liveness check declared it dead). Optional: without it the election notices a dead leader by
   * missed heartbeat rounds. With it, a follower whose leader's session broke starts an election round
   * at once and, unless a peer still hears the leader, elects a new leader within about two round
   * trips instead of one election timeout. Idempotent until {@link reconnected} or the peer is heard.
   */
  disconnected(peer: NodeId): void {
    if (!this.peerSet.has(peer)) return;
    this.ble.peerDisconnected(peer);
    // Do not wait for an answer that will not come: ask the other peers now, and not this one first.
    if (this.readPeers.includes(peer)) this.readPeers = [];
    const ls = this.leaderState;
    if (ls && this.readRound?.asked?.has(peer) && !this.readRound.acks.has(peer)) this.widenReadRound(ls);
  }

  // ---------------------------------------------------------------- outputs

  /** Returns and clears the messages to send, after flushing batched proposals, decides and reads. */
  drainOutbox(): OutgoingMessage<T>[] {
    this.flushProposals();
    this.flushForward();
    const ls = this.leaderState;
    if (ls && this._phase === 'accept') {
      this.flushDecides(ls);
      this.startReadRound(ls);
    }
    const out = this.outbox;
    this.outbox = [];
    return out;
  }

  /**
   * Returns the newly decided items in log order. After a restart (or a snapshot install) the first
   * item is a `snapshot` item; every other item is the next entry.
   */
  drainDecided(): DecidedItem<T>[] {
    const decided = this.storage.getDecidedIndex();
    const out: DecidedItem<T>[] = [];
    if (this.drainedIndex >= decided) return out;
    const compacted = this.storage.getCompactedIndex();
    if (this.drainedIndex < compacted) {
      const snap = this.storage.getSnapshot();
      if (snap) out.push({ kind: 'snapshot', index: snap.index, data: snap.data });
      this.drainedIndex = compacted;
    }
    const from = this.drainedIndex;
    if (decided > from) {
      const entries = this.storage.getEntries(from, decided);
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i] as LogEntry<T>;
        if (isStopSign(e)) out.push({ kind: 'stopsign', index: from + i, stopSign: e });
        else out.push({ kind: 'entry', index: from + i, entry: e });
      }
    }
    this.drainedIndex = decided;
    return out;
  }

  /** Returns and clears completed (or failed) read-index requests. */
  drainReads(): ReadResult[] {
    const out = this.readResults;
    this.readResults = [];
    return out;
  }

  // ---------------------------------------------------------------- election

  private onBleLeader(b: Ballot): void {
    if (b.pid === this.pid) {
      if (compareBallots(b, this.storage.getPromise()) > 0) {
        // Re-elected with a higher ballot while leading: reads of the old ballot fail; proposals carry over.
        if (this.leaderState) this.failReads(new NotLeaderError(this.pid));
        this.becomeLeader(b);
      }
      return;
    }
    const ls = this.leaderState;
    if (ls && compareBallots(b, ls.n) > 0) this.stepDown(b.pid, 'none');
  }

  private becomeLeader(n: Ballot): void {
    this.storage.setPromise(n);
    this.readPeers = [];
    // Proposals waiting to be forwarded are ours to append now.
    if (this.forwardBuf.length > 0) {
      for (const c of this.forwardBuf) this.proposalBuf.push(c);
      this.forwardBuf = [];
      const sign = this.proposalBuf.find(isStopSign);
      if (sign) this.stopBuffered = sign;
    }
    const ls: LeaderState<T> = {
      n,
      promises: new Map(),
      prepareSent: new Map(),
      progress: new Map(),
      adoptedRound: BALLOT_ZERO,
      adoptedLength: 0,
    };
    this.leaderState = ls;
    this._role = 'leader';
    this._phase = 'prepare';
    for (const p of this.peers) this.sendPrepare(ls, p);
    if (this.majority === 1) this.leaderCompletePrepare(ls);
  }

  /** Leaves the leader role (a higher ballot exists); pending reads fail, buffered proposals move on. */
  private stepDown(newLeader: NodeId | undefined, phase: Phase): void {
    this.leaderState = undefined;
    this._role = 'follower';
    this._phase = phase;
    this.stopBuffered = undefined;
    this.followerWaitSince = this.now;
    this.failReads(new NotLeaderError(newLeader));
    if (this.proposalBuf.length > 0) {
      if (newLeader !== undefined && newLeader !== this.pid) {
        this.forwardTo = newLeader;
        for (const c of this.proposalBuf) this.forwardBuf.push(c);
      }
      this.proposalBuf = [];
    }
  }

  private failReads(err: NotLeaderError): void {
    const failed = [...(this.readRound?.reads ?? []), ...this.pendingReads];
    for (const r of failed) this.readResults.push({ token: r.token, error: err });
    this.readRound = undefined;
    this.pendingReads = [];
  }

  // ---------------------------------------------------------------- follower handlers

  private handlePrepare(from: NodeId, msg: Prepare): void {
    const promise = this.storage.getPromise();
    if (msg.n.pid !== from || compareBallots(msg.n, promise) < 0) return;
    if (this.leaderState) {
      if (compareBallots(msg.n, this.leaderState.n) === 0) return;
      this.stepDown(from, 'prepare');
    }
    if (compareBallots(msg.n, promise) > 0) this.storage.setPromise(msg.n);
    if (this.followPromised && this.config.unsafeMutation !== 'noStartGrace') this.ble.presume(msg.n);
    this._role = 'follower';
    this._phase = 'prepare';
    this.followerWaitSince = this.now;
    const accepted = this.storage.getAcceptedRound();
    const len = this.storage.getLogLength();
    const cmp = compareBallots(accepted, msg.acceptedRound);
    let start = len;
    if (cmp > 0) start = Math.min(msg.decidedIndex, len);
    else if (cmp === 0 && len > msg.logLength) start = msg.logLength;
    let snapshot: Snapshot | null = null;
    const compacted = this.storage.getCompactedIndex();
    if (start < compacted) {
      snapshot = this.storage.getSnapshot() ?? null;
      start = compacted;
    }
    const reply: PromiseMessage<LogEntry<T>> = {
      type: 'Promise',
      n: msg.n,
      acceptedRound: accepted,
      logLength: len,
      decidedIndex: this.storage.getDecidedIndex(),
      suffixStart: start,
      suffix: start < len ? this.storage.getEntries(start, len) : [],
      snapshot,
    };
    this.outbox.push({ to: from, message: reply });
  }

  private handleAcceptSync(from: NodeId, msg: AcceptSync<LogEntry<T>>): void {
    if (this.leaderState) return;
    const promise = this.storage.getPromise();
    if (compareBallots(msg.n, promise) !== 0 || msg.n.pid !== from || this._phase === 'none') return;
    let decided = this.storage.getDecidedIndex();
    const snap = msg.snapshot;
    if (snap !== null && snap.index !== msg.syncIndex) return; // malformed
    if (snap !== null && snap.index > decided) {
      this.storage.setSnapshot(snap);
      this.scanStop();
      decided = this.storage.getDecidedIndex();
    }
    const len = this.storage.getLogLength();
    const sameRound = compareBallots(this.storage.getAcceptedRound(), msg.n) === 0;
    // Never truncate decided entries: they equal the leader's anyway.
    const at = sameRound ? len : Math.max(msg.syncIndex, decided);
    if (msg.syncIndex > len || at > len) {
      // We lack entries before the sync point (a message was lost): ask for a fresh sync.
      this.outbox.push({ to: from, message: { type: 'PrepareReq', n: promise } });
      this.followerWaitSince = this.now;
      return;
    }
    if (sameRound) {
      // Our log already is a prefix of this leader's log (a re-sync, or a duplicate AcceptSync): never
      // shrink it, since `Accepted` messages we sent for this ballot must stay true. Append what is new.
      const skip = len - msg.syncIndex;
      if (skip < msg.entries.length) {
        this.storage.appendEntries(skip === 0 ? msg.entries : msg.entries.slice(skip));
      }
    } else {
      this.storage.setAcceptedRound(msg.n);
      const skip = at - msg.syncIndex;
      this.storage.appendOnPrefix(at, skip === 0 ? msg.entries : msg.entries.slice(skip));
    }
    this.scanStop();
    this._phase = 'accept';
    this.followerDecide(msg.decidedIndex);
    this.outbox.push({
      to: from,
      message: { type: 'Accepted', n: msg.n, logLength: this.storage.getLogLength() },
    });
  }

  private handleAccept(from: NodeId, msg: Accept<LogEntry<T>>): void {
    if (this.leaderState) return;
    const promise = this.storage.getPromise();
    if (this.config.unsafeMutation === 'acceptLowerBallot') {
      // TESTING ONLY: accept from any ballot at least as high as the accepted one, ignoring the promise.
      if (compareBallots(msg.n, this.storage.getAcceptedRound()) < 0 || msg.n.pid !== from) return;
    } else if (compareBallots(msg.n, promise) !== 0 || this._phase !== 'accept' || msg.n.pid !== from) {
      return;
    }
    const len = this.storage.getLogLength();
    if (msg.start > len) {
      this.outbox.push({ to: from, message: { type: 'PrepareReq', n: promise } });
      return;
    }
    const skip = len - msg.start;
    if (skip < msg.entries.length) {
      const added = skip === 0 ? msg.entries : msg.entries.slice(skip);
      this.storage.appendEntries(added);
      this.noteAppended(added);
    }
    this.followerDecide(msg.decidedIndex);
    this.outbox.push({
      to: from,
      message: { type: 'Accepted', n: msg.n, logLength: this.storage.getLogLength() },
    });
  }

  private handleDecide(from: NodeId, msg: Decide): void {
    if (this.leaderState || this._phase !== 'accept' || msg.n.pid !== from) return;
    if (compareBallots(msg.n, this.storage.getPromise()) !== 0) return;
    this.followerDecide(msg.decidedIndex);
  }

  /** Raises the decided index to `leaderDecided`, bounded by the log (a prefix of the leader's). */
  private followerDecide(leaderDecided: number): void {
    const d = Math.min(leaderDecided, this.storage.getLogLength());
    if (d > this.storage.getDecidedIndex()) this.storage.setDecidedIndex(d);
  }

  private handleReadIndexRequest(from: NodeId, msg: ReadIndexRequest): void {
    if (msg.n.pid !== from || compareBallots(msg.n, this.storage.getPromise()) !== 0) return;
    this.outbox.push({ to: from, message: { type: 'ReadIndexReply', n: msg.n, round: msg.round } });
  }

  private handleForward(from: NodeId, msg: Forward<LogEntry<T>>): void {
    if (this._role !== 'leader') {
      // Re-forward only while following a leader in the accept phase: promises grow along such a chain,
      // so forwards can never cycle. Otherwise drop: the sender's client retries.
      const leader = this.leader;
      if (this._phase !== 'accept' || leader === undefined || leader === from) return;
    }
    for (const c of msg.entries) {
      try {
        if (isStopSign(c)) this.reconfigure(c.configId, c.members, c.metadata);
        else this.proposeEntry(c);
      } catch {
        return; // no leader, overloaded or stopping: the sender's client will retry
      }
    }
  }

  // ---------------------------------------------------------------- leader handlers

  private sendPrepare(ls: LeaderState<T>, peer: NodeId): void {
    ls.progress.delete(peer);
    ls.promises.delete(peer);
    ls.prepareSent.set(peer, this.now);
    const message: Prepare = {
      type: 'Prepare',
      n: ls.n,
      decidedIndex: this.storage.getDecidedIndex(),
      acceptedRound: this.storage.getAcceptedRound(),
      logLength: this.storage.getLogLength(),
    };
    this.outbox.push({ to: peer, message });
  }

  private leaderHandlePrepareReq(from: NodeId, msg: PrepareReq): void {
    const ls = this.leaderState!;
    if (compareBallots(msg.n, ls.n) > 0) return;
    // A Prepare is already on its way (e.g. both sides saw the same reconnect): don't send another.
    const sentAt = ls.prepareSent.get(from);
    if (sentAt !== undefined && this.now - sentAt < this.config.resendTicks) return;
    this.sendPrepare(ls, from);
  }

  private leaderHandlePromise(from: NodeId, msg: PromiseMessage<LogEntry<T>>): void {
    const ls = this.leaderState!;
    if (compareBallots(msg.n, ls.n) !== 0) return;
    const info: PromiseInfo<T> = {
      acceptedRound: msg.acceptedRound,
      logLength: msg.logLength,
      decidedIndex: msg.decidedIndex,
      suffixStart: msg.suffixStart,
      suffix: msg.suffix,
      snapshot: msg.snapshot,
    };
    ls.prepareSent.delete(from);
    if (this._phase === 'prepare') {
      ls.promises.set(from, info);
      if (ls.promises.size + 1 >= this.majority) this.leaderCompletePrepare(ls);
    } else {
      // A promise after we reached the accept phase: this follower gets its own AcceptSync.
      this.syncFollower(ls, from, info);
    }
  }

  /** With a majority of promises: adopt the most up-to-date log, then synchronise every promiser. */
  private leaderCompletePrepare(ls: LeaderState<T>): void {
    const st = this.storage;
    let best: PromiseInfo<T> | undefined;
    let bestRound = st.getAcceptedRound();
    let bestLen = st.getLogLength();
    let maxDecided = st.getDecidedIndex();
    for (const info of ls.promises.values()) {
      const c = compareBallots(info.acceptedRound, bestRound);
      if (c > 0 || (c === 0 && info.logLength > bestLen)) {
        best = info;
        bestRound = info.acceptedRound;
        bestLen = info.logLength;
      }
      if (info.decidedIndex > maxDecided) maxDecided = info.decidedIndex;
    }
    if (best) {
      let decided = st.getDecidedIndex();
      if (best.snapshot !== null && best.snapshot.index > decided) {
        st.setSnapshot(best.snapshot);
        decided = st.getDecidedIndex();
      }
      const at = Math.max(best.suffixStart, decided);
      st.setAcceptedRound(ls.n);
      if (at <= st.getLogLength()) {
        const skip = at - best.suffixStart;
        st.appendOnPrefix(at, skip === 0 ? best.suffix : best.suffix.slice(skip));
      }
    } else {
      st.setAcceptedRound(ls.n);
    }
    this.scanStop();
    ls.adoptedRound = bestRound;
    ls.adoptedLength = st.getLogLength();
    const d = Math.min(maxDecided, ls.adoptedLength);
    if (d > st.getDecidedIndex()) st.setDecidedIndex(d);
    this._phase = 'accept';
    // Alone, the leader's own acceptance of the adopted log is a majority: decide it now (no Accepted
    // will come). Without this, a single-replica configuration whose decided index was not durable
    // (a crash) would keep its tail undecided until a new proposal, and a stopped one, which takes
    // no proposal, forever.
    if (this.majority === 1) this.leaderUpdateDecided(ls);
    for (const [p, info] of ls.promises) this.syncFollower(ls, p, info);
    for (const r of this.pendingReads) if (r.index < 0) r.index = this.readIndexNow();
    this.flushProposals();
  }

  /** Sends `peer` an AcceptSync with exactly what it misses from the leader's log. */
  private syncFollower(ls: LeaderState<T>, peer: NodeId, info: PromiseInfo<T>): void {
    const st = this.storage;
    const len = st.getLogLength();
    let from: number;
    if (compareBallots(info.acceptedRound, ls.n) === 0) from = info.logLength;
    else if (compareBallots(info.acceptedRound, ls.adoptedRound) === 0)
      from = Math.min(info.logLength, ls.adoptedLength);
    else from = info.decidedIndex;
    from = Math.min(from, len);
    let snapshot: Snapshot | null = null;
    const compacted = st.getCompactedIndex();
    if (from < compacted) {
      snapshot = st.getSnapshot() ?? null;
      from = compacted;
    }
    // The AcceptSync must carry at least the whole adopted log: a replica whose accepted ballot is `n`
    // must hold every entry decided before `n`, or a later leader that adopts its log would lose some.
    // What the leader appended after adoption may follow in Accept batches.
    let to = Math.min(len, Math.max(from + this.config.maxBatchSize, ls.adoptedLength));
    let entries = from < to ? st.getEntries(from, to) : [];
    if (entries.length > 1) {
      const end = this.batchEnd(entries, 0, Math.max(1, Math.min(ls.adoptedLength, to) - from));
      if (end < entries.length) {
        entries = entries.slice(0, end);
        to = from + end;
      }
    }
    const decided = st.getDecidedIndex();
    const message: AcceptSync<LogEntry<T>> = {
      type: 'AcceptSync',
      n: ls.n,
      syncIndex: from,
      entries,
      snapshot,
      decidedIndex: decided,
    };
    this.outbox.push({ to: peer, message });
    ls.promises.set(peer, info);
    ls.progress.set(peer, {
      acked: 0,
      sent: to,
      base: from,
      decidedSent: decided,
      lastProgress: this.now,
      lastDecide: this.now,
    });
    this.sendAccepts(ls, peer);
  }

  private leaderHandleAccepted(from: NodeId, msg: Accepted): void {
    const ls = this.leaderState!;
    if (compareBallots(msg.n, ls.n) !== 0) return;
    const pr = ls.progress.get(from);
    if (!pr) return;
    const len = Math.min(msg.logLength, this.storage.getLogLength());
    if (len > pr.acked) {
      pr.acked = len;
      pr.lastProgress = this.now;
      if (pr.sent < len) pr.sent = len;
      this.leaderUpdateDecided(ls);
    }
    this.sendAccepts(ls, from);
  }

  private leaderHandleReadIndexReply(from: NodeId, msg: ReadIndexReply): void {
    const ls = this.leaderState!;
    const rr = this.readRound;
    if (!rr || rr.id !== msg.round || compareBallots(msg.n, ls.n) !== 0) return;
    rr.acks.add(from);
    if (this.config.unsafeMutation === 'readQuorumOfAsked' && rr.asked) {
      if (rr.acks.size >= rr.asked.size) this.completeReadRound();
      return;
    }
    if (rr.acks.size + 1 >= this.majority) this.completeReadRound();
  }

  private leaderHandleNack(msg: Nack): void {
    const ls = this.leaderState!;
    if (compareBallots(msg.n, ls.n) !== 0 || compareBallots(msg.promise, ls.n) <= 0) return;
    // A replica promised a higher ballot: ours can never gather a quorum again. Adopt the higher
    // promise (promising is always safe) and step down; BLE then sees our elected ballot is below our
    // promise and raises it, so this replica can lead again if it is still the best candidate.
    this.storage.setPromise(msg.promise);
    this.stepDown(msg.promise.pid === this.pid ? undefined : msg.promise.pid, 'none');
  }

  private leaderTick(ls: LeaderState<T>): void {
    const resend = this.config.resendTicks;
    for (const [p, at] of ls.prepareSent) {
      if (this.now - at >= resend) this.sendPrepare(ls, p);
    }
    if (this._phase !== 'accept') return;
    const len = this.storage.getLogLength();
    const decided = this.storage.getDecidedIndex();
    for (const [p, pr] of ls.progress) {
      if (pr.acked < len && this.now - pr.lastProgress >= resend) {
        pr.sent = Math.max(pr.acked, pr.base);
        pr.lastProgress = this.now;
        if (pr.sent >= len) {
          // Everything was sent but its acknowledgement was lost (an AcceptSync's Accepted, say): ask
          // again with an empty Accept. Without it a log that stops growing (a stop-sign at its end)
          // would never be decided.
          const message: Accept<LogEntry<T>> = {
            type: 'Accept',
            n: ls.n,
            start: len,
            entries: [],
            decidedIndex: decided,
          };
          this.outbox.push({ to: p, message });
        } else {
          this.sendAccepts(ls, p);
        }
      }
      if (this.now - pr.lastDecide >= resend) {
        this.outbox.push({ to: p, message: { type: 'Decide', n: ls.n, decidedIndex: decided } });
        pr.decidedSent = decided;
        pr.lastDecide = this.now;
      }
    }
    const rr = this.readRound;
    if (rr?.asked && this.now - rr.sentAt >= this.config.readFallbackTicks) this.widenReadRound(ls);
    if (rr && this.now - rr.sentAt >= resend) {
      rr.sentAt = this.now;
      for (const p of this.peers) {
        if (!rr.acks.has(p)) {
          this.outbox.push({ to: p, message: { type: 'ReadIndexRequest', n: ls.n, round: rr.id } });
        }
      }
    }
    this.flushProposals();
  }

  /**
   * End (exclusive) of the batch of `entries` that starts at `from` and fits `maxBatchBytes` by
   * `entryBytes`: it takes at least the entries before `minEnd` (and at least one), then as many more
   * as fit. `entries.length` when no sizer is set.
   */
  private batchEnd(entries: readonly LogEntry<T>[], from: number, minEnd = from + 1): number {
    const size = this.entryBytes;
    if (size === undefined) return entries.length;
    const max = this.config.maxBatchBytes;
    let bytes = 0;
    let i = from;
    while (i < entries.length) {
      const raw = size(entries[i] as LogEntry<T>);
      // NaN or a negative size would never reach the budget: count it as over it.
      const b = raw >= 0 && raw < Number.POSITIVE_INFINITY ? raw : Number.POSITIVE_INFINITY;
      if (i >= minEnd && bytes + b > max) break;
      bytes += b;
      i++;
    }
    return i;
  }

  /**
   * Streams the entries `peer` lacks, within its pipelining window, in batches of `maxBatchSize`
   * entries and (with `entryBytes`) `maxBatchBytes` bytes.
   */
  private sendAccepts(ls: LeaderState<T>, peer: NodeId): void {
    const pr = ls.progress.get(peer);
    if (!pr) return;
    const st = this.storage;
    const len = st.getLogLength();
    if (pr.sent >= len) return;
    if (pr.sent < st.getCompactedIndex()) {
      // The entries it needs are compacted: re-synchronise it with the snapshot.
      this.sendPrepare(ls, peer);
      return;
    }
    const limit = Math.min(len, Math.max(pr.acked, pr.base) + this.config.maxInflight);
    const decided = st.getDecidedIndex();
    while (pr.sent < limit) {
      const to = Math.min(limit, pr.sent + this.config.maxBatchSize);
      const batch = st.getEntries(pr.sent, to);
      let from = 0;
      do {
        const end = batch.length > 1 ? this.batchEnd(batch, from) : batch.length;
        const message: Accept<LogEntry<T>> = {
          type: 'Accept',
          n: ls.n,
          start: pr.sent + from,
          entries: from === 0 && end === batch.length ? batch : batch.slice(from, end),
          decidedIndex: decided,
        };
        this.outbox.push({ to: peer, message });
        from = end;
      } while (from < batch.length);
      pr.sent = to;
      pr.decidedSent = decided;
      pr.lastDecide = this.now;
    }
  }

  /** Appends buffered proposals (leader in the accept phase) and streams them. */
  private flushProposals(): void {
    const ls = this.leaderState;
    if (!ls || this._phase !== 'accept' || this.proposalBuf.length === 0) return;
    let batch = this.proposalBuf;
    this.proposalBuf = [];
    this.stopBuffered = undefined;
    if (this.config.unsafeMutation !== 'appendAfterStopSign') {
      // Nothing is ever appended after a stop-sign: proposals that raced with it are dropped (their
      // clients retry on the next configuration).
      if (this.stop) return;
      const at = batch.findIndex(isStopSign);
      if (at >= 0 && at < batch.length - 1) batch = batch.slice(0, at + 1);
    }
    this.storage.appendEntries(batch);
    this.noteAppended(batch);
    for (const p of ls.progress.keys()) this.sendAccepts(ls, p);
    this.leaderUpdateDecided(ls);
  }

  private flushForward(): void {
    if (this.forwardBuf.length === 0 || this.forwardTo === undefined) return;
    const message: Forward<LogEntry<T>> = { type: 'Forward', entries: this.forwardBuf };
    this.outbox.push({ to: this.forwardTo, message });
    this.forwardBuf = [];
  }

  /** Decides the longest prefix a majority (the leader included) accepted in this ballot. */
  private leaderUpdateDecided(ls: LeaderState<T>): void {
    const st = this.storage;
    const len = st.getLogLength();
    let d: number;
    if (this.config.unsafeMutation === 'decideWithoutQuorum') {
      d = len; // TESTING ONLY: decide without a majority
    } else if (this.majority === 1) {
      d = len;
    } else {
      // The majority-th largest log length acknowledged in this ballot (the leader's own included).
      const acks = this.ackScratch;
      let n = 0;
      acks[n++] = len;
      for (const pr of ls.progress.values()) acks[n++] = pr.acked;
      if (n < this.majority) return;
      d = kthLargestInPlace(acks, n, this.majority);
    }
    if (d > st.getDecidedIndex()) st.setDecidedIndex(d);
  }

  private flushDecides(ls: LeaderState<T>): void {
    const decided = this.storage.getDecidedIndex();
    for (const [p, pr] of ls.progress) {
      if (pr.decidedSent < decided) {
        this.outbox.push({ to: p, message: { type: 'Decide', n: ls.n, decidedIndex: decided } });
        pr.decidedSent = decided;
        pr.lastDecide = this.now;
      }
    }
  }

  // ---------------------------------------------------------------- read index

  /** Every write completed before now is below this index: decided by us, or adopted from earlier ballots. */
  private readIndexNow(): number {
    return Math.max(this.storage.getDecidedIndex(), this.leaderState?.adoptedLength ?? 0);
  }

  private startReadRound(ls: LeaderState<T>): void {
    if (this.readRound || this.pendingReads.length === 0) return;
    const rr: ReadRound = {
      id: ++this.readRoundSeq,
      reads: this.pendingReads,
      acks: new Set(),
      sentAt: this.now,
      asked: undefined,
    };
    this.pendingReads = [];
    this.readRound = rr;
    if (this.majority === 1) {
      this.completeReadRound();
      return;
    }
    // Ask only a quorum's worth of peers first (the ones that answered the last round first): a
    // round needs answers from `majority - 1` peers, whichever they are, so asking fewer changes
    // nothing but the messages sent; the others are asked if those do not answer in time.
    const need = this.config.unsafeMutation === 'readQuorumOfAsked' ? this.majority - 2 : this.majority - 1;
    const first = this.readPeers;
    if (this.config.readFallbackTicks > 0 && first.length === need && need < this.peers.length) {
      rr.asked = new Set(first);
      for (const p of first) {
        this.outbox.push({ to: p, message: { type: 'ReadIndexRequest', n: ls.n, round: rr.id } });
      }
      if (need === 0 && this.config.unsafeMutation === 'readQuorumOfAsked') this.completeReadRound();
      return;
    }
    for (const p of this.peers) {
      this.outbox.push({ to: p, message: { type: 'ReadIndexRequest', n: ls.n, round: rr.id } });
    }
  }

  /** Asks every peer not asked yet by the read round in progress (its first peers were too slow). */
  private widenReadRound(ls: LeaderState<T>): void {
    const rr = this.readRound;
    if (!rr?.asked) return;
    for (const p of this.peers) {
      if (!rr.asked.has(p)) {
        this.outbox.push({ to: p, message: { type: 'ReadIndexRequest', n: ls.n, round: rr.id } });
      }
    }
    rr.asked = undefined;
  }

  private completeReadRound(): void {
    const rr = this.readRound;
    if (!rr) return;
    for (const r of rr.reads) this.readResults.push({ token: r.token, index: r.index });
    this.readRound = undefined;
    const need = this.config.unsafeMutation === 'readQuorumOfAsked' ? this.majority - 2 : this.majority - 1;
    if (rr.acks.size === need) this.readPeers = [...rr.acks];
    else if (this.config.unsafeMutation === 'readQuorumOfAsked' && need === 0) this.readPeers = [];
  }
}
