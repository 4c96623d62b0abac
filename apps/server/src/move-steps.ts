/**
 * The guards of each step of a replica move (`replica-mover.ts`). A move is planned from this
 * server's copy of the metadata, which may be stale (a deposed metadata leader, a server that just
 * restarted and still believes it leads); two rules keep a stale mover from changing a group:
 *
 * 1. Before every reconfiguration the mover re-reads the metadata through the metadata group
 *    (`confirmMove`: a linearizable read on the group's leader, so only a server that leads the
 *    metadata group now gets an answer) and checks that its move is still the one recorded, at the
 *    same step (fence). The configuration it then asks for is computed from that fresh read.
 * 2. The reconfiguration carries the configuration it replaces (`expectedConfiguration`); the group's
 *    leader refuses it with `CONFIGURATION_CHANGED` unless the group still runs exactly that one
 *    (`ReplicaGroup.reconfigure`'s compare-and-set). Rule 1 narrows the window; rule 2 closes it: a
 *    mover whose read was fresh but who was deposed right after cannot replace a newer configuration.
 */
import { MembershipRefusedError } from '@paxkv/bootstrap';
import { type ClusterMetadata, METADATA_PARTITION, type NodeId, type ReplicaMove } from '@paxkv/common';
import type { GroupConfiguration, ReplicaGroupPort } from './group-port.js';
import type { MetadataChange } from './metadata-store.js';

/** Proposes (or, unchanged, linearizably reads) the metadata on the local replica: the mover's `change`. */
export type MetadataChanger = <T extends MetadataChange>(
  group: ReplicaGroupPort,
  fn: (m: ClusterMetadata) => T,
) => Promise<T>;

/**
 * The configuration `partition`'s group runs according to `m` (its id and replicas): what a
 * reconfiguration planned from `m` must replace. Null when `m` has no such partition.
 */
export function expectedConfiguration(m: ClusterMetadata, partition: number): GroupConfiguration | null {
  if (partition === METADATA_PARTITION) return { configId: m.metaConfig ?? 0, replicas: m.metaReplicas };
  const g = m.table.groups.find((x) => x.partition === partition);
  return g ? { configId: g.config ?? 0, replicas: g.replicas } : null;
}

/**
 * True when `a` and `b` are the same move: partition, members, reason and rejoin token (a renewed
 * rejoin request is another move); the fence is a step of the move, not part of its identity.
 */
export function sameMove(a: ReplicaMove, b: ReplicaMove): boolean {
  return (
    a.partition === b.partition &&
    a.from === b.from &&
    a.to === b.to &&
    a.reason === b.reason &&
    a.token === b.token
  );
}

/**
 * Re-reads the metadata through the metadata group and returns it if `mv` is still recorded there,
 * with the fence `fence` (undefined: not fenced yet); nothing is written. Rejects with
 * `NOT_LEADER`/`NO_LEADER` when this server no longer leads the metadata group, and with
 * `MembershipRefusedError` when the move is gone or at another step (another leader ran or dropped
 * it): the caller then stops, and the current leader re-plans.
 */
export async function confirmMove(
  change: MetadataChanger,
  group: ReplicaGroupPort,
  mv: ReplicaMove,
  fence: number | undefined,
  unsafeHeld?: ClusterMetadata | null,
): Promise<ClusterMetadata> {
  // TESTING ONLY (`unsafeMoveSteps: 'heldMetadata'`): the step trusts the copy held since planning.
  if (unsafeHeld) return unsafeHeld;
  const out = await change(group, (m) => {
    const cur = m.moving.find((x) => x.partition === mv.partition);
    if (!cur || !sameMove(cur, mv) || cur.fence !== fence) {
      throw new MembershipRefusedError({
        field: 'move',
        reason: `the move of partition ${mv.partition} from node ${mv.from} to node ${mv.to} (${mv.reason}${fence === undefined ? '' : `, fence ${fence}`}) is no longer recorded at this step in metadata version ${m.table.version} (another metadata leader ran or dropped it); the current leader re-plans`,
      });
    }
    return { metadata: m, changed: false };
  });
  return out.metadata;
}

/** `replicas` without `node` (the fence configuration of a rejoin). */
export function without(replicas: readonly NodeId[], node: NodeId): NodeId[] {
  return replicas.filter((r) => r !== node);
}
