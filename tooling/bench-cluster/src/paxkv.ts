import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClusterStatus, partitionOf } from '@paxkv/common';
import {
  freePorts,
  resolveServerCommand,
  ServerBinaryNotFoundError,
  type ServerCommand,
  serverFlags,
} from '@paxkv/server/launcher';
import {
  ClusterUnavailableError,
  fetchMetricSums,
  type LocalCluster,
  type TargetOptions,
} from './cluster.js';
import { createPaxkvTarget } from './paxkv-target.js';
import {
  type ServerProcess,
  startServer,
  stopServer,
  WaitAbortedError,
  waitFor,
  waitPortOpen,
} from './processes.js';
import { probeStatus } from './status-probe.js';
import type { Target } from './target.js';
import {
  type BenchCertificates,
  type BenchClientTls,
  paxkvClientTls,
  paxkvTlsFlags,
  writeBenchCertificates,
} from './tls.js';

/**
 * Locates `paxkv-server` (`@paxkv/server/launcher`): its built `dist/main.js` (what `pnpm bench:cluster`
 * builds first), or its TypeScript source through tsx when there is no build or when `preferSource` is
 * set (default: `PAXKV_SERVER_FROM_SOURCE=1`, as the CLI's launcher does).
 * @throws ClusterUnavailableError when neither exists.
 */
export function resolvePaxkvServer(nodeArgs: readonly string[] = [], preferSource?: boolean): ServerCommand {
  try {
    return resolveServerCommand({ nodeArgs, ...(preferSource !== undefined ? { preferSource } : {}) });
  } catch (e) {
    if (e instanceof ServerBinaryNotFoundError) throw new ClusterUnavailableError(e.message);
    throw e;
  }
}

/** Options of {@link startPaxkvCluster}. */
export interface PaxkvClusterOptions {
  /** Number of servers. Default 3. */
  readonly servers?: number;
  /** Partitions of the key space. Default 16 (the server's default). */
  readonly partitions?: number;
  /** Replicas per partition. Default 3. */
  readonly replication?: number;
  /** WAL fsync mode. Default `batch` (group commit: fsync before acknowledging). */
  readonly fsync?: 'always' | 'batch' | 'never';
  /** Longest wait for every partition to have a leader known to every server. Default 60,000 ms. */
  readonly startTimeoutMs?: number;
  /** When set, servers run under `node --cpu-prof` and write their profiles here on exit. */
  readonly cpuProfDir?: string | undefined;
  /** Extra `node` flags for every server process (V8 tracing or tuning). Default none. */
  readonly nodeArgs?: readonly string[];
  /** Server log level. Default `warn`. */
  readonly logLevel?: string;
  /** Keep the directory after `stop()`. Default false. */
  readonly keepData?: boolean;
  /**
   * Milliseconds per paxos tick (`--tick-ms`; BLE rounds are 5 ticks, the election timeout 15).
   * Default: the server's default.
   */
  readonly tickMs?: number | undefined;
  /** The servers' `--warm-up` (`on`/`off`). Default: the server's default (on). */
  readonly warmUp?: 'on' | 'off' | undefined;
  /**
   * Run the server from its TypeScript source through tsx even when a build exists (tests, which
   * must not depend on a possibly stale build). Default: `PAXKV_SERVER_FROM_SOURCE=1`.
   */
  readonly fromSource?: boolean;
  /**
   * TLS on every server's port (clients, peers, HTTP) with a throwaway CA made in `<dir>/tls/`
   * (see tls.ts); the benchmark's clients and probes then dial TLS. Default false.
   */
  readonly tls?: boolean;
  /**
   * Run every server with one random cluster token (`--cluster-token-file` in the cluster's directory:
   * authenticated peer links, as a production cluster must run) instead of `--insecure`. Default false.
   */
  readonly clusterToken?: boolean;
  /** More `paxkv-server` flags for every server (e.g. `--replace-after 5`). Default none. */
  readonly extraFlags?: readonly string[];
}

/** One server of a paxkv cluster started by {@link startPaxkvCluster}. */
export interface PaxkvMember {
  /** 1-based start order (not the node id: ids follow check-in order). */
  readonly index: number;
  readonly address: string;
  readonly dataDir: string;
  /** Its latest process. */
  readonly process: ServerProcess;
}

/** A started paxkv cluster: the common {@link LocalCluster} plus what membership figures need. */
export interface PaxkvLocalCluster extends LocalCluster {
  readonly system: 'paxkv';
  /** Every server, in start order. */
  members(): readonly PaxkvMember[];
  /** TLS settings for the benchmark's own probes (undefined: plain TCP). */
  clientTls(): BenchClientTls | undefined;
  /** The sum of a metric (every label set) over the servers that are running (their `/metrics`). */
  metricSum(name: string): Promise<number>;
  /** {@link PaxkvLocalCluster.metricSum} of several metrics, reading each server's `/metrics` once. */
  metricSums(names: readonly string[]): Promise<number[]>;
}

interface Server {
  readonly index: number;
  readonly address: string;
  readonly port: number;
  readonly httpPort: number;
  readonly dataDir: string;
  /** How to start it again (same ports, same data directory). */
  readonly argv: readonly string[];
  readonly logFile: string;
  process: ServerProcess;
}

/**
 * Starts a paxkv cluster on loopback: `servers` real `paxkv-server` processes on random free ports,
 * the first one the bootstrap server, data and logs in a fresh temporary directory. Resolves once
 * every partition has a leader that every server agrees on.
 * @throws ClusterUnavailableError when the server program cannot be found; Error on start-up failure
 * (the message includes the tail of the failing server's log).
 */
export async function startPaxkvCluster(options: PaxkvClusterOptions = {}): Promise<PaxkvLocalCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startPaxkvClusterOnce(options);
    } catch (e) {
      // The ports were free when picked, but another process may bind one before the server does (a
      // busy machine runs other clusters): start again on fresh ports, a bounded number of times.
      const portTaken = e instanceof Error && e.message.includes('EADDRINUSE');
      if (!portTaken || attempt >= PORT_TAKEN_ATTEMPTS) throw e;
    }
  }
}

/** How many times a start whose port was taken by another process is tried on fresh ports. */
const PORT_TAKEN_ATTEMPTS = 3;

async function startPaxkvClusterOnce(options: PaxkvClusterOptions): Promise<PaxkvLocalCluster> {
  const count = options.servers ?? 3;
  const partitions = options.partitions ?? 16;
  const replication = options.replication ?? Math.min(3, count);
  const fsync = options.fsync ?? 'batch';
  const nodeArgs = [
    ...(options.cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir]),
    ...(options.nodeArgs ?? []),
  ];
  if (options.cpuProfDir !== undefined) mkdirSync(options.cpuProfDir, { recursive: true });
  const command = resolvePaxkvServer(nodeArgs, options.fromSource);
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-bench-paxkv-'));
  const allPorts = await freePorts(count * 2);
  const ports = allPorts.slice(0, count);
  const httpPorts = allPorts.slice(count);
  const addresses = ports.map((p) => `127.0.0.1:${p}`);
  const servers: Server[] = [];
  try {
    const certs = options.tls === true ? await writeBenchCertificates(dir) : undefined;
    const tokenFile = options.clusterToken === true ? join(dir, 'cluster-token') : undefined;
    if (tokenFile !== undefined) writeFileSync(tokenFile, randomBytes(24).toString('hex'), { mode: 0o600 });
    for (const [i, address] of addresses.entries()) {
      const dataDir = join(dir, `node-${i + 1}`);
      mkdirSync(dataDir);
      const flags = serverFlags({
        host: '127.0.0.1',
        port: ports[i] as number,
        dataDir,
        fsync,
        partitions,
        replication,
        bootstrapThreshold: count,
        logLevel: options.logLevel ?? process.env.PAXKV_BENCH_LOG_LEVEL ?? 'warn',
        httpPort: httpPorts[i],
        join: i > 0 ? addresses[0] : undefined,
        // Like etcd's side (no client auth, no peer auth): TLS, when asked, is in `extra`.
        insecure: tokenFile === undefined,
        clusterTokenFile: tokenFile,
        extra: [
          ...(options.tickMs !== undefined ? ['--tick-ms', String(options.tickMs)] : []),
          ...(options.warmUp !== undefined ? ['--warm-up', options.warmUp] : []),
          ...(certs === undefined ? [] : paxkvTlsFlags(certs)),
          ...(options.extraFlags ?? []),
        ],
      });
      const argv = [...command.args, ...flags];
      const logFile = join(dir, `node-${i + 1}.log`);
      const proc = await startServer(`paxkv${i + 1}`, command.command, argv, logFile);
      servers.push({
        index: i + 1,
        address,
        port: ports[i] ?? 0,
        httpPort: httpPorts[i] ?? 0,
        dataDir,
        argv,
        logFile,
        process: proc,
      });
    }
    const cluster = new PaxkvCluster(
      servers,
      command,
      dir,
      { partitions, replication, fsync },
      options,
      certs,
    );
    await cluster.waitReady(options.startTimeoutMs ?? 60_000);
    await cluster.waitWarmedUp(options.startTimeoutMs ?? 60_000);
    return cluster;
  } catch (e) {
    await Promise.all(servers.map((s) => stopServer(s.process, 1_000)));
    const logs = servers.map((s) => `--- ${s.process.logFile}\n${tail(s.process.logFile)}`).join('\n');
    if (options.keepData !== true) rmSync(dir, { recursive: true, force: true });
    if (e instanceof ClusterUnavailableError) throw e;
    throw new Error(`paxkv cluster did not start: ${e instanceof Error ? e.message : String(e)}\n${logs}`);
  }
}

function tail(path: string, lines = 10): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

class PaxkvCluster implements PaxkvLocalCluster {
  readonly system = 'paxkv' as const;
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  readonly version: string;

  constructor(
    private readonly nodes: readonly Server[],
    private readonly command: ServerCommand,
    readonly dir: string,
    private readonly layout: { partitions: number; replication: number; fsync: string },
    private readonly options: PaxkvClusterOptions,
    private readonly certs: BenchCertificates | undefined,
  ) {
    this.version = `${command.version} (${command.kind})`;
    this.settings = {
      servers: nodes.length,
      partitions: layout.partitions,
      replication: layout.replication,
      fsync: layout.fsync,
      tickMs: options.tickMs ?? 'default',
      warmUp: options.warmUp ?? 'default (on)',
      client: '@paxkv/client (one TCP connection per server, pipelined, routes to the group leader)',
      cpuProfile: options.cpuProfDir ?? false,
      tls: certs === undefined ? false : 'client and peer traffic (throwaway CA, ECDSA P-256)',
      peerAuth: options.clusterToken === true ? 'cluster token' : 'off (--insecure)',
    };
  }

  members(): readonly PaxkvMember[] {
    return this.nodes.map((m) => ({
      index: m.index,
      address: m.address,
      dataDir: m.dataDir,
      process: m.process,
    }));
  }

  get servers(): readonly ServerProcess[] {
    return this.nodes.map((m) => m.process);
  }

  async restart(server: ServerProcess): Promise<{ process: ServerProcess; upAt: number }> {
    const m = this.nodes.find((x) => x.process === server);
    if (m === undefined) throw new Error(`${server.name} is not a member of this cluster`);
    if (m.process.isAlive()) throw new Error(`${server.name} is still running: kill it first`);
    const proc = await startServer(server.name, this.command.command, m.argv, m.logFile);
    m.process = proc;
    const upAt = await waitPortOpen('127.0.0.1', m.port, this.options.startTimeoutMs ?? 60_000, () =>
      proc.isAlive(),
    );
    return { process: proc, upAt };
  }

  async leaderChanges(): Promise<number> {
    return this.metricSum('paxkv_leader_changes_total');
  }

  async metricSum(name: string): Promise<number> {
    const [sum] = await this.metricSums([name]);
    return sum as number;
  }

  async metricSums(names: readonly string[]): Promise<number[]> {
    const perServer = await Promise.all(
      this.alive().map((m) =>
        fetchMetricSums(
          `${this.certs === undefined ? 'http' : 'https'}://127.0.0.1:${m.httpPort}/metrics`,
          names,
          undefined,
          this.certs,
        ),
      ),
    );
    return names.map((_, i) => perServer.reduce((a, sums) => a + (sums[i] as number), 0));
  }

  private alive(): Server[] {
    return this.nodes.filter((m) => m.process.isAlive());
  }

  private async statuses(): Promise<Array<{ server: Server; status: ClusterStatus }>> {
    return Promise.all(
      this.alive().map(async (server) => ({
        server,
        status: await probeStatus(server.address, undefined, this.clientTls()),
      })),
    );
  }

  async waitReady(timeoutMs: number): Promise<void> {
    await waitFor(
      'every paxkv server to have opened its groups, and every partition a leader known to every server',
      async () => {
        this.throwIfOneExited();
        const all = await this.statuses();
        // A restarted server opens its groups one after another: until it has opened all of them, a
        // group whose other replica is killed next has no majority (a second fault, not a failover).
        for (const { status } of all) {
          for (const g of status.table?.groups ?? []) {
            if (g.replicas.includes(status.node) && !status.groups.some((x) => x.partition === g.partition))
              return false;
          }
        }
        for (let p = 0; p < this.layout.partitions; p++) {
          const leaders = new Set<number | null>();
          for (const { status } of all) {
            if (status.table === null) return false;
            const g = status.groups.find((x) => x.partition === p);
            if (g !== undefined) leaders.add(g.leader);
          }
          if (leaders.size !== 1 || leaders.has(null)) return false;
        }
        return true;
      },
      timeoutMs,
      200,
    );
  }

  /**
   * Waits until every server's start-up warm-up (`--warm-up`, a few seconds after start, then about a
   * second of CPU) has ended, so that no measured window pays for it: the figures are of servers after
   * their start-up work, as the restart figures are of the restart alone.
   */
  async waitWarmedUp(timeoutMs: number): Promise<void> {
    await waitFor(
      "every paxkv server's start-up warm-up to end",
      async () => {
        this.throwIfOneExited();
        const pending = new Set<string>(['scheduled', 'running']);
        return (await this.statuses()).every(({ status }) => !pending.has(status.warmUp ?? 'off'));
      },
      timeoutMs,
      200,
    );
  }

  /** Ends a start-up wait at once when a server process has exited. */
  private throwIfOneExited(): void {
    for (const m of this.nodes) {
      if (!m.process.isAlive()) throw new WaitAbortedError(`server ${m.index} exited during start-up`);
    }
  }

  /** What a client needs to dial this cluster: TLS trusting its CA, or nothing (plain TCP). */
  clientTls(): BenchClientTls | undefined {
    return this.certs === undefined ? undefined : paxkvClientTls(this.certs);
  }

  createTarget(opts: TargetOptions): Promise<Target> {
    return createPaxkvTarget(
      this.alive().map((m) => m.address),
      opts,
      this.clientTls(),
    );
  }

  async leaderOf(key: string): Promise<ServerProcess> {
    const partition = partitionOf(key, this.layout.partitions);
    for (const { server, status } of await this.statuses()) {
      const g = status.groups.find((x) => x.partition === partition);
      if (g !== undefined && g.role === 'leader') return server.process;
    }
    throw new Error(`no paxkv server reports itself leader of partition ${partition}`);
  }

  sameGroup(a: string, b: string): boolean {
    return partitionOf(a, this.layout.partitions) === partitionOf(b, this.layout.partitions);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((m) => stopServer(m.process)));
    if (this.options.keepData !== true) rmSync(this.dir, { recursive: true, force: true });
  }
}
