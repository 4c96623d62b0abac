/**
 * The lookup table (partition -> replication group) and the cluster status report.
 * @module
 */
import { z } from 'zod';
import { AddressSchema, NodeIdSchema } from './primitives.js';

/** A node of the cluster and where it listens. */
export const NodeEntrySchema = z.object({ id: NodeIdSchema, address: AddressSchema });

/**
 * One partition's replication group. `config`: the id of the group's configuration (0, or absent,
 * for the first; each replica move is one stop-sign reconfiguration, the next id): a server placed in
 * a group whose configuration is above 0 joins it by state transfer instead of creating it.
 */
export const GroupEntrySchema = z.object({
  partition: z.number().int().nonnegative(),
  replicas: z.array(NodeIdSchema).min(1),
  config: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});

/**
 * The lookup table handed out by the bootstrap server. `version` grows with every change; a holder
 * replaces its copy only with a higher version. Checked for consistency: node ids unique, every
 * group's partition in `0..partitions-1` and listed once, replicas unique and listed in `nodes`.
 * Groups need not cover every partition (a table may be pushed while groups are being formed).
 */
export const LookupTableSchema = z
  .object({
    version: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    partitions: z
      .number()
      .int()
      .positive()
      .max(1 << 20),
    replication: z.number().int().positive(),
    nodes: z.array(NodeEntrySchema),
    groups: z.array(GroupEntrySchema),
  })
  .superRefine((t, ctx) => {
    const ids = new Set<number>();
    t.nodes.forEach((n, i) => {
      if (ids.has(n.id))
        ctx.addIssue({ code: 'custom', path: ['nodes', i, 'id'], message: `duplicate node id ${n.id}` });
      ids.add(n.id);
    });
    const seen = new Set<number>();
    t.groups.forEach((g, i) => {
      if (g.partition >= t.partitions) {
        ctx.addIssue({
          code: 'custom',
          path: ['groups', i, 'partition'],
          message: `partition ${g.partition} is outside 0..${t.partitions - 1}`,
        });
      }
      if (seen.has(g.partition)) {
        ctx.addIssue({
          code: 'custom',
          path: ['groups', i, 'partition'],
          message: `partition ${g.partition} listed twice`,
        });
      }
      seen.add(g.partition);
      const replicas = new Set<number>();
      g.replicas.forEach((r, j) => {
        if (!ids.has(r))
          ctx.addIssue({ code: 'custom', path: ['groups', i, 'replicas', j], message: `unknown node ${r}` });
        if (replicas.has(r)) {
          ctx.addIssue({
            code: 'custom',
            path: ['groups', i, 'replicas', j],
            message: `node ${r} listed twice`,
          });
        }
        replicas.add(r);
      });
    });
  });

/** How a member is seen by the bootstrap server's failure detector. */
export const MemberStateSchema = z.enum(['alive', 'suspected', 'spare']);

/** A cluster member and its state. */
export const MemberSchema = z.object({ id: NodeIdSchema, address: AddressSchema, state: MemberStateSchema });

/** A replica's role in its group. `stopped` = its configuration decided a stop-sign. */
export const GroupRoleSchema = z.enum(['leader', 'follower', 'stopped']);

/** One group as seen by the reporting node. */
export const GroupStatusSchema = z.object({
  partition: z.number().int().nonnegative(),
  leader: NodeIdSchema.nullable(),
  role: GroupRoleSchema,
  decidedIndex: z.number().int().nonnegative(),
  /**
   * Entries applied to this replica's state machine (at most `decidedIndex`: a decided entry is applied
   * once it is durable here, so a replica that just received a snapshot may apply it a moment later).
   * A `stale` read on this replica sees exactly this prefix. Absent from servers before it was added.
   */
  appliedIndex: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  /** The ballot the replica follows or leads (its promise), when it runs a configuration. */
  ballot: z
    .object({
      n: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
      pid: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    })
    .optional(),
  /** The id of the configuration this replica runs (absent when unknown or while it joins). */
  configId: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  /** The replicas of that configuration. */
  members: z.array(NodeIdSchema).max(64).optional(),
});

/** The states of a server's start-up warm-up, as `status` reports them (see {@link ClusterStatusSchema}). */
export const WARM_UP_STATES = ['off', 'scheduled', 'running', 'done', 'failed', 'stopped'] as const;
/** A state of a server's start-up warm-up. */
export type WarmUpState = (typeof WARM_UP_STATES)[number];

/** A node's view of the cluster (answer to `status`). */
export const ClusterStatusSchema = z.object({
  node: NodeIdSchema,
  table: LookupTableSchema.nullable(),
  groups: z.array(GroupStatusSchema),
  members: z.array(MemberSchema),
  /**
   * The server's start-up warm-up of its replica-move code (`--warm-up`): `off`, `scheduled` (it runs
   * a few seconds after start), `running`, `done`, `failed` or `stopped` (the server closed during it).
   * Absent from servers before it was added.
   */
  warmUp: z.enum(WARM_UP_STATES).optional(),
});

/** A node of a lookup table. */
export type NodeEntry = z.infer<typeof NodeEntrySchema>;
/** A replication group of a lookup table. */
export type GroupEntry = z.infer<typeof GroupEntrySchema>;
/** The lookup table. */
export type LookupTable = z.infer<typeof LookupTableSchema>;
/** A member's state. */
export type MemberState = z.infer<typeof MemberStateSchema>;
/** A member. */
export type Member = z.infer<typeof MemberSchema>;
/** A replica's role. */
export type GroupRole = z.infer<typeof GroupRoleSchema>;
/** One group's status. */
export type GroupStatus = z.infer<typeof GroupStatusSchema>;
/** A node's status report. */
export type ClusterStatus = z.infer<typeof ClusterStatusSchema>;

/** Returns the replicas of `partition` in `table`, or undefined if no group serves it. */
export function replicasOf(table: LookupTable, partition: number): readonly number[] | undefined {
  return table.groups.find((g) => g.partition === partition)?.replicas;
}

/** Returns the address of node `id` in `table`, or undefined if it is not listed. */
export function addressOf(table: LookupTable, id: number): string | undefined {
  return table.nodes.find((n) => n.id === id)?.address;
}
