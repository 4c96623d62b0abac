/**
 * Cluster membership on the wire: the replicated cluster metadata (the lookup table, the servers of
 * the metadata group, the next node id and the servers being drained) and the operator requests
 * `member.list`, `member.add` and `member.remove` with their answers.
 *
 * The metadata lives in a replica group of its own ({@link METADATA_PARTITION}), replicated on the
 * first servers of the cluster; every change is a proposal that raises `table.version` by one. Any
 * server answers `member.list` from its own copy (the newest version it has seen); changes run on
 * the metadata group's leader (a server forwards them there).
 * @module
 */
import { z } from 'zod';
import { LookupTableSchema, MemberSchema } from './cluster.js';
import { AddressSchema, NodeIdSchema, RequestIdSchema } from './primitives.js';

/**
 * The partition number of the metadata group's log: one past the largest partition a lookup table
 * may have (2^20 - 1), so it never collides with a data partition.
 */
export const METADATA_PARTITION = 1 << 20;

/** Most servers a cluster's metadata may list (members of the table, spares included). */
export const MAX_MEMBERS = 1024;

/** Most replicas of the metadata group. */
export const MAX_METADATA_REPLICAS = 7;

/**
 * Names one rejoin request of a member: a random token the member draws for each replica it found
 * unreadable, once per process. A fence recorded for another token (an earlier rejoin of the same
 * replica, which may have joined configurations above it since) is never used.
 */
export const RejoinTokenSchema = z
  .string()
  .min(8)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/);

/**
 * A replica move in progress: in the group of `partition`, `from` is being replaced by `to` (a
 * reconfiguration of that group). `reason`: `drain` (a member being removed), `replace` (a member
 * suspected for longer than `--replace-after`), `rebalance` (evening out replica counts), `rejoin`
 * (`from` = `to`: the member's replica could not read its state at start; it is removed from the group,
 * then added back as a new replica that catches up from its peers). `fence` (rejoin only): the
 * configuration that no longer holds the member, set once the removal is decided; the member joins only
 * configurations above it. `token` (rejoin only): the member's {@link RejoinTokenSchema} of the request
 * the fence answers.
 */
export const ReplicaMoveSchema = z.object({
  /** The group: a data partition, or {@link METADATA_PARTITION} for the metadata group itself. */
  partition: z.number().int().nonnegative().max(METADATA_PARTITION),
  from: NodeIdSchema,
  to: NodeIdSchema,
  reason: z.enum(['drain', 'replace', 'rebalance', 'rejoin']),
  fence: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  token: RejoinTokenSchema.optional(),
});

/**
 * A finished rejoin, kept in the metadata until it is replaced (a new rejoin of the same replica) or
 * the member leaves the group: member `node` rejoined the group of `partition` above configuration
 * `fence`, for its request `token`. A member that did not see the move while it was in progress (it
 * pulls the metadata now and then, and the move can start and finish between two pulls) finds its
 * fence here, so it cannot miss it.
 */
export const RejoinRecordSchema = z.object({
  partition: z
    .number()
    .int()
    .nonnegative()
    .max(METADATA_PARTITION - 1),
  node: NodeIdSchema,
  fence: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  token: RejoinTokenSchema,
});

/**
 * The cluster metadata, the state of the metadata group. `table.nodes` lists every member (servers
 * that hold no replica are spares); `table.version` is the metadata's version: every change raises
 * it by one. `metaReplicas` are the replicas of the metadata group; `nextNodeId` the id the next new
 * server gets (ids are never reused: an id below it that is not listed belonged to a removed
 * server); `draining` the members whose replicas are being moved off before they are removed;
 * `moving` the replica moves in progress (at most one per group).
 */
export const ClusterMetadataSchema = z
  .object({
    table: LookupTableSchema,
    metaReplicas: z.array(NodeIdSchema).min(1).max(MAX_METADATA_REPLICAS),
    nextNodeId: NodeIdSchema,
    draining: z.array(NodeIdSchema).max(MAX_MEMBERS),
    moving: z.array(ReplicaMoveSchema).max(1 << 20),
    /** The metadata group's configuration id (it is reconfigured like a data group); absent: 0. */
    metaConfig: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
    /** Finished rejoins (see {@link RejoinRecordSchema}); absent: none. At most one per replica. */
    rejoined: z
      .array(RejoinRecordSchema)
      .max(1 << 20)
      .optional(),
  })
  .superRefine((m, ctx) => {
    if (m.table.nodes.length > MAX_MEMBERS) {
      ctx.addIssue({ code: 'custom', path: ['table', 'nodes'], message: `more than ${MAX_MEMBERS} members` });
    }
    const ids = new Set(m.table.nodes.map((n) => n.id));
    for (const [field, list] of [
      ['metaReplicas', m.metaReplicas],
      ['draining', m.draining],
    ] as const) {
      const seen = new Set<number>();
      list.forEach((id, i) => {
        if (!ids.has(id))
          ctx.addIssue({ code: 'custom', path: [field, i], message: `node ${id} is not a member` });
        if (seen.has(id))
          ctx.addIssue({ code: 'custom', path: [field, i], message: `node ${id} listed twice` });
        seen.add(id);
      });
    }
    const partitions = new Set<number>();
    m.moving.forEach((mv, i) => {
      if (mv.partition === METADATA_PARTITION) {
        if (
          mv.reason === 'rejoin' ||
          mv.fence !== undefined ||
          !m.metaReplicas.includes(mv.from) ||
          m.metaReplicas.includes(mv.to) ||
          !ids.has(mv.to)
        ) {
          ctx.addIssue({
            code: 'custom',
            path: ['moving', i],
            message: `move of the metadata group from ${mv.from} to ${mv.to} does not fit its replicas`,
          });
        }
        if (partitions.has(mv.partition))
          ctx.addIssue({ code: 'custom', path: ['moving', i], message: 'two moves of the metadata group' });
        partitions.add(mv.partition);
        return;
      }
      const g = m.table.groups.find((x) => x.partition === mv.partition);
      const fits =
        mv.reason === 'rejoin'
          ? mv.from === mv.to && g?.replicas.includes(mv.from) === true
          : g?.replicas.includes(mv.from) === true && !g.replicas.includes(mv.to) && mv.fence === undefined;
      if (!fits || !ids.has(mv.to)) {
        ctx.addIssue({
          code: 'custom',
          path: ['moving', i],
          message: `move of partition ${mv.partition} from ${mv.from} to ${mv.to} does not fit the table`,
        });
      }
      if (partitions.has(mv.partition))
        ctx.addIssue({
          code: 'custom',
          path: ['moving', i],
          message: `two moves in partition ${mv.partition}`,
        });
      partitions.add(mv.partition);
    });
    for (const id of ids) {
      if (id >= m.nextNodeId) {
        ctx.addIssue({
          code: 'custom',
          path: ['nextNodeId'],
          message: `nextNodeId ${m.nextNodeId} is not above member ${id}`,
        });
      }
    }
  });

/** Lists the members and the cluster metadata. `since`: answer `metadata: null` unless newer. */
export const MemberListRequestSchema = z.object({
  type: z.literal('member.list'),
  id: RequestIdSchema,
  since: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});

/**
 * Adds the server at `address` as a member (a spare until replicas are moved onto it). `nodeId` is
 * given only by a server checking in again with the id it already has.
 */
export const MemberAddRequestSchema = z.object({
  type: z.literal('member.add'),
  id: RequestIdSchema,
  address: AddressSchema,
  nodeId: NodeIdSchema.optional(),
});

/** Removes member `node`: its replicas are moved to other servers first, then it leaves. */
export const MemberRemoveRequestSchema = z.object({
  type: z.literal('member.remove'),
  id: RequestIdSchema,
  node: NodeIdSchema,
});

/**
 * Writes the first version of the metadata if there is none (the bootstrap server's seed: its table
 * and spares), forwarded by the bootstrap server to the metadata group's leader. Accepted only from a
 * peer server (a forwarded request), never from a client. Answered with `member.list.ok` carrying the
 * metadata now stored (the seed, or the version that was already there).
 */
export const MemberSeedRequestSchema = z.object({
  type: z.literal('member.seed'),
  id: RequestIdSchema,
  metadata: ClusterMetadataSchema,
});

/**
 * Asks the metadata leader to let member `node` rejoin the group of `partition` as a new replica: its
 * replica there could not read its state at start (see {@link ReplicaMoveSchema}, reason `rejoin`).
 * Sent by that member, forwarded to the metadata group's leader; accepted only from a peer server.
 * Answered with `member.ok`.
 */
export const MemberRejoinRequestSchema = z.object({
  type: z.literal('member.rejoin'),
  id: RequestIdSchema,
  partition: z
    .number()
    .int()
    .nonnegative()
    .max(METADATA_PARTITION - 1),
  node: NodeIdSchema,
  /** The member's token for this rejoin (see {@link RejoinTokenSchema}); absent from older members. */
  token: RejoinTokenSchema.optional(),
});

/**
 * Moves the group of `partition` to `members` (a stop-sign reconfiguration run by the group's leader),
 * sent by the metadata leader and forwarded to the group's leader. Accepted only from a peer server.
 */
export const GroupReconfigureRequestSchema = z.object({
  type: z.literal('group.reconfigure'),
  id: RequestIdSchema,
  partition: z.number().int().nonnegative().max(METADATA_PARTITION),
  members: z
    .array(NodeIdSchema)
    .min(1)
    .max(MAX_METADATA_REPLICAS * 9),
  /**
   * The configuration the change must replace (compare-and-set): the group refuses with
   * `CONFIGURATION_CHANGED` unless it runs exactly this one (or already runs `members` as its next).
   * Absent from older senders: the change then applies to whatever configuration runs.
   */
  expect: z
    .object({
      configId: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      members: z
        .array(NodeIdSchema)
        .min(1)
        .max(MAX_METADATA_REPLICAS * 9),
    })
    .optional(),
});

/**
 * A replica group's configuration on the wire: its id and its members, 1 to 63 distinct node ids (the
 * bound of `group.reconfigure`). The `configuration` of a `CONFIGURATION_CHANGED` error: the one the
 * refusing leader runs.
 */
export const GroupConfigurationSchema = z.object({
  configId: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  members: z
    .array(NodeIdSchema)
    .min(1)
    .max(MAX_METADATA_REPLICAS * 9)
    .refine((ids) => new Set(ids).size === ids.length, { message: 'a node is listed twice' }),
});

/** Answer to `group.reconfigure`: the group's configuration now (id and replicas). */
export const GroupReconfigureOkSchema = z.object({
  type: z.literal('group.reconfigure.ok'),
  id: RequestIdSchema,
  partition: z.number().int().nonnegative(),
  configId: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  members: z
    .array(NodeIdSchema)
    .min(1)
    .max(MAX_METADATA_REPLICAS * 9),
});

/**
 * Answer to `member.list`: the answering server's copy of the metadata (null when it has none yet,
 * or when it is not newer than `since`), and every member with its state as the answering server's
 * failure detector sees it.
 */
export const MemberListOkSchema = z.object({
  type: z.literal('member.list.ok'),
  id: RequestIdSchema,
  metadata: ClusterMetadataSchema.nullable(),
  members: z.array(MemberSchema).max(MAX_MEMBERS),
});

/**
 * Answer to `member.add` / `member.remove`: the member concerned, the metadata version that records
 * the change, and `state`: `member` (added, or already a member), `draining` (its replicas are being
 * moved; it leaves once they are), `removed`.
 */
export const MemberOkSchema = z.object({
  type: z.literal('member.ok'),
  id: RequestIdSchema,
  node: NodeIdSchema,
  address: AddressSchema,
  version: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  state: z.enum(['member', 'draining', 'removed']),
});

/** A replica move (see {@link ReplicaMoveSchema}). */
export type ReplicaMove = z.infer<typeof ReplicaMoveSchema>;
/** A finished rejoin kept in the metadata (see {@link RejoinRecordSchema}). */
export type RejoinRecord = z.infer<typeof RejoinRecordSchema>;
/** The cluster metadata (see {@link ClusterMetadataSchema}). */
export type ClusterMetadata = z.infer<typeof ClusterMetadataSchema>;
/** A `member.list` request. */
export type MemberListRequest = z.infer<typeof MemberListRequestSchema>;
/** A `member.add` request. */
export type MemberAddRequest = z.infer<typeof MemberAddRequestSchema>;
/** A `member.remove` request. */
export type MemberRemoveRequest = z.infer<typeof MemberRemoveRequestSchema>;
/** A `member.seed` request. */
export type MemberSeedRequest = z.infer<typeof MemberSeedRequestSchema>;
/** A `member.rejoin` request. */
export type MemberRejoinRequest = z.infer<typeof MemberRejoinRequestSchema>;
/** A `group.reconfigure` request. */
export type GroupReconfigureRequest = z.infer<typeof GroupReconfigureRequestSchema>;
/** A `group.reconfigure.ok` answer. */
export type GroupReconfigureOk = z.infer<typeof GroupReconfigureOkSchema>;
/** Any membership request. */
export type MemberRequest =
  | MemberListRequest
  | MemberAddRequest
  | MemberRemoveRequest
  | MemberSeedRequest
  | MemberRejoinRequest
  | GroupReconfigureRequest;
/** A `member.list.ok` answer. */
export type MemberListOk = z.infer<typeof MemberListOkSchema>;
/** A `member.ok` answer. */
export type MemberOk = z.infer<typeof MemberOkSchema>;
