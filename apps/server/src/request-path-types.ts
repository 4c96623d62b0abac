/**
 * The types of the request path ({@link RequestPath} in `request-path.ts`): where a request came from,
 * one operation on one partition as the forward-and-retry policy runs it, what the path needs from the
 * rest of the server, and the helpers that read an error's code and leader hint.
 * @module
 */
import {
  type ClientRequest,
  type ClusterStatus,
  type KvResult,
  type MemberRequest,
  type NodeId,
  PaxkvError,
  type ServerResponse,
} from '@paxkv/common';
import type { GroupHost } from './group-lifecycle.js';
import type { ReplicaGroupPort } from './group-port.js';
import type { PeerLinks } from './peers.js';

/**
 * A KV request's outcome: its result, whether a stale read served it, and `leader`, the partition's
 * leader that served it when this server forwarded it there.
 */
export interface KvOutcome {
  readonly result: KvResult;
  readonly stale: boolean;
  readonly leader?: NodeId;
}

/** Where a request came from. */
export interface RequestOrigin {
  /** True when a peer forwarded the request (then it is never forwarded again). */
  readonly forwarded: boolean;
}

/** One operation on one partition, as {@link RequestPath.routeToPartition} runs it. */
export interface PartitionOperation<T> {
  readonly partition: number;
  /** The group's replicas, for a group outside the lookup table (default: the table's group). */
  readonly replicas?: readonly NodeId[];
  /** Name for errors and logs (`put`, `txn`, ...). */
  readonly name: string;
  /** True if running it twice is harmless (a read, or a write with a session). */
  readonly retrySafe: boolean;
  /** True if the request came from a peer (never forwarded again). */
  readonly forwarded: boolean;
  /**
   * True if only the group's leader can run it (anything but a stale read): a local follower that
   * knows the leader then forwards at once instead of running it to be refused `NOT_LEADER` (building
   * that error, with its stack trace, on every request of a client whose leader cache is stale cost
   * several percent of a loaded server's CPU). Default false: the local replica is always asked.
   */
  readonly leaderOnly?: boolean;
  /** Runs it on the local replica of the group. Rejects with the group's typed errors. */
  readonly runLocal: (group: ReplicaGroupPort) => Promise<T>;
  /** The request to send to another replica when forwarding (its `id` is replaced per link). */
  readonly wire: ClientRequest;
  /**
   * The result carried by a success reply from the peer `from` (the replica the request was forwarded
   * to), or undefined if `reply` is not a success.
   */
  readonly fromReply: (reply: ServerResponse, from: NodeId) => T | undefined;
}

/** What {@link RequestPath} needs from the rest of the server. */
export interface RequestPathDeps {
  readonly groups: GroupHost;
  readonly peers: PeerLinks;
  /** This server's view of the cluster, for `status`. Throws NOT_READY before it has a node id. */
  readonly statusReport: () => ClusterStatus;
  /** Answers `member.list|add|remove` (see `metadata-group.ts`); never rejects. */
  readonly memberRequest: (request: MemberRequest, origin: RequestOrigin) => Promise<ServerResponse>;
}

/** The typed error code of anything thrown (`INTERNAL` when it has none). */
export function codeOf(e: unknown): string {
  return e instanceof PaxkvError
    ? e.code
    : typeof e === 'object' && e !== null && 'code' in e
      ? String((e as { code: unknown }).code)
      : 'INTERNAL';
}

/** The leader an error names (a `NOT_LEADER` hint's node, or a `leader` field), or null. */
export function leaderHintOf(e: unknown): NodeId | null {
  if (typeof e !== 'object' || e === null) return null;
  const hint = (e as { leaderHint?: { node?: unknown } }).leaderHint;
  if (hint && typeof hint.node === 'number') return hint.node;
  const leader = (e as { leader?: unknown }).leader;
  return typeof leader === 'number' ? leader : null;
}
