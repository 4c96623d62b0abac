/**
 * One paxkv server: a TCP port for clients, peers and bootstrap traffic (the message `type` tells them
 * apart), the replica groups of the partitions assigned to it, one timer driving every group's `tick()`,
 * the bootstrap coordinator (on the server started without `--join`) or member (on the others), request
 * forwarding to group leaders, and the HTTP side port for `/health` and `/metrics`.
 *
 * No algorithm lives here: consensus is in `@paxkv/paxos`, the replicated store in `@paxkv/kvstore`, the
 * bootstrap protocol in `@paxkv/bootstrap`. This file wires them to sockets, timers and the disk.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { BootstrapCoordinator, BootstrapMember } from '@paxkv/bootstrap';
import {
  type BootstrapReply,
  type ClientRequest,
  type ClusterStatus,
  type Consistency,
  errorFromWire,
  errorMessage,
  type KvRequest,
  type KvResult,
  type LookupTable,
  type Member,
  type NodeId,
  NoLeaderError,
  NotReadyError,
  PaxkvError,
  parseBootstrapReply,
  parseBootstrapRequest,
  parseClientRequest,
  parsePeerMessage,
  parseServerResponse,
  partitionOf,
  requestIdOf,
  type ServerResponse,
  TimeoutError,
  UnavailableError,
  UnknownTypeError,
} from '@paxkv/common';
import type { ServerConfig } from './config.js';
import { FramedSocket } from './framed-socket.js';
import type { GroupFactory, PaxosMessageCheck, ReplicaGroupPort } from './group-port.js';
import { type HealthReport, HttpEndpoint } from './http-endpoint.js';
import { readIdentity, writeIdentity } from './identity.js';
import { Link } from './link.js';
import type { ServerLogger } from './logger.js';
import { ServerMetrics } from './metrics.js';

/** The node id the bootstrap server gives itself. */
export const BOOTSTRAP_NODE_ID = 1;

/** Collaborators of a server (the real ones in `main.ts`, others in tests). */
export interface ServerDeps {
  /** Builds the replica group of one partition. */
  readonly groupFactory: GroupFactory;
  /** Structural check of paxos messages from peers. */
  readonly isPaxosMessage: PaxosMessageCheck;
  readonly logger: ServerLogger;
  /** Metrics registry; default a new one. */
  readonly metrics?: ServerMetrics;
  /** Monotonic clock in ms; default `performance.now`. */
  readonly now?: () => number;
}

type ConnKind = 'unknown' | 'client' | 'peer' | 'member';

interface InboundConn {
  readonly socket: FramedSocket;
  kind: ConnKind;
  peerId: NodeId | null;
  inflight: number;
}

/** Outcome of forwarding one request: the reply, or why there is none. */
type ForwardOutcome =
  | { readonly kind: 'reply'; readonly reply: ServerResponse }
  /** Never left this server (no link, link down): retrying is always safe. */
  | { readonly kind: 'not-sent' }
  /** Sent, but no reply came (timeout, or the link broke): the outcome is unknown. */
  | { readonly kind: 'lost' };

interface PendingForward {
  readonly target: NodeId;
  readonly resolve: (outcome: ForwardOutcome) => void;
  readonly timer: NodeJS.Timeout;
}

/** Delay between attempts while a group has no leader or a forward target is unreachable, in ms. */
const RETRY_BACKOFF_MIN_MS = 10;
const RETRY_BACKOFF_MAX_MS = 200;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function codeOf(e: unknown): string {
  return e instanceof PaxkvError
    ? e.code
    : typeof e === 'object' && e !== null && 'code' in e
      ? String((e as { code: unknown }).code)
      : 'INTERNAL';
}

function leaderHintOf(e: unknown): NodeId | null {
  if (typeof e !== 'object' || e === null) return null;
  const hint = (e as { leaderHint?: { node?: unknown } }).leaderHint;
  if (hint && typeof hint.node === 'number') return hint.node;
  const leader = (e as { leader?: unknown }).leader;
  return typeof leader === 'number' ? leader : null;
}

/** A running server. Create with {@link PaxkvServer.start}; stop with {@link PaxkvServer.stop}. */
export class PaxkvServer {
  readonly metrics: ServerMetrics;
  private readonly log: ServerLogger;
  private readonly now: () => number;
  private nodeIdValue: NodeId | null;
  private tableValue: LookupTable | null = null;
  private spares: Array<{ id: NodeId; address: string }>;
  private readonly groups = new Map<number, ReplicaGroupPort>();
  private readonly creating = new Set<number>();
  private readonly lastLeader = new Map<number, NodeId | null>();
  private readonly links = new Map<NodeId, Link>();
  private readonly inbound = new Set<InboundConn>();
  private readonly memberConns = new Map<NodeId, InboundConn>();
  private readonly pending = new Map<number, PendingForward>();
  private readonly remoteLeader = new Map<number, NodeId>();
  private nextForwardId = 1;
  private coordinator: BootstrapCoordinator | null = null;
  private member: BootstrapMember | null = null;
  private bootstrapLink: Link | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private lastHeartbeat = Number.NEGATIVE_INFINITY;
  private http: HttpEndpoint | null = null;
  private stopping = false;
  private advertised = '';

  private constructor(
    readonly config: ServerConfig,
    private readonly deps: ServerDeps,
    private readonly listener: NetServer,
  ) {
    this.metrics = deps.metrics ?? new ServerMetrics();
    this.log = deps.logger;
    this.now = deps.now ?? (() => performance.now());
    const identity = readIdentity(config.dataDir);
    this.nodeIdValue = config.join === undefined ? BOOTSTRAP_NODE_ID : identity.nodeId;
    this.tableValue = null;
    this.spares = [...identity.spares];
    this.restoredTable = identity.table;
  }

  private restoredTable: LookupTable | null;

  /**
   * Starts a server: reads its identity, listens, starts the HTTP endpoint, restores its groups from disk
   * if it already has a table, then checks in with the bootstrap server (or becomes it).
   */
  static async start(config: ServerConfig, deps: ServerDeps): Promise<PaxkvServer> {
    mkdirSync(config.dataDir, { recursive: true });
    const listener = createServer({ noDelay: true });
    const server = new PaxkvServer(config, deps, listener);
    listener.on('connection', (s) => server.accept(s));
    listener.maxConnections = config.maxConnections;
    await new Promise<void>((resolveListen, reject) => {
      listener.once('error', reject);
      listener.listen(config.port, config.host, () => {
        listener.off('error', reject);
        resolveListen();
      });
    });
    listener.on('error', (e) => server.log.error({ err: e.message }, 'listener error'));
    const addr = listener.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    server.advertised = config.advertise ?? `${host}:${port}`;
    if (config.httpPort !== undefined) {
      server.http = await HttpEndpoint.start(config.host, config.httpPort, {
        health: () => server.health(),
        metrics: () => server.metrics.render(),
        metricsContentType: server.metrics.contentType,
      });
    }
    await server.boot();
    return server;
  }

  /** The address peers and clients use (`host:port`). */
  get address(): string {
    return this.advertised;
  }

  /** The bound TCP port. */
  get port(): number {
    const a = this.listener.address();
    return typeof a === 'object' && a ? a.port : this.config.port;
  }

  /** The bound HTTP port, or null when the endpoint is off. */
  get httpPort(): number | null {
    return this.http?.port ?? null;
  }

  /** This server's node id, null until the bootstrap server assigned one. */
  get nodeId(): NodeId | null {
    return this.nodeIdValue;
  }

  /** The lookup table in use, null before the cluster started. */
  get table(): LookupTable | null {
    return this.tableValue;
  }

  /** True when this is the bootstrap server. */
  get isBootstrap(): boolean {
    return this.coordinator !== null;
  }

  private async boot(): Promise<void> {
    const c = this.config;
    if (c.join === undefined) {
      this.coordinator = new BootstrapCoordinator({
        self: { address: this.advertised, nodeId: BOOTSTRAP_NODE_ID },
        config: {
          threshold: c.bootstrapThreshold,
          partitions: c.partitions,
          replication: c.replication,
          suspectAfterMs: c.heartbeatMs * 6,
        },
        restore: { table: this.restoredTable, spares: this.spares },
      });
      this.handleCoordinatorEvents();
      if (this.coordinator.table) await this.adoptTable(this.coordinator.table);
    } else {
      this.member = new BootstrapMember({
        address: this.advertised,
        ...(this.nodeIdValue !== null ? { nodeId: this.nodeIdValue } : {}),
        table: this.restoredTable,
        config: { heartbeatIntervalMs: c.heartbeatMs, checkinRetryMs: Math.max(c.heartbeatMs, 200) },
      });
      this.member.connectionLost();
      if (this.restoredTable && this.nodeIdValue !== null) await this.adoptTable(this.restoredTable);
      this.bootstrapLink = new Link(c.join, {
        maxFrameBytes: c.maxFrameBytes,
        onConnected: () => {
          this.member?.connectionRestored();
          this.pumpBootstrap(true);
        },
        onDisconnected: () => this.member?.connectionLost(),
        onMessage: (v) => this.onBootstrapReply(v),
      });
    }
    this.tickTimer = setInterval(() => this.onTick(), c.tickMs);
    this.log.info(
      {
        address: this.advertised,
        httpPort: this.httpPort,
        dataDir: c.dataDir,
        fsync: c.fsync,
        bootstrapThreshold: c.bootstrapThreshold,
        partitions: c.partitions,
        replication: c.replication,
        role: this.coordinator ? 'bootstrap' : `member of ${c.join}`,
        nodeId: this.nodeIdValue,
      },
      `paxkv-server listening on ${this.advertised}${this.httpPort !== null ? ` (http :${this.httpPort})` : ''}, data dir ${c.dataDir}, fsync ${c.fsync}, bootstrap threshold ${c.bootstrapThreshold}, ${this.coordinator ? 'bootstrap server' : `joining ${c.join}`}`,
    );
  }

  // ---- table and groups ------------------------------------------------------------------------

  private persistIdentity(): void {
    try {
      writeIdentity(this.config.dataDir, {
        version: 1,
        nodeId: this.nodeIdValue,
        table: this.tableValue,
        spares: this.coordinator ? this.coordinator.spares() : this.spares,
      });
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'cannot write the identity file');
    }
  }

  private addressOf(node: NodeId): string | undefined {
    return this.tableValue?.nodes.find((n) => n.id === node)?.address ?? this.coordinator?.addressOf(node);
  }

  private adoptTableInBackground(table: LookupTable): void {
    this.adoptTable(table).catch((e: unknown) =>
      this.log.error({ version: table.version, err: (e as Error).message }, 'cannot adopt the lookup table'),
    );
  }

  private async adoptTable(table: LookupTable): Promise<void> {
    if (this.tableValue && table.version <= this.tableValue.version) return;
    this.tableValue = table;
    this.persistIdentity();
    this.log.info(
      { version: table.version, nodes: table.nodes.length },
      `adopted lookup table v${table.version}`,
    );
    for (const n of table.nodes) this.links.get(n.id)?.setAddress(n.address);
    const me = this.nodeIdValue;
    if (me === null) return;
    const creations: Promise<void>[] = [];
    for (const g of table.groups) {
      if (!g.replicas.includes(me) || this.groups.has(g.partition) || this.creating.has(g.partition))
        continue;
      creations.push(this.createGroup(g.partition, g.replicas, me));
    }
    await Promise.all(creations);
  }

  private async createGroup(partition: number, replicas: readonly NodeId[], me: NodeId): Promise<void> {
    this.creating.add(partition);
    try {
      const group = await this.deps.groupFactory({
        partition,
        pid: me,
        peers: replicas.filter((r) => r !== me),
        preferredLeader: replicas[0] === me,
        dataDir: join(this.config.dataDir, `partition-${partition}`),
        fsync: this.config.fsync,
        send: (to, message) => {
          this.peerLink(to)?.send({ type: 'paxos', partition, from: me, msg: message });
        },
        addressOf: (node) => this.addressOf(node),
        onFlush: (seconds) => this.metrics.fsyncLatency.observe(seconds),
      });
      if (this.stopping) {
        await group.close();
        return;
      }
      this.groups.set(partition, group);
      for (const peer of replicas) if (peer !== me) this.peerLink(peer);
    } catch (e) {
      this.log.error(
        { partition, err: (e as Error).message },
        `cannot open the replica group of partition ${partition}`,
      );
    } finally {
      this.creating.delete(partition);
    }
  }

  private peerLink(node: NodeId): Link | undefined {
    const existing = this.links.get(node);
    if (existing) return existing;
    if (node === this.nodeIdValue || this.stopping) return undefined;
    const address = this.addressOf(node);
    if (!address) return undefined;
    const link = new Link(address, {
      maxFrameBytes: this.config.maxFrameBytes,
      hello: () => ({ type: 'peer.hello', from: this.nodeIdValue }),
      onConnected: () => {
        for (const g of this.groups.values()) {
          if (this.tableValue?.groups.find((x) => x.partition === g.partition)?.replicas.includes(node)) {
            g.reconnected(node);
          }
        }
      },
      onDisconnected: () => this.failForwards(node),
      onMessage: (v) => this.onForwardReply(v),
    });
    this.links.set(node, link);
    return link;
  }

  // ---- timers ----------------------------------------------------------------------------------

  private onTick(): void {
    try {
      this.tickOnce();
    } catch (e) {
      // A timer callback must never take the process down.
      this.log.error({ err: (e as Error).message }, 'tick failed');
    }
  }

  private tickOnce(): void {
    for (const g of this.groups.values()) {
      try {
        g.tick();
      } catch (e) {
        this.log.error({ partition: g.partition, err: (e as Error).message }, 'tick failed');
      }
      const leader = g.leader;
      const before = this.lastLeader.get(g.partition);
      if (before !== leader) {
        if (before !== undefined) this.metrics.leaderChanges.inc({ partition: String(g.partition) });
        this.lastLeader.set(g.partition, leader);
        this.log.debug({ partition: g.partition, leader }, 'leader changed');
      }
    }
    const now = this.now();
    if (now - this.lastHeartbeat >= this.config.heartbeatMs) {
      this.lastHeartbeat = now;
      this.pumpBootstrap(false);
      for (const g of this.groups.values()) {
        const p = String(g.partition);
        this.metrics.isLeader.set({ partition: p }, g.role === 'leader' ? 1 : 0);
        this.metrics.logSize.set({ partition: p }, g.logLength);
        this.metrics.decidedIndex.set({ partition: p }, g.decidedIndex);
      }
    }
  }

  private pumpBootstrap(force: boolean): void {
    const now = this.now();
    if (this.coordinator) {
      this.coordinator.tick(now);
      this.flushCoordinator();
    }
    if (this.member && this.bootstrapLink) {
      if (force || this.bootstrapLink.connected) this.member.tick(now);
      for (const m of this.member.drainOutbox()) this.bootstrapLink.send(m);
    }
  }

  private flushCoordinator(): void {
    const coordinator = this.coordinator;
    if (!coordinator) return;
    this.handleCoordinatorEvents();
    for (const out of coordinator.drainOutbox()) {
      this.memberConns.get(out.to)?.socket.send(out.message);
    }
  }

  private handleCoordinatorEvents(): void {
    const coordinator = this.coordinator;
    if (!coordinator) return;
    for (const e of coordinator.drainEvents()) {
      switch (e.type) {
        case 'table-built':
        case 'table-updated':
          this.log.info(
            { version: e.table.version },
            `lookup table v${e.table.version} ${e.type === 'table-built' ? 'built' : 'updated'}`,
          );
          this.adoptTableInBackground(e.table);
          break;
        case 'registered':
          this.log.info(
            { node: e.node, address: e.address, role: e.role },
            `node ${e.node} registered (${e.role})`,
          );
          if (e.role === 'spare') this.persistIdentity();
          break;
        case 'suspected':
          this.log.warn({ node: e.node, silentForMs: Math.round(e.silentForMs) }, `node ${e.node} suspected`);
          break;
        case 'alive':
          this.log.info({ node: e.node }, `node ${e.node} alive again`);
          break;
        case 'address-changed':
          this.log.info({ node: e.node, from: e.from, to: e.to }, `node ${e.node} moved`);
          break;
      }
    }
  }

  private onBootstrapReply(value: unknown): void {
    const member = this.member;
    if (!member) return;
    const parsed = parseBootstrapReply(value);
    if (!parsed.ok) {
      this.log.warn({ err: parsed.error.message }, 'invalid message from the bootstrap server');
      return;
    }
    this.applyMemberUpdate(parsed.value);
  }

  private applyMemberUpdate(message: BootstrapReply): void {
    const member = this.member;
    if (!member) return;
    const update = member.handle(message, this.now());
    if (update.nodeId !== undefined) {
      if (this.nodeIdValue !== null && this.nodeIdValue !== update.nodeId) {
        this.log.error(
          { old: this.nodeIdValue, new: update.nodeId },
          'the bootstrap server assigned another node id; keeping the old one',
        );
      } else if (this.nodeIdValue === null) {
        this.nodeIdValue = update.nodeId;
        this.log.info({ nodeId: update.nodeId }, `assigned node id ${update.nodeId}`);
        this.persistIdentity();
      }
    }
    if (update.error)
      this.log.warn({ err: update.error.message }, 'the bootstrap server refused the check-in');
    const table = update.table ?? (this.tableValue === null ? member.table : null);
    if (table && this.nodeIdValue !== null) this.adoptTableInBackground(table);
  }

  // ---- inbound connections ---------------------------------------------------------------------

  private accept(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const conn: InboundConn = {
      kind: 'unknown',
      peerId: null,
      inflight: 0,
      socket: undefined as unknown as FramedSocket,
    };
    (conn as { socket: FramedSocket }).socket = new FramedSocket(
      socket,
      { maxFrameBytes: this.config.maxFrameBytes },
      {
        onMessage: (v) => this.dispatch(conn, v),
        onFrameError: (error) => {
          this.metrics.badInput.inc({ code: error.code });
          conn.socket.send(errorMessage(error, null));
        },
        onClose: () => {
          this.inbound.delete(conn);
          this.metrics.connections.dec();
          for (const [id, c] of this.memberConns) if (c === conn) this.memberConns.delete(id);
        },
      },
    );
    this.inbound.add(conn);
    this.metrics.connections.inc();
  }

  private reject(conn: InboundConn, error: PaxkvError, id: number | null): void {
    this.metrics.badInput.inc({ code: error.code });
    conn.socket.send(errorMessage(error, id));
  }

  private dispatch(conn: InboundConn, value: unknown): void {
    try {
      const type =
        typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
          ? (value as { type?: unknown }).type
          : undefined;
      switch (type) {
        case 'kv':
        case 'lookup':
        case 'status': {
          const parsed = conn.kind === 'peer' ? parsePeerMessage(value) : parseClientRequest(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          if (conn.kind === 'unknown') conn.kind = 'client';
          void this.handleClient(conn, parsed.value as ClientRequest);
          return;
        }
        case 'checkin':
        case 'heartbeat': {
          const parsed = parseBootstrapRequest(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          const coordinator = this.coordinator;
          if (!coordinator) {
            this.reject(
              conn,
              new UnavailableError({
                reason: `this server is not the bootstrap server; check in with ${this.config.join} instead`,
              }),
              null,
            );
            return;
          }
          conn.kind = 'member';
          const reply = coordinator.handle(parsed.value, this.now());
          if (reply?.type === 'checkin.ok') this.memberConns.set(reply.nodeId, conn);
          if (parsed.value.type === 'heartbeat') this.memberConns.set(parsed.value.nodeId, conn);
          if (reply) conn.socket.send(reply);
          this.flushCoordinator();
          return;
        }
        case 'table.push':
        case 'members': {
          const parsed = parseBootstrapReply(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          this.applyMemberUpdate(parsed.value);
          return;
        }
        case 'peer.hello': {
          const parsed = parsePeerMessage(value);
          if (!parsed.ok || parsed.value.type !== 'peer.hello') {
            this.reject(
              conn,
              parsed.ok ? new UnknownTypeError({ type: 'peer.hello', expected: [] }) : parsed.error,
              null,
            );
            return;
          }
          conn.kind = 'peer';
          conn.peerId = parsed.value.from;
          return;
        }
        case 'paxos': {
          const parsed = parsePeerMessage(value);
          if (!parsed.ok || parsed.value.type !== 'paxos') {
            this.reject(
              conn,
              parsed.ok ? new UnknownTypeError({ type: 'paxos', expected: [] }) : parsed.error,
              null,
            );
            return;
          }
          const env = parsed.value;
          if (conn.kind !== 'peer' || conn.peerId !== env.from || !this.deps.isPaxosMessage(env.msg)) {
            this.metrics.badInput.inc({ code: 'BAD_REQUEST' });
            return;
          }
          this.groups.get(env.partition)?.handle(env.from, env.msg);
          return;
        }
        default: {
          const parsed = parseClientRequest(value);
          if (!parsed.ok) {
            this.reject(conn, parsed.error, parsed.id);
            return;
          }
          return;
        }
      }
    } catch (e) {
      // Never let one bad message take the process down.
      this.log.error({ err: (e as Error).message, remote: conn.socket.remote }, 'error handling a message');
      this.reject(
        conn,
        e instanceof PaxkvError
          ? e
          : new UnavailableError({ reason: 'internal error while handling the message' }),
        requestIdOf(value),
      );
    }
  }

  private async handleClient(conn: InboundConn, request: ClientRequest): Promise<void> {
    const started = this.now();
    const op = request.type === 'kv' ? request.op.op : request.type;
    if (conn.inflight >= this.config.maxInflightPerConnection) {
      this.metrics.observeOp(op, 'UNAVAILABLE', 0);
      conn.socket.send(
        errorMessage(
          new UnavailableError({
            reason: `more than ${this.config.maxInflightPerConnection} requests in flight on one connection; wait for replies`,
          }),
          request.id,
        ),
      );
      return;
    }
    conn.inflight += 1;
    let reply: ServerResponse;
    try {
      switch (request.type) {
        case 'lookup': {
          if (!this.tableValue)
            throw new NotReadyError({ reason: 'the cluster has not started yet: no lookup table' });
          reply = { type: 'lookup.ok', id: request.id, table: this.tableValue };
          break;
        }
        case 'status':
          reply = { type: 'status.ok', id: request.id, status: this.statusReport() };
          break;
        case 'kv': {
          const r = await this.executeKv(request, conn.kind === 'peer');
          reply = { type: 'kv.ok', id: request.id, result: r.result, ...(r.stale ? { stale: true } : {}) };
          break;
        }
      }
      this.metrics.observeOp(op, 'ok', (this.now() - started) / 1000);
    } catch (e) {
      this.metrics.observeOp(op, codeOf(e), (this.now() - started) / 1000);
      reply = errorMessage(e, request.id);
    } finally {
      conn.inflight -= 1;
    }
    conn.socket.send(reply);
  }

  /**
   * Runs a KV request: on the local replica of the key's group if there is one (forwarding to the leader
   * it names otherwise), or on a replica of the group elsewhere. Retries on NO_LEADER and unreachable
   * targets until `requestTimeoutMs`. A request that was itself forwarded by a peer is never forwarded
   * again: its NOT_LEADER goes back to the forwarder, which follows the hint (no forwarding loops).
   */
  private async executeKv(
    request: KvRequest,
    forwarded: boolean,
  ): Promise<{ result: KvResult; stale: boolean }> {
    const table = this.tableValue;
    if (!table) throw new NotReadyError({ reason: 'the cluster has not started yet: no lookup table' });
    const partition = partitionOf(request.op.key, table.partitions);
    const replicas = table.groups.find((g) => g.partition === partition)?.replicas ?? [];
    const consistency: Consistency = request.consistency ?? 'linearizable';
    // A read, or a write with a session (exactly-once), may be retried after an unknown outcome; a
    // sessionless write may not: it could be applied twice, so its unknown outcome goes to the client.
    const retrySafe = request.op.op === 'get' || request.session !== undefined;
    const unknownOutcome = (why: string) =>
      new TimeoutError({
        operation: `${request.op.op} on partition ${partition} (${why}; it may or may not have been applied)`,
      });
    const deadline = this.now() + this.config.requestTimeoutMs;
    let backoff = RETRY_BACKOFF_MIN_MS;
    let rotate = 0;
    let lastError: unknown = null;
    const wait = async () => {
      await sleep(Math.min(backoff, Math.max(0, deadline - this.now())));
      backoff = Math.min(RETRY_BACKOFF_MAX_MS, backoff * 2);
    };
    while (this.now() < deadline && !this.stopping) {
      const local = this.groups.get(partition);
      let target: NodeId | null = null;
      if (local) {
        try {
          const result = await local.submit(request.op, {
            ...(request.session ? { session: request.session } : {}),
            consistency,
          });
          return { result, stale: consistency === 'stale' };
        } catch (e) {
          lastError = e;
          const code = codeOf(e);
          const hint = leaderHintOf(e);
          if (code === 'NOT_LEADER' && hint !== null && hint !== this.nodeIdValue) {
            if (forwarded) throw e;
            target = hint;
          } else if (code === 'NOT_LEADER' || code === 'NO_LEADER') {
            await wait();
            continue;
          } else if ((code === 'TIMEOUT' || code === 'UNAVAILABLE') && retrySafe) {
            await wait();
            continue;
          } else {
            throw e;
          }
        }
      } else {
        if (forwarded) {
          throw new UnavailableError({
            reason: `node ${this.nodeIdValue} does not host partition ${partition}; refresh the lookup table`,
          });
        }
        if (replicas.length === 0)
          throw new UnavailableError({ reason: `no group serves partition ${partition}` });
        target = this.remoteLeader.get(partition) ?? (replicas[rotate++ % replicas.length] as NodeId);
      }
      // Forward to `target` and relay its answer.
      const remaining = deadline - this.now();
      if (remaining <= 0) break;
      this.metrics.forwarded.inc();
      const outcome = await this.forward(target, request, remaining);
      if (outcome.kind !== 'reply') {
        if (outcome.kind === 'lost' && !retrySafe) throw unknownOutcome(`no answer from node ${target}`);
        lastError = new UnavailableError({ reason: `node ${target} is unreachable` });
        this.remoteLeader.delete(partition);
        await wait();
        continue;
      }
      const reply = outcome.reply;
      if (reply.type === 'kv.ok') {
        this.remoteLeader.set(partition, target);
        return { result: reply.result, stale: reply.stale === true };
      }
      if (reply.type === 'error') {
        const error = errorFromWire(reply);
        lastError = error;
        if (reply.code === 'NOT_LEADER') {
          const next = reply.leaderHint?.node;
          if (next !== undefined && next !== target) {
            this.remoteLeader.set(partition, next);
            continue;
          }
          this.remoteLeader.delete(partition);
          await wait();
          continue;
        }
        if ((reply.code === 'TIMEOUT' || reply.code === 'UNAVAILABLE') && !retrySafe) throw error;
        if (
          reply.code === 'NO_LEADER' ||
          reply.code === 'UNAVAILABLE' ||
          reply.code === 'NOT_READY' ||
          reply.code === 'TIMEOUT'
        ) {
          this.remoteLeader.delete(partition);
          await wait();
          continue;
        }
        throw error;
      }
      lastError = new UnavailableError({ reason: `unexpected reply ${reply.type} from node ${target}` });
      await wait();
    }
    if (
      lastError instanceof PaxkvError &&
      (lastError.code === 'NO_LEADER' || lastError.code === 'NOT_LEADER')
    ) {
      throw new NoLeaderError({ partition });
    }
    throw new TimeoutError({
      timeoutMs: this.config.requestTimeoutMs,
      operation: `${request.op.op} on partition ${partition}`,
    });
  }

  private forward(target: NodeId, request: KvRequest, timeoutMs: number): Promise<ForwardOutcome> {
    const link = this.peerLink(target);
    if (!link?.connected) return Promise.resolve({ kind: 'not-sent' });
    const id = this.nextForwardId++;
    return new Promise((resolveOutcome) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolveOutcome({ kind: 'lost' });
      }, timeoutMs);
      this.pending.set(id, { target, resolve: resolveOutcome, timer });
      const sent = link.send({ ...request, id });
      if (!sent) {
        clearTimeout(timer);
        this.pending.delete(id);
        resolveOutcome({ kind: 'not-sent' });
      }
    });
  }

  /** The link to `target` broke: requests forwarded over it will get no reply. */
  private failForwards(target: NodeId): void {
    for (const [id, p] of this.pending) {
      if (p.target !== target) continue;
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.resolve({ kind: 'lost' });
    }
  }

  private onForwardReply(value: unknown): void {
    const parsed = parseServerResponse(value);
    if (!parsed.ok) return;
    const id = parsed.value.id;
    if (id === null) return;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve({ kind: 'reply', reply: parsed.value });
  }

  // ---- reports ---------------------------------------------------------------------------------

  /** This server's view of the cluster (the `status` answer). */
  statusReport(): ClusterStatus {
    const node = this.nodeIdValue;
    if (node === null) {
      throw new NotReadyError({ reason: 'this server has not checked in with the bootstrap server yet' });
    }
    const members: Member[] = this.coordinator
      ? this.coordinator.members()
      : [...(this.member?.members ?? [])];
    return {
      node,
      table: this.tableValue,
      groups: [...this.groups.values()]
        .sort((a, b) => a.partition - b.partition)
        .map((g) => ({
          partition: g.partition,
          leader: g.leader,
          role: g.role,
          decidedIndex: g.decidedIndex,
        })),
      members,
    };
  }

  /** What `/health` reports. */
  health(): HealthReport {
    const expected =
      this.tableValue?.groups.filter(
        (g) => this.nodeIdValue !== null && g.replicas.includes(this.nodeIdValue),
      ).length ?? 0;
    const ready = this.tableValue !== null && this.groups.size === expected;
    return {
      status: this.stopping ? 'stopping' : ready ? 'ok' : 'starting',
      node: this.nodeIdValue,
      address: this.advertised,
      tableVersion: this.tableValue?.version ?? null,
      groups: [...this.groups.values()]
        .sort((a, b) => a.partition - b.partition)
        .map((g) => ({ partition: g.partition, leader: g.leader, role: g.role })),
    };
  }

  /**
   * Clean shutdown: stop accepting, stop the timer, fail pending forwards, flush and close every group
   * (fsync), close all sockets and the HTTP endpoint, and persist the identity file.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = null;
    // close() stops accepting; its callback waits for open connections, which are ended below.
    const listenerClosed = new Promise<void>((r) => this.listener.close(() => r()));
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ kind: 'lost' });
      this.pending.delete(id);
    }
    while (this.creating.size > 0) await sleep(10);
    await Promise.all(
      [...this.groups.values()].map((g) =>
        g
          .close()
          .catch((e: unknown) =>
            this.log.error({ partition: g.partition, err: (e as Error).message }, 'close failed'),
          ),
      ),
    );
    this.groups.clear();
    this.bootstrapLink?.close();
    for (const l of this.links.values()) l.close();
    this.links.clear();
    for (const c of this.inbound) c.socket.end('server stopping');
    await this.http?.close();
    await Promise.race([listenerClosed, sleep(1000)]);
    this.persistIdentity();
    this.log.info({ address: this.advertised }, 'paxkv-server stopped');
  }
}
