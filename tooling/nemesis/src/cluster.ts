import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TlsOptions } from '@paxkv/common';
import { freePorts, portTakenReason, serverFlags, spawnServer } from '@paxkv/server/launcher';
import type { FaultProxy } from './proxy.js';
import { fetchStatus, type ServerStatusView } from './rpc.js';
import { resolveServerCommand, type ServerCommand } from './server-command.js';
import { clientTls, serverTlsFlags, slotAddress, writeClusterCertificates } from './tls.js';

export { freePorts } from '@paxkv/server/launcher';

/** Configuration of a {@link ManagedCluster}; every field but `dir` and `proxy` has a default. */
export interface ClusterConfig {
  /** Number of servers. Default 3. */
  readonly servers: number;
  /** Directory for the servers' data dirs and logs (created). */
  readonly dir: string;
  /** The proxy in front of the servers: each gets a listener and advertises it. */
  readonly proxy: FaultProxy;
  /** How to start a server. Default {@link resolveServerCommand}. */
  readonly command?: ServerCommand;
  /** Extra flags for every server. Default none. */
  readonly serverFlags: readonly string[];
  /** Extra environment for every server (test-only switches). Default none. */
  readonly env: Readonly<Record<string, string>>;
  /** Replicas per partition (`--replication`). Default 3 (at most `servers`). */
  readonly replication: number;
  /** Partitions (`--partitions`). Default 16. */
  readonly partitions: number;
  /** WAL fsync mode (`--fsync`). Default `batch`. */
  readonly fsync: 'always' | 'batch' | 'never';
  /** Server log level (`--log-level`). Default `info`. */
  readonly logLevel: string;
  /** Time allowed for a server to start and for the whole cluster to elect leaders. Default 60 000 ms. */
  readonly startTimeoutMs: number;
  /** Interval between readiness polls. Default 200 ms. */
  readonly pollMs: number;
  /**
   * TLS on every server (clients, peers, the bootstrap link): server `slot` listens, advertises its proxy
   * listener and dials its peers on its own address `127.0.0.<10+slot>`, with a certificate naming only
   * that address from a throwaway CA in `<dir>/tls/`. The proxy must be made with `identifyBy:
   * 'source-address'` (it cannot read the stream). Default false.
   */
  readonly tls: boolean;
}

/** Defaults of {@link ClusterConfig}. */
export const DEFAULT_CLUSTER_CONFIG: Omit<ClusterConfig, 'dir' | 'proxy' | 'command'> = Object.freeze({
  servers: 3,
  serverFlags: [],
  env: {},
  replication: 3,
  partitions: 16,
  fsync: 'batch',
  logLevel: 'info',
  startTimeoutMs: 60_000,
  pollMs: 200,
  tls: false,
});

/** Raised when the cluster cannot be started or does not become ready in time. */
export class ClusterStartError extends Error {
  override readonly name = 'ClusterStartError';
  /**
   * True when a server exited because its port was taken (EADDRINUSE): the ports were free when picked,
   * but another process bound one first. Starting again on fresh ports is the fix.
   */
  readonly portTaken: boolean;
  constructor(message: string, options: { portTaken?: boolean } = {}) {
    super(message);
    this.portTaken = options.portTaken === true;
  }
}

/** The life state of a managed server process. */
export type ServerState = 'running' | 'paused' | 'killed';

/** One `paxkv-server` process, restartable on the same port and data dir. */
export class ManagedServer {
  /** The node id, known once the server has checked in (0 before). */
  node = 0;
  /** Current state. */
  state: ServerState = 'killed';
  /** Times the process has been (re)started. */
  starts = 0;
  /**
   * Set when the server left the cluster for good (its data dir wiped by a replace fault, or removed by
   * `member remove`): it is never restarted, and faults and checks ignore it.
   */
  retired = false;
  private child: ChildProcess | undefined;
  private exitWaiters: Array<() => void> = [];
  /** Exit code or signal of the last exit, for diagnostics. */
  lastExit = '';

  constructor(
    /** Index of the server in the cluster (0 = bootstrap server). */
    readonly slot: number,
    /** The server's own listening address. */
    readonly realAddress: string,
    /** The proxy listener that forwards to it (the address it advertises). */
    readonly proxyAddress: string,
    /** Its data dir. */
    readonly dataDir: string,
    /** Its log file (stdout and stderr of every incarnation). */
    readonly logFile: string,
    private readonly command: ServerCommand,
    private readonly flags: readonly string[],
    private readonly env: Readonly<Record<string, string>>,
  ) {}

  /** The OS process id of the current incarnation. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the process (must be killed or never started). */
  start(): void {
    if (this.state !== 'killed')
      throw new Error(`server slot ${this.slot} is ${this.state}; kill it before starting`);
    mkdirSync(this.dataDir, { recursive: true });
    const child = spawnServer(this.command, this.flags, {
      logFile: this.logFile,
      env: { ...process.env, ...this.env },
    });
    this.child = child;
    this.state = 'running';
    this.starts += 1;
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.lastExit = signal ?? `exit ${code}`;
      this.state = 'killed';
      this.child = undefined;
      for (const w of this.exitWaiters.splice(0)) w();
    });
  }

  /** SIGKILL and wait for the exit. A paused process is killed too. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || this.state === 'killed') return;
    const exited = new Promise<void>((r) => this.exitWaiters.push(r));
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: the process freezes with its sockets open (a paused leader looks alive to TCP). */
  pause(): void {
    if (this.state !== 'running' || this.child === undefined) return;
    this.child.kill('SIGSTOP');
    this.state = 'paused';
  }

  /** SIGCONT after {@link pause}. */
  resume(): void {
    if (this.state !== 'paused' || this.child === undefined) return;
    this.child.kill('SIGCONT');
    this.state = 'running';
  }
}

/**
 * A local paxkv cluster of real `paxkv-server` processes behind a {@link FaultProxy}: each server listens
 * on its own port, advertises its proxy listener (`--advertise`), and keeps its data dir across restarts.
 * The first server is the bootstrap server; the others join it directly (bootstrap traffic bypasses the
 * proxy, peer and client traffic crosses it).
 */
export class ManagedCluster {
  /** The effective configuration. */
  readonly config: ClusterConfig;
  /** The servers, by slot. */
  readonly servers: ManagedServer[] = [];
  /** What clients dial the servers with once {@link start} made the certificates (`tls: true`), else undefined. */
  clientTls: TlsOptions | undefined;
  private exitHook: (() => void) | undefined;
  /** The server command, resolved by {@link start}. */
  private command: ServerCommand | undefined;
  /** The cluster's certificates (`tls: true`), made by {@link start}. */
  private certs: Awaited<ReturnType<typeof writeClusterCertificates>> | undefined;

  constructor(config: Partial<ClusterConfig> & Pick<ClusterConfig, 'dir' | 'proxy'>) {
    this.config = { ...DEFAULT_CLUSTER_CONFIG, ...config };
    if (!Number.isInteger(this.config.servers) || this.config.servers < 1) {
      throw new ClusterStartError(`servers must be a positive integer, got ${this.config.servers}`);
    }
  }

  /** The addresses clients should use (the proxy listeners). */
  clientAddresses(): string[] {
    return this.servers.map((s) => s.proxyAddress);
  }

  /** The node ids of the servers in the cluster (retired ones left out). */
  nodes(): number[] {
    return this.live()
      .filter((s) => s.node > 0)
      .map((s) => s.node);
  }

  /** The server with node id `node`. */
  byNode(node: number): ManagedServer | undefined {
    return this.servers.find((s) => s.node === node);
  }

  /**
   * Starts every server, learns their node ids, rebinds the proxy listeners to them and waits until every
   * partition has a leader.
   * @throws ClusterStartError (with the log file to read) when that does not happen within `startTimeoutMs`.
   */
  async start(): Promise<void> {
    const c = this.config;
    const command = c.command ?? resolveServerCommand();
    this.command = command;
    mkdirSync(c.dir, { recursive: true });
    const ports = await freePorts(c.servers);
    const certs = c.tls ? await writeClusterCertificates(join(c.dir, 'tls'), c.servers) : undefined;
    this.certs = certs;
    this.clientTls = certs === undefined ? undefined : clientTls(certs);
    const bootstrapReal = `${this.hostOf(0)}:${ports[0]}`;
    for (let slot = 0; slot < c.servers; slot++) {
      this.servers.push(
        await this.newServer(command, slot, ports[slot] as number, slot === 0 ? undefined : bootstrapReal),
      );
    }
    this.exitHook = () => {
      for (const s of this.servers) {
        try {
          if (s.pid !== undefined) process.kill(s.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    process.on('exit', this.exitHook);
    for (const s of this.servers) s.start();
    const deadline = Date.now() + c.startTimeoutMs;
    for (const s of this.servers) {
      const st = await this.waitFor(s, deadline, (v) => v.hasTable);
      s.node = st.node;
      c.proxy.rebindTarget(provisionalId(s.slot), s.node);
    }
    await this.waitForLeaders(deadline);
  }

  /**
   * A free port that no server of this cluster was given yet: a server started a moment ago may not have
   * bound its port, and the OS can hand a just-released port out again (a spare then took server 1's port
   * and server 1 failed to start with EADDRINUSE).
   */
  private async portNotHandedOut(): Promise<number> {
    const given = new Set(
      this.servers.map((s) => Number(s.realAddress.slice(s.realAddress.lastIndexOf(':') + 1))),
    );
    for (;;) {
      const [port] = await freePorts(1);
      if (port !== undefined && !given.has(port)) return port;
    }
  }

  /** The address server `slot` listens on: its own loopback address under TLS, else 127.0.0.1. */
  private hostOf(slot: number): string {
    return this.certs === undefined ? '127.0.0.1' : slotAddress(slot);
  }

  /** A server of `slot` on `port` behind a new proxy listener (not started). */
  private async newServer(
    command: ServerCommand,
    slot: number,
    port: number,
    joinAddress: string | undefined,
  ): Promise<ManagedServer> {
    const c = this.config;
    const host = this.hostOf(slot);
    const real = `${host}:${port}`;
    const certs = this.certs;
    const proxyAddress = await c.proxy.addTarget(provisionalId(slot), real, 0, certs ? host : undefined);
    const flags = serverFlags({
      host,
      port,
      advertise: proxyAddress,
      dataDir: join(c.dir, `server-${slot}`),
      fsync: c.fsync,
      logLevel: c.logLevel,
      bootstrapThreshold: c.servers,
      replication: Math.min(c.replication, c.servers),
      partitions: c.partitions,
      join: joinAddress,
      // A token or TLS, when the run has one, is in the flags; --insecure then changes nothing.
      insecure: true,
      extra: [...c.serverFlags, ...(certs === undefined ? [] : serverTlsFlags(certs, slot))],
    });
    return new ManagedServer(
      slot,
      real,
      proxyAddress,
      join(c.dir, `server-${slot}`),
      join(c.dir, `server-${slot}.log`),
      command,
      flags,
      c.env,
    );
  }

  /** The servers still in the cluster (not retired), in slot order. */
  live(): ManagedServer[] {
    return this.servers.filter((s) => !s.retired);
  }

  /**
   * Prepares one more server (a new slot: its own port, proxy listener and empty data dir) that joins the
   * cluster through a running member (bootstrap traffic bypasses the proxy). Not started: call
   * {@link startAdded}, after `member add` of its {@link ManagedServer.proxyAddress} if wanted.
   * @throws ClusterStartError when no member is running to join through.
   */
  async prepareServer(): Promise<ManagedServer> {
    if (this.certs !== undefined) {
      throw new ClusterStartError(
        'adding servers to a TLS cluster is not supported by the nemesis yet (its certificates are made for the first servers only)',
      );
    }
    // Through a running member, a different one each time (the bootstrap server included: a restarted
    // bootstrap server once registered a check-in in memory only, fixed in 95a6a4f).
    const running = this.live().filter((s) => s.state === 'running' && s.node > 0);
    const through = running[this.servers.length % Math.max(1, running.length)];
    if (through === undefined) throw new ClusterStartError('no running server to join through');
    const port = await this.portNotHandedOut();
    const s = await this.newServer(
      this.command ?? this.config.command ?? resolveServerCommand(),
      this.servers.length,
      port as number,
      through.realAddress,
    );
    this.servers.push(s);
    return s;
  }

  /**
   * Starts a server made by {@link prepareServer}, waits until it checked in (it knows its node id and
   * has the table) and binds its proxy listener to that id.
   * @throws ClusterStartError when it does not within `timeoutMs`.
   */
  async startAdded(s: ManagedServer, timeoutMs = this.config.startTimeoutMs): Promise<void> {
    s.start();
    const st = await this.waitFor(s, Date.now() + timeoutMs, (v) => v.hasTable && v.node > 0);
    s.node = st.node;
    this.config.proxy.rebindTarget(provisionalId(s.slot), s.node);
  }

  /** Takes `s` out of the cluster for good: SIGKILL (SIGCONT first), never restarted again. */
  async retire(s: ManagedServer): Promise<void> {
    s.retired = true;
    s.resume();
    await s.kill();
  }

  /** Restarts a killed server on the same port and data dir and waits until it answers with its table. */
  async restart(server: ManagedServer, timeoutMs = this.config.startTimeoutMs): Promise<void> {
    // Retired servers never come back; a server prepared but never started is started by startAdded.
    if (server.state !== 'killed' || server.retired || server.starts === 0) return;
    server.start();
    let st: ServerStatusView;
    try {
      st = await this.waitFor(server, Date.now() + timeoutMs, (v) => v.hasTable);
    } catch (e) {
      // Retired (member remove done, process stopped) while it was starting: nothing to restart.
      if (server.retired) return;
      throw e;
    }
    if (st.node !== server.node) {
      throw new ClusterStartError(
        `server slot ${server.slot} came back as node ${st.node}, expected ${server.node}`,
      );
    }
  }

  /** The status of a running server, bypassing the proxy; `undefined` if it does not answer. */
  async status(server: ManagedServer, timeoutMs = 1000): Promise<ServerStatusView | undefined> {
    if (server.state !== 'running') return undefined;
    try {
      return await fetchStatus(server.realAddress, timeoutMs, this.clientTls);
    } catch {
      return undefined;
    }
  }

  /**
   * The leader of `partition` as reported by the running servers that host it (the most reported one), or
   * `undefined`.
   */
  async leaderOf(partition: number): Promise<number | undefined> {
    const votes = new Map<number, number>();
    const statuses = await Promise.all(this.servers.map((s) => this.status(s)));
    for (const st of statuses) {
      const g = st?.groups.find((x) => x.partition === partition);
      if (g?.leader != null) votes.set(g.leader, (votes.get(g.leader) ?? 0) + 1);
    }
    let best: number | undefined;
    let bestVotes = 0;
    for (const [n, v] of votes) if (v > bestVotes) [best, bestVotes] = [n, v];
    return best;
  }

  /**
   * Waits until every running server answers and every partition it hosts knows a leader.
   * @throws ClusterStartError after the deadline.
   */
  async waitForLeaders(deadline: number): Promise<void> {
    for (;;) {
      const statuses = await Promise.all(this.servers.map((s) => this.status(s)));
      // A server added during the run may be a spare (no replica): it only has to answer.
      const ok = statuses.every((st, i) => {
        const s = this.servers[i];
        if (s === undefined || s.state !== 'running' || s.retired) return true;
        return (
          st !== undefined &&
          (st.groups.length > 0 || s.slot >= this.config.servers) &&
          st.groups.every((g) => g.leader !== null)
        );
      });
      if (ok) return;
      if (Date.now() > deadline)
        throw new ClusterStartError(
          `not every partition has a leader; see the logs under ${this.config.dir}`,
        );
      await sleep(this.config.pollMs);
    }
  }

  /** Kills every server (SIGCONT first for paused ones) and removes the exit hook. */
  async stop(): Promise<void> {
    await Promise.all(
      this.servers.map(async (s) => {
        s.resume();
        await s.kill();
      }),
    );
    if (this.exitHook !== undefined) process.off('exit', this.exitHook);
    this.exitHook = undefined;
  }

  private async waitFor(
    server: ManagedServer,
    deadline: number,
    ready: (v: ServerStatusView) => boolean,
  ): Promise<ServerStatusView> {
    for (;;) {
      if (server.state === 'killed') {
        const portTaken = lostPortRace(server);
        throw new ClusterStartError(
          `server slot ${server.slot} exited (${server.lastExit}) while starting${portTaken ? ' (its port was taken by another process)' : ''}; see ${server.logFile}`,
          { portTaken },
        );
      }
      const st = await this.status(server);
      if (st !== undefined && ready(st)) return st;
      if (Date.now() > deadline) {
        // Another server of the cluster that lost its port keeps this one from forming (no table).
        const lost = this.servers.find(lostPortRace);
        throw new ClusterStartError(
          `server slot ${server.slot} (${server.realAddress}) not ready in time${lost ? ` (server slot ${lost.slot} lost its port to another process)` : ''}; see ${server.logFile}`,
          { portTaken: lost !== undefined },
        );
      }
      await sleep(this.config.pollMs);
    }
  }
}

/** Listener ids used before the real node ids are known. */
function provisionalId(slot: number): number {
  return 1_000_000 + slot;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether `server` exited at start because its port was taken (EADDRINUSE in its log). */
function lostPortRace(server: ManagedServer): boolean {
  try {
    return portTakenReason(readFileSync(server.logFile, 'utf8')) !== undefined;
  } catch {
    return false; // no log: not a port race we can tell
  }
}
