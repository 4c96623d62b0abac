/**
 * `paxkv lease ...`, `put --ttl`, `watch` and `lock` against a real local 3-server cluster.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type PaxkvClient } from '@paxkv/client';
import { resolveServerCommand } from '@paxkv/server/launcher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../test/run-cli.js';
import { isAlive, readClusterFile, startCluster, stopCluster } from './cluster.js';
import { statusOf } from './connect.js';
import { parseDuration, parseLeaseId, parseTtl } from './lease-commands.js';

let dir = '';
let servers = '';
let kv: PaxkvClient;

const run = (args: string[]) => runCliCaptured(args, { PAXKV_SERVERS: servers }, dir);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'paxkv-cli-lease-'));
  const started = await startCluster({
    dir,
    nodes: 3,
    partitions: 4,
    serverCommand: resolveServerCommand({ preferSource: true }),
    statusOf: (a) => statusOf(a, 2000),
  });
  servers = started.file.nodes.map((n) => n.address).join(',');
  kv = createClient({ servers: servers.split(','), requestTimeoutMs: 30_000 });
}, 120_000);

afterAll(async () => {
  await kv?.close();
  const f = dir ? readClusterFile(dir) : null;
  if (f) await stopCluster(dir, { graceMs: 5000 });
  for (const n of f?.nodes ?? []) if (isAlive(n.pid)) process.kill(n.pid as number, 'SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("cluster start readiness (on this file's running cluster)", () => {
  it('waits for every server to answer, not only for every partition to have a leader', async () => {
    // Every partition of the running cluster has a leader; server 3 is reported silent (as a server still
    // opening its groups is): `cluster start` must not say ready, and says which server it waits for.
    const third = readClusterFile(dir)?.nodes[2]?.address as string;
    const silentThird = (a: string) =>
      a === third ? Promise.resolve({ address: a, error: 'connect ECONNREFUSED' }) : statusOf(a, 2000);
    await expect(startCluster({ dir, statusOf: silentThird, readyTimeoutMs: 3_000 })).rejects.toThrow(
      /cluster not ready after 3000 ms \(4\/4 partitions have a leader; server 3 not answering\)/,
    );
    const ready = await startCluster({ dir, statusOf: (a) => statusOf(a, 2000), readyTimeoutMs: 30_000 });
    expect(ready.view.servers.filter((x) => x.reachable)).toHaveLength(3);
  });
});

describe('parsing', () => {
  it('reads durations, TTLs and lease ids, refusing what is not one', () => {
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('1.5m')).toBe(90_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('3')).toBe(3_000);
    expect(() => parseDuration('soon')).toThrow(/positive duration/);
    expect(() => parseTtl('500ms')).toThrow(/between 1s and 365d/);
    expect(parseLeaseId('0x10001')).toBe(65_537);
    expect(parseLeaseId('65537')).toBe(65_537);
    expect(() => parseLeaseId('-1')).toThrow(/positive integer/);
  });
});

describe('lease commands on a real cluster', () => {
  it('grant, put --ttl, timetolive, list, keep-alive, revoke', async () => {
    const g = await run(['-w', 'json', 'lease', 'grant', '30s', '--key', '{cli}:a']);
    expect(g.code).toBe(0);
    const lease = (JSON.parse(g.stdout) as { lease: number }).lease;
    expect(await kv.put('{cli}:a', 'x', { lease })).toMatchObject({ created: true });
    const p = await run(['put', '{cli}:b', 'y', '--ttl', '20s']);
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(/^OK \(lease \d+, TTL 20s\)/);
    const t = await run(['lease', 'timetolive', String(lease), '--keys']);
    expect(t.stdout).toMatch(
      new RegExp(
        `lease ${lease} granted with TTL\\(30s\\), remaining\\(\\d+s\\), attached keys \\[\\{cli\\}:a\\]`,
      ),
    );
    expect((await run(['lease', 'list'])).stdout).toMatch(new RegExp(`${lease}\\s+30s\\s+1`));
    expect((await run(['lease', 'keep-alive', '--once', `0x${lease.toString(16)}`])).stdout).toMatch(
      /keepalived with TTL\(30s\)/,
    );
    const r = await run(['lease', 'revoke', String(lease)]);
    expect(r.stdout).toMatch(/revoked \(1 keys deleted\)/);
    expect(await kv.get('{cli}:a')).toBeNull();
    expect((await run(['lease', 'revoke', String(lease)])).code).toBe(1);
    expect((await run(['lease', 'timetolive', String(lease)])).code).toBe(1);
    expect((await run(['put', 'k', 'v', '--ttl', '0.5s'])).code).toBe(2);
  }, 60_000);

  it('watch --rev replays the history of a key and of a hash-tag prefix', async () => {
    const first = await kv.put('{w}:a', '1');
    await kv.put('{w}:b', '2');
    await kv.delete('{w}:a');
    const key = await run(['watch', '{w}:a', '--rev', String(first.revision), '--count', '2']);
    expect(key.code).toBe(0);
    expect(key.stdout).toBe('PUT\n{w}:a\n1\nDELETE\n{w}:a\n');
    const prefix = await run([
      '-w',
      'json',
      'watch',
      '{w}:',
      '--prefix',
      '--rev',
      String(first.revision),
      '--count',
      '3',
    ]);
    const events = prefix.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; key: string });
    expect(events.map((e) => [e.type, e.key])).toEqual([
      ['put', '{w}:a'],
      ['put', '{w}:b'],
      ['delete', '{w}:a'],
    ]);
    expect((await run(['watch', 'nohashtag', '--prefix', '--rev', '1'])).code).toBe(2);
  }, 60_000);

  it('lock -- <command> runs the command holding the lock, with its token, and returns its exit code', async () => {
    const r = await run([
      'lock',
      '{cli}:job',
      '--ttl',
      '5s',
      '--',
      'sh',
      '-c',
      'echo "token=$PAXKV_LOCK_TOKEN"; exit 3',
    ]);
    expect(r.code, r.stderr).toBe(3);
    const token = Number(/token=(\d+)/.exec(r.stdout)?.[1]);
    expect(token).toBeGreaterThan(0);
    expect(r.stderr).toMatch(new RegExp(`locked \\{cli\\}:job: key .*, token ${token}`));
    // Released: the next holder gets a larger token at once.
    const again = await kv.lock('{cli}:job', { ttlMs: 5_000, signal: AbortSignal.timeout(20_000) });
    expect(again.token).toBeGreaterThan(token);
    await again.unlock();
  }, 60_000);
});
