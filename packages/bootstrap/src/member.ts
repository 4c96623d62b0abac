/**
 * The bootstrap member: runs on every server started with `--join`. Sans-IO like the coordinator:
 * the server app calls {@link BootstrapMember.tick} from its timer, sends what
 * {@link BootstrapMember.drainOutbox} returns to the bootstrap server, and feeds replies to
 * {@link BootstrapMember.handle}.
 * @module
 */
import {
  BadRequestError,
  type BootstrapReply,
  type BootstrapRequest,
  errorFromWire,
  isAddress,
  isNodeId,
  type LookupTable,
  type Member,
  type NodeId,
  type PaxkvError,
} from '@paxkv/common';
import { type MemberConfig, resolveMemberConfig } from './config.js';
import { sameTable, validateLookupTable } from './table.js';

/** Options of {@link BootstrapMember}. */
export interface BootstrapMemberOptions {
  /** The address this server listens on (sent in `checkin`). */
  readonly address: string;
  /** The node id from a previous run (its data dir), so the server keeps its identity. */
  readonly nodeId?: NodeId;
  /** The newest table from a previous run, if persisted; newer pushes replace it. */
  readonly table?: LookupTable | null;
  /** Heartbeat and check-in periods (defaults in {@link DEFAULT_MEMBER_CONFIG}). */
  readonly config?: Partial<MemberConfig>;
}

/**
 * Outcome of offering a table to a member: `accepted` (newer, valid: now current), `unchanged`
 * (same version and content), `stale` (older version, or same version with other content: ignored,
 * versions only grow), `invalid` (fails validation; `problems` says why).
 */
export type TableOffer =
  | { readonly outcome: 'accepted'; readonly table: LookupTable; readonly previousVersion: number | null }
  | { readonly outcome: 'unchanged' | 'stale'; readonly currentVersion: number }
  | { readonly outcome: 'invalid'; readonly problems: readonly string[] };

/** What a message changed; fields are present only when something changed. */
export interface MemberUpdate {
  /** The node id assigned by the bootstrap server, when first assigned or changed. */
  readonly nodeId?: NodeId;
  /** The new current table, when a newer valid one was accepted. */
  readonly table?: LookupTable;
  /** The new member list, when a `members` push arrived. */
  readonly members?: readonly Member[];
  /** An error the bootstrap server answered (the check-in is retried after `checkinRetryMs`). */
  readonly error?: PaxkvError;
  /** A table that was rejected and why (invalid, or a conflicting version). */
  readonly rejectedTable?: TableOffer;
}

/**
 * Keeps a server's membership in the cluster: checks in with the bootstrap server (retrying every
 * `checkinRetryMs` until answered), then sends a heartbeat every `heartbeatIntervalMs`; accepts
 * table pushes, keeping only the newest valid version (versions only grow); keeps the last member
 * list for status reports. After the connection to the bootstrap server breaks, call
 * {@link connectionLost}; the member checks in again (with its node id) once it is restored.
 */
export class BootstrapMember {
  /** The validated configuration in use. */
  readonly config: MemberConfig;
  /** The address announced in check-ins. */
  readonly address: string;

  #nodeId: NodeId | null;
  #table: LookupTable | null = null;
  #members: readonly Member[] = [];
  #checkedIn = false;
  #connected = true;
  #lastCheckinMs: number | null = null;
  #lastHeartbeatMs: number | null = null;
  #lastError: PaxkvError | null = null;
  #outbox: BootstrapRequest[] = [];

  /**
   * @throws {@link BadRequestError} if `address` or `nodeId` is invalid.
   * @throws {@link ConfigError} if the configuration is invalid.
   */
  constructor(options: BootstrapMemberOptions) {
    if (!isAddress(options.address)) {
      throw new BadRequestError({ field: 'address', problem: `not a host:port address: ${options.address}` });
    }
    if (options.nodeId !== undefined && !isNodeId(options.nodeId)) {
      throw new BadRequestError({ field: 'nodeId', problem: `not a positive integer: ${options.nodeId}` });
    }
    this.address = options.address;
    this.config = resolveMemberConfig(options.config);
    this.#nodeId = options.nodeId ?? null;
    if (options.table) {
      const problems = validateLookupTable(options.table);
      if (problems.length === 0) this.#table = options.table;
    }
  }

  /** The node id assigned by the bootstrap server (or passed in), null before the first check-in. */
  get nodeId(): NodeId | null {
    return this.#nodeId;
  }

  /** The newest valid table seen, or null if the cluster has not started yet. */
  get table(): LookupTable | null {
    return this.#table;
  }

  /** The last member list pushed by the bootstrap server. */
  get members(): readonly Member[] {
    return this.#members;
  }

  /** True after a `checkin.ok` on the current connection. */
  get checkedIn(): boolean {
    return this.#checkedIn;
  }

  /** The last error the bootstrap server answered, if any (cleared by the next `checkin.ok`). */
  get lastError(): PaxkvError | null {
    return this.#lastError;
  }

  /**
   * Advances time to `nowMs`: queues a `checkin` if not checked in and the last attempt is older than
   * `checkinRetryMs` (or there was none), or a `heartbeat` once `heartbeatIntervalMs` has passed
   * since the last one. Nothing is queued while the connection is down.
   */
  tick(nowMs: number): void {
    if (!this.#connected) return;
    if (!this.#checkedIn) {
      if (this.#lastCheckinMs === null || nowMs - this.#lastCheckinMs >= this.config.checkinRetryMs) {
        this.#outbox.push(
          this.#nodeId === null
            ? { type: 'checkin', address: this.address }
            : { type: 'checkin', address: this.address, nodeId: this.#nodeId },
        );
        this.#lastCheckinMs = nowMs;
      }
      return;
    }
    if (
      this.#nodeId !== null &&
      (this.#lastHeartbeatMs === null || nowMs - this.#lastHeartbeatMs >= this.config.heartbeatIntervalMs)
    ) {
      this.#outbox.push({ type: 'heartbeat', nodeId: this.#nodeId });
      this.#lastHeartbeatMs = nowMs;
    }
  }

  /** Returns and clears the messages to send to the bootstrap server, oldest first. */
  drainOutbox(): BootstrapRequest[] {
    const out = this.#outbox;
    this.#outbox = [];
    return out;
  }

  /**
   * Handles one validated message from the bootstrap server (`parseBootstrapReply` output) and says
   * what changed. `checkin.ok` sets the node id and offers its table; `table.push` offers a table;
   * `members` replaces the member list; `error` is recorded and the check-in retried later.
   */
  handle(message: BootstrapReply, nowMs: number): MemberUpdate {
    switch (message.type) {
      case 'checkin.ok': {
        const changedId = this.#nodeId !== message.nodeId;
        this.#nodeId = message.nodeId;
        this.#checkedIn = true;
        this.#lastError = null;
        this.#lastHeartbeatMs = nowMs;
        const offer = message.table ? this.offerTable(message.table) : null;
        return {
          ...(changedId ? { nodeId: message.nodeId } : {}),
          ...tableFields(offer),
        };
      }
      case 'table.push':
        return tableFields(this.offerTable(message.table));
      case 'members':
        this.#members = message.members;
        return { members: message.members };
      case 'error': {
        const error = errorFromWire(message);
        this.#lastError = error;
        return { error };
      }
      default:
        return {};
    }
  }

  /**
   * Offers a table from any source (a push, a check-in reply, a peer, a restored file). It becomes
   * current only if it is valid and its version is higher than the current one: versions only grow.
   */
  offerTable(table: LookupTable): TableOffer {
    const problems = validateLookupTable(table);
    if (problems.length > 0) return { outcome: 'invalid', problems };
    const current = this.#table;
    if (current) {
      if (table.version < current.version) return { outcome: 'stale', currentVersion: current.version };
      if (table.version === current.version) {
        return {
          outcome: sameTable(table, current) ? 'unchanged' : 'stale',
          currentVersion: current.version,
        };
      }
    }
    this.#table = table;
    return { outcome: 'accepted', table, previousVersion: current?.version ?? null };
  }

  /** The connection to the bootstrap server broke: stop heartbeats; check in again once restored. */
  connectionLost(): void {
    this.#connected = false;
    this.#checkedIn = false;
  }

  /**
   * The connection to the bootstrap server is (re)established: the next {@link tick} sends a
   * check-in right away (with the node id, so the server keeps its identity).
   */
  connectionRestored(): void {
    this.#connected = true;
    this.#checkedIn = false;
    this.#lastCheckinMs = null;
  }
}

function tableFields(offer: TableOffer | null): Pick<MemberUpdate, 'table' | 'rejectedTable'> {
  if (!offer) return {};
  if (offer.outcome === 'accepted') return { table: offer.table };
  if (offer.outcome === 'unchanged') return {};
  return { rejectedTable: offer };
}
