/**
 * Membership as changes of the replicated cluster metadata ({@link ClusterMetadata}): pure functions
 * from one version of the metadata to the next, and the placement policy that decides which replica
 * moves where. The server runs them on the metadata group's leader and proposes the result through
 * that group's log (compare-and-set on the previous version), so every change is a versioned,
 * replicated proposal; nothing here does I/O.
 *
 * Rules:
 * - every change raises `table.version` by exactly one; a function that changes nothing returns the
 *   metadata it was given (`changed: false`);
 * - node ids are never reused (`nextNodeId` only grows); a server that checks in with an id below it
 *   that is no longer listed was removed and is refused;
 * - a server with an empty data dir never takes over the id of a server that holds replicas (its
 *   promises would be lost): it is refused until that server is removed or replaced;
 * - a member is removed at once when it holds no replica; otherwise it is marked `draining`, its
 *   replicas are moved one group at a time ({@link planMoves}, {@link applyMove}), and it leaves with
 *   its last replica;
 * - a move never starts in a group that could not decide it: the replicas that stay must include a
 *   majority of the group's live replicas and be a majority of the group.
 * @module
 */
import {
  type ClusterMetadata,
  type GroupEntry,
  type LookupTable,
  MAX_MEMBERS,
  MAX_METADATA_REPLICAS,
  METADATA_PARTITION,
  type NodeEntry,
  type NodeId,
  type ReplicaMove,
} from '@paxkv/common';
import { MembershipRefusedError } from './errors.js';
import { preferredLeaderLoad } from './table.js';

/**
 * Test-only switches that break one rule each, so that a test can show the rule's check catches it
 * (mutation checks). Never set outside tests.
 */
export const unsafeMembershipMutations = {
  /** `addMember` gives a server with an empty data dir the id of the server at its address, replicas or not. */
  freshTakesReplicaId: false,
  /** `planMoves` moves a replica even where the staying replicas are no live majority. */
  moveWithoutMajority: false,
  /**
   * `removeMember` takes a member off the list at once even when it holds replicas (no drain): its
   * groups keep a replica on a server that is gone, which nothing ever replaces.
   */
  removeWithoutDrain: false,
  /**
   * `planMoves` ignores the members to replace (suspected past `--replace-after`): self-healing never
   * moves a lost server's replicas, so its groups stay one replica short for good.
   */
  ignoreLostServers: false,
  /**
   * `finishRejoin` keeps no record of the fence once the rejoin is done: a member that pulled no
   * metadata version while its rejoin was fenced never learns the fence, keeps its replica unreadable
   * and asks again (removed and re-added over and over).
   */
  forgetRejoinFence: false,
  /**
   * `adoptConfiguration` records the configuration a group reported even when the metadata already
   * records a newer one: a late refusal moves the record backwards, behind the group again.
   */
  adoptOlderConfiguration: false,
};

/** Replicas of the metadata group when the cluster has at least that many servers. */
export const DEFAULT_METADATA_REPLICAS = 3;

/** The outcome of a membership change. */
export interface MembershipChange {
  /** The metadata after the change (the one given when nothing changed). */
  readonly metadata: ClusterMetadata;
  /** Whether a new version must be proposed. */
  readonly changed: boolean;
  /** The member concerned. */
  readonly node: NodeEntry;
  /** `member` (added or already a member), `draining` (replicas being moved), `removed`. */
  readonly state: 'member' | 'draining' | 'removed';
}

/** The lowest `count` node ids of `table` (all of them when fewer): the metadata group's replicas. */
export function metadataReplicasOf(table: LookupTable, count = DEFAULT_METADATA_REPLICAS): NodeId[] {
  return table.nodes
    .map((n) => n.id)
    .sort((a, b) => a - b)
    .slice(0, Math.max(1, count));
}

/**
 * The first version of the metadata, from the table the bootstrap server built and the servers it
 * registered besides (spares). Every server derives the same seed from the same table and spares.
 */
export function seedMetadata(table: LookupTable, spares: readonly NodeEntry[] = []): ClusterMetadata {
  const nodes = [...table.nodes];
  for (const s of spares) {
    if (!nodes.some((n) => n.id === s.id || n.address === s.address))
      nodes.push({ id: s.id, address: s.address });
  }
  nodes.sort((a, b) => a.id - b.id);
  const added = nodes.length !== table.nodes.length;
  return {
    table: { ...table, nodes, version: table.version + (added ? 1 : 0) },
    metaReplicas: metadataReplicasOf(table),
    nextNodeId: Math.max(0, ...nodes.map((n) => n.id)) + 1,
    draining: [],
    moving: [],
  };
}

/** The partitions whose group includes `node`, ascending. */
export function partitionsOf(table: LookupTable, node: NodeId): number[] {
  return table.groups.filter((g) => g.replicas.includes(node)).map((g) => g.partition);
}

function bump(m: ClusterMetadata, table: Omit<LookupTable, 'version'>, rest: Partial<ClusterMetadata> = {}) {
  return { ...m, ...rest, table: { ...table, version: m.table.version + 1 } };
}

function describe(partitions: readonly number[]): string {
  const shown = partitions.slice(0, 8).join(', ');
  return partitions.length > 8 ? `${shown}, ... (${partitions.length} in all)` : shown;
}

/**
 * Adds the server at `address` (a check-in, or `paxkv member add`). With `nodeId` (a server that
 * checks in again with the id it was given) the member keeps its id and its address is updated.
 *
 * @throws {@link MembershipRefusedError} when the id was removed, the address belongs to another member
 *   that holds replicas (a server with an empty data dir must not take its place), or the cluster
 *   already has {@link MAX_MEMBERS} members. The message says what to do.
 */
export function addMember(m: ClusterMetadata, address: string, nodeId?: NodeId): MembershipChange {
  const nodes = m.table.nodes;
  const byAddress = nodes.find((n) => n.address === address);
  if (nodeId !== undefined) {
    const existing = nodes.find((n) => n.id === nodeId);
    if (existing) {
      if (existing.address === address)
        return { metadata: m, changed: false, node: existing, state: stateOf(m, nodeId) };
      if (byAddress) {
        throw new MembershipRefusedError({
          field: 'address',
          reason: `address ${address} belongs to node ${byAddress.id}; start node ${nodeId} on another address, or remove node ${byAddress.id} first (paxkv member remove ${byAddress.id})`,
        });
      }
      const moved = { id: nodeId, address };
      const metadata = bump(m, { ...m.table, nodes: nodes.map((n) => (n.id === nodeId ? moved : n)) });
      return { metadata, changed: true, node: moved, state: stateOf(m, nodeId) };
    }
    if (nodeId < m.nextNodeId) {
      throw new MembershipRefusedError({
        field: 'nodeId',
        reason: `node ${nodeId} was removed from the cluster; start this server with an empty data dir to join as a new member`,
      });
    }
  }
  if (byAddress) {
    const held = [
      ...partitionsOf(m.table, byAddress.id),
      ...m.moving.filter((x) => x.to === byAddress.id).map((x) => x.partition),
    ];
    if ((held.length === 0 || unsafeMembershipMutations.freshTakesReplicaId) && nodeId === undefined) {
      return { metadata: m, changed: false, node: byAddress, state: stateOf(m, byAddress.id) };
    }
    throw new MembershipRefusedError({
      field: 'address',
      reason:
        held.length > 0
          ? `address ${address} is node ${byAddress.id}, which holds replicas of partitions ${describe(held)}; if the server at ${address} lost its data, remove node ${byAddress.id} first (paxkv member remove ${byAddress.id}) or start it on another port`
          : `address ${address} is node ${byAddress.id}; remove node ${byAddress.id} first (paxkv member remove ${byAddress.id}) or start this server on another port`,
    });
  }
  if (nodes.length >= MAX_MEMBERS) {
    throw new MembershipRefusedError({
      field: 'address',
      reason: `the cluster already has ${MAX_MEMBERS} members (the limit); remove one first`,
    });
  }
  const id = nodeId ?? m.nextNodeId;
  const node = { id, address };
  const metadata = bump(
    m,
    { ...m.table, nodes: [...nodes, node].sort((a, b) => a.id - b.id) },
    {
      nextNodeId: Math.max(m.nextNodeId, id + 1),
    },
  );
  return { metadata, changed: true, node, state: 'member' };
}

function stateOf(m: ClusterMetadata, id: NodeId): 'member' | 'draining' {
  return m.draining.includes(id) ? 'draining' : 'member';
}

/**
 * Removes member `node`: at once when it holds no replica, else it becomes `draining` (its replicas
 * are moved by {@link planMoves}/{@link applyMove}; it leaves with the last one).
 *
 * A replica of the metadata group is drained too: its metadata replica moves first (see
 * {@link planMoves}), so any member, the bootstrap server and the first servers included, can leave.
 *
 * @throws {@link MembershipRefusedError} when `node` is not a member, or holds a replica of a group
 *   (the metadata group included) that no other server could take over (every other member is already
 *   in the group or draining): add a server first.
 */
export function removeMember(m: ClusterMetadata, node: NodeId): MembershipChange {
  const entry = m.table.nodes.find((n) => n.id === node);
  if (!entry) {
    throw new MembershipRefusedError({
      field: 'node',
      reason: `node ${node} is not a member of the cluster; see the members with paxkv member list`,
    });
  }
  const meta = m.metaReplicas.includes(node);
  if (meta && !m.draining.includes(node)) {
    const takers = m.table.nodes.filter((n) => !m.metaReplicas.includes(n.id) && !m.draining.includes(n.id));
    if (takers.length === 0) {
      throw new MembershipRefusedError({
        field: 'node',
        reason: `node ${node} is a replica of the metadata group (nodes ${m.metaReplicas.join(', ')}) and no other server can take its place; add a server first (paxkv member add HOST:PORT, or start one with --join)`,
      });
    }
  }
  const held = partitionsOf(m.table, node);
  if ((held.length === 0 && !meta) || unsafeMembershipMutations.removeWithoutDrain) {
    const metadata = bump(
      m,
      { ...m.table, nodes: m.table.nodes.filter((n) => n.id !== node) },
      {
        draining: m.draining.filter((d) => d !== node),
      },
    );
    return { metadata, changed: true, node: entry, state: 'removed' };
  }
  if (m.draining.includes(node)) return { metadata: m, changed: false, node: entry, state: 'draining' };
  const draining = new Set([...m.draining, node]);
  for (const g of m.table.groups) {
    if (!g.replicas.includes(node)) continue;
    const candidates = m.table.nodes.filter((n) => !g.replicas.includes(n.id) && !draining.has(n.id));
    if (candidates.length === 0) {
      throw new MembershipRefusedError({
        field: 'node',
        reason: `removing node ${node} would leave partition ${g.partition} with ${g.replicas.length - 1} of ${g.replicas.length} replicas: no other server can take its replica; add a server first (paxkv member add HOST:PORT, or start one with --join)`,
      });
    }
  }
  const metadata = bump(m, m.table, { draining: [...m.draining, node].sort((a, b) => a - b) });
  return { metadata, changed: true, node: entry, state: 'draining' };
}

/** What {@link planMoves} knows about the cluster right now. */
export interface PlanInput {
  /** Whether a member is reachable (its failure detector says alive). */
  readonly alive: (node: NodeId) => boolean;
  /** Members suspected for longer than `--replace-after`: their replicas are replaced. */
  readonly replace: ReadonlySet<NodeId>;
  /** Partitions with a move already in flight besides `moving` (never two moves in one group). */
  readonly inFlight: ReadonlySet<number>;
  /** Most moves in flight at once (the ones in `inFlight` included). */
  readonly maxInFlight: number;
  /** Whether to even out replica counts when nothing else needs moving (rebalancing on join). */
  readonly rebalance: boolean;
}

function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** Whether group `g` can decide a move of `from`'s replica: the staying replicas are a live majority. */
function canMove(g: Pick<GroupEntry, 'replicas'>, from: NodeId, alive: (n: NodeId) => boolean): boolean {
  if (unsafeMembershipMutations.moveWithoutMajority) return true;
  const staying = g.replicas.filter((r) => r !== from && alive(r));
  return staying.length >= majority(g.replicas.length);
}

/**
 * The next replica moves, at most `maxInFlight - inFlight.size`, never two in one group: first the
 * metadata group's replica on a draining member or a member to replace (`partition` =
 * `METADATA_PARTITION`), then the replicas of draining members and of members to replace, then (when `rebalance` and nothing else
 * moves) one replica from the most to the least loaded server while they differ by more than one.
 * A replica goes to the live member outside the group with the fewest replicas (counting the moves
 * planned), ties to the lowest id; draining and replaced members never receive one. Deterministic.
 */
export function planMoves(m: ClusterMetadata, input: PlanInput): ReplicaMove[] {
  const inFlight = new Set([...input.inFlight, ...m.moving.map((x) => x.partition)]);
  const budget = input.maxInFlight - inFlight.size;
  if (budget <= 0) return [];
  const replace = unsafeMembershipMutations.ignoreLostServers ? [] : [...input.replace];
  const leaving = new Set<NodeId>([...m.draining, ...replace]);
  const load = new Map<NodeId, number>(m.table.nodes.map((n) => [n.id, 0]));
  for (const g of m.table.groups) for (const r of g.replicas) load.set(r, (load.get(r) ?? 0) + 1);
  const receivers = () =>
    m.table.nodes
      .map((n) => n.id)
      .filter((id) => !leaving.has(id) && input.alive(id))
      .sort((a, b) => (load.get(a) ?? 0) - (load.get(b) ?? 0) || a - b);
  const moves: ReplicaMove[] = [];
  const busy = new Set(inFlight);
  // The metadata group first: a replica of it on a leaving member moves to a live member outside it.
  const metaFrom = m.metaReplicas.find((r) => leaving.has(r));
  if (metaFrom !== undefined && !busy.has(METADATA_PARTITION)) {
    const metaGroup = { partition: METADATA_PARTITION, replicas: m.metaReplicas };
    const to = receivers().find((id) => !m.metaReplicas.includes(id));
    if (to !== undefined && canMove(metaGroup, metaFrom, input.alive)) {
      moves.push({
        partition: METADATA_PARTITION,
        from: metaFrom,
        to,
        reason: m.draining.includes(metaFrom) ? 'drain' : 'replace',
      });
      busy.add(METADATA_PARTITION);
    }
  }
  for (const g of m.table.groups) {
    if (moves.length >= budget) break;
    if (busy.has(g.partition)) continue;
    const from = g.replicas.find((r) => leaving.has(r));
    if (from === undefined || !canMove(g, from, input.alive)) continue;
    const to = receivers().find((id) => !g.replicas.includes(id));
    if (to === undefined) continue;
    moves.push({ partition: g.partition, from, to, reason: m.draining.includes(from) ? 'drain' : 'replace' });
    busy.add(g.partition);
    load.set(from, (load.get(from) ?? 0) - 1);
    load.set(to, (load.get(to) ?? 0) + 1);
  }
  if (moves.length > 0 || busy.size > 0 || !input.rebalance) return moves;
  const order = receivers();
  const least = order[0];
  const most = order[order.length - 1];
  if (least === undefined || most === undefined || (load.get(most) ?? 0) - (load.get(least) ?? 0) <= 1) {
    return moves;
  }
  const g = m.table.groups.find((x) => x.replicas.includes(most) && !x.replicas.includes(least));
  if (g && canMove(g, most, input.alive))
    moves.push({ partition: g.partition, from: most, to: least, reason: 'rebalance' });
  return moves;
}

/**
 * Records that `move` starts (the receiving server opens its replica as a joiner when it sees it):
 * the move is listed in `moving` until {@link applyMove} or {@link abandonMove}.
 *
 * @throws {@link MembershipRefusedError} when the group already has a move in progress or does not fit.
 */
export function startMove(m: ClusterMetadata, move: ReplicaMove): ClusterMetadata {
  const g =
    move.partition === METADATA_PARTITION
      ? { replicas: m.metaReplicas }
      : m.table.groups.find((x) => x.partition === move.partition);
  if (
    m.moving.some((x) => x.partition === move.partition) ||
    !g ||
    !g.replicas.includes(move.from) ||
    g.replicas.includes(move.to)
  ) {
    throw new MembershipRefusedError({
      field: 'move',
      reason: `partition ${move.partition} cannot move from node ${move.from} to node ${move.to} now (a move is in progress or the table changed); re-plan from the current metadata`,
    });
  }
  return bump(m, m.table, { moving: [...m.moving, move] });
}

/** Drops the move of `partition` from `moving` (it failed or became impossible); no-op if none. */
export function abandonMove(m: ClusterMetadata, partition: number): ClusterMetadata {
  if (!m.moving.some((x) => x.partition === partition)) return m;
  return bump(m, m.table, { moving: m.moving.filter((x) => x.partition !== partition) });
}

/**
 * The replicas of a group after `from` moved to `to`: the staying replicas keep their order and the
 * new replica comes last. The first replica is the group's preferred leader: a replica that joins by
 * state transfer is never preferred at once, so a move does not also move the leadership onto a
 * replica still catching up (the leader of the stopped configuration keeps leading the next one when
 * it stays; leadership rebalancing evens the preferred leaders out once no move runs).
 *
 * When `from` is the preferred leader and `table` is given, the staying replica preferred for the
 * fewest groups of `table` becomes first (ties: the earlier one): a drain of a server that led many
 * groups spreads their leaderships over the servers that stay instead of piling them on the next
 * replica of each list (measured: a 4-server drain ended 8/4/4 leaders; each extra one later cost a
 * leader change of rebalancing). The configuration's first member is also its successor leader
 * when the stopped configuration's leader leaves (`@paxkv/paxos` `ReconfigurablePaxos`).
 */
export function movedReplicas(
  replicas: readonly NodeId[],
  from: NodeId,
  to: NodeId,
  table?: LookupTable,
): NodeId[] {
  const staying = replicas.filter((r) => r !== from);
  if (table && replicas[0] === from && staying.length > 1) {
    const load = preferredLeaderLoad(table);
    let best = 0;
    for (let i = 1; i < staying.length; i++) {
      if ((load.get(staying[i]!) ?? 0) < (load.get(staying[best]!) ?? 0)) best = i;
    }
    if (best > 0) staying.unshift(...staying.splice(best, 1));
  }
  return [...staying, to];
}

/**
 * Records a move that ran: the group of `move.partition` holds {@link movedReplicas} of its replicas
 * (or `replicas`, the configuration the group was given: the same members in the order the move
 * chose), at configuration `configId` (default the next one). A server placed there later joins by
 * state transfer. A draining member that no longer holds a replica leaves the cluster with this
 * version.
 *
 * @throws {@link MembershipRefusedError} when the group does not hold `from` or already holds `to`,
 * or `replicas` are not the group's replicas after the move.
 */
export function applyMove(
  m: ClusterMetadata,
  move: ReplicaMove,
  configId?: number,
  replicas?: readonly NodeId[],
): ClusterMetadata {
  if (move.partition === METADATA_PARTITION) return applyMetadataMove(m, move, configId);
  const g = m.table.groups.find((x) => x.partition === move.partition);
  if (!g?.replicas.includes(move.from) || g.replicas.includes(move.to)) {
    throw new MembershipRefusedError({
      field: 'move',
      reason: `partition ${move.partition} does not hold node ${move.from} or already holds node ${move.to}; re-plan from the current metadata`,
    });
  }
  const config = configId ?? (g.config ?? 0) + 1;
  const moved = movedReplicas(g.replicas, move.from, move.to, m.table);
  if (replicas && (replicas.length !== moved.length || !moved.every((r) => replicas.includes(r)))) {
    throw new MembershipRefusedError({
      field: 'move',
      reason: `partition ${move.partition} would hold ${replicas.join(', ')} instead of ${moved.join(', ')} after moving node ${move.from} to node ${move.to}; re-plan from the current metadata`,
    });
  }
  const next = replicas ? [...replicas] : moved;
  const groups = m.table.groups.map((x) => (x === g ? { ...x, replicas: next, config } : x));
  const table = { ...m.table, groups };
  const gone =
    m.draining.includes(move.from) &&
    !m.metaReplicas.includes(move.from) &&
    partitionsOf(table as LookupTable, move.from).length === 0;
  return bump(m, gone ? { ...table, nodes: table.nodes.filter((n) => n.id !== move.from) } : table, {
    draining: gone ? m.draining.filter((d) => d !== move.from) : m.draining,
    moving: m.moving.filter((x) => x.partition !== move.partition),
    ...withoutRejoinRecord(m.rejoined, move.partition, move.from),
  });
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

/** A group's configuration as the group itself reports it: its id and its replicas. */
export interface RunningConfiguration {
  readonly configId: number;
  readonly replicas: readonly NodeId[];
}

/**
 * Brings the metadata's record of a group up to the configuration the group runs, when the metadata
 * fell behind it (a move whose stop-sign was decided but whose record was lost, a stale mover): the
 * group of `partition` (for {@link METADATA_PARTITION}: `metaReplicas` and `metaConfig`) gets
 * `running`'s id and replicas, and the group's move `move` leaves `moving` (it was planned from the
 * stale record; {@link planMoves} plans again from the new one). The staying replicas keep their order
 * (the first is the preferred leader) and the others come last, in `running`'s order. A draining member
 * that holds nothing any more leaves, as with {@link applyMove}; the rejoin record of a replica that
 * left the group is dropped.
 *
 * The group's own decided configuration is the truth and the record only ever moves forward: `m` is
 * returned unchanged unless the recorded configuration id is below `running.configId` (one
 * configuration is decided per id, and ids grow), and unless the group has no move recorded or has
 * `move` itself (another leader's move is left to the leader that runs it).
 *
 * @throws {@link MembershipRefusedError} when `running` lists a node that is not a member, lists one
 *   twice, or (the metadata group) more than `MAX_METADATA_REPLICAS` of them.
 */
export function adoptConfiguration(
  m: ClusterMetadata,
  partition: number,
  running: RunningConfiguration,
  move?: ReplicaMove,
): ClusterMetadata {
  const meta = partition === METADATA_PARTITION;
  const g = meta ? undefined : m.table.groups.find((x) => x.partition === partition);
  const recorded = meta ? { replicas: m.metaReplicas, config: m.metaConfig } : g;
  if (!recorded) return m;
  const behind =
    (recorded.config ?? 0) < running.configId || unsafeMembershipMutations.adoptOlderConfiguration;
  const mv = m.moving.find((x) => x.partition === partition);
  const ownMove = mv === undefined || (move !== undefined && sameMove(mv, move));
  if (!behind || !ownMove) return m;
  const ids = new Set(m.table.nodes.map((n) => n.id));
  const unknown = running.replicas.find((r) => !ids.has(r));
  if (
    unknown !== undefined ||
    running.replicas.length === 0 ||
    new Set(running.replicas).size !== running.replicas.length ||
    (meta && running.replicas.length > MAX_METADATA_REPLICAS)
  ) {
    throw new MembershipRefusedError({
      field: 'configuration',
      reason: `partition ${partition} runs configuration ${running.configId} [${running.replicas.join(', ')}], which the metadata cannot record (${unknown === undefined ? 'not a valid replica list' : `node ${unknown} is not a member`}); remove the group's replicas on servers that are not members (group.reconfigure) or add those servers back (paxkv member add)`,
    });
  }
  const replicas = [
    ...recorded.replicas.filter((r) => running.replicas.includes(r)),
    ...running.replicas.filter((r) => !recorded.replicas.includes(r)),
  ];
  const left = recorded.replicas.filter((r) => !replicas.includes(r));
  const metaReplicas = meta ? replicas : m.metaReplicas;
  const groups = meta
    ? m.table.groups
    : m.table.groups.map((x) => (x === g ? { ...x, replicas, config: running.configId } : x));
  const held = { ...m.table, groups };
  const gone = left.filter(
    (n) => m.draining.includes(n) && !metaReplicas.includes(n) && partitionsOf(held, n).length === 0,
  );
  const rejoined = m.rejoined?.filter((r) => r.partition !== partition || !left.includes(r.node));
  return bump(
    m,
    { ...held, nodes: held.nodes.filter((n) => !gone.includes(n.id)) },
    {
      ...(meta ? { metaReplicas, metaConfig: running.configId } : {}),
      draining: m.draining.filter((d) => !gone.includes(d)),
      moving: m.moving.filter((x) => x !== mv),
      ...(rejoined ? { rejoined } : {}),
    },
  );
}

/**
 * Records that member `node`'s replica of `partition` could not read its state at start and rejoins
 * the group as a new replica: a move `{ from: node, to: node, reason: 'rejoin' }` in `moving`. The
 * server that runs it first removes `node` from the group (the configuration that decides this is
 * the `fence`, {@link fenceRejoin}), then adds it back ({@link finishRejoin}); the member joins only
 * configurations above the fence, so it never acts in a configuration whose promises it lost.
 * Unchanged when the same rejoin is already recorded. `token` names the member's request (see
 * `RejoinTokenSchema`): a request with another token (the member restarted, or its replica became
 * unreadable again) replaces the recorded one, and a fence taken for the old token is dropped (the
 * member may have joined configurations above it since): the group is fenced again. Any finished
 * rejoin record of that replica is dropped too.
 *
 * @throws {@link MembershipRefusedError} when `node` is not a replica of `partition`, is draining, or
 *   the group has another move in progress (retry once it is done).
 */
export function startRejoin(
  m: ClusterMetadata,
  partition: number,
  node: NodeId,
  token?: string,
): ClusterMetadata {
  const g = m.table.groups.find((x) => x.partition === partition);
  if (!g?.replicas.includes(node)) {
    throw new MembershipRefusedError({
      field: 'partition',
      reason: `node ${node} is not a replica of partition ${partition}; nothing to rejoin`,
    });
  }
  const current = m.moving.find((x) => x.partition === partition);
  const records = withoutRejoinRecord(m.rejoined, partition, node);
  if (current?.reason === 'rejoin' && current.to === node) {
    if (token === undefined || current.token === token) return m;
    const renewed: ReplicaMove = { partition, from: node, to: node, reason: 'rejoin', token };
    return bump(m, m.table, {
      moving: m.moving.map((x) => (x === current ? renewed : x)),
      ...records,
    });
  }
  if (current) {
    throw new MembershipRefusedError({
      field: 'partition',
      reason: `partition ${partition} has a move in progress (node ${current.from} to node ${current.to}); retry once it is done`,
    });
  }
  if (m.draining.includes(node)) {
    throw new MembershipRefusedError({
      field: 'node',
      reason: `node ${node} is being removed: its replicas are moved to other servers instead`,
    });
  }
  const move: ReplicaMove = {
    partition,
    from: node,
    to: node,
    reason: 'rejoin',
    ...(token ? { token } : {}),
  };
  return bump(m, m.table, { moving: [...m.moving, move], ...records });
}

/** `{ rejoined }` without the record of `node` in `partition` (empty object: nothing to change). */
function withoutRejoinRecord(
  records: ClusterMetadata['rejoined'],
  partition: number,
  node: NodeId,
): Partial<ClusterMetadata> {
  if (!records?.some((r) => r.partition === partition && r.node === node)) return {};
  return { rejoined: records.filter((r) => r.partition !== partition || r.node !== node) };
}

/**
 * Records the fence of the rejoin of `partition`: `configId`, the group's configuration without the
 * rejoining member (decided). Unchanged when it is already recorded.
 * @throws {@link MembershipRefusedError} when no rejoin of `partition` is in progress.
 */
export function fenceRejoin(m: ClusterMetadata, partition: number, configId: number): ClusterMetadata {
  const mv = m.moving.find((x) => x.partition === partition && x.reason === 'rejoin');
  if (!mv) {
    throw new MembershipRefusedError({
      field: 'partition',
      reason: `partition ${partition} has no rejoin in progress; re-plan from the current metadata`,
    });
  }
  if (mv.fence === configId) return m;
  return bump(m, m.table, {
    moving: m.moving.map((x) => (x === mv ? { ...x, fence: configId } : x)),
  });
}

/**
 * Records that the rejoin of `partition` is done: the group (same replicas) runs configuration
 * `configId`, which holds the member again as a new replica; the move leaves `moving`.
 * @throws {@link MembershipRefusedError} when no fenced rejoin of `partition` is in progress or
 *   `configId` is not above its fence.
 */
export function finishRejoin(m: ClusterMetadata, partition: number, configId: number): ClusterMetadata {
  const mv = m.moving.find((x) => x.partition === partition && x.reason === 'rejoin');
  if (mv?.fence === undefined || configId <= mv.fence) {
    throw new MembershipRefusedError({
      field: 'partition',
      reason: `partition ${partition} has no rejoin past configuration ${configId}; re-plan from the current metadata`,
    });
  }
  const groups = m.table.groups.map((x) => (x.partition === partition ? { ...x, config: configId } : x));
  // The fence stays readable after the move is gone (`rejoined`): a member that pulled no metadata
  // version while the move was fenced still finds it, for its own request token only.
  const kept = withoutRejoinRecord(m.rejoined, partition, mv.from).rejoined ?? m.rejoined ?? [];
  const record =
    mv.token !== undefined && unsafeMembershipMutations.forgetRejoinFence !== true
      ? [{ partition, node: mv.from, fence: mv.fence, token: mv.token }]
      : [];
  const rejoined = [...kept, ...record];
  return bump(
    m,
    { ...m.table, groups },
    {
      moving: m.moving.filter((x) => x !== mv),
      ...(rejoined.length > 0 || m.rejoined ? { rejoined } : {}),
    },
  );
}

/**
 * The preferred leader of each group is its first replica. Returns the change that evens out how many
 * groups each live server is preferred for (leadership rebalancing), or null when the counts of the
 * live servers that hold replicas differ by at most one: the group where the server preferred most
 * often is first and the one preferred least often is a replica, which gets the first place
 * ({@link preferLeader}). One group at a time; deterministic (ties to the lowest id and partition).
 */
export function planLeaderBalance(
  m: ClusterMetadata,
  alive: (node: NodeId) => boolean,
): { readonly partition: number; readonly leader: NodeId } | null {
  const count = new Map<NodeId, number>();
  for (const g of m.table.groups) {
    for (const r of g.replicas) if (alive(r) && !count.has(r)) count.set(r, 0);
  }
  for (const g of m.table.groups) {
    const first = g.replicas[0];
    if (first !== undefined && count.has(first)) count.set(first, (count.get(first) ?? 0) + 1);
  }
  const byCount = [...count.entries()].sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  for (const [most, high] of [...byCount].reverse()) {
    for (const [least, low] of byCount) {
      if (high - low <= 1) break;
      const g = m.table.groups.find((x) => x.replicas[0] === most && x.replicas.includes(least));
      if (g) return { partition: g.partition, leader: least };
    }
  }
  return null;
}

/**
 * Makes `node` the preferred leader of `partition` (its first replica; the others keep their order).
 * @throws {@link MembershipRefusedError} when `node` is not a replica of `partition`.
 */
export function preferLeader(m: ClusterMetadata, partition: number, node: NodeId): ClusterMetadata {
  const g = m.table.groups.find((x) => x.partition === partition);
  if (!g?.replicas.includes(node)) {
    throw new MembershipRefusedError({
      field: 'partition',
      reason: `node ${node} is not a replica of partition ${partition}; re-plan from the current metadata`,
    });
  }
  if (g.replicas[0] === node) return m;
  const replicas = [node, ...g.replicas.filter((r) => r !== node)];
  const groups = m.table.groups.map((x) => (x === g ? { ...x, replicas } : x));
  return bump(m, { ...m.table, groups });
}

/**
 * {@link applyMove} of the metadata group itself: `from` is replaced by `to` in `metaReplicas` (same
 * position) and `metaConfig` becomes `configId` (default the next one); a draining member that holds
 * nothing any more leaves.
 */
function applyMetadataMove(m: ClusterMetadata, move: ReplicaMove, configId?: number): ClusterMetadata {
  if (!m.metaReplicas.includes(move.from) || m.metaReplicas.includes(move.to)) {
    throw new MembershipRefusedError({
      field: 'move',
      reason: `the metadata group does not hold node ${move.from} or already holds node ${move.to}; re-plan from the current metadata`,
    });
  }
  const metaReplicas = m.metaReplicas.map((r) => (r === move.from ? move.to : r));
  const gone = m.draining.includes(move.from) && partitionsOf(m.table, move.from).length === 0;
  const table = gone ? { ...m.table, nodes: m.table.nodes.filter((n) => n.id !== move.from) } : m.table;
  return bump(m, table, {
    metaReplicas,
    metaConfig: configId ?? (m.metaConfig ?? 0) + 1,
    draining: gone ? m.draining.filter((d) => d !== move.from) : m.draining,
    moving: m.moving.filter((x) => x.partition !== move.partition),
  });
}
