/**
 * `@paxkv/server/launcher`: the one way every launcher of this repository starts `paxkv-server`
 * processes: the CLI's local clusters (`paxkv cluster start`), the server's test harness, the cluster
 * benchmark and the nemesis. It finds the program ({@link resolveServerCommand}), picks free ports
 * ({@link freePorts}), builds the flags ({@link serverFlags}), spawns a server with its output in a log
 * file ({@link spawnServer}), and tells whether a recorded pid is still a live server
 * ({@link isServerProcess}: not a zombie, and running on that data dir) and whether its port answers
 * ({@link portAnswers}).
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** How to start one server process: `spawn(command, [...args, ...flags])`. */
export interface ServerCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** `dist` (the build) or `source` (tsx on `src/main.ts`), for start-up messages. */
  readonly kind: 'dist' | 'source';
  /** The `@paxkv/server` package version. */
  readonly version: string;
}

/** Thrown when neither a build nor the source of `paxkv-server` can be run; says how to fix it. */
export class ServerBinaryNotFoundError extends Error {
  override readonly name = 'ServerBinaryNotFoundError';
}

/** Options of {@link resolveServerCommand}. */
export interface ResolveServerOptions {
  /**
   * Run `src/main.ts` through tsx even when a build exists (tests, which must not depend on a possibly
   * stale build). Default: the environment variable `PAXKV_SERVER_FROM_SOURCE=1`. Without a build the
   * source is used anyway (when it and tsx exist).
   */
  readonly preferSource?: boolean;
  /** Node flags placed before the program (e.g. `--cpu-prof`). Default none. */
  readonly nodeArgs?: readonly string[];
}

/** The directory of the `@paxkv/server` package (this file is in its `src/` or `dist/`). */
function packageDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..');
}

/**
 * Finds the server program of this package: its `dist/main.js`, or `src/main.ts` run by
 * `node --conditions=@paxkv/source --import tsx` (see {@link ResolveServerOptions.preferSource}).
 * @throws {ServerBinaryNotFoundError} when neither can run
 */
export function resolveServerCommand(options: ResolveServerOptions = {}): ServerCommand {
  const preferSource = options.preferSource ?? process.env.PAXKV_SERVER_FROM_SOURCE === '1';
  const nodeArgs = options.nodeArgs ?? [];
  const dir = packageDir();
  let version = '?';
  try {
    version =
      (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    // a package without its package.json: keep '?'
  }
  const dist = join(dir, 'dist', 'main.js');
  const source = join(dir, 'src', 'main.ts');
  const fromDist = (): ServerCommand => ({
    command: process.execPath,
    args: [...nodeArgs, dist],
    kind: 'dist',
    version,
  });
  if ((preferSource || !existsSync(dist)) && existsSync(source)) {
    let tsx: string;
    try {
      tsx = createRequire(source).resolve('tsx');
    } catch {
      if (existsSync(dist)) return fromDist();
      throw new ServerBinaryNotFoundError(
        'paxkv-server is not built and tsx is not installed: run `pnpm build` (or `pnpm install` for tsx)',
      );
    }
    // tsx's package entry registers its loader when imported through --import.
    return {
      command: process.execPath,
      args: [...nodeArgs, '--conditions=@paxkv/source', '--import', pathToFileURL(tsx).href, source],
      kind: 'source',
      version,
    };
  }
  if (existsSync(dist)) return fromDist();
  throw new ServerBinaryNotFoundError(`paxkv-server is not built (${dist} is missing): run \`pnpm build\``);
}

/**
 * Asks the kernel for `count` distinct free TCP ports on `host` by binding port 0, holding all of them
 * until every one is known (so none repeats), then releasing them. Another process may still take one
 * before the caller binds it (a launcher then fails to start that server and says so).
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      servers.push(
        await new Promise<Server>((resolveServer, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, host, () => resolveServer(s));
        }),
      );
    }
    return servers.map((s) => {
      const a = s.address();
      if (a === null || typeof a === 'string') throw new Error('freePorts: unexpected server address');
      return a.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/**
 * The reason a server gave for failing to bind a port that another process took after {@link freePorts}
 * found it free (any outgoing connection may get it as its ephemeral port): the `msg` of its EADDRINUSE
 * log line (or the line itself when it is not JSON), or `undefined` when `log` (the server's log, or its
 * tail) has no such line. Launchers start a new server on fresh ports when this says the port was lost.
 */
export function portTakenReason(log: string): string | undefined {
  const line = log.split('\n').find((l) => l.includes('EADDRINUSE'));
  if (line === undefined) return undefined;
  try {
    const parsed = JSON.parse(line) as { msg?: unknown };
    if (typeof parsed.msg === 'string') return parsed.msg;
  } catch {
    // not a JSON line
  }
  return line;
}

/** One free TCP port on `host` (see {@link freePorts}). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return (await freePorts(1, host))[0] as number;
}

/** What {@link serverFlags} turns into `paxkv-server` flags. */
export interface ServerFlagsOptions {
  /** Interface to listen on and advertise. */
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly partitions: number;
  readonly replication: number;
  /** Servers the bootstrap server waits for before it builds the lookup table. */
  readonly bootstrapThreshold: number;
  readonly fsync: 'always' | 'batch' | 'never';
  readonly logLevel: string;
  /** The bootstrap server's address, for every server but the bootstrap server itself. */
  readonly join?: string | undefined;
  /** Address to advertise to peers and clients instead of `host:port` (a proxy in front). Default: none. */
  readonly advertise?: string | undefined;
  /** Metrics/health HTTP port. Default: the server's own default. */
  readonly httpPort?: number | undefined;
  /** Redis protocol port. Default: none. */
  readonly respPort?: number | undefined;
  /** File holding the cluster token (peers prove they know it). Default: none. */
  readonly clusterTokenFile?: string | undefined;
  /**
   * Pass `--insecure`: the server may start without peer authentication (it refuses to otherwise). With a
   * token or TLS among the flags it changes nothing. Default false.
   */
  readonly insecure?: boolean | undefined;
  /** Appended as they are. */
  readonly extra?: readonly string[];
}

/** The `paxkv-server` command line of one server. */
export function serverFlags(o: ServerFlagsOptions): string[] {
  return [
    '--host',
    o.host,
    '--port',
    String(o.port),
    ...(o.advertise !== undefined ? ['--advertise', o.advertise] : []),
    ...(o.httpPort !== undefined ? ['--http-port', String(o.httpPort)] : []),
    '--data-dir',
    o.dataDir,
    '--fsync',
    o.fsync,
    '--partitions',
    String(o.partitions),
    '--replication',
    String(o.replication),
    '--bootstrap-threshold',
    String(o.bootstrapThreshold),
    '--log-level',
    o.logLevel,
    ...(o.join !== undefined ? ['--join', o.join] : []),
    ...(o.respPort !== undefined ? ['--resp-port', String(o.respPort)] : []),
    ...(o.clusterTokenFile !== undefined ? ['--cluster-token-file', o.clusterTokenFile] : []),
    ...(o.insecure === true ? ['--insecure'] : []),
    ...(o.extra ?? []),
  ];
}

/** Options of {@link spawnServer}. */
export interface SpawnServerOptions {
  /** stdout and stderr of the server are appended here (its directory is created). */
  readonly logFile: string;
  /** Environment. Default: this process's. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Let the server outlive this process (its own process group; the CLI's detached clusters). Default
   * false: the server is SIGKILLed when this process exits, however it exits.
   */
  readonly detached?: boolean;
}

const attached = new Set<ChildProcess>();
let exitHook = false;

/** Spawns a server; see {@link SpawnServerOptions}. Listen for `exit`/`error` on the child. */
export function spawnServer(
  command: ServerCommand,
  flags: readonly string[],
  options: SpawnServerOptions,
): ChildProcess {
  mkdirSync(dirname(options.logFile), { recursive: true });
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command.command, [...command.args, ...flags], {
      stdio: ['ignore', fd, fd],
      env: options.env ?? process.env,
      ...(options.detached ? { detached: true } : {}),
    });
  } finally {
    closeSync(fd);
  }
  child.on('error', () => {}); // reported through the caller's own 'error'/'exit' listeners
  if (!options.detached) {
    if (!exitHook) {
      exitHook = true;
      process.on('exit', () => {
        for (const c of attached) c.kill('SIGKILL');
      });
    }
    attached.add(child);
    child.once('exit', () => attached.delete(child));
  }
  return child;
}

/** True when a process with this pid exists (and we may signal it); a zombie counts. */
export function isAlive(pid: number | null | undefined): boolean {
  if (pid === null || pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The state letter of process `pid` from `/proc/PID/stat` (R, S, D, T, Z...), or null when there is none. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).charAt(0) || null;
  } catch {
    return null;
  }
}

/**
 * True when `pid` is a live server of `dataDir`: the process exists, is not a zombie (a SIGKILLed server
 * nobody reaped yet: `kill(pid, 0)` still succeeds on it) and runs with `dataDir` on its command line
 * (so a pid reused by another program does not count). Off Linux (no /proc), only the pid is checked.
 */
export function isServerProcess(node: { readonly pid: number | null; readonly dataDir: string }): boolean {
  if (node.pid === null || !isAlive(node.pid)) return false;
  if (process.platform !== 'linux') return true;
  const state = processState(node.pid);
  if (state === null || state === 'Z' || state === 'X') return false;
  try {
    return readFileSync(`/proc/${node.pid}/cmdline`, 'utf8').split('\0').includes(node.dataDir);
  } catch {
    return false;
  }
}

/** True when something accepts a TCP connection at `host:port` within `timeoutMs`. */
export function portAnswers(address: string, timeoutMs: number): Promise<boolean> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(colon + 1));
  return new Promise((resolveAnswer) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolveAnswer(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
