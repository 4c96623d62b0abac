/**
 * Tools of the hostile-peer suites: a raw framed connection that plays an impostor (optionally running
 * the peer handshake with some key, right or wrong), and a reader of one server's Prometheus metrics.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type AuthChannel, encodeFrame, FrameDecoder, type TlsOptions } from '@paxkv/common';
import { dial, request, type TestCluster, type TestServer } from './harness.js';

/** A raw framed connection to a server: sends anything, collects every decoded reply. */
export class Impostor implements AuthChannel {
  readonly received: unknown[] = [];
  private readonly decoder = new FrameDecoder();
  private readonly waiters: Array<() => void> = [];
  private closedFlag = false;
  private consumed = 0;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) if (f.ok) this.received.push(f.value);
      this.wake();
    });
    socket.on('close', () => {
      this.closedFlag = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  /** Connects to `address` (`host:port`), with TLS (and a client certificate) when `tls` is given. */
  static connect(address: string, tls?: TlsOptions): Promise<Impostor> {
    const i = address.lastIndexOf(':');
    return new Promise((resolve, reject) => {
      const { socket, ready } = dial(address.slice(0, i), Number(address.slice(i + 1)), tls);
      socket.once(ready, () => resolve(new Impostor(socket)));
      socket.once('error', reject);
    });
  }

  /** True once the server closed the connection. */
  get closed(): boolean {
    return this.closedFlag;
  }

  send(message: unknown): boolean {
    if (this.closedFlag) return false;
    this.socket.write(encodeFrame(message));
    return true;
  }

  /** Writes raw bytes. */
  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  receive(): Promise<unknown> {
    return this.next(true);
  }

  peek(): Promise<unknown> {
    return this.next(false);
  }

  /** Waits until a reply matches `predicate` (among all received), or rejects after `timeoutMs`. */
  async waitFor(predicate: (m: unknown) => boolean, timeoutMs = 10_000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find(predicate);
      if (hit !== undefined) return hit;
      if (this.closedFlag) throw new Error(`connection closed; received ${JSON.stringify(this.received)}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no matching reply in ${timeoutMs} ms; received ${JSON.stringify(this.received)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Resolves when the server has closed the connection (rejects after `timeoutMs`). */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closedFlag) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open after ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private async next(consume: boolean): Promise<unknown> {
    for (;;) {
      if (this.consumed < this.received.length) {
        const m = this.received[this.consumed];
        if (consume) this.consumed++;
        return m;
      }
      if (this.closedFlag) throw new Error('connection closed');
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** The value of one sample of a server's `/metrics` (0 when absent), e.g. `metric(s, 'x_total', {type: 'paxos'})`. */
export async function metric(
  httpPort: number,
  name: string,
  labels: Record<string, string> = {},
  /** The CA of a server started with TLS (its HTTP port then serves HTTPS). */
  ca?: string,
): Promise<number> {
  const text =
    ca === undefined
      ? await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text()
      : await new Promise<string>((resolve, reject) => {
          httpsGet({ host: '127.0.0.1', port: httpPort, path: '/metrics', ca }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => {
              body += c;
            });
            res.on('end', () => resolve(body));
            res.on('error', reject);
          }).on('error', reject);
        });
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1] as string, x[2] as string]),
    );
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) {
      total += Number(m[3]);
      found = true;
    }
  }
  return found ? total : 0;
}

/**
 * Restarts server `s` of `cluster` with the environment variable `name=1` (a test-only mutation switch)
 * and waits until it answers `status` again (over TLS with `tls`).
 */
export async function restartWithSwitch(
  cluster: TestCluster,
  s: TestServer,
  name: string,
  tls?: TlsOptions,
  /** Flags the server was started with besides the cluster's (e.g. its token file). */
  extraFlags: readonly string[] = [],
): Promise<void> {
  await cluster.kill(s);
  process.env[name] = '1';
  try {
    cluster.start(s, extraFlags);
  } finally {
    delete process.env[name];
  }
  await eventually(async () => {
    const reply = await request(s.address, { type: 'status', id: 1 }, 2000, tls ? { tls } : {}).catch(
      () => null,
    );
    return (reply as { type?: string } | null)?.type === 'status.ok';
  }, 60_000);
}

/** Polls `check` until it returns true (or throws its last error after `timeoutMs`). */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}

/**
 * A `paxos` envelope carrying a `Prepare` of ballot (`round`, `from`) in the name of replica `from`, in
 * the wire form groups speak (a reconfiguration envelope of configuration `config` around the Sequence Paxos
 * message), so the server's checks of the wrapped message are what refuses it.
 */
export function forgedPrepare(
  partition: number,
  from: number,
  round: number,
  /** The configuration the group runs (its status's `configId`): a replica ignores other ones' messages. */
  config = 0,
): Record<string, unknown> {
  return {
    type: 'paxos',
    partition,
    from,
    msg: {
      type: 'Paxos',
      config,
      msg: {
        type: 'Prepare',
        n: { n: round, pid: from },
        decidedIndex: 0,
        acceptedRound: { n: 0, pid: 0 },
        logLength: 0,
      },
    },
  };
}

/** A `table.push` of version 1001 that sends every node's traffic to a dead port (127.0.0.1:9). */
export function forgedTablePush(partitions = 4): Record<string, unknown> {
  return {
    type: 'table.push',
    table: {
      version: 1001,
      partitions,
      replication: 3,
      nodes: [1, 2, 3].map((id) => ({ id, address: '127.0.0.1:9' })),
      groups: Array.from({ length: partitions }, (_, partition) => ({ partition, replicas: [1, 2, 3] })),
    },
  };
}

/**
 * Sends a forged `peer.hello` (as `claimed`, or another node if that is the target's own id) and a `Prepare` of round `round` for every partition to
 * `address`, then waits until the server's `metricName{labels}` grew by `partitions`.
 */
export async function forgeHelloAndPrepares(
  target: { readonly address: string; readonly httpPort: number },
  claimed: number,
  round: number,
  partitions: number,
  metricName: string,
  labels: Record<string, string>,
  /** Dial with TLS (and this client certificate); `tls.ca` also reads the metrics over HTTPS. */
  tls?: TlsOptions,
): Promise<void> {
  const ca = tls === undefined ? undefined : String(tls.ca);
  const before = await metric(target.httpPort, metricName, labels, ca);
  // Node ids are given at start, not by index: a claim of the target's own id would be a message from
  // itself (ignored for that reason alone), so claim another node then.
  const status = (await request(target.address, { type: 'status', id: 1 }, 10_000, {
    tls: tls === undefined ? null : { ca: tls.ca },
  }).catch(() => null)) as { status?: { node?: number } } | null;
  const own = status?.status?.node;
  const claim = claimed === own ? (own === 1 ? 2 : 1) : claimed;
  const impostor = await Impostor.connect(target.address, tls);
  try {
    impostor.send({ type: 'peer.hello', from: claim });
    for (let p = 0; p < partitions; p++) impostor.send(forgedPrepare(p, claim, round));
    await eventually(
      async () => (await metric(target.httpPort, metricName, labels, ca)) >= before + partitions,
    );
  } finally {
    impostor.close();
  }
}

/** The open-file limits a child started through `sh` gets (`ulimit -Sn`, `ulimit -Hn`; unlimited = Infinity). */
export function fileDescriptorLimits(): { readonly soft: number; readonly hard: number } {
  const [soft = '0', hard = '0'] = execFileSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' })
    .trim()
    .split('\n');
  const parse = (x: string) => (x.trim() === 'unlimited' ? Number.POSITIVE_INFINITY : Number(x));
  return { soft: parse(soft), hard: parse(hard) };
}

/** One report of the idle-flood process (see `idle-flood.ts`). */
export interface IdleFloodReport {
  readonly event: 'wave' | 'holding' | 'stopped-reopening' | 'error';
  readonly open?: number;
  readonly serverConnections?: number;
  readonly closedByServer?: number;
  readonly failed?: number;
  /** Dials not made because their source address was refused before (at the server's per-host limit). */
  readonly skipped?: number;
  readonly message?: string;
}

/** A running idle-connection flood (a child process holding `count` idle connections to one server). */
export interface IdleFlood {
  /** The attacker's process id (its shell `exec`s node, so this is the flooding process). */
  readonly pid: number | undefined;
  /** Resolves with the first report of kind `event` (rejects if the process exits first or after `timeoutMs`). */
  next(event: IdleFloodReport['event'], timeoutMs: number): Promise<IdleFloodReport>;
  /** Every report so far. */
  readonly reports: readonly IdleFloodReport[];
  /** Connections the server closes are no longer dialled again. */
  stopReopening(): void;
  /** Closes every connection and waits for the process to exit. */
  close(): Promise<void>;
}

/**
 * Starts `idle-flood.ts` in its own process, with its open-file limit raised to `count` + 64 by `ulimit -n`
 * (the caller checks {@link fileDescriptorLimits} first), flooding `target` with `count` idle connections;
 * `limit` is the server's `maxConnections`. `from`: the local addresses (attacking hosts) the connections
 * are spread over, e.g. `127.0.0.2` (default: the kernel's, 127.0.0.1 like everyone else on this host);
 * `perHost`: the server's `maxConnectionsPerHost` (what it holds per address; default 0 = no limit).
 */
export function startIdleFlood(
  target: { readonly host: string; readonly port: number; readonly httpPort: number },
  count: number,
  limit: number,
  options: { readonly from?: readonly string[]; readonly perHost?: number } = {},
): IdleFlood {
  const script = fileURLToPath(new URL('./idle-flood.ts', import.meta.url));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const child: ChildProcess = spawn(
    'sh',
    [
      '-c',
      `ulimit -n ${count + 64} && exec "$0" "$@"`,
      process.execPath,
      '--import',
      tsx,
      script,
      target.host,
      String(target.port),
      String(target.httpPort),
      String(count),
      String(limit),
      (options.from ?? []).join(','),
      String(options.perHost ?? 0),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  const reports: IdleFloodReport[] = [];
  const waiters: Array<() => void> = [];
  let exited: string | null = null;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    reports.push(JSON.parse(line) as IdleFloodReport);
    for (const w of waiters.splice(0)) w();
  });
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = signal ?? `code ${code}`;
      process.removeListener('exit', kill);
      for (const w of waiters.splice(0)) w();
      resolve();
    }),
  );
  return {
    pid: child.pid,
    reports,
    async next(event, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = reports.find((r) => r.event === event || r.event === 'error');
        if (hit?.event === 'error') throw new Error(`the idle flood failed: ${hit.message}`);
        if (hit) return hit;
        if (exited !== null) throw new Error(`the idle flood exited (${exited}) before '${event}'`);
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(
            `no '${event}' from the idle flood in ${timeoutMs} ms; last: ${JSON.stringify(reports.at(-1))}`,
          );
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
    stopReopening() {
      child.stdin?.write('stop-reopening\n');
    },
    async close() {
      if (exited === null) {
        child.stdin?.end('close\n');
        await exit;
      }
    },
  };
}
