/**
 * The replicated home of the lookup table and the member list: the metadata group.
 *
 * - **Where it lives.** A replica group of its own (log partition {@link METADATA_PARTITION}, never a
 *   data partition), built by the same {@link GroupFactory} as every data group (Sequence Paxos, the
 *   kvstore state machine, the server's shared WAL), replicated on the metadata replicas: the lowest
 *   three node ids of the first table (`metadataReplicasOf`). Its state is one key,
 *   {@link METADATA_KEY}, holding the {@link ClusterMetadata} as JSON.
 * - **Every change is a versioned proposal.** A change (a server checking in, `member add`, `member
 *   remove`, a replica move) runs on the group's leader: a linearizable read of the metadata, the pure
 *   change of `@paxkv/bootstrap`'s membership module (version + 1), and a compare-and-set (`txn` on
 *   the key's `modRevision`) through the group's log. Other servers forward the change to the leader
 *   through the request path (the one forward/retry policy).
 * - **Any server answers.** Every server keeps the newest metadata it has seen (persisted to
 *   `<data dir>/metadata.json`): metadata replicas read their own replica every heartbeat, the others
 *   pull it (`member.list` with `since`) from a metadata replica, or any member, over their peer links.
 *   A newer table is adopted through the {@link GroupHost} (versions only grow). `lookup`, `status` and
 *   `member.list` are answered from that copy.
 * - **The bootstrap server is no longer special once the cluster is up.** It stops taking check-ins,
 *   writes the first version (the table it built and the spares it registered, "the seed", a
 *   `member.seed` request accepted only from a peer) through the metadata group's leader, and so hands
 *   over: from then on any server takes check-ins (`checkin` registers the server through
 *   the metadata group; a late server becomes a spare) and the bootstrap server can fail for good.
 * - **Failure detector.** Every server keeps a link to every member; a member whose link has been
 *   down for longer than {@link MetadataService.suspectAfterMs} is `suspected`. On the metadata leader,
 *   a member suspected for longer than `--replace-after` has its replicas moved (self-healing), a
 *   draining member has its replicas moved, and a new server receives replicas (rebalancing), at most
 *   `--max-moves-in-flight` moves at once, each through a {@link GroupReconfigurer}.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  abandonMove,
  addMember,
  applyMove,
  metadataReplicasOf,
  partitionsOf,
  planMoves,
  removeMember,
  seedMetadata,
  startMove,
} from '@paxkv/bootstrap';
import {
  BadRequestError,
  type BootstrapRequest,
  type ClusterMetadata,
  ClusterMetadataSchema,
  errorMessage,
  InternalError,
  METADATA_PARTITION,
  type Member,
  type MemberOk,
  type MemberRequest,
  type NodeId,
  NotReadyError,
  type ReplicaMove,
  type ServerResponse,
  UnauthenticatedError,
  UnavailableError,
} from '@paxkv/common';
import type { BootstrapRole, MemberChannel } from './bootstrap-role.js';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';
import type { GroupFactory, ReplicaGroupPort } from './group-port.js';
import { writeJsonFile } from './identity.js';
import type { PeerLinks } from './peers.js';
import type { RequestOrigin, RequestPath } from './request-path.js';

/** The key of the metadata group's state machine that holds the cluster metadata. */
export const METADATA_KEY = 'paxkv/cluster-metadata';
/** File (in the data dir) with the newest metadata this server has seen. */
export const METADATA_FILE = 'metadata.json';
/** How many times a change is re-read and re-proposed when the metadata moved under it. */
const CAS_ATTEMPTS = 5;

/**
 * Changes the replicas of one data group: the port through which the metadata leader moves a replica
 * (a stop-sign reconfiguration of that group, run by the group's leader). Resolves once the new
 * configuration runs; rejects with a typed error otherwise (the move is then abandoned and planned
 * again later).
 */
export interface GroupReconfigurer {
  reconfigure(partition: number, replicas: readonly NodeId[]): Promise<{ readonly configId: number }>;
}

/** What {@link MetadataService} needs from the rest of the server. */
export interface MetadataDeps {
  readonly groupFactory: GroupFactory;
  readonly groups: GroupHost;
  readonly peers: PeerLinks;
  readonly requests: () => RequestPath;
  readonly bootstrap: BootstrapRole;
  /** Moves replicas; null when replica groups cannot be reconfigured (moves are planned, not run). */
  readonly reconfigurer: GroupReconfigurer | null;
}

/** Parses the stored metadata; throws {@link InternalError} when it is not valid (never expected). */
function parseMetadata(value: unknown): ClusterMetadata {
  let raw: unknown = value;
  if (typeof value === 'string') {
    try {
      raw = JSON.parse(value);
    } catch {
      raw = undefined;
    }
  }
  const r = ClusterMetadataSchema.safeParse(raw);
  if (!r.success) throw new InternalError({ reason: 'the stored cluster metadata is not valid' });
  return r.data;
}

/** See the module comment. */
export class MetadataService {
  private metadata: ClusterMetadata | null = null;
  private group: ReplicaGroupPort | null = null;
  private opening = false;
  private refreshing = false;
  private leading = false;
  private seeding = false;
  private pullTurn = 0;
  /** Serialises the changes this server proposes (each one a read + compare-and-set). */
  private proposing: Promise<unknown> = Promise.resolve();
  /** Per member: when its link was last seen up (ctx clock). */
  private readonly lastSeen = new Map<NodeId, number>();
  /** Per member: since when its link has been up without a break (ctx clock); absent while down. */
  private readonly upSince = new Map<NodeId, number>();
  /** Moves this leader is running. */
  private readonly running = new Set<number>();
  private lastBlockedLog = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: MetadataDeps,
  ) {
    try {
      this.metadata = parseMetadata(
        JSON.parse(readFileSync(join(ctx.config.dataDir, METADATA_FILE), 'utf8')),
      );
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        ctx.log.warn({ err: (e as Error).message }, `ignoring ${METADATA_FILE}: it will be fetched again`);
      }
    }
  }

  /** The newest metadata this server has seen, or null before the bootstrap server wrote it. */
  get current(): ClusterMetadata | null {
    return this.metadata;
  }

  /** The local replica of the metadata group, if this server is one (and it is open). */
  get localGroup(): ReplicaGroupPort | null {
    return this.group;
  }

  /** A member is suspected after its link has been down this long: 6 heartbeats or 3 link liveness periods. */
  get suspectAfterMs(): number {
    const c = this.ctx.config;
    return Math.max(c.heartbeatMs * 6, c.linkLivenessMs * 3);
  }

  /** The address of member `node`, if listed. */
  addressOf(node: NodeId): string | undefined {
    return this.metadata?.table.nodes.find((n) => n.id === node)?.address;
  }

  /** The metadata group's replicas: from the metadata, else from a first table that lists this server. */
  metaReplicas(): readonly NodeId[] | null {
    if (this.metadata) return this.metadata.metaReplicas;
    const t = this.ctx.table;
    // Before the seed, a table's node set is the one the bootstrap server built the table over (later
    // tables come with metadata). A table of fewer than three nodes past version 1 may list a spare
    // that is not a metadata replica: wait for the metadata then.
    if (!t || (t.nodes.length < 3 && t.version !== 1)) return null;
    return metadataReplicasOf(t);
  }

  /** How long member `node` has been suspected (0 when it is not). */
  suspectedForMs(node: NodeId): number {
    if (node === this.ctx.nodeId) return 0;
    const seen = this.lastSeen.get(node);
    if (seen === undefined) return 0;
    const silent = this.ctx.now() - seen;
    return silent > this.suspectAfterMs ? silent : 0;
  }

  /** The members with their state as this server sees them (`status`, `member.list`). */
  members(): Member[] {
    const m = this.metadata;
    if (!m) return [];
    return m.table.nodes.map((n) => ({
      id: n.id,
      address: n.address,
      state:
        this.suspectedForMs(n.id) > 0
          ? 'suspected'
          : partitionsOf(m.table, n.id).length === 0
            ? 'spare'
            : 'alive',
    }));
  }

  /**
   * Runs every heartbeat: watches members, opens the local metadata replica, refreshes the metadata,
   * and on the metadata leader writes the seed, hands over from the bootstrap coordinator and moves
   * replicas. Never throws.
   */
  heartbeat(): void {
    if (this.ctx.nodeId === null || this.ctx.stopping) return;
    this.detect();
    void this.openIfReplica();
    void this.refresh();
    const bootstrap = this.deps.bootstrap;
    if (bootstrap.isCoordinator && this.metadata && !bootstrap.handedOver) bootstrap.handOver(true);
    void this.seedFromCoordinator();
    void this.lead();
  }

  /** A paxos message for the metadata group from peer `from`. */
  deliver(from: NodeId, message: unknown): void {
    this.group?.handle(from, message);
  }

  /**
   * A `checkin` or `heartbeat` on a member's connection that the bootstrap coordinator did not take
   * (this server is not it, or it handed over). False before the metadata exists: the caller refuses.
   */
  handleBootstrap(channel: MemberChannel, request: BootstrapRequest): boolean {
    if (!this.metadata) return false;
    if (request.type === 'heartbeat') return true;
    const { address, nodeId } = request;
    void (async () => {
      const reply = await this.execute(
        { type: 'member.add', id: 0, address, ...(nodeId !== undefined ? { nodeId } : {}) },
        { forwarded: false },
      );
      if (reply.type === 'member.ok') {
        this.ctx.log.info({ node: reply.node, address }, `node ${reply.node} checked in (${address})`);
        channel.send({
          type: 'checkin.ok',
          nodeId: reply.node,
          table: this.metadata?.table ?? this.ctx.table,
        });
      } else {
        channel.send(reply);
      }
    })();
    return true;
  }

  /** Answers a membership request (see the module comment). Never rejects. */
  async execute(request: MemberRequest, origin: RequestOrigin): Promise<ServerResponse> {
    try {
      if (request.type === 'group.reconfigure') {
        if (!origin.forwarded) {
          throw new UnauthenticatedError({
            reason: 'group.reconfigure is accepted only from a server of the cluster (the metadata leader)',
          });
        }
        const c = await this.reconfigureGroup(request.partition, request.members, true);
        return { type: 'group.reconfigure.ok', id: request.id, partition: request.partition, ...c };
      }
      if (request.type === 'member.seed') {
        if (!origin.forwarded) {
          throw new UnauthenticatedError({
            reason: 'member.seed is accepted only from a server of the cluster (the bootstrap server)',
          });
        }
        const seed = request.metadata;
        const stored = await this.deps.requests().routeToPartition<ClusterMetadata>({
          partition: METADATA_PARTITION,
          replicas: this.metaReplicas() ?? [],
          name: 'member.seed',
          retrySafe: true,
          forwarded: true,
          wire: request,
          runLocal: (group) => this.writeSeed(group, seed),
          fromReply: () => undefined,
        });
        this.adopt(stored);
        return { type: 'member.list.ok', id: request.id, metadata: stored, members: this.members() };
      }
      if (request.type === 'member.list') {
        const m = this.metadata;
        const fresh = m !== null && (request.since === undefined || m.table.version > request.since);
        return {
          type: 'member.list.ok',
          id: request.id,
          metadata: fresh ? m : null,
          members: this.members(),
        };
      }
      const ok = await this.deps.requests().routeToPartition<MemberOk>({
        partition: METADATA_PARTITION,
        replicas: this.metaReplicas() ?? [],
        name: request.type,
        // Adding is idempotent (the same address gets the same id); a removal is not retried blindly.
        retrySafe: request.type === 'member.add',
        forwarded: origin.forwarded,
        wire: request,
        runLocal: (group) => this.runLocal(group, request),
        fromReply: (reply) => (reply.type === 'member.ok' ? reply : undefined),
      });
      return { ...ok, id: request.id };
    } catch (e) {
      return errorMessage(e, request.id);
    }
  }

  // ---- internals ------------------------------------------------------------------------------

  /**
   * Runs the reconfiguration of `partition`'s group to `members` on the group's leader: the local
   * replica when it leads, else forwarded (`group.reconfigure`) with the request path's retry policy.
   * Idempotent: members that already run resolve with the current configuration.
   */
  private async reconfigureGroup(
    partition: number,
    members: readonly NodeId[],
    forwarded: boolean,
  ): Promise<{ configId: number; members: NodeId[] }> {
    const c = await this.deps.requests().routeToPartition<{ configId: number; replicas: readonly NodeId[] }>({
      partition,
      name: 'group.reconfigure',
      retrySafe: true,
      forwarded,
      wire: { type: 'group.reconfigure', id: 0, partition, members: [...members] },
      runLocal: async (group) => {
        if (!group.reconfigure) {
          throw new UnavailableError({
            reason: `partition ${partition}'s replica group cannot be reconfigured`,
          });
        }
        return group.reconfigure(members);
      },
      fromReply: (reply) =>
        reply.type === 'group.reconfigure.ok'
          ? { configId: reply.configId, replicas: reply.members }
          : undefined,
    });
    return { configId: c.configId, members: [...c.replicas] };
  }

  /** The reconfigurer in use: the server's own (routed to each group's leader) unless one was given. */
  private reconfigurer(): GroupReconfigurer | null {
    if (this.deps.reconfigurer) return this.deps.reconfigurer;
    // Reconfigurable groups come from a factory whose groups can be reconfigured (the metadata group's
    // replica tells); otherwise moves are planned and logged only.
    if (!this.group?.reconfigure) return null;
    return { reconfigure: (partition, replicas) => this.reconfigureGroup(partition, replicas, false) };
  }

  private async runLocal(group: ReplicaGroupPort, request: MemberRequest): Promise<MemberOk> {
    const out = await this.change(group, (m) => {
      if (request.type === 'member.add') return addMember(m, request.address, request.nodeId);
      if (request.type === 'member.remove') return removeMember(m, request.node);
      // member.list and member.seed never get here (answered in `execute`).
      throw new BadRequestError({ field: 'type', problem: `${request.type} changes nothing` });
    });
    return {
      type: 'member.ok',
      id: request.id,
      node: out.node.id,
      address: out.node.address,
      version: out.metadata.table.version,
      state: out.state,
    };
  }

  /**
   * Reads the metadata on the local replica (linearizable: it must be the leader), applies `fn`, and
   * proposes the result with a compare-and-set on the key's `modRevision`; re-reads and retries when
   * another change won. Serialised on this server.
   */
  private change<T extends { readonly metadata: ClusterMetadata; readonly changed: boolean }>(
    group: ReplicaGroupPort,
    fn: (m: ClusterMetadata) => T,
  ): Promise<T> {
    const run = async (): Promise<T> => {
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const got = await group.submit({ op: 'get', key: METADATA_KEY }, { consistency: 'linearizable' });
        if (got.op !== 'get') throw new InternalError({ reason: 'unexpected result reading the metadata' });
        if (got.value === null) {
          throw new NotReadyError({
            reason:
              'the cluster metadata is not written yet (the bootstrap server writes it once the metadata group has a leader); retry in a moment',
          });
        }
        const current = parseMetadata(got.value);
        const out = fn(current);
        if (!out.changed) {
          this.adopt(current);
          return out;
        }
        // Never propose what a peer would refuse to adopt.
        const next = ClusterMetadataSchema.parse(out.metadata);
        const r = await group.submit(
          {
            op: 'txn',
            compare: [{ key: METADATA_KEY, target: 'modRevision', op: '=', value: got.modRevision }],
            success: [{ put: { key: METADATA_KEY, value: JSON.stringify(next) } }],
            failure: [],
          },
          { consistency: 'linearizable' },
        );
        if (r.op === 'txn' && r.succeeded) {
          this.adopt(next);
          return out;
        }
      }
      throw new UnavailableError({ reason: 'the cluster metadata kept changing under this change; retry' });
    };
    const p = this.proposing.then(run, run);
    this.proposing = p.catch(() => {});
    return p;
  }

  /** Takes `m` if it is newer than the metadata held: persists it and adopts its table. */
  private adopt(m: ClusterMetadata): void {
    const held = this.metadata;
    if (held && m.table.version <= held.table.version) return;
    this.metadata = m;
    try {
      writeJsonFile(this.ctx.config.dataDir, METADATA_FILE, m);
    } catch (e) {
      this.ctx.log.error({ err: (e as Error).message }, `cannot write ${METADATA_FILE}`);
    }
    this.ctx.log.info(
      { version: m.table.version, members: m.table.nodes.length, moving: m.moving.length },
      `cluster metadata v${m.table.version}`,
    );
    this.deps.groups.adoptTableInBackground(m.table);
    // A replica being moved here: open it as a joiner, so it can receive the group's state.
    const me = this.ctx.nodeId;
    for (const mv of m.moving) {
      if (mv.to !== me) continue;
      const g = m.table.groups.find((x) => x.partition === mv.partition);
      if (!g) continue;
      const replicas = g.replicas.map((r) => (r === mv.from ? mv.to : r));
      this.deps.groups
        .openJoiner(mv.partition, replicas)
        .catch((e: unknown) =>
          this.ctx.log.error(
            { partition: mv.partition, err: (e as Error).message },
            'cannot open a joining replica',
          ),
        );
    }
  }

  private detect(): void {
    const m = this.metadata;
    if (!m) return;
    const now = this.ctx.now();
    for (const n of m.table.nodes) {
      if (n.id === this.ctx.nodeId) continue;
      const link = this.deps.peers.link(n.id);
      if (!link?.connected) this.upSince.delete(n.id);
      else if (!this.upSince.has(n.id)) this.upSince.set(n.id, now);
      if (link?.connected || !this.lastSeen.has(n.id)) this.lastSeen.set(n.id, now);
    }
  }

  private async openIfReplica(): Promise<void> {
    const me = this.ctx.nodeId;
    const replicas = this.metaReplicas();
    if (this.group || this.opening || me === null || !replicas?.includes(me)) return;
    this.opening = true;
    try {
      const ctx = this.ctx;
      const group = await this.deps.groupFactory({
        partition: METADATA_PARTITION,
        pid: me,
        peers: replicas.filter((r) => r !== me),
        preferredLeader: replicas[0] === me,
        // The metadata group is never reconfigured yet: its replicas are its first configuration.
        join: false,
        dataDir: join(ctx.config.dataDir, 'metadata'),
        fsync: ctx.config.fsync,
        send: (to, message) => this.deps.peers.sendPaxos(to, METADATA_PARTITION, message),
        addressOf: (node) => this.addressOf(node) ?? ctx.table?.nodes.find((n) => n.id === node)?.address,
        onFlush: (seconds) => ctx.metrics.fsyncLatency.observe(seconds),
      });
      if (ctx.stopping) {
        await group.close();
        return;
      }
      this.group = group;
      this.deps.groups.hostExtra(group, replicas);
      for (const r of replicas) if (r !== me) this.deps.peers.link(r);
      ctx.log.info({ replicas }, `metadata group replica open (replicas ${replicas.join(', ')})`);
    } catch (e) {
      this.ctx.log.error({ err: (e as Error).message }, 'cannot open the metadata group replica');
    } finally {
      this.opening = false;
    }
  }

  /** Reads the local replica (any role: decided state only), or pulls from a peer. */
  private async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const group = this.group;
      if (group) {
        const got = await group.submit({ op: 'get', key: METADATA_KEY }, { consistency: 'stale' });
        if (got.op === 'get' && got.value !== null) this.adopt(parseMetadata(got.value));
        return;
      }
      const me = this.ctx.nodeId;
      const preferred = (this.metaReplicas() ?? []).filter((r) => r !== me);
      const others = (this.metadata?.table.nodes ?? this.ctx.table?.nodes ?? [])
        .map((n) => n.id)
        .filter((id) => id !== me && !preferred.includes(id));
      // Mostly the metadata replicas (freshest); every fourth pull any member (they all answer).
      const pool =
        this.pullTurn++ % 4 === 3 && others.length > 0 ? others : preferred.length > 0 ? preferred : others;
      const target = pool[this.pullTurn % Math.max(1, pool.length)];
      if (target === undefined) return;
      const since = this.metadata?.table.version;
      const outcome = await this.deps.peers.forward(
        target,
        { type: 'member.list', id: 0, ...(since !== undefined ? { since } : {}) },
        this.ctx.config.heartbeatMs * 4,
      );
      if (outcome.kind === 'reply' && outcome.reply.type === 'member.list.ok' && outcome.reply.metadata) {
        this.adopt(outcome.reply.metadata);
      }
    } catch {
      // A replica without a leader yet, a link that broke: the next heartbeat tries again.
    } finally {
      this.refreshing = false;
    }
  }

  /** The metadata leader's duty: replica moves. */
  private async lead(): Promise<void> {
    const group = this.group;
    if (group?.role !== 'leader' || group.isolated || this.leading) return;
    this.leading = true;
    try {
      await this.moveReplicas(group);
    } catch (e) {
      this.ctx.log.debug({ err: (e as Error).message }, 'metadata leader duty failed; retrying');
    } finally {
      this.leading = false;
    }
  }

  /**
   * On the bootstrap server, until the metadata exists: stops taking check-ins (so that its table and
   * spares cannot change after they were copied) and writes the first version, its table and spares,
   * through the metadata group's leader (`member.seed`, forwarded when the leader is another server).
   * Takes check-ins again if the write failed.
   */
  private async seedFromCoordinator(): Promise<void> {
    const bootstrap = this.deps.bootstrap;
    const table = this.ctx.table;
    if (!bootstrap.isCoordinator || this.metadata || this.seeding || !table) return;
    const replicas = this.metaReplicas();
    if (!replicas) return;
    this.seeding = true;
    bootstrap.handOver(true);
    try {
      const seed = ClusterMetadataSchema.parse(seedMetadata(table, bootstrap.sparesForSeed()));
      const stored = await this.deps.requests().routeToPartition<ClusterMetadata>({
        partition: METADATA_PARTITION,
        replicas,
        name: 'member.seed',
        // Writing the seed twice is harmless: the second finds the first.
        retrySafe: true,
        forwarded: false,
        wire: { type: 'member.seed', id: 0, metadata: seed },
        runLocal: (group) => this.writeSeed(group, seed),
        fromReply: (reply) =>
          reply.type === 'member.list.ok' && reply.metadata ? reply.metadata : undefined,
      });
      this.adopt(stored);
      this.ctx.log.info(
        { version: stored.table.version },
        'the cluster metadata is replicated: check-ins go through the metadata group',
      );
    } catch (e) {
      if (!this.metadata) bootstrap.handOver(false);
      this.ctx.log.debug(
        { err: (e as Error).message },
        'cannot write the first cluster metadata yet; retrying',
      );
    } finally {
      this.seeding = false;
    }
  }

  /** Writes `seed` on the local replica (the leader) unless metadata exists; returns what is stored. */
  private async writeSeed(group: ReplicaGroupPort, seed: ClusterMetadata): Promise<ClusterMetadata> {
    const r = await group.submit(
      {
        op: 'txn',
        compare: [{ key: METADATA_KEY, target: 'exists', op: '=', value: false }],
        success: [{ put: { key: METADATA_KEY, value: JSON.stringify(seed) } }],
        failure: [{ get: { key: METADATA_KEY } }],
      },
      { consistency: 'linearizable' },
    );
    if (r.op !== 'txn') throw new InternalError({ reason: 'unexpected result writing the metadata' });
    if (r.succeeded) {
      this.ctx.log.info({ version: seed.table.version }, 'wrote the first version of the cluster metadata');
      return seed;
    }
    const found = r.results[0];
    if (found?.op !== 'get' || found.value === null) {
      throw new InternalError({ reason: 'the cluster metadata exists but could not be read' });
    }
    return parseMetadata(found.value);
  }

  private async moveReplicas(group: ReplicaGroupPort): Promise<void> {
    const m = this.metadata;
    if (!m) return;
    const c = this.ctx.config;
    const replaceAfterMs = c.replaceAfter * 1000;
    const replace = new Set<NodeId>();
    if (replaceAfterMs > 0) {
      for (const n of m.table.nodes) {
        if (this.suspectedForMs(n.id) > replaceAfterMs && partitionsOf(m.table, n.id).length > 0)
          replace.add(n.id);
      }
    }
    // Only a member reached without a break for `--replace-after` receives replicas: a listed address
    // may never answer, and a server that just joined (or flaps) may leave again at once.
    const now = this.ctx.now();
    const alive = (node: NodeId) => {
      if (node === this.ctx.nodeId) return true;
      const since = this.upSince.get(node);
      return since !== undefined && now - since >= replaceAfterMs;
    };
    // Moves recorded by an earlier leader and not running here: run them (or drop them).
    for (const mv of m.moving) if (!this.running.has(mv.partition)) this.runMove(group, mv, false);
    const moves = planMoves(m, {
      alive,
      replace,
      inFlight: this.running,
      maxInFlight: c.maxMovesInFlight,
      rebalance: true,
    });
    if (moves.length === 0) return;
    if (!this.reconfigurer()) {
      const now = this.ctx.now();
      if (now - this.lastBlockedLog > 60_000) {
        this.lastBlockedLog = now;
        this.ctx.log.warn(
          { moves },
          `replica moves are due (${moves.map((x) => `partition ${x.partition}: ${x.from} -> ${x.to} (${x.reason})`).join('; ')}) but this build cannot reconfigure a replica group yet`,
        );
      }
      return;
    }
    for (const mv of moves) this.runMove(group, mv, true);
  }

  /** Records `mv` in the metadata (when `record`), reconfigures the group, then records the outcome. */
  private runMove(group: ReplicaGroupPort, mv: ReplicaMove, record: boolean): void {
    const reconfigurer = this.reconfigurer();
    if (!reconfigurer || this.running.has(mv.partition)) return;
    this.running.add(mv.partition);
    const log = this.ctx.log;
    void (async () => {
      try {
        if (record) await this.change(group, (m) => ({ metadata: startMove(m, mv), changed: true }));
        const g = this.metadata?.table.groups.find((x) => x.partition === mv.partition);
        if (!g)
          throw new BadRequestError({ field: 'partition', problem: `partition ${mv.partition} is gone` });
        const replicas = g.replicas.map((r) => (r === mv.from ? mv.to : r));
        log.info(
          { ...mv },
          `moving partition ${mv.partition}'s replica from node ${mv.from} to node ${mv.to} (${mv.reason})`,
        );
        const c = await reconfigurer.reconfigure(mv.partition, replicas);
        await this.change(group, (m) => ({ metadata: applyMove(m, mv, c.configId), changed: true }));
        log.info({ ...mv }, `partition ${mv.partition} now on ${replicas.join(', ')}`);
      } catch (e) {
        log.warn(
          { ...mv, err: (e as Error).message },
          `move of partition ${mv.partition} failed; it will be planned again`,
        );
        await this.change(group, (m) => {
          const next = abandonMove(m, mv.partition);
          return { metadata: next, changed: next !== m };
        }).catch(() => {});
      } finally {
        this.running.delete(mv.partition);
      }
    })();
  }
}
