/**
 * The bootstrap role of one server: the server started without `--join` is the bootstrap coordinator
 * (it registers the others, builds and pushes the lookup table); every other server is a bootstrap
 * member (it checks in with the coordinator over its own link, sends heartbeats, and adopts the tables
 * pushed to it). The protocol itself is `@paxkv/bootstrap`; this module wires it to the link, the
 * inbound connections of members, the identity file and the {@link GroupHost}.
 */
import { BootstrapCoordinator, BootstrapMember } from '@paxkv/bootstrap';
import {
  type BootstrapReply,
  type BootstrapRequest,
  type Handshake,
  type LookupTable,
  type Member,
  type NodeId,
  parseBootstrapReply,
  ReconnectingConnection,
} from '@paxkv/common';
import { BackgroundJsonFile } from './background-file.js';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';
import { IDENTITY_FILE, type Identity } from './identity.js';
import { linkOptions } from './peers.js';

/** The node id the bootstrap server gives itself. */
export const BOOTSTRAP_NODE_ID = 1;

/** Where the coordinator sends its messages to one member: the member's inbound connection. */
export interface MemberChannel {
  send(message: unknown): unknown;
}

/** What the role restores from the identity file. */
export interface BootstrapRestore {
  readonly table: LookupTable | null;
  readonly spares: ReadonlyArray<{ id: NodeId; address: string }>;
}

/** See the module comment. */
export class BootstrapRole {
  private coordinator: BootstrapCoordinator | null = null;
  private member: BootstrapMember | null = null;
  private link: ReconnectingConnection | null = null;
  private readonly memberConns = new Map<NodeId, MemberChannel>();
  private readonly spares: Array<{ id: NodeId; address: string }>;
  private groups: GroupHost | null = null;
  private handed = false;
  /** The identity file, also rewritten in the background after each table (see {@link persistIdentityInBackground}). */
  private readonly identityFile: BackgroundJsonFile;

  constructor(
    private readonly ctx: ServerContext,
    private readonly restore: BootstrapRestore,
    private readonly handshake?: Handshake,
  ) {
    this.spares = [...restore.spares];
    this.identityFile = new BackgroundJsonFile(
      ctx.config.dataDir,
      IDENTITY_FILE,
      () => this.identity(),
      (e) => ctx.log.error({ err: e.message }, 'cannot write the identity file'),
    );
  }

  /** True when this server is the bootstrap coordinator. */
  get isCoordinator(): boolean {
    return this.coordinator !== null;
  }

  /**
   * True once the coordinator handed check-ins over to the metadata group (see `metadata-group.ts`):
   * it no longer registers servers or changes its table.
   */
  get handedOver(): boolean {
    return this.handed;
  }

  /** Hands check-ins over to the metadata group (`true`), or takes them back (`false`, seed not written). */
  handOver(on: boolean): void {
    this.handed = on;
  }

  /** The spares the coordinator registered (copied into the first version of the cluster metadata). */
  sparesForSeed(): Array<{ id: NodeId; address: string }> {
    return this.coordinator?.spares() ?? [];
  }

  /** The members known to this server (the coordinator's registry, or the last `members` push). */
  members(): Member[] {
    return this.coordinator ? this.coordinator.members() : [...(this.member?.members ?? [])];
  }

  /** The address of `node` as the coordinator knows it (undefined on a member). */
  addressOf(node: NodeId): string | undefined {
    return this.coordinator?.addressOf(node);
  }

  private identity(): Identity {
    const ctx = this.ctx;
    return {
      version: 1,
      nodeId: ctx.nodeId,
      table: ctx.table,
      spares: this.coordinator ? this.coordinator.spares() : this.spares,
    };
  }

  /** Writes the identity file (node id, table, spares) now, synchronously; failures are logged. */
  persistIdentity(): void {
    try {
      this.identityFile.writeNow();
    } catch (e) {
      this.ctx.log.error({ err: (e as Error).message }, 'cannot write the identity file');
    }
  }

  /**
   * Rewrites the identity file in the background, off the event loop (after each adopted table: the
   * file is a cache of the replicated metadata, see `background-file.ts`); failures are logged.
   */
  persistIdentityInBackground(): void {
    this.identityFile.schedule();
  }

  /** Resolves once no background write of the identity file is in flight or requested. */
  identityFlushed(): Promise<void> {
    return this.identityFile.flushed();
  }

  /**
   * Becomes the coordinator (no `--join`) or a member (dials the bootstrap server), and adopts the
   * restored table if there is one.
   */
  async start(groups: GroupHost): Promise<void> {
    this.groups = groups;
    const ctx = this.ctx;
    const c = ctx.config;
    if (c.join === undefined) {
      this.coordinator = new BootstrapCoordinator({
        self: { address: ctx.advertised, nodeId: BOOTSTRAP_NODE_ID },
        config: {
          threshold: c.bootstrapThreshold,
          partitions: c.partitions,
          replication: c.replication,
          suspectAfterMs: c.heartbeatMs * 6,
        },
        restore: { table: this.restore.table, spares: this.spares },
      });
      this.handleCoordinatorEvents();
      if (this.coordinator.table) await groups.adoptTable(this.coordinator.table);
    } else {
      this.member = new BootstrapMember({
        address: ctx.advertised,
        ...(ctx.nodeId !== null ? { nodeId: ctx.nodeId } : {}),
        table: this.restore.table,
        config: { heartbeatIntervalMs: c.heartbeatMs, checkinRetryMs: Math.max(c.heartbeatMs, 200) },
      });
      this.member.connectionLost();
      if (this.restore.table && ctx.nodeId !== null) await groups.adoptTable(this.restore.table);
      const link = new ReconnectingConnection(c.join, linkOptions(ctx, false, this.handshake));
      link.on('connect', () => {
        this.member?.connectionRestored();
        this.pump(true);
      });
      link.on('disconnect', () => this.member?.connectionLost());
      link.on('message', (v) => this.onBootstrapReply(v));
      this.link = link;
    }
  }

  /** Runs the role's timers (called every heartbeat interval; `force` on a fresh connection). */
  pump(force: boolean): void {
    const now = this.ctx.now();
    if (this.coordinator) {
      this.coordinator.tick(now);
      this.flushCoordinator();
    }
    if (this.member && this.link) {
      if (force || this.link.connected) this.member.tick(now);
      for (const m of this.member.drainOutbox()) this.link.send(m);
    }
  }

  /**
   * A validated `checkin` or `heartbeat` from a member's inbound connection. Returns false when this
   * server is not the coordinator (the caller refuses the message).
   */
  handleRequest(channel: MemberChannel, request: BootstrapRequest): boolean {
    const coordinator = this.coordinator;
    if (!coordinator || this.handed) return false;
    const reply = coordinator.handle(request, this.ctx.now());
    if (reply?.type === 'checkin.ok') this.memberConns.set(reply.nodeId, channel);
    if (request.type === 'heartbeat') this.memberConns.set(request.nodeId, channel);
    if (reply) channel.send(reply);
    this.flushCoordinator();
    return true;
  }

  /** A member's inbound connection closed. */
  channelClosed(channel: MemberChannel): void {
    for (const [id, c] of this.memberConns) if (c === channel) this.memberConns.delete(id);
  }

  /** A validated `table.push` or `members` message (from the link or an inbound connection). */
  applyMemberUpdate(message: BootstrapReply): void {
    const member = this.member;
    if (!member) return;
    const ctx = this.ctx;
    const update = member.handle(message, ctx.now());
    if (update.nodeId !== undefined) {
      if (ctx.nodeId !== null && ctx.nodeId !== update.nodeId) {
        ctx.log.error(
          { old: ctx.nodeId, new: update.nodeId },
          'the bootstrap server assigned another node id; keeping the old one',
        );
      } else if (ctx.nodeId === null) {
        ctx.nodeId = update.nodeId;
        ctx.log.info({ nodeId: update.nodeId }, `assigned node id ${update.nodeId}`);
        this.persistIdentity();
      }
    }
    if (update.error)
      ctx.log.warn({ err: update.error.message }, 'the bootstrap server refused the check-in');
    const table = update.table ?? (ctx.table === null ? member.table : null);
    if (table && ctx.nodeId !== null) this.groups?.adoptTableInBackground(table);
  }

  /** Closes the link to the bootstrap server. */
  close(): void {
    this.link?.close();
  }

  private flushCoordinator(): void {
    const coordinator = this.coordinator;
    if (!coordinator) return;
    this.handleCoordinatorEvents();
    for (const out of coordinator.drainOutbox()) this.memberConns.get(out.to)?.send(out.message);
  }

  private handleCoordinatorEvents(): void {
    const coordinator = this.coordinator;
    if (!coordinator) return;
    const log = this.ctx.log;
    for (const e of coordinator.drainEvents()) {
      switch (e.type) {
        case 'table-built':
        case 'table-updated':
          log.info(
            { version: e.table.version },
            `lookup table v${e.table.version} ${e.type === 'table-built' ? 'built' : 'updated'}`,
          );
          this.groups?.adoptTableInBackground(e.table);
          break;
        case 'registered':
          log.info(
            { node: e.node, address: e.address, role: e.role },
            `node ${e.node} registered (${e.role})`,
          );
          if (e.role === 'spare') this.persistIdentity();
          break;
        case 'suspected':
          log.warn({ node: e.node, silentForMs: Math.round(e.silentForMs) }, `node ${e.node} suspected`);
          break;
        case 'alive':
          log.info({ node: e.node }, `node ${e.node} alive again`);
          break;
        case 'address-changed':
          log.info({ node: e.node, from: e.from, to: e.to }, `node ${e.node} moved`);
          break;
      }
    }
  }

  private onBootstrapReply(value: unknown): void {
    if (!this.member) return;
    const parsed = parseBootstrapReply(value);
    if (!parsed.ok) {
      this.ctx.log.warn({ err: parsed.error.message }, 'invalid message from the bootstrap server');
      return;
    }
    this.applyMemberUpdate(parsed.value);
  }
}
