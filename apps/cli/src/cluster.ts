/**
 * The local cluster launcher behind `paxkv cluster start|stop|status`: starts N real `paxkv-server`
 * processes on loopback (the bootstrap server first), records them in `<dir>/cluster.json`, waits until every
 * partition has a leader, and stops them (SIGTERM, then SIGKILL after a grace period).
 *
 * Ports are chosen once (free ports at first start) and kept in `cluster.json`: the lookup table stores
 * addresses, so a restart on the same dir must reuse them.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeLocalClusterCertificates } from '@paxkv/server/certs';
import {
  freePort,
  freePorts,
  isServerProcess,
  serverFlags as launcherFlags,
  portAnswers,
  portTakenReason,
  resolveServerCommand,
  type ServerCommand,
  spawnServer,
} from '@paxkv/server/launcher';
import { z } from 'zod';
import { allPartitionsLed, mergeStatus, type StatusReply, type StatusView } from './status-view.js';

/** Name of the file describing a local cluster inside its directory. */
export const CLUSTER_FILE = 'cluster.json';

/**
 * Name of the cluster token file inside a cluster's directory. A new local cluster gets a random token
 * (32 bytes, hex, mode 0600) and every server is started with `--cluster-token-file` on it, so only the
 * cluster's own servers can act as peers. A cluster made before tokens existed keeps running without.
 */
export const CLUSTER_TOKEN_FILE = 'cluster-token';

/** Directory of a `--tls` local cluster's CA and certificates inside its directory. */
export const CLUSTER_TLS_DIR = 'tls';

/** The root password of a local cluster made with `--auth`, inside its directory. */
export const CLUSTER_ROOT_PASSWORD_FILE = 'root-password';

/** The server flags of a local cluster made with `--auth` (none without a root password file). */
export function authFlags(dir: string): string[] {
  const file = join(dir, CLUSTER_ROOT_PASSWORD_FILE);
  return existsSync(file) ? ['--auth', '--root-password-file', file] : [];
}

/** The server TLS flags of a local cluster made with `--tls` (none without certificates). */
export function tlsFlags(dir: string): string[] {
  const tls = join(dir, CLUSTER_TLS_DIR);
  if (!existsSync(join(tls, 'server.pem'))) return [];
  return [
    '--tls-cert',
    join(tls, 'server.pem'),
    '--tls-key',
    join(tls, 'server-key.pem'),
    '--tls-ca',
    join(tls, 'ca.pem'),
  ];
}

const nodeSchema = z.object({
  index: z.number().int().positive(),
  address: z.string(),
  port: z.number().int().positive(),
  httpPort: z.number().int().positive(),
  /** Port of the server's Redis protocol front-end (`--resp-port`), absent when it is off. */
  respPort: z.number().int().positive().optional(),
  dataDir: z.string(),
  logFile: z.string(),
  pid: z.number().int().positive().nullable(),
});

/** The schema of `cluster.json` (version 1). */
export const clusterFileSchema = z.object({
  version: z.literal(1),
  dir: z.string(),
  partitions: z.number().int().positive(),
  replication: z.number().int().positive(),
  fsync: z.enum(['always', 'batch', 'never']),
  /**
   * Seconds a server may be suspected before its replicas move to other servers (`--replace-after` of
   * every server; 0 = off). Absent in files written before the flag: {@link DEFAULT_REPLACE_AFTER_S}.
   */
  replaceAfter: z.number().int().nonnegative().max(86_400).optional(),
  /**
   * Servers the bootstrap server waited for when the cluster was made (its `--bootstrap-threshold`):
   * servers added later (`cluster add`) do not change it. Absent in older files: the number of nodes.
   */
  bootstrapThreshold: z.number().int().positive().max(64).optional(),
  nodes: z.array(nodeSchema).min(1),
});

/** The servers' own default of `--replace-after`, in seconds (a local cluster uses it unless told). */
export const DEFAULT_REPLACE_AFTER_S = 30;

/** The contents of `cluster.json`: endpoints, data dirs, log files and pids of a local cluster. */
export type ClusterFile = z.infer<typeof clusterFileSchema>;

/** A launcher failure (bad dir, a server that exited, a timeout); the message says what to do. */
export class ClusterError extends Error {
  override readonly name = 'ClusterError';
}

/**
 * How many times `cluster start` starts a NEW cluster when a server exits at start-up because one of its
 * ports was taken between the launcher finding it free and the server binding it (EADDRINUSE: any
 * process's outgoing connection may get it as its ephemeral port). Each new start removes what the
 * failed one wrote and picks fresh ports. A cluster restarted on its data keeps its ports (the lookup
 * table holds its addresses) and is never moved: the error says which port to free.
 */
export const NEW_CLUSTER_START_ATTEMPTS = 3;

/** A server exited at start-up because a port it was given was taken by another process. */
class PortTakenError extends ClusterError {
  constructor(
    message: string,
    /** The server's reason, naming the port. */
    readonly line: string,
    /** The server (its index in the cluster file), the address it could not bind and that address's port. */
    readonly server: { readonly index: number; readonly address: string; readonly port: number },
  ) {
    super(message);
  }
}

/** Options of {@link startCluster}. */
export interface StartClusterOptions {
  /** Cluster directory (data dirs, logs, cluster.json). */
  readonly dir: string;
  /** Number of servers for a new cluster (ignored on restart: the file decides). Default 3. */
  readonly nodes?: number;
  /** Partitions of a new cluster. Default 16. */
  readonly partitions?: number;
  /** Replication of a new cluster. Default min(3, nodes). */
  readonly replication?: number;
  /** WAL fsync mode of a new cluster. Default batch. */
  readonly fsync?: 'always' | 'batch' | 'never';
  /**
   * Seconds a server may be suspected before the cluster moves its replicas to other servers (every
   * server's `--replace-after`; 0 turns self-healing off). Kept in `cluster.json`: a restart without it
   * keeps the recorded value. Default {@link DEFAULT_REPLACE_AFTER_S} (the server's default).
   */
  readonly replaceAfter?: number;
  /** How long to wait for every partition to have a leader. Default 60 000 ms. */
  readonly readyTimeoutMs?: number;
  /** Server log level. Default info. */
  readonly logLevel?: string;
  /**
   * Give every server a Redis protocol (RESP) port, chosen once like the others and kept in the file.
   * Default false (a restarted cluster keeps the RESP ports it has).
   */
  readonly resp?: boolean;
  /**
   * Make a new cluster speak TLS on every port: a throwaway CA and certificates for 127.0.0.1/localhost
   * in `<dir>/tls/` (`@paxkv/server/certs`; the CA key is not kept). Default false (a restarted cluster
   * keeps TLS if it has certificates).
   */
  readonly tls?: boolean;
  /**
   * Make a new cluster require logins (`--auth`): `root` (role `admin`) gets a random password written to
   * `<dir>/root-password` (mode 0600). Default false.
   */
  readonly auth?: boolean;
  /** How to run a server. Default: {@link resolveServerCommand}. */
  readonly serverCommand?: ServerCommand;
  /**
   * Picks `count` ports for a new cluster (asked again for each new start on fresh ports, see
   * {@link NEW_CLUSTER_START_ATTEMPTS}). Default: free loopback ports (`freePorts` of `@paxkv/server/launcher`).
   */
  readonly pickPorts?: (count: number) => Promise<number[]>;
  /** Asks one server for its status; used to wait for readiness. */
  readonly statusOf: (address: string) => Promise<StatusReply>;
  /** Progress messages (to stderr in the CLI). */
  readonly log?: (line: string) => void;
}

/** A started cluster: its file, and the child processes when started by this process. */
export interface StartedCluster {
  readonly file: ClusterFile;
  readonly view: StatusView;
  /** Children spawned by this call (all of them, or those that were not already running). */
  readonly children: ReadonlyArray<ChildProcess>;
}

/** Reads `<dir>/cluster.json`, or null when there is none. @throws {ClusterError} when it is invalid. */
export function readClusterFile(dir: string): ClusterFile | null {
  const path = join(dir, CLUSTER_FILE);
  if (!existsSync(path)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ClusterError(`${path} is not valid JSON (${(e as Error).message}): fix or delete it`);
  }
  const r = clusterFileSchema.safeParse(raw);
  if (!r.success)
    throw new ClusterError(`${path} is not a paxkv cluster file: ${r.error.issues[0]?.message}`);
  return r.data;
}

/** Writes `cluster.json` atomically (temp file + rename). */
export function writeClusterFile(file: ClusterFile): void {
  const path = join(file.dir, CLUSTER_FILE);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(tmp, path);
}

// One launcher for every tool of the repository: the process checks (a recorded pid counts only when it
// is a live, non-zombie process of that node's data dir) live in `@paxkv/server/launcher`.
export { freePort, isAlive, isServerProcess, portAnswers, processState } from '@paxkv/server/launcher';

/** How long a recorded server process may take to answer on its port before the launcher replaces it. */
export const ANSWER_TIMEOUT_MS = 2_000;

/** The comma-separated client addresses of a cluster (for `--servers`/`PAXKV_SERVERS`). */
export function clusterServers(file: ClusterFile): string[] {
  return file.nodes.map((n) => n.address);
}

async function newClusterFile(options: StartClusterOptions, dir: string): Promise<ClusterFile> {
  const count = options.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new ClusterError('--nodes must be 1..64');
  const replication = options.replication ?? Math.min(3, count);
  if (replication > count) {
    throw new ClusterError(`replication ${replication} needs at least ${replication} nodes: raise --nodes`);
  }
  const nodes: ClusterFile['nodes'] = [];
  const ports = await (options.pickPorts ?? freePorts)(count * (options.resp ? 3 : 2));
  let next = 0;
  const pick = () => ports[next++] as number;
  for (let index = 1; index <= count; index++) {
    const port = pick();
    const httpPort = pick();
    const respPort = options.resp ? pick() : undefined;
    nodes.push({
      index,
      address: `127.0.0.1:${port}`,
      port,
      httpPort,
      ...(respPort !== undefined ? { respPort } : {}),
      dataDir: join(dir, `node-${index}`),
      logFile: join(dir, `node-${index}`, 'server.log'),
      pid: null,
    });
  }
  return {
    version: 1,
    dir,
    partitions: options.partitions ?? 16,
    replication,
    fsync: options.fsync ?? 'batch',
    replaceAfter: options.replaceAfter ?? DEFAULT_REPLACE_AFTER_S,
    bootstrapThreshold: count,
    nodes,
  };
}

/**
 * The flags a launcher passes to server `node` of `file`. Every server but the first joins through
 * `joinVia` (default: the first server, the bootstrap server).
 */
export function serverFlags(
  file: ClusterFile,
  node: ClusterFile['nodes'][number],
  logLevel: string,
  joinVia?: string,
): string[] {
  const first = file.nodes[0] as ClusterFile['nodes'][number];
  const token = join(file.dir, CLUSTER_TOKEN_FILE);
  return launcherFlags({
    host: '127.0.0.1',
    port: node.port,
    httpPort: node.httpPort,
    dataDir: node.dataDir,
    fsync: file.fsync,
    partitions: file.partitions,
    replication: file.replication,
    bootstrapThreshold: file.bootstrapThreshold ?? file.nodes.length,
    logLevel,
    join: node.index !== first.index ? (joinVia ?? first.address) : undefined,
    respPort: node.respPort,
    clusterTokenFile: existsSync(token) ? token : undefined,
    // A cluster directory made before `cluster start` wrote tokens has none: it keeps running (insecure,
    // as it always did; the server logs a warning).
    insecure: !existsSync(token),
    extra: [
      '--replace-after',
      String(file.replaceAfter ?? DEFAULT_REPLACE_AFTER_S),
      ...tlsFlags(file.dir),
      ...authFlags(file.dir),
    ],
  });
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Gathers the status of every server of the cluster and merges it. */
export async function clusterStatus(
  file: ClusterFile,
  statusOf: (address: string) => Promise<StatusReply>,
): Promise<StatusView> {
  const replies = await Promise.all(file.nodes.map((n) => statusOf(n.address)));
  return mergeStatus(replies);
}

/**
 * Starts (or restarts on its data) the cluster in `options.dir` and resolves once every partition has a
 * leader and every server answers `status`. Servers that are already running (pid alive) are left alone.
 * On failure every server this call started is killed before the error is thrown. A NEW cluster whose
 * server lost a port before binding it is started again on fresh ports (see
 * {@link NEW_CLUSTER_START_ATTEMPTS}).
 */
export async function startCluster(options: StartClusterOptions): Promise<StartedCluster> {
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const log = options.log ?? (() => {});
  const existing = readClusterFile(dir);
  if (existing) {
    const ignored = (['nodes', 'partitions', 'replication', 'fsync'] as const).filter(
      (k) => options[k] !== undefined,
    );
    log(
      `restarting the existing cluster in ${dir} (${existing.nodes.length} servers, ${existing.partitions} partitions) on its data${ignored.length > 0 ? `; ignoring --${ignored.join(', --')}` : ''}`,
    );
    try {
      return await launch(withReplaceAfter(existing, options), options);
    } catch (e) {
      if (!(e instanceof PortTakenError)) throw e;
      // The servers of a cluster with data keep their addresses (the lookup table names them): say
      // which port to free rather than only showing the log.
      const { port } = e.server;
      throw new ClusterError(
        `server ${e.server.index}'s address ${e.server.address} is taken by another process; a restarted cluster keeps its servers' addresses (the cluster's lookup table names them), so free port ${port} (\`ss -ltnp 'sport = :${port}'\` shows the process holding it) and run the command again.\n${e.message}`,
      );
    }
  }
  writeFileSync(join(dir, CLUSTER_TOKEN_FILE), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  if (options.tls) await writeLocalClusterCertificates(join(dir, CLUSTER_TLS_DIR));
  if (options.auth)
    writeFileSync(join(dir, CLUSTER_ROOT_PASSWORD_FILE), `${randomBytes(18).toString('hex')}\n`, {
      mode: 0o600,
    });
  for (let attempt = 1; ; attempt++) {
    const file = withReplaceAfter(await newClusterFile(options, dir), options);
    // Only data dirs this start makes may be removed for a new start (never a user's).
    const own = file.nodes.every((n) => !existsSync(n.dataDir));
    try {
      return await launch(file, options);
    } catch (e) {
      if (!(e instanceof PortTakenError) || !own || attempt >= NEW_CLUSTER_START_ATTEMPTS) throw e;
      log(
        `a server lost a port before binding it (${e.line}): starting the new cluster again on fresh ports (attempt ${attempt + 1} of ${NEW_CLUSTER_START_ATTEMPTS})`,
      );
      for (const n of file.nodes) rmSync(n.dataDir, { recursive: true, force: true });
      rmSync(join(dir, CLUSTER_FILE), { force: true });
    }
  }
}

// --replace-after is a server flag, not part of the data: a restart may change it.
function withReplaceAfter(file: ClusterFile, options: StartClusterOptions): ClusterFile {
  return options.replaceAfter !== undefined ? { ...file, replaceAfter: options.replaceAfter } : file;
}

/** Spawns the servers of `file` that are not running and waits until the cluster is ready. */
async function launch(file: ClusterFile, options: StartClusterOptions): Promise<StartedCluster> {
  const log = options.log ?? (() => {});
  const command = options.serverCommand ?? resolveServerCommand();
  const logLevel = options.logLevel ?? 'info';
  const children: ChildProcess[] = [];
  const exited = new Map<number, string>();
  const nodes = file.nodes.map((n) => ({ ...n }));
  if (options.resp) {
    // A cluster restarted with --resp that had no RESP ports gets them now (kept from then on).
    for (const n of nodes) if (n.respPort === undefined) n.respPort = await freePort();
  }
  try {
    for (const node of nodes) {
      if (isServerProcess(node)) {
        if (await portAnswers(node.address, ANSWER_TIMEOUT_MS)) {
          log(`server ${node.index} already running (pid ${node.pid}) at ${node.address}`);
          continue;
        }
        // Alive but silent on its port (exiting, or hung): replace it.
        log(
          `server ${node.index} (pid ${node.pid}) does not answer on ${node.address}: SIGKILL, then a new one`,
        );
        try {
          process.kill(node.pid as number, 'SIGKILL');
        } catch {
          // already gone
        }
        const gone = Date.now() + 10_000;
        while (isServerProcess(node) && Date.now() < gone) await new Promise((r) => setTimeout(r, 20));
      } else if (node.pid !== null) {
        log(
          `server ${node.index}: recorded pid ${node.pid} is not a live server of ${node.dataDir} (exited)`,
        );
      }
      mkdirSync(node.dataDir, { recursive: true });
      const child = spawnServer(command, serverFlags(file, node, logLevel), {
        logFile: node.logFile,
        detached: true,
      });
      children.push(child);
      child.once('exit', (code, signal) => exited.set(node.index, signal ?? `code ${code}`));
      child.once('error', (e) => exited.set(node.index, e.message));
      node.pid = child.pid ?? null;
      log(`started server ${node.index} (pid ${node.pid}) at ${node.address}, log ${node.logFile}`);
      writeClusterFile({ ...file, nodes });
    }
    const started: ClusterFile = { ...file, nodes };
    writeClusterFile(started);
    const timeout = options.readyTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeout;
    let view = await clusterStatus(started, options.statusOf);
    // Ready: every partition has a leader AND every server answers (a server that is still opening its
    // groups may not listen yet while the others already lead every partition).
    const silent = (v: StatusView) =>
      nodes.filter((n) => !v.servers.some((s) => s.address === n.address && s.reachable)).map((n) => n.index);
    while (!allPartitionsLed(view) || silent(view).length > 0) {
      for (const [index, why] of exited) {
        const node = nodes.find((n) => n.index === index) as ClusterFile['nodes'][number];
        const logTail = tail(node.logFile);
        const message = `server ${index} exited during start-up (${why}); its log:\n${logTail}`;
        const taken = portTakenReason(logTail);
        throw taken !== undefined
          ? new PortTakenError(message, taken, { index, address: node.address, port: node.port })
          : new ClusterError(message);
      }
      if (Date.now() > deadline) {
        const led = view.groups.filter((g) => g.leader !== null).length;
        const quiet = silent(view);
        throw new ClusterError(
          `cluster not ready after ${timeout} ms (${view.tableVersion === null ? 'no lookup table yet' : `${led}/${view.groups.length} partitions have a leader`}${quiet.length > 0 ? `; server ${quiet.join(', ')} not answering` : ''}); see the logs in ${file.dir}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
      view = await clusterStatus(started, options.statusOf);
    }
    return { file: started, view, children };
  } catch (e) {
    const gone = children.map(
      (c) =>
        new Promise<void>((r) =>
          // A child that never spawned (no pid) has nothing to wait for.
          c.pid === undefined || c.exitCode !== null || c.signalCode !== null
            ? r()
            : c.once('exit', () => r()),
        ),
    );
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    // Gone before the caller removes or reuses their data dirs and ports.
    await Promise.all(gone);
    writeClusterFile({
      ...file,
      nodes: nodes.map((n) => ({ ...n, pid: isServerProcess(n) ? n.pid : null })),
    });
    throw e;
  }
}

/** Options of {@link stopCluster}. */
export interface StopClusterOptions {
  /** Grace period after SIGTERM before SIGKILL. Default 10 000 ms. */
  readonly graceMs?: number;
  readonly log?: (line: string) => void;
}

/**
 * Stops every server of the cluster in `dir`: SIGTERM (clean shutdown: fsync, close sockets), then SIGKILL
 * for any still running after the grace period. Data is kept: `cluster start` on the dir restarts it.
 * @returns the number of servers that were running.
 */
export async function stopCluster(dir: string, options: StopClusterOptions = {}): Promise<number> {
  const file = readClusterFile(resolve(dir));
  if (!file) throw new ClusterError(`no ${CLUSTER_FILE} in ${resolve(dir)}: nothing to stop`);
  const log = options.log ?? (() => {});
  const running = file.nodes.filter((n) => isServerProcess(n));
  for (const n of running) {
    try {
      process.kill(n.pid as number, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + (options.graceMs ?? 10_000);
  while (running.some((n) => isServerProcess(n)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const n of running) {
    if (isServerProcess(n)) {
      log(`server ${n.index} (pid ${n.pid}) did not stop in time: SIGKILL`);
      try {
        process.kill(n.pid as number, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  // A SIGKILLed process is gone once it is a zombie (its parent may reap it much later).
  while (running.some((n) => isServerProcess(n))) await new Promise((r) => setTimeout(r, 20));
  writeClusterFile({ ...file, nodes: file.nodes.map((n) => ({ ...n, pid: null })) });
  for (const n of running) log(`stopped server ${n.index} (pid ${n.pid})`);
  return running.length;
}

/** Options of {@link addClusterNode}. */
export interface AddClusterNodeOptions {
  /** Cluster directory (holds `cluster.json`). */
  readonly dir: string;
  /**
   * Records a server at `address` as a member of the running cluster (`member add`), asking the running
   * servers in turn; resolves with the node id the cluster gave it.
   */
  readonly memberAdd: (servers: readonly string[], address: string) => Promise<{ readonly node: number }>;
  /** Asks one server for its status; used to wait until the new server runs with its id. */
  readonly statusOf: (address: string) => Promise<StatusReply>;
  /** How long to wait for the new server to answer with its id and the lookup table. Default 60 000 ms. */
  readonly readyTimeoutMs?: number;
  /** Server log level. Default info. */
  readonly logLevel?: string;
  /** How to run a server. Default: {@link resolveServerCommand}. */
  readonly serverCommand?: ServerCommand;
  /** Progress messages (to stderr in the CLI). */
  readonly log?: (line: string) => void;
}

/** A server added by {@link addClusterNode}. */
export interface AddedClusterNode {
  /** The cluster file with the new server in it (as written). */
  readonly file: ClusterFile;
  /** The new server's entry in `cluster.json`. */
  readonly node: ClusterFile['nodes'][number];
  /** The node id the cluster gave it. */
  readonly nodeId: number;
  /** The server process (detached: it outlives the caller). */
  readonly child: ChildProcess;
}

/**
 * `paxkv cluster add`: one more server for the running local cluster in `options.dir`. It picks free
 * ports, records the new server as a member (`member add`: a spare until replicas move onto it, by
 * rebalancing once it has been up for `--replace-after`, or by self-healing), starts it in the cluster
 * dir with the same flags as the others (cluster token, TLS, logins, `--replace-after`) joining through a
 * running server, adds it to `cluster.json` (so `cluster stop|status|start` know it) and resolves once it
 * answers with its node id and the lookup table.
 * @throws {ClusterError} when no server of the cluster runs, or the new one exits or is not ready in time
 *   (the message says what to do; the member stays recorded then: `paxkv member remove <id>` drops it).
 */
export async function addClusterNode(options: AddClusterNodeOptions): Promise<AddedClusterNode> {
  const dir = resolve(options.dir);
  const log = options.log ?? (() => {});
  const file = readClusterFile(dir);
  if (!file)
    throw new ClusterError(`no cluster in ${dir}: start one with \`paxkv cluster start --dir ${dir}\``);
  const running = file.nodes.filter((n) => isServerProcess(n));
  if (running.length === 0) {
    throw new ClusterError(
      `the cluster in ${dir} is stopped: start it with \`paxkv cluster start --dir ${dir}\`, then add a server`,
    );
  }
  if (file.nodes.length >= 64) throw new ClusterError('a local cluster has at most 64 servers');
  const resp = file.nodes.some((n) => n.respPort !== undefined);
  const ports = await freePorts(resp ? 3 : 2);
  const index = Math.max(...file.nodes.map((n) => n.index)) + 1;
  const node: ClusterFile['nodes'][number] = {
    index,
    address: `127.0.0.1:${ports[0]}`,
    port: ports[0] as number,
    httpPort: ports[1] as number,
    ...(resp ? { respPort: ports[2] as number } : {}),
    dataDir: join(dir, `node-${index}`),
    logFile: join(dir, `node-${index}`, 'server.log'),
    pid: null,
  };
  const { node: nodeId } = await options.memberAdd(
    running.map((n) => n.address),
    node.address,
  );
  log(`node ${nodeId} (${node.address}) is a member; starting its server`);
  mkdirSync(node.dataDir, { recursive: true });
  const command = options.serverCommand ?? resolveServerCommand();
  const via = (running[0] as ClusterFile['nodes'][number]).address;
  const child = spawnServer(command, serverFlags(file, node, options.logLevel ?? 'info', via), {
    logFile: node.logFile,
    detached: true,
  });
  let exited: string | null = null;
  child.once('exit', (code, signal) => {
    exited = signal ?? `code ${code}`;
  });
  child.once('error', (e) => {
    exited = e.message;
  });
  node.pid = child.pid ?? null;
  const added: ClusterFile = { ...file, nodes: [...file.nodes, node] };
  writeClusterFile(added);
  log(`started server ${index} (pid ${node.pid}) at ${node.address}, log ${node.logFile}`);
  const timeout = options.readyTimeoutMs ?? 60_000;
  const deadline = Date.now() + timeout;
  for (;;) {
    const r = await options.statusOf(node.address);
    if ('status' in r && r.status.node === nodeId && r.status.table !== null) break;
    if (exited !== null || Date.now() > deadline) {
      if (exited === null) child.kill('SIGKILL');
      writeClusterFile({ ...added, nodes: added.nodes.map((n) => (n === node ? { ...n, pid: null } : n)) });
      const why =
        exited !== null
          ? `exited (${exited})`
          : `did not answer as node ${nodeId} within ${timeout} ms (last: ${'error' in r ? r.error : `node ${r.status.node}`})`;
      throw new ClusterError(
        `the new server ${index} ${why}; its log:\n${tail(node.logFile)}\nnode ${nodeId} stays a member: retry with \`paxkv cluster start --dir ${dir}\`, or drop it with \`paxkv member remove ${nodeId}\``,
      );
    }
    await new Promise((r2) => setTimeout(r2, 200));
  }
  return { file: added, node, nodeId, child };
}
