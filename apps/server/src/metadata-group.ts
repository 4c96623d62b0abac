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
 *
 * Modules: the storage of the metadata in the group (`metadata-store.ts`), the local replica and the
 * pull from peers (`metadata-replica.ts`), the seed (`metadata-seed.ts`), the failure detector
 * (`member-watch.ts`), the replica moves (`replica-mover.ts`); this one ties them together and answers
 * the membership requests.
 */
import { addMember, metadataReplicasOf, partitionsOf, removeMember, startRejoin } from '@paxkv/bootstrap';
import {
  BadRequestError,
  type BootstrapRequest,
  type ClusterMetadata,
  errorMessage,
  METADATA_PARTITION,
  type Member,
  type MemberOk,
  type MemberRequest,
  type NodeId,
  type ServerResponse,
  UnauthenticatedError,
} from '@paxkv/common';
import { BackgroundJsonFile } from './background-file.js';
import type { BootstrapRole, MemberChannel } from './bootstrap-role.js';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';
import type { GroupFactory, ReplicaGroupPort } from './group-port.js';
import { LeaderBalancer } from './leader-balancer.js';
import { MemberWatch } from './member-watch.js';
import { MetadataReplica } from './metadata-replica.js';
import { MetadataSeeder } from './metadata-seed.js';
import { casChange, METADATA_FILE, type MetadataChange, readMetadataFile } from './metadata-store.js';
import type { PeerLinks } from './peers.js';
import { type GroupReconfigurer, ReplicaMover } from './replica-mover.js';
import { RejoinRequester } from './replica-rejoin.js';
import type { RequestOrigin, RequestPath } from './request-path.js';

export { METADATA_FILE, METADATA_KEY } from './metadata-store.js';
export type { GroupReconfigurer } from './replica-mover.js';
export { UNSAFE_REJOIN_WITHOUT_FENCE } from './replica-rejoin.js';

/** What {@link MetadataService} needs from the rest of the server. */
export interface MetadataDeps {
  readonly groupFactory: GroupFactory;
  readonly groups: GroupHost;
  readonly peers: PeerLinks;
  readonly requests: () => RequestPath;
  readonly bootstrap: BootstrapRole;
  /** Moves replicas; null when replica groups cannot be reconfigured (moves are planned, not run). */
  readonly reconfigurer: GroupReconfigurer | null;
  /** Whether node `node` itself is connected to this server (it runs with its id). Default: always. */
  readonly identified?: (node: NodeId) => boolean;
}

/** See the module comment. */
export class MetadataService {
  private metadata: ClusterMetadata | null = null;
  private leading = false;
  /** Serialises the changes this server proposes (each one a read + compare-and-set). */
  private proposing: Promise<unknown> = Promise.resolve();
  private readonly watch: MemberWatch;
  private readonly mover: ReplicaMover;
  private readonly replica: MetadataReplica;
  private readonly seeder: MetadataSeeder;
  private readonly rejoins: RejoinRequester;
  private readonly leaders: LeaderBalancer;
  /** `metadata.json`, rewritten in the background after each adopted version (see `background-file.ts`). */
  private readonly file: BackgroundJsonFile;

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: MetadataDeps,
  ) {
    this.watch = new MemberWatch(ctx, deps.peers, deps.identified ?? (() => true));
    this.file = new BackgroundJsonFile(
      ctx.config.dataDir,
      METADATA_FILE,
      () => this.metadata,
      (e) => ctx.log.error({ err: e.message }, `cannot write ${METADATA_FILE}`),
    );
    this.mover = new ReplicaMover(ctx, {
      requests: deps.requests,
      watch: this.watch,
      reconfigurer: deps.reconfigurer,
      metadata: () => this.metadata,
      change: (group, fn) => this.change(group, fn),
    });
    this.replica = new MetadataReplica(ctx, {
      groupFactory: deps.groupFactory,
      groups: deps.groups,
      peers: deps.peers,
      metadata: () => this.metadata,
      metaReplicas: () => this.metaReplicas(),
      adopt: (m) => this.adopt(m),
    });
    this.leaders = new LeaderBalancer(ctx, {
      groups: deps.groups,
      suspectedForMs: (node) => this.watch.suspectedForMs(node),
    });
    this.rejoins = new RejoinRequester(ctx, {
      groups: deps.groups,
      route: (request) => this.routeMember(request, false),
    });
    this.seeder = new MetadataSeeder(ctx, {
      requests: deps.requests,
      bootstrap: deps.bootstrap,
      metadata: () => this.metadata,
      metaReplicas: () => this.metaReplicas(),
      adopt: (m) => this.adopt(m),
    });
    this.metadata = readMetadataFile(ctx);
    // The metadata exists: a restarted bootstrap server never takes check-ins as coordinator again
    // (a server it registered would be missing from the replicated member list).
    if (this.metadata) deps.bootstrap.handOver(true);
  }

  /** Resolves once `metadata.json` holds the newest metadata adopted (no background write left). */
  flushed(): Promise<void> {
    return this.file.flushed();
  }

  /** The newest metadata this server has seen, or null before the bootstrap server wrote it. */
  get current(): ClusterMetadata | null {
    return this.metadata;
  }

  /** The local replica of the metadata group, if this server is one (and it is open). */
  get localGroup(): ReplicaGroupPort | null {
    return this.replica.group;
  }

  /** A member is suspected after its link has been down this long: 6 heartbeats or 3 link liveness periods. */
  get suspectAfterMs(): number {
    return this.watch.suspectAfterMs;
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
    return this.watch.suspectedForMs(node);
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
    if (this.metadata) {
      this.watch.detect(this.metadata);
      this.rejoins.heartbeat(this.metadata);
      this.leaders.heartbeat(this.metadata);
    }
    void this.replica.openIfReplica();
    void this.replica.refresh();
    const bootstrap = this.deps.bootstrap;
    if (bootstrap.isCoordinator && this.metadata && !bootstrap.handedOver) bootstrap.handOver(true);
    void this.seeder.seedFromCoordinator();
    void this.lead();
  }

  /** A paxos message for the metadata group from peer `from`. */
  deliver(from: NodeId, message: unknown): void {
    this.replica.group?.handle(from, message);
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
        const expect = request.expect
          ? { configId: request.expect.configId, replicas: request.expect.members }
          : undefined;
        const c = await this.mover.reconfigureGroup(request.partition, request.members, expect, true);
        return { type: 'group.reconfigure.ok', id: request.id, partition: request.partition, ...c };
      }
      if (request.type === 'member.seed') {
        if (!origin.forwarded) {
          throw new UnauthenticatedError({
            reason: 'member.seed is accepted only from a server of the cluster (the bootstrap server)',
          });
        }
        const stored = await this.seeder.seedForPeer(request);
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
      if (request.type === 'member.rejoin' && !origin.forwarded) {
        throw new UnauthenticatedError({
          reason: 'member.rejoin is accepted only from a server of the cluster (the member that rejoins)',
        });
      }
      const ok = await this.routeMember(request, origin.forwarded);
      return { ...ok, id: request.id };
    } catch (e) {
      return errorMessage(e, request.id);
    }
  }

  /** Runs a membership change on the metadata group's leader (forwarded there unless local). */
  private routeMember(request: MemberRequest, forwarded: boolean): Promise<MemberOk> {
    return this.deps.requests().routeToPartition<MemberOk>({
      partition: METADATA_PARTITION,
      replicas: this.metaReplicas() ?? [],
      name: request.type,
      // Adding and rejoining are idempotent (the same address gets the same id); a removal is not
      // retried blindly.
      retrySafe: request.type !== 'member.remove',
      forwarded,
      wire: request,
      runLocal: (group) => this.runLocal(group, request),
      fromReply: (reply) => (reply.type === 'member.ok' ? reply : undefined),
    });
  }

  // ---- internals ------------------------------------------------------------------------------

  private async runLocal(group: ReplicaGroupPort, request: MemberRequest): Promise<MemberOk> {
    const out = await this.change(group, (m) => {
      if (request.type === 'member.add') return addMember(m, request.address, request.nodeId);
      if (request.type === 'member.remove') return removeMember(m, request.node);
      if (request.type === 'member.rejoin') {
        const node = m.table.nodes.find((n) => n.id === request.node);
        if (!node)
          throw new BadRequestError({ field: 'node', problem: `node ${request.node} is not a member` });
        const next = startRejoin(m, request.partition, request.node, request.token);
        return { metadata: next, changed: next !== m, node, state: 'member' as const };
      }
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

  /** Proposes a change on the local replica (the leader) with {@link casChange}; serialised on this server. */
  private change<T extends MetadataChange>(
    group: ReplicaGroupPort,
    fn: (m: ClusterMetadata) => T,
  ): Promise<T> {
    const run = () => casChange(group, fn, (m) => this.adopt(m));
    const p = this.proposing.then(run, run);
    this.proposing = p.catch(() => {});
    return p;
  }

  /** Takes `m` if it is newer than the metadata held: persists it and adopts its table. */
  private adopt(m: ClusterMetadata): void {
    const held = this.metadata;
    if (held && m.table.version <= held.table.version) return;
    this.metadata = m;
    this.file.schedule();
    this.ctx.log.info(
      { version: m.table.version, members: m.table.nodes.length, moving: m.moving.length },
      `cluster metadata v${m.table.version}`,
    );
    this.deps.groups.adoptTableInBackground(m.table);
    const me = this.ctx.nodeId;
    // Joiners of moves that were dropped are closed; a replica being moved here is opened as a
    // joiner, so it can receive the group's state.
    const keep = new Set(m.moving.filter((x) => x.to === me).map((x) => x.partition));
    for (const g of m.table.groups) if (me !== null && g.replicas.includes(me)) keep.add(g.partition);
    this.deps.groups.closeStrayJoiners(keep);
    for (const mv of m.moving) {
      // A rejoin is opened by `rejoinUnreadable`, once the removal of the old replica is decided.
      if (mv.to !== me || mv.reason === 'rejoin') continue;
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

  /** The metadata leader's duty: replica moves. */
  private async lead(): Promise<void> {
    const group = this.replica.group;
    if (group?.role !== 'leader' || group.isolated || this.leading) return;
    this.leading = true;
    try {
      this.mover.moveReplicas(group);
    } catch (e) {
      this.ctx.log.debug({ err: (e as Error).message }, 'metadata leader duty failed; retrying');
    } finally {
      this.leading = false;
    }
  }
}
