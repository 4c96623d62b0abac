/**
 * End to end, with real server processes on loopback started by the CLI's own launcher (random free ports,
 * a temp dir): get/put/cas/delete through `@paxkv/client` and through `paxkv` one-shot commands (exit codes,
 * --json), the prompt, SIGKILL of a group leader with operations continuing within a stated bound, restart
 * and catch-up, SIGKILL of every server and restart from the data dirs with every acknowledged write read
 * back, and `paxkv cluster stop`. Every process started here is SIGKILLed at the end, even on failure.
 * The cluster runs with TLS and a cluster token on (`cluster start` gives every new cluster a random token;
 * `tls: true` a throwaway CA in `<dir>/tls/`): every client, probe, RESP connection and CLI command of
 * this file dials TLS trusting that CA, and a plain TCP connection is refused.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as plainConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { connect } from 'node:tls';
import { createClient, type PaxkvClient } from '@paxkv/client';
import { encodeFrame, partitionOf } from '@paxkv/common';
import { resolveServerCommand } from '@paxkv/server/launcher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import { type ClusterFile, isAlive, isServerProcess, readClusterFile, startCluster } from '../src/cluster.js';
import { statusOf } from '../src/connect.js';
import { clientSecurity, configureSecurity } from '../src/security-commands.js';
import { type CliRun, runCliProcess } from './cli-process.js';

/** Stated bound: after the leader of a group is SIGKILLed, a write to that group succeeds within this. */
const FAILOVER_BOUND_MS = 10_000;
const PARTITIONS = 4;

let dir: string;
let file: ClusterFile;
let client: PaxkvClient;

function killAll(): void {
  const f = dir ? readClusterFile(dir) : null;
  for (const n of f?.nodes ?? []) {
    if (isAlive(n.pid)) process.kill(n.pid as number, 'SIGKILL');
  }
}
process.on('exit', killAll);

/** The cluster's CA file (made by `startCluster` with `tls: true`). */
function caFile(): string {
  return join(dir, 'tls', 'ca.pem');
}

/** What this process's clients dial with: TLS trusting the cluster's CA. */
function tls(): { ca: string } {
  return { ca: readFileSync(caFile(), 'utf8') };
}

async function launch(): Promise<ClusterFile> {
  const started = await startCluster({
    dir,
    nodes: 3,
    partitions: PARTITIONS,
    resp: true,
    tls: true,
    serverCommand: resolveServerCommand({ preferSource: true }),
    // The probes dial TLS once the CA exists (as `paxkv cluster start --tls` does): statusOf reads the
    // process-wide settings, here the cluster's CA and no saved login.
    statusOf: (a) => {
      if (!clientSecurity().tls && existsSync(caFile()))
        configureSecurity({}, { PAXKV_TOKEN_FILE: join(dir, 'no-session-token') }, dir);
      return statusOf(a, 2000);
    },
    readyTimeoutMs: 40_000,
  });
  return started.file;
}

/** Runs the CLI from source; resolves with exit code, stdout and stderr. */
function cli(args: string[], input?: string): Promise<CliRun> {
  return runCliProcess(args, {
    ...(input !== undefined ? { input } : {}),
    env: { PAXKV_HISTORY: join(dir, 'history'), PAXKV_CACERT: caFile() },
  });
}

/** Runs `runCli` in this process with captured output. */
async function cliInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await runCli(args, {
    stdout,
    stderr,
    stdin: new PassThrough(),
    env: { PAXKV_SERVERS: '', PAXKV_CACERT: caFile(), PAXKV_TOKEN_FILE: join(dir, 'no-session-token') },
    cwd: dir,
  });
  return { code, stdout: out, stderr: err };
}

/** node id -> pid, via each server's status. */
async function pidOfNode(node: number): Promise<{ pid: number; address: string }> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    for (const n of file.nodes) {
      const r = await statusOf(n.address, 3000);
      if ('status' in r && r.status.node === node) return { pid: n.pid as number, address: n.address };
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`node ${node} not found`);
}

/** The node that leads `partition`, asking every running server (retried for up to 10 s). */
async function leaderOf(partition: number): Promise<number | null> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    for (const n of file.nodes) {
      const r = await statusOf(n.address, 3000);
      if (!('status' in r)) continue;
      const g = r.status.groups.find((x) => x.partition === partition);
      if (g?.role === 'leader') return r.status.node;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  return null;
}

/** A key that hashes to `partition`. */
function keyIn(partition: number, prefix: string): string {
  for (let i = 0; ; i++) {
    const k = `${prefix}-${i}`;
    if (partitionOf(k, PARTITIONS) === partition) return k;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'paxkv-cli-e2e-'));
  file = await launch();
  client = createClient({ servers: file.nodes.map((n) => n.address), requestTimeoutMs: 15_000, tls: tls() });
}, 60_000);

afterAll(async () => {
  await client?.close();
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('a local 3-server cluster', () => {
  it('serves get/put/cas/delete through the client', async () => {
    expect(await client.get('e2e:a')).toBeNull();
    // Nothing in clear: a plain TCP connection sending a status request is closed without an answer.
    const plain = await new Promise<string>((resolvePlain) => {
      const [host = '', port = '0'] = (file.nodes[0]?.address ?? '').split(':');
      const s = plainConnect(Number(port), host, () => s.write(encodeFrame({ type: 'status', id: 1 })));
      let got = '';
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('error', () => {});
      s.on('close', () => resolvePlain(got));
    });
    expect(plain).not.toContain('status.ok');
    expect(await client.put('e2e:a', 'one')).toMatchObject({ created: true });
    expect(await client.put('e2e:a', 'two')).toMatchObject({ created: false });
    expect(await client.get('e2e:a')).toBe('two');
    expect(await client.cas('e2e:a', 'one', 'three')).toMatchObject({ outcome: 'mismatch', current: 'two' });
    expect(await client.cas('e2e:a', 'two', 'three')).toMatchObject({ outcome: 'applied' });
    expect(await client.cas('e2e:new', null, 'x')).toMatchObject({ outcome: 'applied' });
    expect(await client.delete('e2e:a')).toMatchObject({ existed: true });
    expect(await client.delete('e2e:a')).toMatchObject({ existed: false });
    expect(await client.get('e2e:a')).toBeNull();
  });

  it('opens a Redis protocol port on every server with --resp (any server answers any key)', async () => {
    const talk = (port: number, bytes: string, until: string) =>
      new Promise<string>((resolveText, reject) => {
        const s = connect({ port, host: '127.0.0.1', ...tls() }, () => s.write(bytes));
        let text = '';
        s.on('data', (d) => {
          text += d.toString('latin1');
          if (text.includes(until)) {
            s.destroy();
            resolveText(text);
          }
        });
        s.on('error', reject);
      });
    const ports = file.nodes.map((n) => n.respPort as number);
    expect(ports.every((p) => Number.isInteger(p))).toBe(true);
    expect(await talk(ports[0] as number, 'SET e2e:resp "via redis"\r\n', '\r\n')).toBe('+OK\r\n');
    for (const p of ports) expect(await talk(p, 'GET e2e:resp\r\n', 'redis\r\n')).toBe('$9\r\nvia redis\r\n');
    const native = await client.get('e2e:resp');
    expect(native === null ? null : Buffer.from(native).toString()).toBe('via redis');
  });

  it('serves the same commands one-shot, with exit codes and --json', async () => {
    const servers = file.nodes.map((n) => n.address).join(',');
    // The real binary, in its own process: the value alone on stdout, exit codes 0 and 1.
    expect(await cli(['--servers', servers, 'put', 'cli:k', 'hello world'])).toMatchObject({ code: 0 });
    expect(await cli(['--servers', servers, 'get', 'cli:k'])).toMatchObject({
      code: 0,
      stdout: 'hello world\n',
    });
    expect(await cli(['--servers', servers, 'get', 'cli:missing'])).toMatchObject({ code: 1, stdout: '' });
    // The rest through the same entry point in-process (runCli is what main.ts calls): faster.
    expect((await cliInProcess(['--servers', servers, 'cas', 'cli:k', 'nope', 'x'])).code).toBe(1);
    const json = await cliInProcess(['--servers', servers, '--json', 'cas', 'cli:k', 'hello world', 'x']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, outcome: 'applied', current: 'x' });
    expect((await cliInProcess(['--servers', servers, 'cas', 'cli:k', '--absent', 'y'])).code).toBe(1);
    expect((await cliInProcess(['--servers', servers, 'delete', 'cli:k'])).code).toBe(0);
    expect((await cliInProcess(['--servers', servers, 'delete', 'cli:k'])).code).toBe(1);
    const status = await cliInProcess(['--servers', servers, 'status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`${PARTITIONS} partitions`);
    const bad = await cliInProcess(['--servers', 'nohost', 'get', 'k']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('host:port');
    const usage = await cliInProcess(['--servers', servers, 'put', 'only-key']);
    expect(usage.code).toBe(2);
  }, 120_000);

  it('runs the prompt on piped input', async () => {
    const servers = file.nodes.map((n) => n.address).join(',');
    const r = await cli(
      ['--servers', servers, 'prompt'],
      'put p:1 "two words"\nget p:1\nget p:none\nbogus\nhelp\nexit\n',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OK (created)');
    expect(r.stdout).toContain('two words');
    expect(r.stdout).toContain('(not found)');
    expect(r.stdout).toContain('unknown command');
    expect(r.stdout).toContain('Commands:');
  }, 60_000);

  it('keeps serving a group after its leader is SIGKILLed, and the restarted server catches up', async () => {
    const partition = 0;
    const key = keyIn(partition, 'failover');
    await client.put(key, 'before');
    const leader = await leaderOf(partition);
    expect(leader).not.toBeNull();
    const victim = await pidOfNode(leader as number);
    process.kill(victim.pid, 'SIGKILL');
    const killedAt = performance.now();
    // Writes keep going; the first one acknowledged after the kill marks the recovery.
    await client.put(key, 'after');
    const recoveredMs = performance.now() - killedAt;
    console.info(
      `failover: first write acknowledged ${Math.round(recoveredMs)} ms after SIGKILL of leader ${leader}`,
    );
    expect(recoveredMs).toBeLessThan(FAILOVER_BOUND_MS);
    for (let i = 0; i < 20; i++) await client.put(`${key}:${i}`, `v${i}`);
    expect(await client.get(key)).toBe('after');
    const newLeader = await leaderOf(partition);
    expect(newLeader).not.toBe(leader);

    // Restart it on its data (the launcher restarts only dead servers) and watch it catch up.
    file = await launch();
    const target = (await leaderOf(partition)) as number;
    const leaderAddr = (await pidOfNode(target)).address;
    const lr = await statusOf(leaderAddr, 3000);
    const leaderDecided =
      'status' in lr ? (lr.status.groups.find((g) => g.partition === partition)?.decidedIndex ?? 0) : 0;
    const deadline = Date.now() + 15_000;
    let caughtUp = false;
    while (Date.now() < deadline && !caughtUp) {
      const r = await statusOf(victim.address, 3000);
      const g = 'status' in r ? r.status.groups.find((x) => x.partition === partition) : undefined;
      caughtUp = g !== undefined && g.decidedIndex >= leaderDecided;
      if (!caughtUp) await new Promise((res) => setTimeout(res, 100));
    }
    expect(caughtUp).toBe(true);
    // It serves again as an entry point (forwarding to the leader if needed).
    const direct = createClient({ servers: [victim.address], requestTimeoutMs: 10_000, tls: tls() });
    try {
      expect(await direct.get(key)).toBe('after');
    } finally {
      await direct.close();
    }
  }, 60_000);

  it('loses no acknowledged write when every server is SIGKILLed and restarted', async () => {
    const acked = new Map<string, string>();
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 25; i++) {
          const k = `dur:${w}:${i % 10}`;
          const v = `w${w}-i${i}`;
          await client.put(k, v);
          acked.set(k, v);
        }
      }),
    );
    for (const n of file.nodes) process.kill(n.pid as number, 'SIGKILL');
    for (const n of file.nodes) {
      const deadline = Date.now() + 5000;
      while (isAlive(n.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    file = await launch();
    for (const [k, v] of acked) expect(await client.get(k)).toBe(v);
  }, 90_000);

  it('runs `paxkv bench` and reports ops/s and percentiles', async () => {
    const servers = file.nodes.map((n) => n.address).join(',');
    const r = await cli([
      '--servers',
      servers,
      '--json',
      'bench',
      '--duration',
      '1',
      '--clients',
      '4',
      '--workload',
      'mixed',
      '--keys',
      '50',
    ]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ workload: 'mixed', clients: 4, errors: 0 });
    expect(report.ops).toBeGreaterThan(0);
    expect(report.opsPerSec).toBeGreaterThan(0);
    expect(report.latencyMs.p50).toBeGreaterThan(0);
    expect(report.latencyMs.p99).toBeGreaterThanOrEqual(report.latencyMs.p50);
    expect(report.latencyMs.max).toBeGreaterThanOrEqual(report.latencyMs.p99);
    expect(r.stderr).toMatch(/ops\/s/);
  }, 60_000);

  it('takes values from stdin, answers endpoint health, member list and cluster status by node id', async () => {
    const servers = file.nodes.map((n) => n.address).join(',');
    // More than fits in an argument list would be refused by the kernel; stdin has no such limit.
    const big = `${'x'.repeat(300_000)}\nend\n`;
    expect(await cli(['--servers', servers, 'put', 'stdin:k', '-'], big)).toMatchObject({ code: 0 });
    expect(await client.get('stdin:k')).toBe(big);
    const health = await cliInProcess(['--servers', servers, '-w', 'json', 'endpoint', 'health']);
    expect(health.code).toBe(0);
    expect(JSON.parse(health.stdout)).toHaveLength(3);
    const members = await cliInProcess(['--servers', servers, '-w', 'simple', 'member', 'list']);
    expect(
      members.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(', ')[0]),
    ).toEqual(['1', '2', '3']);
    const status = await cliInProcess(['-w', 'simple', 'cluster', 'status', '--dir', dir]);
    expect(status.code).toBe(0);
    const ids = await Promise.all(
      file.nodes.map(async (n) => {
        const r = await statusOf(n.address, 3000);
        return 'status' in r ? r.status.node : null;
      }),
    );
    const byNode = status.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(', ').slice(0, 2));
    expect(byNode).toEqual(
      file.nodes.map((n, i) => [String(ids[i]), n.address]).sort((a, b) => Number(a[0]) - Number(b[0])),
    );
  }, 60_000);

  it('stops the cluster with `paxkv cluster stop`', async () => {
    const r = await cli(['cluster', 'stop', '--dir', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('stopped 3 servers');
    for (const n of file.nodes) expect(isServerProcess(n)).toBe(false);
    const stopped = await cliInProcess(['cluster', 'status', '--dir', dir]);
    expect(stopped.code).toBe(2);
    expect(stopped.stderr).toContain('is stopped');
  }, 60_000);
});
