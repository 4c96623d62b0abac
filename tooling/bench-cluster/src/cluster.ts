import type { SystemName } from './options.js';
import type { ServerProcess } from './processes.js';
import type { Target } from './target.js';

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
  /** The server processes, alive or not. */
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
