/**
 * This server's view of the metadata group: its local replica when it is one of the group's replicas
 * (opened by the same {@link GroupFactory} as every data group, hosted by the {@link GroupHost}), and
 * the newest metadata read from it every heartbeat; on the other servers, a pull (`member.list` with
 * `since`) from a metadata replica, or now and then from any member, over the peer links.
 */
import { join } from 'node:path';
import { type ClusterMetadata, METADATA_PARTITION, type NodeId } from '@paxkv/common';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';
import type { GroupFactory, ReplicaGroupPort } from './group-port.js';
import { readLocal } from './metadata-store.js';
import type { PeerLinks } from './peers.js';

/** What {@link MetadataReplica} needs from the metadata service. */
export interface MetadataReplicaDeps {
  readonly groupFactory: GroupFactory;
  readonly groups: GroupHost;
  readonly peers: PeerLinks;
  /** The newest metadata held. */
  readonly metadata: () => ClusterMetadata | null;
  /** The metadata group's replicas, or null while unknown. */
  readonly metaReplicas: () => readonly NodeId[] | null;
  /** Takes a version read or pulled (ignored unless newer). */
  readonly adopt: (m: ClusterMetadata) => void;
}

/** See the module comment. */
export class MetadataReplica {
  private replica: ReplicaGroupPort | null = null;
  private opening = false;
  private refreshing = false;
  private pullTurn = 0;
  /** The metadata version held when this server left the metadata group. */
  private leftAt: number | undefined;

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: MetadataReplicaDeps,
  ) {}

  /** The local replica of the metadata group, if this server is one (and it is open). */
  get group(): ReplicaGroupPort | null {
    return this.replica;
  }

  /** The address of node `id` in the newest metadata, else in the table in use. */
  private addressOf(id: NodeId): string | undefined {
    const nodes = this.deps.metadata()?.table.nodes ?? this.ctx.table?.nodes ?? [];
    return nodes.find((n) => n.id === id)?.address;
  }

  /**
   * Opens the local replica when this server is a metadata replica (or the metadata group is being
   * moved here) and it is not open yet; closes a joining replica whose move was dropped.
   */
  async openIfReplica(): Promise<void> {
    const me = this.ctx.nodeId;
    const replicas = this.deps.metaReplicas();
    const m = this.deps.metadata();
    const movingHere = m?.moving.some((x) => x.partition === METADATA_PARTITION && x.to === me) === true;
    const wanted = me !== null && (replicas?.includes(me) === true || movingHere);
    const open = this.replica;
    if (open && !wanted && open.configuration === null) {
      this.ctx.log.info({}, 'the move of the metadata group here was dropped; closing its joining replica');
      this.leave(open);
      return;
    }
    if (open || this.opening || me === null || !replicas || !wanted) return;
    // Left the group: not again from a version that still lists this server (see `leave`).
    if (m && this.leftAt !== undefined && m.table.version <= this.leftAt) return;
    this.opening = true;
    try {
      const ctx = this.ctx;
      const group = await this.deps.groupFactory({
        partition: METADATA_PARTITION,
        pid: me,
        peers: replicas.filter((r) => r !== me),
        preferredLeader: replicas[0] === me,
        // The first replicas create configuration 0; any other (a move here, or the group was moved
        // since) joins by state transfer.
        join: movingHere || (m?.metaConfig ?? 0) > 0,
        onConfigChange: (event) => {
          if (event.kind !== 'removed') return;
          // Not from inside the group's own step: close it on the next turn.
          setImmediate(() => {
            if (this.replica === group) {
              ctx.log.info({}, 'this server left the metadata group; its replica is closed');
              this.leave(group);
            }
          });
        },
        dataDir: join(ctx.config.dataDir, 'metadata'),
        fsync: ctx.config.fsync,
        send: (to, message) => this.deps.peers.sendPaxos(to, METADATA_PARTITION, message),
        addressOf: (node) => this.addressOf(node),
        onFlush: (seconds) => ctx.metrics.fsyncLatency.observe(seconds),
      });
      if (ctx.stopping) {
        await group.close();
        return;
      }
      this.replica = group;
      this.deps.groups.hostExtra(group, replicas);
      for (const r of replicas) if (r !== me) this.deps.peers.link(r);
      ctx.log.info({ replicas }, `metadata group replica open (replicas ${replicas.join(', ')})`);
    } catch (e) {
      this.ctx.log.error({ err: (e as Error).message }, 'cannot open the metadata group replica');
    } finally {
      this.opening = false;
    }
  }

  /** Closes the local replica and stops hosting it; it is not opened again from the metadata held now. */
  private leave(group: ReplicaGroupPort): void {
    this.replica = null;
    this.leftAt = this.deps.metadata()?.table.version;
    this.deps.groups.dropExtra(METADATA_PARTITION);
    group.close().catch((e: unknown) => this.ctx.log.error({ err: (e as Error).message }, 'close failed'));
  }

  /** Reads the local replica (any role: decided state only), or pulls from a peer. Never rejects. */
  async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const group = this.replica;
      if (group && group.configuration !== null) {
        const got = await readLocal(group);
        if (got) this.deps.adopt(got);
        return;
      }
      const me = this.ctx.nodeId;
      const held = this.deps.metadata();
      const preferred = (this.deps.metaReplicas() ?? []).filter((r) => r !== me);
      const others = (held?.table.nodes ?? this.ctx.table?.nodes ?? [])
        .map((n) => n.id)
        .filter((id) => id !== me && !preferred.includes(id));
      // Mostly the metadata replicas (freshest); every fourth pull any member (they all answer).
      const pool =
        this.pullTurn++ % 4 === 3 && others.length > 0 ? others : preferred.length > 0 ? preferred : others;
      const target = pool[this.pullTurn % Math.max(1, pool.length)];
      if (target === undefined) return;
      const since = held?.table.version;
      const outcome = await this.deps.peers.forward(
        target,
        { type: 'member.list', id: 0, ...(since !== undefined ? { since } : {}) },
        this.ctx.config.heartbeatMs * 4,
      );
      if (outcome.kind === 'reply' && outcome.reply.type === 'member.list.ok' && outcome.reply.metadata) {
        this.deps.adopt(outcome.reply.metadata);
      }
    } catch {
      // A replica without a leader yet, a link that broke: the next heartbeat tries again.
    } finally {
      this.refreshing = false;
    }
  }
}
