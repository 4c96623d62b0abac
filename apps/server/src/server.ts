/**
 * One paxkv server: a TCP port for clients, peers and bootstrap traffic (the message `type` tells them
 * apart), the replica groups of the partitions assigned to it, one timer driving every group's `tick()`,
 * the bootstrap coordinator (on the server started without `--join`) or member (on the others), request
 * forwarding to group leaders, and the HTTP side port for `/health` and `/metrics`.
 *
 * No algorithm lives here: consensus is in `@paxkv/paxos`, the replicated store in `@paxkv/kvstore`, the
 * bootstrap protocol in `@paxkv/bootstrap`. This file composes the server's parts:
 * - `inbound.ts`: connections on the TCP port, validation at the boundary, dispatch by message type;
 * - `request-path.ts`: the one entry point for client requests and the one forward/retry policy;
 * - `peers.ts`: links to the other servers, and requests forwarded over them;
 * - `group-lifecycle.ts`: the replica groups, from the lookup table to close;
 * - `bootstrap-role.ts`: coordinator or member of the bootstrap protocol.
 */
import { mkdirSync } from 'node:fs';
import {
  type ClientRequest,
  type ClusterStatus,
  createClusterHandshake,
  DEFAULT_PROTOCOL_LIMITS,
  type Handshake,
  type LookupTable,
  type NodeId,
  NotReadyError,
  resolveClusterKey,
} from '@paxkv/common';
import { AccessControl, type Principal } from './access-control.js';
import { BOOTSTRAP_NODE_ID, BootstrapRole } from './bootstrap-role.js';
import type { ServerConfig } from './config.js';
import { type ServerContext, settledWithin } from './context.js';
import { GroupHost } from './group-lifecycle.js';
import { countedHandshake } from './handshake-accounting.js';
import { type HealthReport, HttpEndpoint } from './http-endpoint.js';
import { readIdentity } from './identity.js';
import { InboundConnections } from './inbound.js';
import { MetadataService } from './metadata-group.js';
import { ServerMetrics } from './metrics.js';
import { PeerLinks } from './peers.js';
import { RequestPath } from './request-path.js';
import { requestPathBackend } from './resp/request-path-backend.js';
import { RespServer } from './resp/resp-server.js';
import type { ServerDeps } from './server-deps.js';
import { certificateNames, readTlsMaterial, UNSAFE_TLS_ANY_CERTIFICATE } from './tls-setup.js';
import { ServerWarmUp } from './warm-up.js';
import { WatchStreams } from './watch-streams.js';

export { BOOTSTRAP_NODE_ID } from './bootstrap-role.js';
export type { ServerDeps } from './server-deps.js';

/** How long `stop()` lets open connections flush their last replies, in ms. */
const STOP_GRACE_MS = 1000;

/** A running server. Create with {@link PaxkvServer.start}; stop with {@link PaxkvServer.stop}. */
export class PaxkvServer {
  readonly metrics: ServerMetrics;
  /**
   * The request path: the entry point for every front-end (see `request-path.ts`). A new front-end
   * validates its input, builds a `ClientRequest` and calls `requests.execute(request, { forwarded: false })`.
   */
  readonly requests: RequestPath;
  private readonly ctx: ServerContext;
  private readonly bootstrap: BootstrapRole;
  private readonly groups: GroupHost;
  /** The replicated cluster metadata (lookup table and members). */
  readonly metadata: MetadataService;
  private readonly peers: PeerLinks;
  private readonly inbound: InboundConnections;
  /** Watch streams served by this server. */
  readonly watches: WatchStreams;
  /** Logins, users and roles, and the check of every client request (see `access-control.ts`). */
  readonly access: AccessControl;
  private readonly warmUp: ServerWarmUp; // `--warm-up`: see warm-up.ts
  private tickTimer: NodeJS.Timeout | null = null;
  private lastHeartbeat = Number.NEGATIVE_INFINITY;
  private http: HttpEndpoint | null = null;
  private resp: RespServer | null = null;

  private constructor(
    readonly config: ServerConfig,
    deps: ServerDeps,
  ) {
    this.metrics = deps.metrics ?? new ServerMetrics();
    const identity = readIdentity(config.dataDir);
    // Throws a ConfigError (start-up fails with its message) for an unreadable file or a bad token.
    const key = resolveClusterKey({ token: config.clusterToken, file: config.clusterTokenFile, env: {} });
    // Throws a ConfigError for unreadable files or a certificate the CA did not sign.
    const tls = readTlsMaterial(config);
    this.ctx = {
      config,
      log: deps.logger,
      metrics: this.metrics,
      now: deps.now ?? (() => performance.now()),
      nodeId: config.join === undefined ? BOOTSTRAP_NODE_ID : identity.nodeId,
      table: null,
      stopping: false,
      advertised: '',
      authRequired: key !== null,
      tls,
    };
    const handshake: Handshake | undefined =
      deps.handshake ??
      (key
        ? countedHandshake(
            createClusterHandshake({ key, self: () => this.ctx.nodeId }),
            this.ctx,
            this.metrics,
          )
        : undefined);
    this.bootstrap = new BootstrapRole(
      this.ctx,
      { table: identity.table, spares: identity.spares },
      handshake,
    );
    const addressOf = (node: NodeId) => this.addressOf(node);
    this.peers = new PeerLinks(this.ctx, {
      addressOf,
      onPeerConnected: (node) => this.groups.peerConnected(node),
      onPeerDisconnected: (node) => this.groups.peerDisconnected(node),
      ...(handshake ? { handshake } : {}),
    });
    this.groups = new GroupHost(this.ctx, {
      groupFactory: deps.groupFactory,
      peers: this.peers,
      addressOf,
      persistIdentity: () => this.bootstrap.persistIdentityInBackground(),
      ...(deps.onGroupOpenFailed ? { onGroupOpenFailed: deps.onGroupOpenFailed } : {}),
    });
    this.metadata = new MetadataService(this.ctx, {
      groupFactory: deps.groupFactory,
      groups: this.groups,
      peers: this.peers,
      requests: () => this.requests,
      bootstrap: this.bootstrap,
      reconfigurer: deps.reconfigurer ?? null,
      identified: (node) => this.inbound.hasPeer(node),
    });
    this.requests = new RequestPath(this.ctx, {
      groups: this.groups,
      peers: this.peers,
      statusReport: () => this.statusReport(),
      memberRequest: (request, origin) => this.metadata.execute(request, origin),
    });
    this.watches = new WatchStreams(this.ctx, this.groups);
    // Throws a ConfigError for an unreadable root password file.
    this.access = new AccessControl(
      {
        enabled: config.auth,
        tokenTtlMs: config.authTokenTtlMs,
        cacheMs: config.authCacheMs,
        rootPasswordFile: config.rootPasswordFile,
        now: this.ctx.now,
      },
      async (op) => (await this.requests.executeKv({ type: 'kv', id: 0, op }, false)).result,
    );
    this.warmUp = new ServerWarmUp(config, this.ctx.log);
    this.inbound = new InboundConnections(this.ctx, {
      requests: this.requests,
      watches: this.watches,
      groups: this.groups,
      bootstrap: this.bootstrap,
      metadata: this.metadata,
      checkPaxosMessage: deps.checkPaxosMessage,
      addressOf,
      access: this.access,
      ...(handshake ? { handshake } : {}),
    });
  }

  /**
   * Starts a server: reads its identity, listens, starts the HTTP endpoint, restores its groups from disk
   * if it already has a table, then checks in with the bootstrap server (or becomes it).
   */
  static async start(config: ServerConfig, deps: ServerDeps): Promise<PaxkvServer> {
    mkdirSync(config.dataDir, { recursive: true });
    const server = new PaxkvServer(config, deps);
    const { port } = await server.inbound.listen(config.host, config.port);
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    server.ctx.advertised = config.advertise ?? `${host}:${port}`;
    if (config.httpPort !== undefined) {
      server.http = await HttpEndpoint.start(config.host, config.httpPort, {
        ...(server.ctx.tls ? { tls: server.ctx.tls } : {}),
        health: () => server.health(),
        metrics: () => server.metrics.render(),
        metricsContentType: server.metrics.contentType,
      });
    }
    if (config.respPort !== undefined) await server.startResp(config.respPort);
    await server.boot();
    return server;
  }

  /** Opens the RESP front-end: a translation layer over {@link PaxkvServer.requests}. */
  private async startResp(port: number): Promise<void> {
    this.resp = await RespServer.start({
      host: this.config.host,
      port,
      backend: requestPathBackend({
        execute: (request, origin) => this.requests.execute(request, origin),
        limits: DEFAULT_PROTOCOL_LIMITS,
        ...(this.access.enabled
          ? {
              access: {
                login: async (user: string, password: string) =>
                  (await this.access.login({ type: 'login', id: 0, user, password })).principal,
                authorize: (principal: unknown, request: ClientRequest) =>
                  this.access.authorize(principal as Principal | null, request),
              },
            }
          : {}),
        facts: () => ({
          nodeId: this.ctx.nodeId,
          address: this.ctx.advertised,
          partitions: this.ctx.table?.partitions ?? null,
          groups: this.groups.statusRows(),
          fsync: this.config.fsync,
        }),
      }),
      onBadInput: (why) => this.metrics.badInput.inc({ code: `RESP_${why.toUpperCase().replace('-', '_')}` }),
      ...(this.ctx.tls ? { tls: this.ctx.tls } : {}),
    });
  }

  /** The bound RESP port, or null when the RESP front-end is off. */
  get respPort(): number | null {
    return this.resp?.port ?? null;
  }

  /** The address peers and clients use (`host:port`). */
  get address(): string {
    return this.ctx.advertised;
  }

  /** The bound TCP port. */
  get port(): number {
    return this.inbound.address?.port ?? this.config.port;
  }

  /** The bound HTTP port, or null when the endpoint is off. */
  get httpPort(): number | null {
    return this.http?.port ?? null;
  }

  /** This server's node id, null until the bootstrap server assigned one. */
  get nodeId(): NodeId | null {
    return this.ctx.nodeId;
  }

  /** The lookup table in use, null before the cluster started. */
  get table(): LookupTable | null {
    return this.ctx.table;
  }

  /** True when this is the bootstrap server. */
  get isBootstrap(): boolean {
    return this.bootstrap.isCoordinator;
  }

  private async boot(): Promise<void> {
    const c = this.config;
    // Tick from the start: a restarted server opens its groups from disk one after another, and each
    // one ticks (elects, serves) as soon as it is open instead of after the last one.
    this.tickTimer = setInterval(() => this.onTick(), c.tickMs);
    try {
      await this.bootstrap.start(this.groups);
    } catch (e) {
      clearInterval(this.tickTimer);
      this.tickTimer = null;
      throw e;
    }
    const coordinator = this.bootstrap.isCoordinator;
    const advertised = this.ctx.advertised;
    this.ctx.log.info(
      {
        address: advertised,
        httpPort: this.httpPort,
        respPort: this.respPort,
        dataDir: c.dataDir,
        fsync: c.fsync,
        bootstrapThreshold: c.bootstrapThreshold,
        partitions: c.partitions,
        replication: c.replication,
        role: coordinator ? 'bootstrap' : `member of ${c.join}`,
        nodeId: this.ctx.nodeId,
        peerAuthentication: this.peerAuthentication(),
      },
      `paxkv-server listening on ${advertised}${this.httpPort !== null ? ` (http :${this.httpPort})` : ''}${this.respPort !== null ? ` (resp :${this.respPort})` : ''}, data dir ${c.dataDir}, fsync ${c.fsync}, bootstrap threshold ${c.bootstrapThreshold}, ${coordinator ? 'bootstrap server' : `joining ${c.join}`}`,
    );
    this.warmUp.start();
    const tls = this.ctx.tls;
    if (tls && UNSAFE_TLS_ANY_CERTIFICATE) {
      this.ctx.log.error(
        {},
        'PAXKV_UNSAFE_TLS_ANY_CERTIFICATE is set: the peer identity check is OFF (test-only)',
      );
    }
    if (tls?.cert !== undefined) {
      const host = advertised.slice(0, advertised.lastIndexOf(':'));
      if (!certificateNames(String(tls.cert), host)) {
        this.ctx.log.warn(
          { advertised },
          `the certificate --tls-cert does not name ${host}: peers and clients dialling ${advertised} will refuse it; issue it with ${host} as a subject alternative name (or advertise a name it carries)`,
        );
      }
    }
    if (!this.ctx.authRequired && !tls) {
      this.ctx.log.warn(
        {},
        'INSECURE: no cluster token and no TLS: any process that reaches this port can act as a peer or a bootstrap member (one forged Prepare stalls a partition for good); start every server with the same --cluster-token-file (or --cluster-token, PAXKV_CLUSTER_TOKEN) or --tls-*',
      );
    }
  }

  private peerAuthentication(): string {
    const token = this.config.clusterToken !== undefined || this.config.clusterTokenFile !== undefined;
    const tls = this.ctx.tls !== undefined;
    return token && tls
      ? 'TLS certificate + cluster token'
      : tls
        ? 'TLS certificate'
        : token
          ? 'cluster token'
          : 'off';
  }

  private addressOf(node: NodeId): string | undefined {
    return (
      this.ctx.table?.nodes.find((n) => n.id === node)?.address ??
      this.metadata.addressOf(node) ??
      this.bootstrap.addressOf(node)
    );
  }

  private onTick(): void {
    try {
      this.groups.tick();
      const now = this.ctx.now();
      if (now - this.lastHeartbeat >= this.config.heartbeatMs) {
        this.lastHeartbeat = now;
        this.bootstrap.pump(false);
        this.metadata.heartbeat();
        this.groups.recordGauges();
      }
    } catch (e) {
      // A timer callback must never take the process down.
      this.ctx.log.error({ err: (e as Error).message }, 'tick failed');
    }
  }

  /** This server's view of the cluster (the `status` answer). */
  statusReport(): ClusterStatus {
    const node = this.ctx.nodeId;
    if (node === null) {
      throw new NotReadyError({ reason: 'this server has not checked in with the bootstrap server yet' });
    }
    return {
      node,
      table: this.ctx.table,
      groups: this.groups.statusRows(),
      members: this.metadata.current ? this.metadata.members() : this.bootstrap.members(),
      warmUp: this.warmUp.state,
    };
  }

  /** What `/health` reports. */
  health(): HealthReport {
    const ready = this.ctx.table !== null && this.groups.size === this.groups.expectedCount();
    return {
      status: this.ctx.stopping ? 'stopping' : ready ? 'ok' : 'starting',
      node: this.ctx.nodeId,
      address: this.ctx.advertised,
      tableVersion: this.ctx.table?.version ?? null,
      groups: this.groups.sorted().map((g) => ({ partition: g.partition, leader: g.leader, role: g.role })),
    };
  }

  /**
   * Clean shutdown: stop accepting, stop the timer, fail pending forwards, flush and close every group
   * (fsync), close all sockets and the HTTP endpoint, and persist the identity file.
   */
  async stop(): Promise<void> {
    if (this.ctx.stopping) return;
    this.ctx.stopping = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = null;
    this.inbound.stopAccepting();
    await this.warmUp.close();
    this.peers.failPending();
    await this.groups.close();
    this.bootstrap.close();
    this.peers.close();
    const inboundClosed = this.inbound.close(STOP_GRACE_MS);
    await this.resp?.close();
    await this.http?.close();
    await settledWithin(inboundClosed, STOP_GRACE_MS);
    await this.metadata.flushed();
    await this.bootstrap.identityFlushed();
    this.bootstrap.persistIdentity();
    this.ctx.log.info({ address: this.ctx.advertised }, 'paxkv-server stopped');
  }
}
