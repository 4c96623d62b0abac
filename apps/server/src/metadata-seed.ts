/**
 * The hand-over from the bootstrap server to the metadata group: the bootstrap server stops taking
 * check-ins (so that its table and spares cannot change after they were copied) and writes the first
 * version of the metadata, its table and spares ("the seed"), through the metadata group's leader
 * (`member.seed`, forwarded when the leader is another server, accepted only from a peer). From then
 * on any server takes check-ins, and the bootstrap server can fail for good.
 */
import { seedMetadata } from '@paxkv/bootstrap';
import { type ClusterMetadata, ClusterMetadataSchema, METADATA_PARTITION, type NodeId } from '@paxkv/common';
import type { BootstrapRole } from './bootstrap-role.js';
import type { ServerContext } from './context.js';
import type { ReplicaGroupPort } from './group-port.js';
import { writeSeed } from './metadata-store.js';
import type { RequestPath } from './request-path.js';

/** What {@link MetadataSeeder} needs from the metadata service. */
export interface MetadataSeederDeps {
  readonly requests: () => RequestPath;
  readonly bootstrap: BootstrapRole;
  readonly metadata: () => ClusterMetadata | null;
  readonly metaReplicas: () => readonly NodeId[] | null;
  readonly adopt: (m: ClusterMetadata) => void;
}

/** See the module comment. */
export class MetadataSeeder {
  private seeding = false;

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: MetadataSeederDeps,
  ) {}

  /**
   * On the bootstrap server, until the metadata exists: stops taking check-ins and writes the seed
   * through the metadata group's leader. Takes check-ins again if the write failed. Never rejects.
   */
  async seedFromCoordinator(): Promise<void> {
    const bootstrap = this.deps.bootstrap;
    const table = this.ctx.table;
    if (!bootstrap.isCoordinator || this.deps.metadata() || this.seeding || !table) return;
    const replicas = this.deps.metaReplicas();
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
        runLocal: (group) => this.seedLocal(group, seed),
        fromReply: (reply) =>
          reply.type === 'member.list.ok' && reply.metadata ? reply.metadata : undefined,
      });
      this.deps.adopt(stored);
      this.ctx.log.info(
        { version: stored.table.version },
        'the cluster metadata is replicated: check-ins go through the metadata group',
      );
    } catch (e) {
      if (!this.deps.metadata()) bootstrap.handOver(false);
      this.ctx.log.debug(
        { err: (e as Error).message },
        'cannot write the first cluster metadata yet; retrying',
      );
    } finally {
      this.seeding = false;
    }
  }

  /**
   * A `member.seed` from the bootstrap server (a peer): writes it through the metadata group's leader
   * unless metadata exists; resolves with what is stored.
   */
  async seedForPeer(request: { readonly metadata: ClusterMetadata }): Promise<ClusterMetadata> {
    const seed = request.metadata;
    const stored = await this.deps.requests().routeToPartition<ClusterMetadata>({
      partition: METADATA_PARTITION,
      replicas: this.deps.metaReplicas() ?? [],
      name: 'member.seed',
      retrySafe: true,
      forwarded: true,
      wire: { type: 'member.seed', id: 0, metadata: seed },
      runLocal: (group) => this.seedLocal(group, seed),
      fromReply: () => undefined,
    });
    this.deps.adopt(stored);
    return stored;
  }

  /** Writes `seed` on the local replica (the leader) unless metadata exists; returns what is stored. */
  private async seedLocal(group: ReplicaGroupPort, seed: ClusterMetadata): Promise<ClusterMetadata> {
    const { stored, written } = await writeSeed(group, seed);
    if (written) {
      this.ctx.log.info({ version: seed.table.version }, 'wrote the first version of the cluster metadata');
    }
    return stored;
  }
}
