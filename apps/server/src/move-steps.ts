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
 *
 * The refusal carries the configuration the group runs (over the wire too), so a metadata that fell
 * behind its group (a move whose stop-sign was decided but whose record was lost) is repaired rather
 * than refused forever (`repairRecord`): the group's decided configuration is the truth, and the
 * record only ever moves forward (`adoptConfiguration` of `@paxkv/bootstrap`).
 */
import { adoptConfiguration, MembershipRefusedError, sameMove } from '@paxkv/bootstrap';
import {
  type ClusterMetadata,
  ConfigurationChangedError,
  METADATA_PARTITION,
  type NodeId,
  type ReplicaMove,
} from '@paxkv/common';
import type { GroupConfiguration, ReplicaGroupPort } from './group-port.js';
import type { LogFn } from './logger.js';
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

/**
 * After a step of `mv` that expected `expect` was refused with `CONFIGURATION_CHANGED`: when the
 * configuration the refusing leader runs is newer than `expect` (the metadata's record the step read),
 * records it in the metadata through the metadata group and drops `mv` (planned again from the new
 * record), in one versioned compare-and-set change that applies only while the record is still older
 * (`adoptConfiguration`), and logs it at warn. Resolves true when the metadata was repaired, false
 * when there was nothing to repair (another error, a refusal without a configuration from an older
 * server, a configuration not newer, a record already brought forward, another move recorded), or
 * when the change failed (logged with why: this server no longer leads the metadata group, or the
 * configuration names a server that is not a member); the caller then handles the refusal as any.
 */
export async function repairRecord(
  change: MetadataChanger,
  warn: LogFn,
  group: ReplicaGroupPort,
  mv: ReplicaMove,
  expect: GroupConfiguration,
  refusal: unknown,
): Promise<boolean> {
  if (!(refusal instanceof ConfigurationChangedError)) return false;
  const { configId, members } = refusal.current;
  if (configId <= expect.configId) return false;
  const running = { configId, replicas: members };
  const out = await change(group, (m) => {
    const next = adoptConfiguration(m, mv.partition, running, mv);
    return { metadata: next, changed: next !== m };
  }).catch((e: unknown) => {
    warn(
      { ...mv, running, err: (e as Error).message },
      `partition ${mv.partition}: cannot record the configuration the group runs`,
    );
    return null;
  });
  if (!out?.changed) return false;
  warn(
    { ...mv, recorded: expect, running, version: out.metadata.table.version },
    `partition ${mv.partition}: the metadata recorded configuration ${expect.configId} [${expect.replicas.join(', ')}] but the group runs ${configId} [${members.join(', ')}]; recorded the group's configuration in metadata version ${out.metadata.table.version} and dropped the move from node ${mv.from} to node ${mv.to} (${mv.reason}): it is planned again`,
  );
  return true;
}
