/**
 * The bootstrap coordinator: runs on the bootstrap server (the one started without `--join`).
 * Sans-IO: messages come in as values, time comes in as `nowMs`, and outgoing pushes are drained
 * from an outbox. The server app owns the sockets and the timer.
 * @module
 */
import {
  BadRequestError,
  type BootstrapReply,
  type BootstrapRequest,
  type Checkin,
  type CheckinOk,
  type ErrorMessage,
  errorMessage,
  type Heartbeat,
  isAddress,
  isNodeId,
  type LookupTable,
  type Member,
  type MemberState,
  type MembersMessage,
  type NodeEntry,
  type NodeId,
  type TablePush,
} from '@paxkv/common';
import { type CoordinatorConfig, resolveCoordinatorConfig } from './config.js';
import { assertValidLookupTable, buildLookupTable } from './table.js';

/**
 * A member's role as the coordinator sees it: `self` is the bootstrap server itself, `pending` a
 * server that checked in before the table was built, `replica` a server placed in the table, and
 * `spare` a server that checked in afterwards (or was not alive when the table was built).
 */
export type MemberRole = 'self' | 'pending' | 'replica' | 'spare';

/** The coordinator's full record of one member (see {@link BootstrapCoordinator.memberDetails}). */
export interface MemberDetails {
  /** Node id. */
  readonly id: NodeId;
  /** Where it listens. */
  readonly address: string;
  /** Its role. */
  readonly role: MemberRole;
  /** False once it has been silent for longer than `suspectAfterMs`. The bootstrap server itself is always alive. */
  readonly alive: boolean;
  /** Time of its last check-in or heartbeat (the caller's clock), or null if not heard from since a restore. */
  readonly lastSeenMs: number | null;
}

/** A message the coordinator wants delivered to member `to`. */
export interface CoordinatorOutgoing {
  /** Destination node id. */
  readonly to: NodeId;
  /** The message (a `table.push` or a `members` list). */
  readonly message: TablePush | MembersMessage;
}

/** Something that happened inside the coordinator, for logs and metrics. */
export type CoordinatorEvent =
  | {
      readonly type: 'registered';
      readonly node: NodeId;
      readonly address: string;
      readonly role: MemberRole;
    }
  | { readonly type: 'address-changed'; readonly node: NodeId; readonly from: string; readonly to: string }
  | { readonly type: 'table-built'; readonly table: LookupTable }
  | { readonly type: 'table-updated'; readonly table: LookupTable }
  | { readonly type: 'suspected'; readonly node: NodeId; readonly silentForMs: number }
  | { readonly type: 'alive'; readonly node: NodeId };

/** State restored from the bootstrap server's disk after a restart (see {@link CoordinatorOptions.restore}). */
export interface CoordinatorRestore {
  /** The last table the coordinator handed out. Its nodes are re-registered as replicas. */
  readonly table: LookupTable | null;
  /** Members known besides the table's nodes (spares), with their ids and addresses. */
  readonly spares?: readonly NodeEntry[];
}

/** Options of {@link BootstrapCoordinator}. */
export interface CoordinatorOptions {
  /**
   * The bootstrap server itself, if it also hosts replicas (the usual case): it is registered at
   * construction, never suspected, and counts toward the threshold. Node id default 1.
   */
  readonly self?: { readonly address: string; readonly nodeId?: NodeId };
  /** Threshold, partitions, replication and timeouts (defaults in {@link DEFAULT_COORDINATOR_CONFIG}). */
  readonly config?: Partial<CoordinatorConfig>;
  /** State from before a restart of the bootstrap server. */
  readonly restore?: CoordinatorRestore;
}

interface MemberRecord {
  id: NodeId;
  address: string;
  role: MemberRole;
  alive: boolean;
  lastSeenMs: number | null;
  /** Version of the last table pushed to (or handed to) this member; 0 = none. */
  sentTableVersion: number;
}

/**
 * Coordinates the start of a cluster and watches its members afterwards.
 *
 * - Check-ins: `checkin` registers a server (a new id, or its old id when it passes one or its
 *   address is already known) and is answered with `checkin.ok` carrying the table if there is one.
 * - Start threshold: when the number of live registered servers reaches `threshold`, the table is
 *   built over exactly those servers ({@link buildLookupTable}), version 1, and pushed to all.
 * - Later check-ins become spares; a restarting replica that comes back on another address gets a
 *   new table version with the new address.
 * - Failure detection: a member not heard from (check-in or heartbeat) for `suspectAfterMs` is
 *   marked suspected; its next heartbeat marks it alive again. Every change of the member list is
 *   pushed to all members as a `members` message.
 *
 * Not thread-safe by design (one event loop). All methods are total: malformed input yields an
 * `error` reply, never an exception.
 */
export class BootstrapCoordinator {
  /** The validated configuration in use. */
  readonly config: CoordinatorConfig;
  /** Node id of the bootstrap server itself, or null if it does not register itself. */
  readonly selfId: NodeId | null;

  readonly #members = new Map<NodeId, MemberRecord>();
  #table: LookupTable | null = null;
  #nextId: NodeId = 1;
  #membersVersion = 0;
  #membersSentVersion = new Map<NodeId, number>();
  #events: CoordinatorEvent[] = [];
  #lastNowMs: number | null = null;

  /**
   * @throws {@link ConfigError} if the configuration is invalid (e.g. threshold below replication).
   * @throws {@link InvalidLookupTableError} if `restore.table` is not a valid table.
   * @throws {@link BadRequestError} if `self` has an invalid address or id.
   */
  constructor(options: CoordinatorOptions = {}) {
    this.config = resolveCoordinatorConfig(options.config);
    const self = options.self;
    if (self) {
      const id = self.nodeId ?? 1;
      if (!isNodeId(id))
        throw new BadRequestError({ field: 'self.nodeId', problem: `not a positive integer: ${id}` });
      if (!isAddress(self.address)) {
        throw new BadRequestError({
          field: 'self.address',
          problem: `not a host:port address: ${self.address}`,
        });
      }
      this.selfId = id;
    } else {
      this.selfId = null;
    }
    const restore = options.restore;
    if (restore?.table) {
      const table = assertValidLookupTable(restore.table);
      this.#table = table;
      for (const n of table.nodes) {
        this.#members.set(n.id, {
          id: n.id,
          address: n.address,
          role: n.id === this.selfId ? 'self' : 'replica',
          alive: true,
          lastSeenMs: null,
          sentTableVersion: 0,
        });
      }
    }
    for (const s of restore?.spares ?? []) {
      if (!this.#members.has(s.id) && isNodeId(s.id) && isAddress(s.address) && !this.#byAddress(s.address)) {
        this.#members.set(s.id, {
          id: s.id,
          address: s.address,
          role: 'spare',
          alive: true,
          lastSeenMs: null,
          sentTableVersion: 0,
        });
      }
    }
    if (self && this.selfId !== null) {
      const existing = this.#members.get(this.selfId);
      if (existing) {
        existing.role = 'self';
        if (existing.address !== self.address) this.#changeAddress(existing, self.address);
      } else {
        const clash = this.#byAddress(self.address);
        if (clash) this.#members.delete(clash.id);
        this.#members.set(this.selfId, {
          id: this.selfId,
          address: self.address,
          role: 'self',
          alive: true,
          lastSeenMs: null,
          sentTableVersion: 0,
        });
        this.#event({ type: 'registered', node: this.selfId, address: self.address, role: 'self' });
      }
    }
    for (const id of this.#members.keys()) if (id >= this.#nextId) this.#nextId = id + 1;
    this.#membersVersion = 1;
    this.#maybeBuildTable();
  }

  /** The current lookup table, or null before the start threshold was reached. */
  get table(): LookupTable | null {
    return this.#table;
  }

  /** True once the table has been built. */
  get started(): boolean {
    return this.#table !== null;
  }

  /** Number of registered servers currently alive (the bootstrap server itself included). */
  get liveCount(): number {
    let n = 0;
    for (const m of this.#members.values()) if (m.alive) n++;
    return n;
  }

  /**
   * Handles one validated message from a server (`parseBootstrapRequest` output). Returns the reply
   * to send back on the same connection (`checkin.ok` or `error`), or null when there is none
   * (`heartbeat`). `nowMs` is the caller's monotonic clock.
   */
  handle(message: BootstrapRequest, nowMs: number): BootstrapReply | null {
    switch (message.type) {
      case 'checkin':
        return this.handleCheckin(message, nowMs);
      case 'heartbeat':
        this.handleHeartbeat(message, nowMs);
        return null;
      default:
        return errorMessage(
          new BadRequestError({
            field: 'type',
            problem: `not a bootstrap request: ${String((message as { type: unknown }).type)}`,
          }),
        );
    }
  }

  /**
   * Registers (or re-registers) a server and answers with its node id and the current table (null
   * before the cluster started). A server that passes its old `nodeId`, or whose address is already
   * known, keeps its id. Answers an `error` (BAD_REQUEST) if the address belongs to another live node.
   */
  handleCheckin(message: Checkin, nowMs: number): CheckinOk | ErrorMessage {
    this.#observeTime(nowMs);
    if (!isAddress(message.address)) {
      return errorMessage(new BadRequestError({ field: 'address', problem: 'not a host:port address' }));
    }
    if (message.nodeId !== undefined && !isNodeId(message.nodeId)) {
      return errorMessage(new BadRequestError({ field: 'nodeId', problem: 'not a positive integer' }));
    }
    let record: MemberRecord | undefined;
    const byAddress = this.#byAddress(message.address);
    if (message.nodeId !== undefined) {
      if (message.nodeId === this.selfId) {
        return errorMessage(
          new BadRequestError({
            field: 'nodeId',
            problem: `node id ${message.nodeId} is the bootstrap server's own id; start this server without its old data dir or with another id`,
          }),
        );
      }
      record = this.#members.get(message.nodeId);
      if (byAddress && byAddress.id !== message.nodeId) {
        if (byAddress.alive && byAddress.role !== 'self' && this.#isRecent(byAddress, nowMs)) {
          return errorMessage(
            new BadRequestError({
              field: 'address',
              problem: `address ${message.address} is in use by live node ${byAddress.id}; give this server another port`,
            }),
          );
        }
        if (byAddress.role === 'self') {
          return errorMessage(
            new BadRequestError({
              field: 'address',
              problem: `address ${message.address} is the bootstrap server's own`,
            }),
          );
        }
        // The old owner of the address is gone; the address now belongs to the checking-in node.
        if (byAddress.role === 'pending' || byAddress.role === 'spare') {
          this.#members.delete(byAddress.id);
          this.#membersSentVersion.delete(byAddress.id);
          this.#membersVersion++;
        } else {
          return errorMessage(
            new BadRequestError({
              field: 'address',
              problem: `address ${message.address} is held by replica node ${byAddress.id} in the lookup table; start this server on another port`,
            }),
          );
        }
      }
      if (!record) {
        record = this.#register(message.nodeId, message.address);
      }
    } else {
      record = byAddress ?? this.#register(this.#nextId, message.address);
    }
    if (record.role === 'self') {
      return errorMessage(
        new BadRequestError({
          field: 'address',
          problem: `address ${message.address} is the bootstrap server's own`,
        }),
      );
    }
    if (record.address !== message.address) this.#changeAddress(record, message.address);
    this.#markSeen(record, nowMs);
    // A (re)checking-in server may have missed pushes while disconnected: send it the member list again.
    this.#membersSentVersion.delete(record.id);
    this.#maybeBuildTable();
    if (this.#table) record.sentTableVersion = this.#table.version;
    return { type: 'checkin.ok', nodeId: record.id, table: this.#table };
  }

  /**
   * Records a heartbeat. Returns false if the node is unknown (for example the bootstrap server
   * restarted without its state): the server should then check in again.
   */
  handleHeartbeat(message: Heartbeat, nowMs: number): boolean {
    this.#observeTime(nowMs);
    const record = this.#members.get(message.nodeId);
    if (!record || record.role === 'self') return false;
    this.#markSeen(record, nowMs);
    this.#maybeBuildTable();
    return true;
  }

  /**
   * Advances the failure detector to `nowMs`: members silent for longer than `suspectAfterMs` are
   * marked suspected. Call it periodically (for example every 100-500 ms).
   */
  tick(nowMs: number): void {
    this.#observeTime(nowMs);
    for (const m of this.#members.values()) {
      if (m.role === 'self') continue;
      if (m.lastSeenMs === null) {
        m.lastSeenMs = nowMs;
        continue;
      }
      const silent = nowMs - m.lastSeenMs;
      if (m.alive && silent > this.config.suspectAfterMs) {
        m.alive = false;
        this.#membersVersion++;
        this.#event({ type: 'suspected', node: m.id, silentForMs: silent });
      }
    }
  }

  /**
   * Returns and clears the messages to deliver: a `table.push` to every member that has not yet seen
   * the current table version, and a `members` list to every member whose list is out of date.
   * Members that are suspected still get pushes (delivery is best effort; they also get the table
   * in their next `checkin.ok`).
   */
  drainOutbox(): CoordinatorOutgoing[] {
    const out: CoordinatorOutgoing[] = [];
    const table = this.#table;
    let membersMessage: MembersMessage | null = null;
    for (const m of this.#members.values()) {
      if (m.role === 'self') continue;
      if (table && m.sentTableVersion < table.version) {
        out.push({ to: m.id, message: { type: 'table.push', table } });
        m.sentTableVersion = table.version;
      }
      if ((this.#membersSentVersion.get(m.id) ?? 0) < this.#membersVersion) {
        membersMessage ??= { type: 'members', members: this.members() };
        out.push({ to: m.id, message: membersMessage });
        this.#membersSentVersion.set(m.id, this.#membersVersion);
      }
    }
    return out;
  }

  /** Returns and clears the events since the last call (registrations, table builds, suspicions). */
  drainEvents(): CoordinatorEvent[] {
    const e = this.#events;
    this.#events = [];
    return e;
  }

  /**
   * The member list in its wire form, sorted by id: `suspected` if silent too long, else `spare` for
   * spares, else `alive`. Members checked in before the start count as alive.
   */
  members(): Member[] {
    const table = this.#table;
    return [...this.#members.values()]
      .sort((a, b) => a.id - b.id)
      .map((m) => ({ id: m.id, address: m.address, state: wireState(m, table) }));
  }

  /** The full member records, sorted by id. */
  memberDetails(): MemberDetails[] {
    return [...this.#members.values()]
      .sort((a, b) => a.id - b.id)
      .map((m) => ({ id: m.id, address: m.address, role: m.role, alive: m.alive, lastSeenMs: m.lastSeenMs }));
  }

  /** Address of a member, or undefined if unknown. */
  addressOf(id: NodeId): string | undefined {
    return this.#members.get(id)?.address;
  }

  /** Spares as node entries (what {@link CoordinatorRestore.spares} wants persisted). */
  spares(): NodeEntry[] {
    return this.memberDetails()
      .filter((m) => m.role === 'spare')
      .map((m) => ({ id: m.id, address: m.address }));
  }

  #observeTime(nowMs: number): void {
    this.#lastNowMs = nowMs;
  }

  #isRecent(m: MemberRecord, nowMs: number): boolean {
    return m.lastSeenMs === null || nowMs - m.lastSeenMs <= this.config.suspectAfterMs;
  }

  #byAddress(address: string): MemberRecord | undefined {
    for (const m of this.#members.values()) if (m.address === address) return m;
    return undefined;
  }

  #register(id: NodeId, address: string): MemberRecord {
    const role: MemberRole = this.#table ? 'spare' : 'pending';
    const record: MemberRecord = {
      id,
      address,
      role,
      alive: true,
      lastSeenMs: this.#lastNowMs,
      sentTableVersion: 0,
    };
    this.#members.set(id, record);
    if (id >= this.#nextId) this.#nextId = id + 1;
    this.#membersVersion++;
    this.#event({ type: 'registered', node: id, address, role });
    return record;
  }

  #markSeen(m: MemberRecord, nowMs: number): void {
    m.lastSeenMs = nowMs;
    if (!m.alive) {
      m.alive = true;
      this.#membersVersion++;
      this.#event({ type: 'alive', node: m.id });
    }
  }

  #changeAddress(m: MemberRecord, address: string): void {
    const from = m.address;
    m.address = address;
    this.#membersVersion++;
    this.#event({ type: 'address-changed', node: m.id, from, to: address });
    const table = this.#table;
    if (table?.nodes.some((n) => n.id === m.id)) {
      this.#table = {
        ...table,
        version: table.version + 1,
        nodes: table.nodes.map((n) => (n.id === m.id ? { id: n.id, address } : n)),
      };
      this.#event({ type: 'table-updated', table: this.#table });
    }
  }

  #maybeBuildTable(): void {
    if (this.#table) return;
    const live = [...this.#members.values()].filter((m) => m.alive);
    if (live.length < this.config.threshold) return;
    const table = buildLookupTable({
      nodes: live.map((m) => ({ id: m.id, address: m.address })),
      partitions: this.config.partitions,
      replication: this.config.replication,
      version: 1,
    });
    for (const m of this.#members.values()) {
      if (m.role === 'self') continue;
      m.role = m.alive ? 'replica' : 'spare';
    }
    this.#table = table;
    this.#membersVersion++;
    this.#event({ type: 'table-built', table });
  }

  #event(e: CoordinatorEvent): void {
    this.#events.push(e);
  }
}

function wireState(m: MemberRecord, table: LookupTable | null): MemberState {
  if (!m.alive) return 'suspected';
  if (m.role === 'spare') return 'spare';
  // The bootstrap server itself is a spare when a restored table does not place it.
  if (m.role === 'self' && table && !table.nodes.some((n) => n.id === m.id)) return 'spare';
  return 'alive';
}
