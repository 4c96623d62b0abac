import type { SystemName } from './options.js';
import type { ServerProcess } from './processes.js';
import type { Target } from './target.js';
import { type BenchCertificates, httpsGetText } from './tls.js';

/** Options for the clients the benchmark creates. */
export interface TargetOptions {
  /** Per-request deadline. */
  readonly requestTimeoutMs: number;
}

/**
 * A locally started 3-member cluster of one system. Both systems implement it, so the table, the
 * failover figure and the memory figure run the same code against either.
 */
export interface LocalCluster {
  readonly system: SystemName;
  /** Version string of the server, for the report. */
  readonly version: string;
  /** The temporary directory holding data and logs. */
  readonly dir: string;
  /** How the cluster is configured where it matters for the comparison (durability, endpoints...). */
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  /** The server processes (each member's latest incarnation), alive or not. */
  readonly servers: readonly ServerProcess[];
  /** A new client connected to the cluster. */
  createTarget(opts: TargetOptions): Promise<Target>;
  /**
   * The server process currently leading the replication group that owns `key` (etcd: the raft
   * leader; paxkv: the leader of the key's partition), asked of the cluster itself.
   */
  leaderOf(key: string): Promise<ServerProcess>;
  /** True when `a` and `b` are replicated by the same group (etcd: always). */
  sameGroup(a: string, b: string): boolean;
  /**
   * Starts the member whose process is `server` again, on the same ports and data directory (after a
   * SIGKILL). Resolves once its client port accepts connections, with that moment
   * (`performance.now()`) and the new process.
   */
  restart(server: ServerProcess): Promise<{ readonly process: ServerProcess; readonly upAt: number }>;
  /**
   * Waits until the cluster serves again: every group has a leader that every live member agrees on
   * (etcd: a linearizable read succeeds and every member knows the leader).
   */
  waitReady(timeoutMs: number): Promise<void>;
  /**
   * Leader changes seen so far, summed over the live members' own counters (paxkv
   * `paxkv_leader_changes_total`, every partition; etcd `etcd_server_leader_changes_seen_total`), read
   * from their metrics endpoints. A restarted member starts again from 0.
   */
  leaderChanges(): Promise<number>;
  /** Stops every server (SIGTERM, then SIGKILL) and removes the directory unless asked to keep it. */
  stop(): Promise<void>;
}

/** The cluster cannot run on this machine (binary missing...); the message says how to fix it. */
export class ClusterUnavailableError extends Error {
  override readonly name = 'ClusterUnavailableError';
}

/** Pids of the servers still alive. */
export function alivePids(cluster: LocalCluster): number[] {
  return cluster.servers.filter((s) => s.isAlive()).map((s) => s.pid);
}

/** Sums every sample of the Prometheus metric `name` (all label sets) in a text exposition. */
export function sumMetric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

/**
 * Fetches a metrics endpoint and sums the metric `name` (see {@link sumMetric}); an `https://` URL of
 * a `--tls` cluster is read trusting its CA (`certs`).
 */
export async function fetchMetricSum(
  url: string,
  name: string,
  timeoutMs = 2_000,
  certs?: BenchCertificates,
): Promise<number> {
  const [sum] = await fetchMetricSums(url, [name], timeoutMs, certs);
  return sum as number;
}

/**
 * {@link fetchMetricSum} of several metrics from ONE read of the endpoint (each read makes the server
 * render all its metrics: a per-second sampler must not ask once per metric).
 */
export async function fetchMetricSums(
  url: string,
  names: readonly string[],
  timeoutMs = 2_000,
  certs?: BenchCertificates,
): Promise<number[]> {
  let text: string;
  if (certs !== undefined) {
    text = await httpsGetText(url, certs, timeoutMs);
  } else {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    text = await res.text();
  }
  return names.map((name) => sumMetric(text, name));
}
