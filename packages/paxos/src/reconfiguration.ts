/**
 * Reconfiguration with stop-signs (Sequence Paxos / OmniPaxos): one replica's sequence of
 * configurations, each a {@link SequencePaxos} instance, joined by decided stop-signs.
 * @module
 */
import { isNodeId, type NodeId } from './ballot.js';
import { type PaxosConfig, resolveConfig } from './config.js';
import { InvalidArgumentError, NoLeaderError, PaxosConfigError, StoppedError } from './errors.js';
import {
  type Checked,
  isPaxosMessage,
  MAX_LOG_INDEX,
  type PaxosMessage,
  type PaxosMessageValidation,
  validatePaxosMessage,
} from './messages.js';
import {
  type DecidedItem,
  type OutgoingMessage,
  type Phase,
  type ReadResult,
  type Role,
  SequencePaxos,
} from './sequence-paxos.js';
import { isMemberList, type LogEntry } from './stop-sign.js';
import type { Snapshot, Storage } from './storage.js';

/** What a replica records (durably, with the storage) about a configuration it belongs to. */
export interface ConfigRecord {
  /** Configuration id: `0` (or any start value) for the first, then +1 per stop-sign. */
  readonly configId: number;
  /** Its replicas. */
  readonly members: readonly NodeId[];
  /**
   * Log position the configuration starts at: one past the stop-sign that created it (`0` for the
   * first configuration). Every replica of the configuration holds the decided log up to `base`.
   */
  readonly base: number;
}

/** A configuration held by a replica: its record and its storage (recovered at restart). */
export interface HeldConfig<T> {
  readonly record: ConfigRecord;
  readonly storage: Storage<LogEntry<T>>;
}

/** A message of one configuration's Sequence Paxos instance. */
export interface ConfigPaxosMessage<T> {
  readonly type: 'Paxos';
  readonly config: number;
  readonly msg: PaxosMessage<LogEntry<T>>;
}

/** "Send me the decided log that configuration `config` starts from" (a replica joining it). */
export interface JoinRequest {
  readonly type: 'JoinRequest';
  readonly config: number;
}

/**
 * The answer to {@link JoinRequest}: a decided prefix of the log (snapshot + suffix) covering at least
 * `base`, from which the receiver, a member of `config`, starts its instance.
 */
export interface JoinState<T> {
  readonly type: 'JoinState';
  readonly config: number;
  readonly members: readonly NodeId[];
  readonly base: number;
  /** Covers `[0, start)` when not null. */
  readonly snapshot: Snapshot | null;
  /** Index of `entries[0]`: `snapshot.index`, or `0` without a snapshot. */
  readonly start: number;
  /** Decided entries `[start, decidedIndex)`. */
  readonly entries: readonly LogEntry<T>[];
  readonly decidedIndex: number;
}

/**
 * "Configuration `config` (replicas `members`) exists": sent by a replica whose configuration was
 * stopped to the next configuration's replicas (so they join), and in answer to a message of a
 * configuration the sender left. `reply` marks an answer, which is never answered.
 */
export interface ConfigNotice {
  readonly type: 'ConfigNotice';
  readonly config: number;
  readonly members: readonly NodeId[];
  readonly reply: boolean;
  /** Whether the sender runs `config`. */
  readonly running: boolean;
  /** Whether the sender can send the state `config` starts from (it runs it, or decided the stop-sign naming it). */
  readonly source: boolean;
}

/** Every message between replicas of a reconfigurable group. */
export type ReconfigMessage<T> = ConfigPaxosMessage<T> | JoinRequest | JoinState<T> | ConfigNotice;

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x <= MAX_LOG_INDEX;
}

/** Outcome of {@link validateReconfigMessage}: the inner Paxos message's verdict, or the envelope's. */
export type ReconfigMessageValidation =
  | { readonly ok: true; readonly message: Checked<ReconfigMessage<unknown>> }
  | Extract<PaxosMessageValidation, { ok: false }>;

/**
 * Validates a message that arrived from replica `from`: the envelope's shape and bounds (every
 * configuration id, index and length at most `MAX_LOG_INDEX`, member lists of distinct ids, a
 * `JoinState` whose entries match its indexes), and the wrapped Paxos message as
 * {@link validatePaxosMessage} does. Never throws; a refused message must be dropped.
 */
export function validateReconfigMessage(from: number, x: unknown): ReconfigMessageValidation {
  if (!isEnvelope(x))
    return { ok: false, problem: 'malformed', detail: 'not a well-formed reconfiguration message' };
  if (x.type === 'Paxos') {
    const v = validatePaxosMessage(from, x.msg);
    if (!v.ok) return v;
  }
  return { ok: true, message: x as Checked<ReconfigMessage<unknown>> };
}

/**
 * Cheap check of an incoming {@link ReconfigMessage} (as {@link validateReconfigMessage} without the
 * sender check; entries are only checked to be an array: the host checks its commands). Never throws.
 */
export function isReconfigMessage(x: unknown): x is ReconfigMessage<unknown> {
  return isEnvelope(x) && (x.type !== 'Paxos' || isPaxosMessage(x.msg));
}

function isEnvelope(x: unknown): x is ReconfigMessage<unknown> {
  if (typeof x !== 'object' || x === null) return false;
  // biome-ignore lint/suspicious/noExplicitAny: structural probing of unknown input
  const m = x as Record<string, any>;
  if (!isCount(m.config)) return false;
  switch (m.type) {
    case 'Paxos':
      return typeof m.msg === 'object' && m.msg !== null;
    case 'JoinRequest':
      return true;
    case 'JoinState': {
      if (!isMemberList(m.members) || !isCount(m.base) || !isCount(m.start) || !isCount(m.decidedIndex))
        return false;
      if (!Array.isArray(m.entries) || m.entries.length !== m.decidedIndex - m.start) return false;
      if (m.decidedIndex < m.base) return false;
      const s = m.snapshot;
      if (s === null) return m.start === 0;
      return typeof s === 'object' && isCount(s.index) && s.data instanceof Uint8Array && s.index === m.start;
    }
    case 'ConfigNotice':
      return (
        isMemberList(m.members) &&
        typeof m.reply === 'boolean' &&
        typeof m.running === 'boolean' &&
        typeof m.source === 'boolean'
      );
    default:
      return false;
  }
}

/** A message to send, drained from {@link ReconfigurablePaxos.drainOutbox}. */
export interface OutgoingReconfigMessage<T> {
  readonly to: NodeId;
  readonly message: ReconfigMessage<T>;
}

/** Constructor options of {@link ReconfigurablePaxos}. */
export interface ReconfigurablePaxosOptions<T> {
  /** This replica's id. */
  readonly pid: NodeId;
  /**
   * The configurations this replica holds (recovered from its disk at restart; at first start the
   * initial configuration for its members, nothing for a replica that will join later). A record
   * whose storage does not reach its `base` (an interrupted join) is ignored: the replica joins again.
   */
  readonly configs: readonly HeldConfig<T>[];
  /**
   * The replica never joins a configuration below this id (default `0`); held ones are loaded anyway. A replica that held a
   * configuration, even one it retired, must never join it again: its promises and accepted entries
   * there are gone, and quorum intersection with them. The host persists the value {@link
   * ReconfigurablePaxos.retire} returns and passes it here at restart.
   */
  readonly minConfigId?: number;
  /**
   * Creates the empty storage of a configuration this replica joins. The host records `record` with
   * it durably, in the same atomic group as the storage's first writes (see {@link Storage}): a
   * replica must never restart with the record but without the log it was seeded with.
   */
  readonly createStorage: (record: ConfigRecord) => Storage<LogEntry<T>>;
  /** Overrides of `DEFAULT_PAXOS_CONFIG`, for every configuration's instance. */
  readonly config?: Partial<PaxosConfig>;
  /** Size of an entry in bytes, for every configuration's instance (see `SequencePaxosOptions.entryBytes`). */
  readonly entryBytes?: (entry: LogEntry<T>) => number;
  /** Observer of every configuration's decided items, before they are merged (testing, metrics). */
  readonly onConfigDecided?: (configId: number, items: readonly DecidedItem<T>[]) => void;
  /** Observer called when this replica starts a configuration it joined (testing, logs). */
  readonly onConfigStart?: (record: ConfigRecord) => void;
}

/**
 * BLE round a configuration's instance starts with on a replica that starts it from its own log (it
 * held the stopped configuration), above the round 0 of a replica that joins by state transfer: a
 * joiner starts later (it waits for the state), and with the highest ballot it would take the
 * leadership over from a leader already elected, so the new configuration would change leaders right
 * after it started. Liveness only (any initial round is safe: a ballot is still unique by its pid).
 */
export const CONTINUING_INITIAL_ROUND = 1;
/**
 * BLE round of the new configuration's instance on its successor leader: the replica that led the
 * stopped configuration when it is a member of the new one (it keeps the leadership across the
 * reconfiguration, so the clients and forwarders that know it need no redirect), else the new
 * configuration's first member when it held the old log (the host lists its preferred leader first).
 * One replica outranks the others from the start, so no election fight happens. The successor also
 * claims the leadership at once (`SequencePaxosOptions.claimLeadership`): the new configuration runs
 * within a round trip of its start, not after a first BLE round.
 */
export const CONTINUING_LEADER_INITIAL_ROUND = 2;

interface Instance<T> {
  readonly record: ConfigRecord;
  readonly storage: Storage<LogEntry<T>>;
  readonly paxos: SequencePaxos<T>;
}

/** A later configuration this replica knows of but does not run. */
interface KnownConfig {
  readonly configId: number;
  readonly members: readonly NodeId[];
}

/** A configuration as {@link ReconfigurablePaxos.configurations} reports it. */
export interface ConfigStatus {
  readonly configId: number;
  readonly members: readonly NodeId[];
  readonly base: number;
  /** This replica's instance: leader or follower, and the leader it knows. */
  readonly role: Role;
  readonly leader: NodeId | undefined;
  readonly decidedIndex: number;
  /** The stop-sign that ends it, if one is in this replica's log. */
  readonly stopSign: { readonly index: number; readonly next: number; readonly decided: boolean } | undefined;
}

/**
 * One replica of a group whose membership changes, as a sans-IO state machine: a sequence of
 * configurations, each run by its own {@link SequencePaxos} instance over its own storage.
 *
 * - {@link reconfigure} proposes a stop-sign naming the next configuration in the current one.
 *   Once it is decided, the current configuration decides nothing more.
 * - A replica of the next configuration that held the old one starts the next configuration from its
 *   own decided log (snapshot + suffix, copied into the new storage); a replica that did not hold it
 *   asks for that state (`JoinRequest`) from a replica that has it and starts once it arrives
 *   (`JoinState`). A configuration's instance is never started before the stop-sign that creates it
 *   is decided and the decided log up to it is in its storage.
 * - Replicas of a stopped configuration tell the next configuration's replicas about it
 *   (`ConfigNotice`) until they hear from them, and answer messages of configurations they left with
 *   a notice, so a lagging replica learns it was removed, or joins.
 * - {@link drainDecided} yields one log across configurations: the host's application sees one
 *   sequence of entries (and stop-signs, to be applied as no-ops), never a gap or a repeat.
 *
 * Messages are {@link ReconfigMessage}s (a configuration id around each Paxos message). The ordering
 * duty of {@link Storage} holds for every configuration's storage: make all of them durable before
 * releasing anything drained.
 *
 * @typeParam T the command type (never an object with a `stopSign` field).
 */
export class ReconfigurablePaxos<T> {
  /** This replica's id. */
  readonly pid: NodeId;
  private readonly config: Readonly<PaxosConfig>;
  private readonly partialConfig: Partial<PaxosConfig>;
  private readonly entryBytes: ((entry: LogEntry<T>) => number) | undefined;
  private readonly createStorage: ReconfigurablePaxosOptions<T>['createStorage'];
  private readonly onConfigDecided: ReconfigurablePaxosOptions<T>['onConfigDecided'];
  private readonly onConfigStart: ReconfigurablePaxosOptions<T>['onConfigStart'];
  /** Instances by configuration id, ascending. */
  private instances: Instance<T>[] = [];
  private known: KnownConfig | undefined = undefined;
  private now = 0;
  private outbox: OutgoingReconfigMessage<T>[] = [];
  /** Position of the merged decided log (entries `[0, pos)` were returned by `drainDecided`). */
  private pos = 0;
  /** Peers to tell about `known` (or about our stopped configuration's successor): tick of the last notice. */
  private readonly noticeSent = new Map<NodeId, number>();
  /** Peers of the next configuration heard running it. */
  private readonly heardInNext = new Set<NodeId>();
  /** Configuration being joined, where to ask, and when we last asked. */
  private joining: { configId: number; sources: NodeId[]; next: number; askedAt: number } | undefined =
    undefined;
  /** Highest configuration id this replica ever held (or was told to skip): never joined again. */
  private floor: number;
  /** Rate limits of answers per peer (JoinState, notice replies): tick of the last one. */
  private readonly answeredAt = new Map<string, number>();

  /**
   * Creates the replica over the configurations it holds.
   * @throws PaxosConfigError on an invalid pid, config field or configuration record.
   */
  constructor(opts: ReconfigurablePaxosOptions<T>) {
    if (!isNodeId(opts.pid)) throw new PaxosConfigError(`pid must be a positive integer, got ${opts.pid}`);
    this.pid = opts.pid;
    this.partialConfig = opts.config ?? {};
    this.entryBytes = opts.entryBytes;
    this.config = Object.freeze(resolveConfig(opts.config));
    this.createStorage = opts.createStorage;
    this.onConfigDecided = opts.onConfigDecided;
    this.onConfigStart = opts.onConfigStart;
    const min = opts.minConfigId ?? 0;
    if (!isCount(min)) throw new PaxosConfigError(`minConfigId must be a non-negative integer, got ${min}`);
    this.floor = min - 1;
    const held = [...opts.configs].sort((a, b) => a.record.configId - b.record.configId);
    for (const h of held) {
      const r = h.record;
      if (!isCount(r.configId) || !isMemberList(r.members) || !isCount(r.base)) {
        throw new PaxosConfigError(`invalid configuration record ${JSON.stringify(r)}`);
      }
      if (!r.members.includes(this.pid)) continue;
      // An interrupted join (the seed never became durable, so nothing was sent in it): join again.
      if (h.storage.getDecidedIndex() < r.base) continue;
      this.floor = Math.max(this.floor, r.configId);
      this.instances.push(this.makeInstance(r, h.storage));
    }
    this.afterInput();
  }

  private makeInstance(
    record: ConfigRecord,
    storage: Storage<LogEntry<T>>,
    claim = false,
    presumed?: NodeId,
    joiner = false,
  ): Instance<T> {
    const paxos = new SequencePaxos<T>({
      pid: this.pid,
      peers: record.members.filter((p) => p !== this.pid),
      storage,
      config: this.partialConfig,
      ...(this.entryBytes ? { entryBytes: this.entryBytes } : {}),
      configId: record.configId,
      claimLeadership: claim,
      followPromised: joiner,
      ...(presumed !== undefined
        ? { presumedLeader: { n: CONTINUING_LEADER_INITIAL_ROUND, pid: presumed } }
        : {}),
    });
    return { record, storage, paxos };
  }

  // ---------------------------------------------------------------- state

  private get latest(): Instance<T> | undefined {
    return this.instances[this.instances.length - 1];
  }
  private instance(configId: number): Instance<T> | undefined {
    for (const i of this.instances) if (i.record.configId === configId) return i;
    return undefined;
  }
  /** The highest configuration this replica runs, `-1` if none (it waits to join). */
  get configId(): number {
    return this.latest?.record.configId ?? -1;
  }
  /** The replicas of {@link configId} (empty if none). */
  get members(): readonly NodeId[] {
    return this.latest?.record.members ?? [];
  }
  /** The highest configuration id this replica knows of (run, decided in its log, or told of). */
  get knownConfigId(): number {
    return Math.max(this.configId, this.known?.configId ?? -1);
  }
  /** The latest configuration this replica knows of (runs, decided in its log, or was told of), if any. */
  get knownConfig(): { readonly configId: number; readonly members: readonly NodeId[] } | undefined {
    const l = this.latest?.record;
    const k = this.known;
    if (k && (!l || k.configId > l.configId)) return { configId: k.configId, members: k.members };
    return l ? { configId: l.configId, members: l.members } : undefined;
  }
  /**
   * Whether this replica is out of the group: the latest configuration it knows of does not include
   * it. Its instances only help others catch up; the host may {@link retire} them.
   */
  get removed(): boolean {
    return this.known !== undefined && !this.known.members.includes(this.pid);
  }
  /**
   * While the current configuration is stopping with a stop-sign of this replica's own (in its log, or
   * proposed by it as leader and still buffered): the members of the next configuration. Undefined when
   * no stop-sign is pending here.
   */
  get nextMembers(): readonly NodeId[] | undefined {
    return this.latest?.paxos.pendingStopSign?.members;
  }
  /** The leader of the current configuration, if known. */
  get leader(): NodeId | undefined {
    return this.latest?.paxos.leader;
  }
  /** Role in the current configuration (`follower` when none). */
  get role(): Role {
    return this.latest?.paxos.role ?? 'follower';
  }
  /** Phase in the current configuration. */
  get phase(): Phase {
    return this.latest?.paxos.phase ?? 'none';
  }
  /** Decided entries of the current configuration's log (a count over the whole log). */
  get decidedIndex(): number {
    return this.latest?.paxos.decidedIndex ?? 0;
  }
  /** Log length of the current configuration's storage (a count over the whole log; `0` when none). */
  get logLength(): number {
    return this.latest?.paxos.logLength ?? 0;
  }
  /** Entries replaced by the current configuration's snapshot (`0` when none). */
  get compactedIndex(): number {
    return this.latest?.paxos.compactedIndex ?? 0;
  }
  /**
   * Whether the current configuration cannot take proposals: this replica runs none yet (it waits to
   * join), it has a stop-sign in its log (a change is in progress), or the replica was removed.
   */
  get stopping(): boolean {
    const i = this.latest;
    return !i || i.paxos.stopSign !== undefined || this.removed || this.knownConfigId > i.record.configId;
  }
  /** The Paxos tunables every configuration's instance runs with. */
  get paxosConfig(): Readonly<PaxosConfig> {
    return this.config;
  }
  /** Entries returned by {@link drainDecided} so far (a count over the whole log). */
  get drainedIndex(): number {
    return this.pos;
  }
  /** The instance of configuration `configId`, if this replica runs it (read-only use: tests, status). */
  paxos(configId: number): SequencePaxos<T> | undefined {
    return this.instance(configId)?.paxos;
  }
  /** Every configuration this replica holds, oldest first. */
  configurations(): ConfigStatus[] {
    return this.instances.map((i) => {
      const ss = i.paxos.stopSign;
      return {
        configId: i.record.configId,
        members: i.record.members,
        base: i.record.base,
        role: i.paxos.role,
        leader: i.paxos.leader,
        decidedIndex: i.paxos.decidedIndex,
        stopSign: ss ? { index: ss.index, next: ss.sign.configId, decided: ss.decided } : undefined,
      };
    });
  }

  // ---------------------------------------------------------------- inputs

  /** Handles a peer's message; malformed or stale ones are ignored (never thrown on). */
  handle(from: NodeId, message: ReconfigMessage<T>): void {
    if (!validateReconfigMessage(from, message).ok) return;
    this.handleChecked(from, message as Checked<ReconfigMessage<T>>);
  }

  /**
   * {@link ReconfigurablePaxos.handle} for a message that already passed `validateReconfigMessage`
   * (see {@link Checked}): neither the envelope nor the Paxos message it wraps is checked again.
   */
  handleChecked(from: NodeId, message: Checked<ReconfigMessage<T>>): void {
    if (!isNodeId(from) || from === this.pid) return;
    if (message.type === 'Paxos') this.heard(from, message.config);
    switch (message.type) {
      case 'Paxos':
        this.handlePaxos(from, message);
        break;
      case 'JoinRequest':
        this.handleJoinRequest(from, message);
        break;
      case 'JoinState':
        this.handleJoinState(message);
        break;
      case 'ConfigNotice':
        this.handleNotice(from, message);
        break;
    }
    this.afterInput();
  }

  /** Advances time by one tick in every configuration; resends joins and notices. */
  tick(): void {
    this.now++;
    for (const i of this.instances) i.paxos.tick();
    const resend = this.config.resendTicks;
    const j = this.joining;
    if (j && this.now - j.askedAt >= resend && j.sources.length > 0) {
      const to = j.sources[j.next % j.sources.length] as NodeId;
      j.next++;
      j.askedAt = this.now;
      this.outbox.push({ to, message: { type: 'JoinRequest', config: j.configId } });
    }
    this.sendNotices(false);
    this.afterInput();
  }

  /**
   * Proposes a command in the current configuration (see {@link SequencePaxos.propose}).
   * @throws NoLeaderError if this replica runs no configuration yet or knows no leader.
   * @throws StoppedError if the current configuration is stopping or this replica was removed.
   */
  propose(command: T): void {
    const i = this.current();
    i.paxos.propose(command);
  }

  /**
   * Linearizable read barrier in the current configuration (see {@link SequencePaxos.readIndex}).
   * @throws NotLeaderError, NoLeaderError or StoppedError.
   */
  readIndex(token: number): void {
    this.current().paxos.readIndex(token);
  }

  /**
   * Proposes to move the group to `members` (add, remove or replace replicas, change the
   * replication degree): a stop-sign naming configuration `configId + 1` in the current one. Like a
   * proposal it is forwarded to the leader and may be lost on a leader change: watch
   * {@link configId} and retry.
   * @throws InvalidArgumentError for an invalid member list; StoppedError if a change is already in
   *   progress; NoLeaderError if no leader is known.
   */
  reconfigure(members: readonly NodeId[], metadata: Uint8Array | null = null): void {
    const i = this.current();
    i.paxos.reconfigure(i.record.configId + 1, members, metadata);
    this.afterInput();
  }

  /**
   * Asks this replica's current configuration to elect it (see {@link SequencePaxos.campaign}): a
   * gentle leadership transfer. False when it runs no configuration or cannot campaign now.
   */
  campaign(): boolean {
    const i = this.latest;
    if (!i || (this.known && this.known.configId > i.record.configId)) return false;
    return i.paxos.campaign();
  }

  /**
   * Records the application's snapshot after the first `index` entries of the merged log and trims
   * the current configuration's log (see {@link SequencePaxos.compact}). Ignored when the current
   * configuration is stopped before `index` (its stop-sign stays in its log).
   * @throws InvalidArgumentError as {@link SequencePaxos.compact}.
   */
  compact(index: number, snapshot: Uint8Array): void {
    const i = this.latest;
    if (!i) return;
    const ss = i.paxos.stopSign;
    if (ss && index > ss.index) return;
    if (index < i.record.base) return;
    i.paxos.compact(index, snapshot);
  }

  /** The session to `peer` came back: every configuration that includes it re-synchronises. */
  reconnected(peer: NodeId): void {
    for (const i of this.instances) i.paxos.reconnected(peer);
    if (this.noticeSent.has(peer)) this.noticeSent.set(peer, Number.NEGATIVE_INFINITY);
    this.afterInput();
  }

  /** The session to `peer` broke: every configuration that includes it may expedite its election. */
  disconnected(peer: NodeId): void {
    for (const i of this.instances) i.paxos.disconnected(peer);
    this.afterInput();
  }

  /**
   * Whether configuration `configId` may be dropped here: this replica runs a later one, or it was
   * removed and a replica of the next configuration was heard running it (it can seed the others).
   */
  canRetire(configId: number): boolean {
    const i = this.instance(configId);
    if (!i) return false;
    if (i !== this.latest) return true;
    return this.removed && this.heardInNext.size > 0;
  }

  /**
   * Drops configuration `configId` (after {@link canRetire}): its instance stops; the host may delete
   * its storage once it durably recorded the returned value, the `minConfigId` to pass at restart (a
   * replica must never join a configuration it held again). Messages of it are answered with a notice
   * of the latest configuration.
   * @throws InvalidArgumentError if it may not be dropped yet.
   */
  retire(configId: number): number {
    if (!this.canRetire(configId)) {
      throw new InvalidArgumentError(
        `retire(${configId}): configuration ${configId} is still needed here (not superseded, or no replica of the next one runs yet)`,
      );
    }
    this.instances = this.instances.filter((i) => i.record.configId !== configId);
    return this.floor + 1;
  }

  // ---------------------------------------------------------------- outputs

  /** Messages to send, every configuration's Paxos messages wrapped with its id. */
  drainOutbox(): OutgoingReconfigMessage<T>[] {
    const paxos: OutgoingReconfigMessage<T>[] = [];
    for (const i of this.instances) {
      const config = i.record.configId;
      for (const m of i.paxos.drainOutbox() as OutgoingMessage<T>[]) {
        paxos.push({ to: m.to, message: { type: 'Paxos', config, msg: m.message } });
      }
    }
    // Draining flushed batched proposals: a stop-sign may just have entered the log.
    const before = this.instances.length;
    this.afterInput();
    for (const i of this.instances.slice(before)) {
      const config = i.record.configId;
      for (const m of i.paxos.drainOutbox() as OutgoingMessage<T>[]) {
        paxos.push({ to: m.to, message: { type: 'Paxos', config, msg: m.message } });
      }
    }
    const out = this.outbox;
    this.outbox = [];
    for (const m of paxos) out.push(m);
    return out;
  }

  /**
   * Newly decided items of the one log across configurations, in order: a `snapshot` item (after a
   * restart or a join), then every next `entry` and `stopsign` (apply a stop-sign as a no-op that
   * takes one position).
   */
  drainDecided(): DecidedItem<T>[] {
    const out: DecidedItem<T>[] = [];
    for (const i of this.instances) {
      const items = i.paxos.drainDecided();
      if (items.length === 0) continue;
      this.onConfigDecided?.(i.record.configId, items);
      for (const it of items) {
        if (it.kind === 'snapshot') {
          if (it.index > this.pos) {
            out.push(it);
            this.pos = it.index;
          }
        } else if (it.index === this.pos) {
          out.push(it);
          this.pos++;
        } else if (it.index > this.pos) {
          // Cannot happen: every instance's stream is contiguous and starts at or below what was
          // already returned (its base is decided in the configuration before).
          throw new Error(
            `replica ${this.pid}: configuration ${i.record.configId} decided ${it.index} past the merged log at ${this.pos}`,
          );
        }
      }
    }
    return out;
  }

  /** Completed or failed read-index requests of every configuration. */
  drainReads(): ReadResult[] {
    const out: ReadResult[] = [];
    for (const i of this.instances) for (const r of i.paxos.drainReads()) out.push(r);
    return out;
  }

  // ---------------------------------------------------------------- internals

  private current(): Instance<T> {
    const i = this.latest;
    if (!i || (this.known && this.known.configId > i.record.configId)) {
      if (this.known && !this.known.members.includes(this.pid)) {
        throw new StoppedError(this.configId, this.known.configId, this.known.members, true);
      }
      throw new NoLeaderError();
    }
    return i;
  }

  /** `from` runs configuration `config`: once it runs the one we announce, stop telling it. */
  private heard(from: NodeId, config: number): void {
    const k = this.known;
    if (k && config >= k.configId && k.members.includes(from)) {
      this.heardInNext.add(from);
      this.noticeSent.delete(from);
    }
  }

  /** Whether this replica can send the state configuration `configId` starts from. */
  private canServe(configId: number): boolean {
    if (this.instance(configId)) return true;
    for (const i of this.instances) {
      if (i.paxos.stopSign?.sign.configId === configId && this.startable(i.paxos)) return true;
    }
    return false;
  }

  private notice(to: NodeId, k: KnownConfig, reply: boolean): void {
    const running = this.instance(k.configId) !== undefined;
    this.outbox.push({
      to,
      message: {
        type: 'ConfigNotice',
        config: k.configId,
        members: k.members,
        reply,
        running,
        source: this.canServe(k.configId),
      },
    });
  }

  private handlePaxos(from: NodeId, m: Checked<ConfigPaxosMessage<T>>): void {
    const i = this.instance(m.config);
    if (i) {
      // The envelope was validated with the message it wraps (validateReconfigMessage).
      i.paxos.handleChecked(from, m.msg as Checked<PaxosMessage<LogEntry<T>>>);
      return;
    }
    if (m.config > this.floor) {
      // A configuration we do not run yet names us as a replica: ask for its starting state.
      this.wantJoin(m.config, from);
    } else {
      this.answerNotice(from, m.config);
    }
  }

  private wantJoin(configId: number, source: NodeId): void {
    const j = this.joining;
    if (!j || configId > j.configId) {
      this.joining = { configId, sources: [source], next: 0, askedAt: Number.NEGATIVE_INFINITY };
    } else if (configId === j.configId && !j.sources.includes(source)) {
      j.sources.push(source);
    }
    const cur = this.joining as NonNullable<typeof this.joining>;
    if (this.now - cur.askedAt < this.config.resendTicks) return;
    cur.askedAt = this.now;
    // A replica whose log holds the stop-sign that creates the configuration starts it from that log as
    // soon as the sign is decided (its Decide is usually on its way with the notice or the new leader's
    // Prepare): it asks for the state (a whole snapshot) only if that did not happen within a resend
    // period (`tick` asks then).
    if (this.holdsStopSignOf(configId) && this.config.unsafeMutation !== 'eagerJoinRequests') return;
    this.outbox.push({ to: source, message: { type: 'JoinRequest', config: cur.configId } });
  }

  /** Whether a configuration this replica runs has, in its log, the stop-sign that creates `configId`. */
  private holdsStopSignOf(configId: number): boolean {
    return this.instances.some((i) => i.paxos.stopSign?.sign.configId === configId);
  }

  /** Answers a message of a configuration we left with a notice of the latest one (rate-limited). */
  private answerNotice(to: NodeId, aboutConfig: number): void {
    const latest = this.known && this.known.configId > this.configId ? this.known : this.latest?.record;
    if (!latest || latest.configId < aboutConfig) return;
    if (!this.rateOk(`n${to}`)) return;
    this.notice(to, latest, true);
  }

  private rateOk(key: string): boolean {
    const at = this.answeredAt.get(key);
    if (at !== undefined && this.now - at < this.config.resendTicks) return false;
    this.answeredAt.set(key, this.now);
    return true;
  }

  private handleJoinRequest(from: NodeId, m: JoinRequest): void {
    const run = this.instance(m.config);
    if (run) {
      if (!run.record.members.includes(from) || !this.rateOk(`j${from}`)) return;
      const st = run.storage;
      this.sendJoinState(from, run.record, st, st.getDecidedIndex());
      return;
    }
    // Our configuration's stop-sign created it: serve the log up to the stop-sign.
    for (const i of this.instances) {
      const ss = i.paxos.stopSign;
      if (!ss || ss.sign.configId !== m.config || !this.startable(i.paxos)) continue;
      if (!ss.sign.members.includes(from) || !this.rateOk(`j${from}`)) return;
      const record = { configId: m.config, members: ss.sign.members, base: ss.index + 1 };
      this.sendJoinState(from, record, i.storage, ss.index + 1);
      return;
    }
    this.answerNotice(from, m.config);
  }

  private sendJoinState(
    to: NodeId,
    record: ConfigRecord,
    st: Storage<LogEntry<T>>,
    decidedIndex: number,
  ): void {
    const compacted = st.getCompactedIndex();
    const snapshot = compacted > 0 ? (st.getSnapshot() ?? null) : null;
    const start = snapshot ? snapshot.index : 0;
    if (start > decidedIndex || (snapshot === null && compacted > 0)) return;
    const message: JoinState<T> = {
      type: 'JoinState',
      config: record.configId,
      members: record.members,
      base: record.base,
      snapshot,
      start,
      entries: start < decidedIndex ? st.getEntries(start, decidedIndex) : [],
      decidedIndex,
    };
    this.outbox.push({ to, message });
  }

  private handleJoinState(m: JoinState<T>): void {
    if (m.config <= this.floor || !m.members.includes(this.pid)) return;
    this.startConfig(
      { configId: m.config, members: m.members, base: m.base },
      m.snapshot,
      m.entries,
      m.decidedIndex,
      { joiner: true },
    );
  }

  private handleNotice(from: NodeId, m: ConfigNotice): void {
    if (m.running) this.heard(from, m.config);
    if (m.config > this.floor) {
      if (m.members.includes(this.pid) && m.source) this.wantJoin(m.config, from);
      if (!this.known || m.config > this.known.configId)
        this.known = { configId: m.config, members: m.members };
    }
    // Tell the sender where we are (it stops announcing once we run its configuration).
    if (!m.reply && m.config <= this.knownConfigId) this.answerNotice(from, m.config);
  }

  /** Whether the stop-sign of `p` allows the next configuration to start (decided, unless mutated). */
  private startable(p: SequencePaxos<T>): boolean {
    const ss = p.stopSign;
    if (!ss) return false;
    return ss.decided || this.config.unsafeMutation === 'startBeforeStopSignDecided';
  }

  /**
   * Seeds a new storage with a decided prefix and starts the configuration's instance. A joiner (started
   * from a state its new group sent, `JoinState`) begins at round 0 and follows the leader whose Prepare
   * it promises; a replica that held the old log continues at `initialRound` (see
   * {@link CONTINUING_INITIAL_ROUND}), claiming leadership at once when it is the `successor`.
   */
  private startConfig(
    record: ConfigRecord,
    snapshot: Snapshot | null,
    entries: readonly LogEntry<T>[],
    decidedIndex: number,
    start:
      | { readonly joiner: true }
      | { readonly joiner: false; readonly initialRound: number; readonly successor?: NodeId },
  ): void {
    const initialRound = start.joiner ? 0 : start.initialRound;
    const successor = start.joiner ? undefined : start.successor;
    const storage = this.createStorage(record);
    if (snapshot) storage.setSnapshot(snapshot);
    const continuing = this.config.unsafeMutation !== 'freshBallotsOnStart';
    if (initialRound > storage.getBallotRound() && continuing) storage.setBallotRound(initialRound);
    if (entries.length > 0) storage.appendEntries(entries);
    if (decidedIndex > storage.getDecidedIndex()) storage.setDecidedIndex(decidedIndex);
    const claim = continuing && initialRound === CONTINUING_LEADER_INITIAL_ROUND;
    const presumed = continuing && !claim && successor !== this.pid ? successor : undefined;
    const inst = this.makeInstance(record, storage, claim, presumed, start.joiner && continuing);
    this.floor = Math.max(this.floor, record.configId);
    this.instances.push(inst);
    this.instances.sort((a, b) => a.record.configId - b.record.configId);
    if (this.joining && this.joining.configId <= record.configId) this.joining = undefined;
    if (this.known && this.known.configId <= record.configId) this.known = undefined;
    this.noticeSent.clear();
    this.heardInNext.clear();
    this.onConfigStart?.(record);
  }

  /** After every input: a decided stop-sign of the latest configuration starts (or announces) the next. */
  private afterInput(): void {
    for (;;) {
      const i = this.latest;
      if (!i || !this.startable(i.paxos)) return;
      const ss = i.paxos.stopSign as NonNullable<SequencePaxos<T>['stopSign']>;
      const next: ConfigRecord = { configId: ss.sign.configId, members: ss.sign.members, base: ss.index + 1 };
      if (next.members.includes(this.pid)) {
        const st = i.storage;
        const compacted = st.getCompactedIndex();
        const snapshot = compacted > 0 ? (st.getSnapshot() ?? null) : null;
        const from = snapshot ? snapshot.index : 0;
        // The successor: the stopped configuration's leader when it stays, else the new configuration's
        // first member (the host lists its preferred leader first) when it held the old log.
        const oldLeader = i.paxos.role === 'leader' ? this.pid : i.paxos.leader;
        const successor =
          oldLeader !== undefined && next.members.includes(oldLeader) ? oldLeader : next.members[0];
        const round = successor === this.pid ? CONTINUING_LEADER_INITIAL_ROUND : CONTINUING_INITIAL_ROUND;
        // Only a successor that held the old log can claim at once (a joiner waits for its state).
        const claims = successor !== undefined && i.record.members.includes(successor);
        this.startConfig(next, snapshot, st.getEntries(from, next.base), next.base, {
          joiner: false,
          initialRound: round,
          ...(claims ? { successor } : {}),
        });
        continue;
      }
      if (!this.known || this.known.configId < next.configId) {
        this.known = { configId: next.configId, members: next.members };
        this.sendNotices(true);
      }
      return;
    }
  }

  /** Tells the replicas of a known later configuration about it until they are heard from. */
  private sendNotices(now: boolean): void {
    const k = this.known;
    if (!k || k.configId <= this.configId || k.members.includes(this.pid)) return;
    for (const p of k.members) {
      if (p === this.pid || this.heardInNext.has(p)) continue;
      const at = this.noticeSent.get(p);
      if (!now && at !== undefined && this.now - at < this.config.resendTicks) continue;
      this.noticeSent.set(p, this.now);
      this.notice(p, k, false);
    }
  }
}
