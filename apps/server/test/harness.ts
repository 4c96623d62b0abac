/**
 * Test harness: real `paxkv-server` processes on loopback (free ports, a temp dir), started from source with
 * tsx (no build needed), plus a raw framed request helper. Every process started here is SIGKILLed when the
 * test process exits, even after a failure.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as plainGet } from 'node:http';
import { get as tlsGet } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { encodeFrame, FrameDecoder, type TlsOptions, tlsMaterial } from '@paxkv/common';
import { writeLocalClusterCertificates } from '../src/certs.js';
import {
  freePort,
  freePorts,
  portTakenReason,
  resolveServerCommand,
  serverFlags,
  spawnServer,
} from '../src/launcher.js';

export { freePort } from '../src/launcher.js';

/**
 * How the servers of a {@link TestCluster} authenticate peers: `none` (`--insecure`), `token` (a random
 * cluster token, `--cluster-token-file`), `tls-token` (a throwaway CA and a server certificate for the
 * loopback addresses, `--tls-cert/--tls-key/--tls-ca`, plus the token: clients, peers and HTTP all on TLS).
 */
export type TestSecurity = 'none' | 'token' | 'tls-token';

/**
 * The security of clusters created without a `security` option: `PAXKV_TEST_SECURITY` (`token` or
 * `tls-token`), `none` otherwise. `test/secure-e2e.test.ts` sets it to run chosen suites with TLS + token.
 */
export function defaultSecurity(): TestSecurity {
  const v = process.env.PAXKV_TEST_SECURITY;
  return v === 'token' || v === 'tls-token' ? v : 'none';
}

/**
 * TLS every harness connection dials with when none is given (`dial`, `request`, `RawClient.connect`):
 * set by {@link TestCluster.create} for a `tls-token` cluster (the process's one test CA), so suites
 * written for plain TCP run unchanged against it. Pass `tls: null` to dial plain TCP anyway.
 */
let defaultClientTls: TlsOptions | undefined;

/** Loopback addresses the test certificate names: 127.0.0.1 and the `ownLoopbackAddresses` range. */
const CERTIFICATE_HOSTS = [
  '127.0.0.1',
  '::1',
  'localhost',
  ...Array.from({ length: 32 }, (_, i) => `127.0.0.${11 + i}`),
];

/** PEM texts of the test CA and of the server certificate it signed. */
interface TestCertificates {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

let certificates: Promise<TestCertificates> | null = null;

/**
 * One throwaway CA and server certificate per test module instance, shared by its `tls-token` clusters
 * (so a suite file with several clusters trusts one CA). Kept in memory: each cluster writes them into
 * its own directory, removed with it (a test worker may be killed without an 'exit' event).
 */
function testCertificates(): Promise<TestCertificates> {
  certificates ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-test-tls-'));
    try {
      const files = await writeLocalClusterCertificates(dir, CERTIFICATE_HOSTS);
      const read = (f: string) => readFileSync(f, 'utf8');
      return { ca: read(files.ca), cert: read(files.serverCert), key: read(files.serverKey) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return certificates;
}

/** The TLS harness connections dial with by default (see `defaultClientTls`), for other clients of a suite. */
export function harnessClientTls(): TlsOptions | undefined {
  return defaultClientTls;
}

/**
 * Opens a socket to `host:port`, with TLS when `tls` is given (verifying the server against `tls.ca`;
 * undefined = the harness's default, see `TestSecurity`; null = plain TCP); `ready` is the event that
 * says it can carry frames (`connect` or `secureConnect`).
 */
export function dial(
  host: string,
  port: number,
  tlsOption?: TlsOptions | null,
): { socket: Socket; ready: string } {
  const tls = tlsOption === undefined ? defaultClientTls : tlsOption;
  if (!tls) return { socket: netConnect({ host, port }), ready: 'connect' };
  const socket = tlsConnect({
    host,
    port,
    ca: tlsMaterial(tls.ca),
    ...(tls.cert !== undefined ? { cert: tlsMaterial(tls.cert) } : {}),
    ...(tls.key !== undefined ? { key: tlsMaterial(tls.key) } : {}),
  });
  return { socket, ready: 'secureConnect' };
}

/**
 * GET `path` from a server's HTTP port (`/health`, `/metrics`): HTTPS verified against `tls.ca` when `tls`
 * is given (undefined = the harness's default, see `TestSecurity`: under `tls-token` the HTTP port serves
 * HTTPS; null = plain HTTP). Resolves with the status code and the body; rejects on a connection error.
 */
export function httpGet(
  port: number,
  path: string,
  tlsOption?: TlsOptions | null,
): Promise<{ status: number; body: string }> {
  const tls = tlsOption === undefined ? defaultClientTls : tlsOption;
  return new Promise((resolve, reject) => {
    const onResponse = (res: import('node:http').IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    };
    const request = tls
      ? tlsGet({ host: '127.0.0.1', port, path, ca: tlsMaterial(tls.ca) }, onResponse)
      : plainGet({ host: '127.0.0.1', port, path }, onResponse);
    request.on('error', reject);
  });
}

/** How the harness runs a server: from source through tsx (no build needed). */
const SERVER = resolveServerCommand({ preferSource: true });

/** One server process of a {@link TestCluster}. */
export interface TestServer {
  readonly index: number;
  /** The interface it listens on and advertises. */
  readonly host: string;
  /**
   * Ports and address are final once `waitReady` returned (a server that lost a port to another process
   * before binding it is restarted on fresh ones there).
   */
  port: number;
  httpPort: number;
  /** Port of the RESP front-end, null unless the cluster was created with `resp: true`. */
  respPort: number | null;
  address: string;
  readonly dataDir: string;
  readonly logFile: string;
  child: ChildProcess | null;
}

/** Options of {@link TestCluster.create}. */
export interface TestClusterOptions {
  readonly nodes?: number;
  readonly partitions?: number;
  readonly replication?: number;
  readonly fsync?: 'always' | 'batch' | 'never';
  readonly extraFlags?: readonly string[];
  /**
   * Give server i its own loopback address 127.0.0.(10+i) to listen on and advertise (default false:
   * every server on 127.0.0.1), so that traffic between servers can be told apart by address.
   */
  readonly ownLoopbackAddresses?: boolean;
  /** Give every server a RESP port (`--resp-port`). */
  readonly resp?: boolean;
  /**
   * TLS settings the harness's own requests (`waitReady`, `leaders`) dial with. Default: plain TCP, or
   * the cluster's CA with `security: 'tls-token'`.
   */
  readonly clientTls?: TlsOptions;
  /**
   * Peer authentication and TLS the harness gives every server (default {@link defaultSecurity}: `none`
   * unless `PAXKV_TEST_SECURITY` says otherwise). Suites that set up their own token or TLS pass `none`.
   */
  readonly security?: TestSecurity;
}

/** N real servers; node 1 is the bootstrap server. */
/** Lines of a server's log searched for a lost port (EADDRINUSE) when it exited at start. */
const PORT_LOSS_LOG_LINES = 40;

export class TestCluster {
  private constructor(
    readonly dir: string,
    readonly servers: TestServer[],
    private readonly options: TestClusterOptions,
    /** Flags every server gets for its security (token file, TLS files). */
    private readonly securityFlags: readonly string[] = [],
    /** TLS the harness's own requests dial with (undefined: plain TCP). */
    readonly clientTls: TlsOptions | undefined = options.clientTls,
  ) {}

  /** The security the servers run with (see {@link TestSecurity}). */
  get security(): TestSecurity {
    return this.options.security ?? defaultSecurity();
  }

  /** Allocates ports and a temp dir (nothing is started yet). */
  static async create(options: TestClusterOptions = {}): Promise<TestCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-e2e-'));
    const servers: TestServer[] = [];
    const nodes = options.nodes ?? 3;
    const ports = await freePorts(nodes * (options.resp ? 3 : 2));
    let next = 0;
    const pick = () => ports[next++] as number;
    for (let i = 1; i <= nodes; i++) {
      const port = pick();
      const httpPort = pick();
      const respPort = options.resp ? pick() : null;
      const dataDir = join(dir, `node-${i}`);
      mkdirSync(dataDir, { recursive: true });
      const host = options.ownLoopbackAddresses ? `127.0.0.${10 + i}` : '127.0.0.1';
      servers.push({
        index: i,
        host,
        port,
        httpPort,
        respPort,
        address: `${host}:${port}`,
        dataDir,
        logFile: join(dataDir, 'server.log'),
        child: null,
      });
    }
    const security = options.security ?? defaultSecurity();
    const flags: string[] = [];
    let clientTls = options.clientTls;
    if (security !== 'none') {
      const tokenFile = join(dir, 'cluster-token');
      writeFileSync(tokenFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
      flags.push('--cluster-token-file', tokenFile);
    }
    if (security === 'tls-token') {
      const pem = await testCertificates();
      const tlsDir = join(dir, 'tls');
      mkdirSync(tlsDir, { mode: 0o700 });
      const files = {
        ca: join(tlsDir, 'ca.pem'),
        cert: join(tlsDir, 'server.pem'),
        key: join(tlsDir, 'server-key.pem'),
      };
      writeFileSync(files.ca, pem.ca);
      writeFileSync(files.cert, pem.cert);
      writeFileSync(files.key, pem.key, { mode: 0o600 });
      flags.push('--tls-cert', files.cert, '--tls-key', files.key, '--tls-ca', files.ca);
      clientTls ??= { ca: pem.ca };
      defaultClientTls = { ca: pem.ca };
    }
    return new TestCluster(dir, servers, options, flags, clientTls);
  }

  /** Adds one more server (free ports, its own data dir) that joins the cluster; it is not started yet. */
  async addServer(): Promise<TestServer> {
    const index = this.servers.length + 1;
    const port = await freePort();
    const httpPort = await freePort();
    const dataDir = join(this.dir, `node-${index}`);
    mkdirSync(dataDir, { recursive: true });
    const s: TestServer = {
      index,
      host: '127.0.0.1',
      port,
      httpPort,
      respPort: this.options.resp ? await freePort() : null,
      address: `127.0.0.1:${port}`,
      dataDir,
      logFile: join(dataDir, 'server.log'),
      child: null,
    };
    this.extra.push(s);
    return s;
  }

  private readonly extra: TestServer[] = [];

  /** The flags of server `s`. */
  flags(s: TestServer): string[] {
    const first = this.servers[0] as TestServer;
    return serverFlags({
      host: s.host,
      port: s.port,
      httpPort: s.httpPort,
      dataDir: s.dataDir,
      fsync: this.options.fsync ?? 'batch',
      partitions: this.options.partitions ?? 4,
      replication: this.options.replication ?? Math.min(3, this.servers.length),
      bootstrapThreshold: this.servers.length,
      logLevel: 'info',
      join: s.index === first.index ? undefined : first.address,
      respPort: s.respPort ?? undefined,
      // Suites that test peer authentication add a token or TLS; --insecure then changes nothing.
      insecure: true,
      extra: [...this.securityFlags, ...(this.options.extraFlags ?? [])],
    });
  }

  /** Starts server `s` (appending to its log file), with `extraFlags` after its usual flags. */
  start(s: TestServer, extraFlags: readonly string[] = []): ChildProcess {
    const child = spawnServer(SERVER, [...this.flags(s), ...extraFlags], { logFile: s.logFile });
    s.child = child;
    return child;
  }

  /** Starts every server, the bootstrap server first. */
  startAll(): void {
    for (const s of this.servers) this.start(s);
  }

  /** Sends `signal` to server `s` and waits until it exited; resolves with its exit code or signal. */
  async kill(s: TestServer, signal: NodeJS.Signals = 'SIGKILL'): Promise<string> {
    const child = s.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return 'not running';
    const exited = new Promise<string>((r) => child.once('exit', (code, sig) => r(sig ?? `code ${code}`)));
    child.kill(signal);
    const result = await exited;
    s.child = null;
    return result;
  }

  /** The tail of a server's log, for failure messages. */
  log(s: TestServer, lines = 30): string {
    try {
      return readFileSync(s.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /**
   * SIGKILLs whatever still runs and removes the temp dir (kept, with every server's log and data, when
   * `PAXKV_TEST_KEEP_DIRS=1`: the suite runs of `scripts/suite-loop.sh` keep them to find a flake's cause).
   */
  async destroy(): Promise<void> {
    await Promise.all([...this.servers, ...this.extra].map((s) => this.kill(s, 'SIGKILL')));
    if (process.env.PAXKV_TEST_KEEP_DIRS !== '1') rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Restarts, on fresh ports, a server that exited because another process took one of its ports
   * between `freePorts` releasing it and the server binding it (test files run two at a time, and any
   * outgoing connection may get that port as its ephemeral one). A server that lost the bootstrap
   * server's address restarts every other server too, since they joined through it. Only for servers
   * that were never killed on purpose (`kill` clears `child`). True when something was restarted.
   */
  private async restartPortLosers(): Promise<boolean> {
    const lost = this.servers.filter(
      (s) =>
        s.child !== null &&
        (s.child.exitCode !== null || s.child.signalCode !== null) &&
        portTakenReason(this.log(s, PORT_LOSS_LOG_LINES)) !== undefined,
    );
    if (lost.length === 0) return false;
    // Said on the test's output, so that suite runs show how often it happens (and the log line why).
    for (const s of lost) {
      const line = portTakenReason(this.log(s, PORT_LOSS_LOG_LINES));
      console.warn(
        `harness: server ${s.index} (${s.address}) lost a port before binding it, restarted: ${line}`,
      );
    }
    const restart = lost.some((s) => s.index === 1) ? this.servers : lost;
    for (const s of restart) await this.kill(s);
    for (const s of lost) {
      s.port = await freePort();
      s.httpPort = await freePort();
      if (s.respPort !== null) s.respPort = await freePort();
      s.address = `${s.host}:${s.port}`;
    }
    for (const s of restart) this.start(s);
    return true;
  }

  /** Every server's log tail, for failure messages. */
  logs(lines = 15): string {
    const state = (s: TestServer) =>
      s.child === null
        ? 'not started or killed'
        : s.child.exitCode !== null || s.child.signalCode !== null
          ? `exited: ${s.child.signalCode ?? `code ${s.child.exitCode}`}`
          : `running, pid ${s.child.pid}`;
    return this.servers
      .map((s) => `--- server ${s.index} (${s.address}, ${state(s)}, ${s.logFile}):\n${this.log(s, lines)}`)
      .join('\n');
  }

  /** Waits until every partition has a leader, asking every server for its status. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (await this.restartPortLosers()) last = 'a server lost its port before binding it: restarted';
      const leaders = await this.leaders().catch((e: Error) => {
        last = e.message;
        return null;
      });
      const partitions = this.options.partitions ?? 4;
      if (leaders && leaders.size === partitions) {
        if (this.security === 'tls-token') await this.checkPlainRefused();
        // Near the guard: said on the test output, so that suite runs show the margin left under load.
        const took = timeoutMs - (deadline - Date.now());
        if (took > timeoutMs / 3)
          console.warn(`harness: cluster ready after ${took} ms (guard ${timeoutMs} ms)`);
        return;
      }
      if (leaders) last = `${leaders.size}/${partitions} partitions have a leader`;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`cluster not ready after ${timeoutMs} ms (${last}); logs:\n${this.logs()}`);
  }

  /**
   * With `tls-token`: a plain TCP `status` to the bootstrap server must get no answer, or the servers do
   * not run the security the suite believes (a harness bug, not a flake).
   */
  private async checkPlainRefused(): Promise<void> {
    const first = this.servers[0] as TestServer;
    const reply = await request(first.address, { type: 'status', id: 1 }, 5000, { tls: null }).catch(
      () => null,
    );
    if ((reply as { type?: string } | null)?.type === 'status.ok')
      throw new Error(`server ${first.address} answered plain TCP although it was started with TLS`);
  }

  /** Partition -> node id of the replica that reports itself leader, over the servers that answer. */
  async leaders(): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const s of this.servers) {
      if (!s.child) continue;
      const reply = (await request(
        s.address,
        { type: 'status', id: 1 },
        1000,
        this.clientTls ? { tls: this.clientTls } : {},
      ).catch(() => null)) as {
        type: string;
        status?: { node: number; groups: Array<{ partition: number; leader: number | null; role: string }> };
      } | null;
      if (reply?.type !== 'status.ok' || !reply.status) continue;
      for (const g of reply.status.groups) if (g.role === 'leader') out.set(g.partition, reply.status.node);
    }
    return out;
  }

  /** The server with node id `node` (node ids follow start order: the bootstrap server is 1). */
  async serverOfNode(node: number): Promise<TestServer> {
    for (const s of this.servers) {
      if (!s.child) continue;
      const reply = (await request(
        s.address,
        { type: 'status', id: 2 },
        1000,
        this.clientTls ? { tls: this.clientTls } : {},
      ).catch(() => null)) as {
        type: string;
        status?: { node: number };
      } | null;
      if (reply?.status?.node === node) return s;
    }
    throw new Error(`no running server has node id ${node}`);
  }
}

/**
 * Polls `probe` every `everyMs` until it returns a value (not null/undefined) and resolves with it; the
 * condition is an event, `ms` only a guard against a hang.
 * @throws Error naming `what` after `ms`.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | null | undefined>,
  ms: number,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Opens a connection, sends `payload` (a message to frame, or raw bytes as they are), and resolves with the
 * first reply (decoded), or null if the server closed the connection without one. Rejects on timeout.
 * `halfClose` ends the sending side after the payload.
 */
export function request(
  address: string,
  payload: unknown,
  timeoutMs = 2000,
  /** `tls`: see {@link dial} (undefined = the harness's default, null = plain TCP). */
  options: { halfClose?: boolean; tls?: TlsOptions | null } = {},
): Promise<unknown> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolveReply, reject) => {
    const { socket, ready } = dial(host, Number(port), options.tls);
    const decoder = new FrameDecoder();
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(
      () => finish(() => reject(new Error(`no reply from ${address} in ${timeoutMs} ms`))),
      timeoutMs,
    );
    socket.on(ready, () => {
      const bytes = payload instanceof Uint8Array ? payload : encodeFrame(payload);
      // Half-close after raw bytes: a frame they leave incomplete ends with the stream instead of waiting.
      if (options.halfClose) socket.end(bytes);
      else socket.write(bytes);
    });
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        if (f.ok) return finish(() => resolveReply(f.value));
      }
      return undefined;
    });
    socket.on('error', (e) => finish(() => reject(e)));
    socket.on('close', () => finish(() => resolveReply(null)));
  });
}

/** A persistent framed connection that matches replies to requests by `id` (a minimal client for tests). */
export class RawClient {
  private readonly decoder = new FrameDecoder();
  private readonly waiting = new Map<number, (reply: unknown) => void>();
  private nextId = 1;
  private closedFlag = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) {
        if (!f.ok) continue;
        const id = (f.value as { id?: unknown }).id;
        if (typeof id === 'number') {
          this.waiting.get(id)?.(f.value);
          this.waiting.delete(id);
        }
      }
    });
    socket.on('close', () => {
      this.closedFlag = true;
      for (const w of this.waiting.values()) w(null);
      this.waiting.clear();
    });
    socket.on('error', () => {});
  }

  /** Connects to `address` (with TLS when `tls` is given). */
  static connect(address: string, tls?: TlsOptions): Promise<RawClient> {
    const [host, port] = address.split(':') as [string, string];
    return new Promise((resolveClient, reject) => {
      const { socket, ready } = dial(host, Number(port), tls);
      socket.once(ready, () => resolveClient(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** True once the server closed the connection. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Sends `message` with a fresh id and resolves with the reply (null if the connection closed). */
  call(message: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown> | null> {
    const id = this.nextId++;
    return new Promise((resolveReply, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no reply to ${String(message.type)} #${id} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        resolveReply(reply as Record<string, unknown> | null);
      });
      this.socket.write(encodeFrame({ ...message, id }));
    });
  }

  /**
   * Sends `message` as a careful client does: a retryable answer (TIMEOUT, NO_LEADER, UNAVAILABLE: an
   * election is running, a leader was cut off, or the machine is loaded) is sent again, the same message
   * (give writes a `session` so a retried write is applied once), until `deadlineMs` has passed; then the
   * last answer is returned. Any other answer is returned at once.
   */
  async callRetrying(
    message: Record<string, unknown>,
    deadlineMs = 30_000,
  ): Promise<Record<string, unknown> | null> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const reply = await this.call(message, deadlineMs);
      const code = reply?.code;
      const retryable = code === 'TIMEOUT' || code === 'NO_LEADER' || code === 'UNAVAILABLE';
      if (!retryable || Date.now() > deadline) return reply;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Closes the connection. */
  close(): void {
    this.socket.destroy();
  }
}
