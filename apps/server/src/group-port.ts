/**
 * The port through which the server drives one replica group (one partition's paxos instance + state
 * machine + durable log). The adapter over `@paxkv/kvstore`'s `ReplicaGroup` lives in `kvstore-groups.ts`;
 * the server itself only sees this interface (ports and adapters, DESIGN.md).
 */
import type { Consistency, KvOp, KvResult, NodeId, Session } from '@paxkv/common';

/** A replica group hosted by this server. */
export interface ReplicaGroupPort {
  /** The partition this group replicates. */
  readonly partition: number;
  /**
   * Runs an operation on this replica. Resolves with the result once it is decided and applied (or, for a
   * linearizable read, once the read index is confirmed). Rejects with a typed error: `NOT_LEADER` (with a
   * leader hint when known), `NO_LEADER`, `TIMEOUT`, ...
   */
  submit(
    op: KvOp,
    options: { readonly session?: Session; readonly consistency: Consistency },
  ): Promise<KvResult>;
  /**
   * A paxos message from replica `from` that passed the server's {@link PaxosMessageCheck} (the group
   * may skip the validation that check already did: it is the boundary).
   */
  handle(from: NodeId, message: unknown): void;
  /** One unit of time passed. */
  tick(): void;
  /** The session to `peer` was re-established. */
  reconnected(peer: NodeId): void;
  /** The session to `peer` broke: a group led by it starts its election at once. */
  disconnected(peer: NodeId): void;
  /** The leader this replica knows, or null (never itself while isolated). */
  readonly leader: NodeId | null;
  /**
   * True while this replica cannot reach a majority of its group: it refuses requests at once with
   * `UNAVAILABLE` (so clients go to another server) and reports itself `follower`.
   */
  readonly isolated: boolean;
  /** This replica's role. */
  readonly role: 'leader' | 'follower' | 'stopped';
  /** Number of decided entries. */
  readonly decidedIndex: number;
  /** Number of entries applied to the state machine (what a `stale` read sees; at most `decidedIndex`). */
  readonly appliedIndex: number;
  /** Length of the log (including compacted entries). */
  readonly logLength: number;
  /** The ballot this replica follows or leads (its promise), when it runs a configuration. */
  readonly ballot?: { readonly n: number; readonly pid: NodeId } | undefined;
  /**
   * Opens a watch of this replica's applied changes to `filter` from `fromRevision` (default: after
   * the current revision); see `ReplicaGroup.watch` in `@paxkv/kvstore`. `end` is called if the group
   * ends the stream (it stopped, or installed a snapshot past changes it never applied).
   */
  watch(
    filter: { readonly key?: string; readonly prefix?: string },
    fromRevision: number | undefined,
    sink: (events: readonly WatchChange[]) => void,
    end: (why: string) => void,
  ): WatchOpened | WatchRefused;
  /** Flushes and closes the durable storage. Pending operations fail. */
  close(): Promise<void>;
  /**
   * The configuration this replica runs (id and replicas), or null while it waits to join the group
   * (opened with {@link GroupSpec.join}) or after it was removed. Absent: the group is not
   * reconfigurable.
   */
  readonly configuration?: GroupConfiguration | null;
  /**
   * Moves the group to `replicas` (add, remove or replace replicas): only on the leader. Resolves with
   * the new configuration once it is decided; rejects with `NOT_LEADER`/`NO_LEADER` (ask the leader),
   * `BAD_REQUEST`, `UNAVAILABLE` (a change is in progress, or another one won: read
   * {@link configuration} and retry) or `TIMEOUT` (it may still be decided). Absent: the group is not
   * reconfigurable. `expect`: the configuration the change must replace (compare-and-set; refused with
   * `CONFIGURATION_CHANGED` when the group moved on).
   */
  reconfigure?(replicas: readonly NodeId[], expect?: GroupConfiguration): Promise<GroupConfiguration>;
  /**
   * Asks the group to elect this replica (a gentle leadership transfer: the next heartbeat round elects
   * it if it is quorum-connected; nothing accepted is lost). False when it cannot now (it leads, knows
   * no leader, is cut off, joining or stopping). Absent: not supported.
   */
  transferLeadership?(): boolean;
}

/** A replica group's configuration: consecutive id from 0, and its replicas. */
export interface GroupConfiguration {
  readonly configId: number;
  readonly replicas: readonly NodeId[];
}

/**
 * A change of a group's configuration seen by the local replica (reported after its writes are
 * durable): `decided` (the group moves to `configuration`: update routing and the table), `started`
 * (this replica runs it: at open, or after joining by state transfer), `removed` (this replica is not
 * in the group's latest configuration and discarded its data: close the group).
 */
export interface GroupConfigurationEvent {
  readonly kind: 'decided' | 'started' | 'removed';
  readonly configuration: GroupConfiguration;
}

/** One applied change of one key, as a watch delivers it. */
export interface WatchChange {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly value?: string | Uint8Array;
  readonly revision: number;
}

/** An open watch on a replica: send `watch.ok`, then call `replay()` for the history. */
export interface WatchOpened {
  /** The first revision the stream delivers. */
  readonly from: number;
  /** The replica's applied revision when the watch opened. */
  readonly revision: number;
  replay(): void;
  cancel(): void;
}

/** Why a replica refused a watch. */
export type WatchRefused =
  | { readonly reason: 'compacted'; readonly compactRevision: number }
  | { readonly reason: 'unavailable'; readonly message: string };

/** What a {@link GroupFactory} gets to build one group. */
export interface GroupSpec {
  readonly partition: number;
  /** This server's node id (the paxos pid). */
  readonly pid: NodeId;
  /** The other replicas of the group. */
  readonly peers: readonly NodeId[];
  /**
   * Whether this server is the group's preferred leader (the first replica in the lookup table, which
   * the bootstrap rotates so that every server comes first in an even share of the groups). A fresh
   * preferred replica starts its election one round ahead, so leadership, and with it the write load,
   * is spread over the servers instead of landing on the highest node id in every group.
   */
  readonly preferredLeader: boolean;
  /** Directory for this group's snapshots (created by the factory); its log records go to the server's shared write-ahead log in the sibling directory `wal`. */
  readonly dataDir: string;
  readonly fsync: 'always' | 'batch' | 'never';
  /** Sends a paxos message to a peer (best effort; dropped while the link is down). */
  readonly send: (to: NodeId, message: unknown) => void;
  /** Address of a node, for leader hints. */
  readonly addressOf: (node: NodeId) => string | undefined;
  /** Reports the duration of each durable flush, in seconds (for the fsync histogram). */
  readonly onFlush: (seconds: number) => void;
  /**
   * Set to open the replica of a server added to an existing group: it creates no configuration and
   * waits until a replica of the configuration that names it sends it the state to start from
   * (`peers` is then unused). Default false: `peers` (with this server) are configuration 0, created
   * when nothing is on disk.
   */
  readonly join?: boolean;
  /** Called on every configuration change of the group (see {@link GroupConfigurationEvent}). */
  readonly onConfigChange?: (event: GroupConfigurationEvent) => void;
  /**
   * Set to rejoin the group as a new replica after this replica's state could not be read
   * ({@link UnreadableGroupStateError}): the factory first discards whatever the replica kept (every
   * configuration's log records superseded, snapshot files deleted), durably recording that the replica
   * never joins a configuration below `minConfigId`, then opens it as a joiner (`join` is implied).
   * `minConfigId` must be above every configuration the replica may have held (the metadata leader
   * removed it from the group first: the configuration that decided the removal, plus one).
   */
  readonly rejoin?: { readonly minConfigId: number };
}

/**
 * The replica's stored state cannot be read (a snapshot file missing or failing its checksum, a log
 * record this version never writes): the group was not opened. The server reports it and rejoins the
 * group as a new replica ({@link GroupSpec.rejoin}) once the metadata leader removed the old one.
 */
export class UnreadableGroupStateError extends Error {
  constructor(
    readonly partition: number,
    readonly problem: Error,
  ) {
    super(
      `the stored state of partition ${partition}'s replica cannot be read (${problem.message}); it is discarded and the replica rejoins the group as a new one`,
    );
    this.name = 'UnreadableGroupStateError';
  }
}

/**
 * Builds (and recovers from disk) one replica group. A factory that queues its opens may let a
 * partition a client waits for go first (`prioritize`: returns whether its open moved ahead).
 */
export type GroupFactory = ((spec: GroupSpec) => Promise<ReplicaGroupPort>) & {
  prioritize?: (partition: number) => boolean;
};

/**
 * Check of a paxos message from replica `from` on the peer path (the paxos package's own validation:
 * shape, bounds of every round and index, sender). Returns null when the message may be handled, else
 * the reason it must be dropped (a metric label, e.g. `out-of-bounds`). It is the ONE validation of a
 * peer's message: groups take what it passed without checking it again (`ReplicaGroupPort.handle`), so
 * it must be at least as strict as the group's own check (`checkGroupMessage` for kvstore groups).
 */
export type PaxosMessageCheck = (from: NodeId, message: unknown) => string | null;

/** One row of the status report. */
export interface GroupStatusRow {
  readonly partition: number;
  readonly leader: NodeId | null;
  readonly role: 'leader' | 'follower' | 'stopped';
  readonly decidedIndex: number;
  /** Entries applied to the replica's state machine. */
  readonly appliedIndex: number;
  /** The ballot the replica follows or leads (its promise), when it runs a configuration. */
  readonly ballot?: { readonly n: number; readonly pid: NodeId };
  /** The configuration the replica runs (when the group is reconfigurable and it runs one). */
  readonly configId?: number;
  readonly members?: NodeId[];
}
