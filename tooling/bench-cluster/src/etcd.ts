import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from '@paxkv/server/launcher';
import { Etcd3, type IOptions } from 'etcd3';
import { ClusterUnavailableError, fetchMetricSum, type LocalCluster, type TargetOptions } from './cluster.js';
import type { EtcdEndpoints } from './options.js';
import { type ServerProcess, startServer, stopServer, waitFor, waitPortOpen } from './processes.js';
import { type CasOutcome, type Target, TXN_SENTINEL_VERSION } from './target.js';
import { type BenchCertificates, etcdCredentials, etcdTlsFlags, writeBenchCertificates } from './tls.js';

/** Hint printed when no `etcd` binary is on the PATH. */
export const ETCD_INSTALL_HINT =
  'etcd not found on the PATH: install etcd 3.4 with `bash tooling/bench-cluster/scripts/install-etcd.sh` ' +
  '(Debian package etcd-server) to get the side-by-side comparison.';

/** Full path of the `etcd` binary on the PATH, or `undefined`. */
export function findEtcd(pathVar = process.env.PATH ?? ''): string | undefined {
  for (const dir of pathVar.split(delimiter)) {
    if (dir.length === 0) continue;
    const candidate = join(dir, 'etcd');
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore', timeout: 5_000 });
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The repository script that installs etcd 3.4 (Debian package `etcd-server`). */
export const INSTALL_ETCD_SCRIPT = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'scripts',
  'install-etcd.sh',
);

/**
 * Makes sure etcd is on the PATH: when it is missing, runs {@link INSTALL_ETCD_SCRIPT} (apt-get; needs
 * root or sudo), its output going to `log`, unless `PAXKV_BENCH_NO_INSTALL=1`.
 * @returns the etcd binary, or `undefined` when it is still missing (the caller prints
 * {@link ETCD_INSTALL_HINT} and runs paxkv alone).
 */
export async function ensureEtcd(log: (line: string) => void): Promise<string | undefined> {
  const found = findEtcd();
  if (found !== undefined || process.env.PAXKV_BENCH_NO_INSTALL === '1') return found;
  log(
    `etcd not found on the PATH: installing etcd 3.4 (Debian etcd-server) with ${INSTALL_ETCD_SCRIPT} ` +
      '(set PAXKV_BENCH_NO_INSTALL=1 to skip)',
  );
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn('bash', [INSTALL_ETCD_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
    const forward = (b: Buffer) => {
      for (const line of b.toString().split('\n')) if (line.trim().length > 0) log(`install-etcd: ${line}`);
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', () => resolve(null));
    child.on('exit', (c) => resolve(c));
  });
  if (code !== 0) log(`install-etcd.sh failed (exit ${String(code)})`);
  return findEtcd();
}

/** Options of {@link startEtcdCluster}. */
export interface EtcdClusterOptions {
  /** Number of members. Default 3. */
  readonly members?: number;
  /** Longest wait for the members to serve a linearizable read. Default 60,000 ms. */
  readonly startTimeoutMs?: number;
  /** Which members the benchmark's clients talk to. Default `all`. */
  readonly endpoints?: EtcdEndpoints;
  /** Keep the data directory after `stop()`. Default false. */
  readonly keepData?: boolean;
  /** Path of the etcd binary. Default: found on the PATH. */
  readonly binary?: string;
  /**
   * TLS between clients and members and between members (`--cert-file`, `--peer-cert-file`, ... with
   * a throwaway CA in `<dir>/tls/`, see tls.ts); URLs become `https://`. Default false.
   */
  readonly tls?: boolean;
}

interface Member {
  readonly name: string;
  readonly clientUrl: string;
  readonly clientPort: number;
  readonly peerUrl: string;
  /** How to start it again (same ports, same data directory). */
  readonly argv: readonly string[];
  readonly logFile: string;
  process: ServerProcess;
}

/** The environment of every etcd process: no ETCD_* variable leaks in (the Debian package reads them). */
function etcdEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
}

/**
 * Starts an etcd cluster on loopback: random free ports, data directories in a fresh temporary
 * directory, etcd's default durability (every raft entry fsynced to its WAL before it is
 * acknowledged), logs in `<dir>/<name>.log`.
 * @throws ClusterUnavailableError when no etcd binary is found.
 */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<LocalCluster> {
  const binary = options.binary ?? findEtcd();
  if (binary === undefined) throw new ClusterUnavailableError(ETCD_INSTALL_HINT);
  const count = options.members ?? 3;
  const endpointsMode = options.endpoints ?? 'all';
  const version = (execFileSync(binary, ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '')
    .replace(/^etcd Version:\s*/, '')
    .trim();
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-bench-etcd-'));
  const ports = await freePorts(count * 2);
  const certs = options.tls === true ? await writeBenchCertificates(dir) : undefined;
  const scheme = certs === undefined ? 'http' : 'https';
  const names = Array.from({ length: count }, (_, i) => `etcd${i + 1}`);
  const peerUrls = names.map((_, i) => `${scheme}://127.0.0.1:${ports[count + i]}`);
  const clientUrls = names.map((_, i) => `${scheme}://127.0.0.1:${ports[i]}`);
  const initialCluster = names.map((n, i) => `${n}=${peerUrls[i]}`).join(',');
  const token = `paxkv-bench-${process.pid}-${Date.now()}`;
  const members: Member[] = [];
  try {
    for (const [i, name] of names.entries()) {
      const clientUrl = clientUrls[i] ?? '';
      const peerUrl = peerUrls[i] ?? '';
      const dataDir = join(dir, name);
      mkdirSync(dataDir);
      const argv = [
        '--name',
        name,
        '--data-dir',
        dataDir,
        '--listen-client-urls',
        clientUrl,
        '--advertise-client-urls',
        clientUrl,
        '--listen-peer-urls',
        peerUrl,
        '--initial-advertise-peer-urls',
        peerUrl,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-token',
        token,
        // Ignored by a member that restarts on its data directory (etcd reads its WAL instead).
        '--initial-cluster-state',
        'new',
        '--logger',
        'zap',
        '--log-outputs',
        'stderr',
        '--log-level',
        'warn',
        ...(certs === undefined ? [] : etcdTlsFlags(certs)),
      ];
      const logFile = join(dir, `${name}.log`);
      const proc = await startServer(name, binary, argv, logFile, etcdEnv());
      members.push({ name, clientUrl, clientPort: ports[i] ?? 0, peerUrl, argv, logFile, process: proc });
    }
    const cluster = new EtcdCluster(
      members,
      binary,
      version,
      dir,
      endpointsMode,
      options.keepData ?? false,
      certs,
    );
    await cluster.waitReady(options.startTimeoutMs ?? 60_000);
    return cluster;
  } catch (e) {
    await Promise.all(members.map((m) => stopServer(m.process, 1_000)));
    if (options.keepData !== true) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

class EtcdCluster implements LocalCluster {
  readonly system = 'etcd' as const;
  readonly settings: Readonly<Record<string, string | number | boolean>>;

  constructor(
    private readonly members: readonly Member[],
    private readonly binary: string,
    readonly version: string,
    readonly dir: string,
    private readonly endpointsMode: EtcdEndpoints,
    private readonly keepData: boolean,
    private readonly certs: BenchCertificates | undefined,
  ) {
    this.settings = {
      members: members.length,
      durability: 'default (WAL fsync before acknowledging)',
      endpoints: endpointsMode,
      client: 'etcd3 (gRPC, one HTTP/2 channel per member)',
      tls: certs === undefined ? false : 'client and peer traffic (throwaway CA, ECDSA P-256)',
    };
  }

  /** The `etcd3` options every client of this cluster gets: its CA under TLS. */
  private clientOptions(hosts: string | string[]): IOptions {
    return {
      hosts,
      dialTimeout: 2_000,
      ...(this.certs === undefined ? {} : { credentials: etcdCredentials(this.certs) }),
    };
  }

  get servers(): readonly ServerProcess[] {
    return this.members.map((m) => m.process);
  }

  async restart(server: ServerProcess): Promise<{ process: ServerProcess; upAt: number }> {
    const m = this.members.find((x) => x.process === server);
    if (m === undefined) throw new Error(`${server.name} is not a member of this cluster`);
    if (m.process.isAlive()) throw new Error(`${server.name} is still running: kill it first`);
    const proc = await startServer(server.name, this.binary, m.argv, m.logFile, etcdEnv());
    m.process = proc;
    const upAt = await waitPortOpen('127.0.0.1', m.clientPort, 60_000, () => proc.isAlive());
    return { process: proc, upAt };
  }

  async leaderChanges(): Promise<number> {
    const counts = await Promise.all(
      this.members
        .filter((m) => m.process.isAlive())
        .map((m) =>
          fetchMetricSum(
            `${m.clientUrl}/metrics`,
            'etcd_server_leader_changes_seen_total',
            undefined,
            this.certs,
          ),
        ),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const probe = new Etcd3(this.clientOptions(this.members.map((m) => m.clientUrl)));
    try {
      await waitFor(
        'etcd to serve a linearizable read',
        async () => {
          await probe.get('paxkv-bench-probe').string();
          return true;
        },
        timeoutMs,
        200,
      );
      // Every member must know the leader before clients are spread over them.
      await waitFor(
        'every etcd member to know the leader',
        async () => {
          const leaders = await Promise.all(this.members.map((m) => this.leaderIdSeenBy(m)));
          return leaders.every((l) => l !== undefined && l === leaders[0]);
        },
        timeoutMs,
        200,
      );
    } finally {
      probe.close();
    }
  }

  private async leaderIdSeenBy(member: Member): Promise<string | undefined> {
    const c = new Etcd3(this.clientOptions(member.clientUrl));
    try {
      const status = await c.maintenance.status();
      return status.leader === '0' ? undefined : status.leader;
    } finally {
      c.close();
    }
  }

  private async leaderMember(): Promise<Member> {
    for (const member of this.members) {
      if (!member.process.isAlive()) continue;
      const c = new Etcd3(this.clientOptions(member.clientUrl));
      try {
        const status = await c.maintenance.status();
        if (status.leader !== '0' && status.leader === status.header.member_id) return member;
      } catch {
        // try the next one
      } finally {
        c.close();
      }
    }
    throw new Error('no etcd member reports itself leader');
  }

  async createTarget(opts: TargetOptions): Promise<Target> {
    const hosts =
      this.endpointsMode === 'leader'
        ? [(await this.leaderMember()).clientUrl]
        : this.members.filter((m) => m.process.isAlive()).map((m) => m.clientUrl);
    return new EtcdTarget(
      new Etcd3({
        ...this.clientOptions(hosts),
        dialTimeout: opts.requestTimeoutMs,
        defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + opts.requestTimeoutMs }),
      }),
    );
  }

  async leaderOf(_key: string): Promise<ServerProcess> {
    return (await this.leaderMember()).process;
  }

  sameGroup(): boolean {
    return true;
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => stopServer(m.process)));
    if (!this.keepData) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * {@link Target} over the `etcd3` client: `put` = Put, `get` = linearizable Range (etcd's default),
 * `cas` = a Txn comparing the value (or, for "absent", the create revision with 0), whose else
 * branch reads the current value, `txn` = a Txn of 2 Version compares and 2 Puts, `range` = a
 * linearizable Range with a limit.
 */
export class EtcdTarget implements Target {
  readonly system = 'etcd';
  constructor(private readonly client: Etcd3) {}

  async put(key: string, value: string): Promise<void> {
    await this.client.put(key).value(value);
  }

  async get(key: string): Promise<string | null> {
    return await this.client.get(key).string();
  }

  async cas(key: string, expected: string | null, value: string): Promise<CasOutcome> {
    const txn =
      expected === null
        ? this.client.if(key, 'Create', '==', 0)
        : this.client.if(key, 'Value', '==', expected);
    const res = await txn.then(this.client.put(key).value(value)).else(this.client.get(key)).commit();
    if (res.succeeded) return { applied: true };
    const kv = res.responses[0]?.response_range?.kvs[0];
    return { applied: false, current: kv === undefined ? null : kv.value.toString() };
  }

  async txn(keyA: string, keyB: string, valueA: string, valueB: string): Promise<void> {
    await this.client
      .if(keyA, 'Version', '!=', TXN_SENTINEL_VERSION)
      .and(keyB, 'Version', '!=', TXN_SENTINEL_VERSION)
      .then(this.client.put(keyA).value(valueA), this.client.put(keyB).value(valueB))
      .commit();
  }

  async range(start: string, end: string, limit: number): Promise<number> {
    const r = await this.client.getAll().inRange({ start, end }).limit(limit).exec();
    return r.kvs.length;
  }

  async watchPrefix(
    prefix: string,
    onPut: (key: string, value: string) => void,
  ): Promise<{ cancel(): Promise<void> }> {
    const watcher = await this.client.watch().prefix(prefix).create();
    watcher.on('put', (kv) => onPut(kv.key.toString(), kv.value.toString()));
    return { cancel: () => watcher.cancel() };
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
