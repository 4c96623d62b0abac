/**
 * Backup and restore end to end, with real processes: a 3-server cluster (the CLI's launcher) under a
 * write load; `paxkv snapshot save` (the real binary, its own process) while the writers run; the
 * cluster destroyed (SIGKILL, data dirs removed); `paxkv snapshot restore --dir` into a new cluster; every
 * write acknowledged before the save started is read back with its value (and nothing that was never
 * written appears). Damaged files are refused with a clear error and start nothing; a restore into a
 * cluster that holds data changes nothing. Every process started here is SIGKILLed at the end.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@paxkv/client';
import { resolveServerCommand } from '@paxkv/server/launcher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, readClusterFile, startCluster } from '../src/cluster.js';
import { statusOf } from '../src/connect.js';
import { type CliRun, runCliProcess } from './cli-process.js';

const PARTITIONS = 4;
const WRITERS = 4;

let root: string;
const clusterDirs: string[] = [];

function killAll(): void {
  for (const d of clusterDirs) {
    for (const n of readClusterFile(d)?.nodes ?? [])
      if (isAlive(n.pid)) process.kill(n.pid as number, 'SIGKILL');
  }
}
process.on('exit', killAll);

/** Runs the real `paxkv` (from source) in its own process. */
function cli(args: string[]): Promise<CliRun> {
  return runCliProcess(args, { cwd: root });
}

function serversOf(dir: string): string[] {
  return (readClusterFile(dir)?.nodes ?? []).map((n) => n.address);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'paxkv-snapshot-e2e-'));
});

afterAll(() => {
  killAll();
  rmSync(root, { recursive: true, force: true });
});

describe('paxkv snapshot save / restore', () => {
  it('restores into a new cluster every write acknowledged before a save taken under write load', async () => {
    const source = join(root, 'source');
    clusterDirs.push(source);
    await startCluster({
      dir: source,
      nodes: 3,
      partitions: PARTITIONS,
      serverCommand: resolveServerCommand({ preferSource: true }),
      statusOf: (a) => statusOf(a, 2000),
      readyTimeoutMs: 60_000,
    });
    const servers = serversOf(source);
    const client = createClient({ servers, requestTimeoutMs: 15_000 });
    // Each write puts a key of its own with a value derived from it: a read-back is exact.
    const valueFor = (key: string) =>
      key.endsWith('7') ? new Uint8Array(Buffer.from(`bin:${key}`)) : `v:${key}`;
    const acked = new Set<string>();
    const attempted = new Set<string>();
    let stop = false;
    let firstAcks: () => void = () => {};
    const enoughAcks = new Promise<void>((r) => (firstAcks = r));
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const key = `load:${w}:${i}`;
        attempted.add(key);
        try {
          await client.put(key, valueFor(key));
          acked.add(key);
          if (acked.size >= 40) firstAcks();
        } catch {
          // an unknown outcome: the key may or may not be in the backup
        }
      }
    });
    try {
      // Keys on a lease and overwritten keys come back too (leases with their TTL, versions kept).
      const lease = await client.grant(3_600_000, { key: 'leased' });
      await client.put('leased', 'on a lease', { lease: lease.lease });
      await client.put('twice', 'first');
      await client.put('twice', 'second');
      await enoughAcks;
      const ackedBeforeSave = new Set(acked);
      const file = join(root, 'backup.paxkv');
      const saved = await cli(['--servers', servers.join(','), 'snapshot', 'save', file]);
      expect(saved.stderr).toContain(`snapshot save: partition ${PARTITIONS}/${PARTITIONS}:`);
      expect(saved.stdout).toMatch(
        new RegExp(`^saved ${PARTITIONS} partitions, \\d+ keys, 1 leases .* sha256 [0-9a-f]{64}\\n$`),
      );
      expect(saved.code).toBe(0);
      stop = true;
      await Promise.all(writers);
      expect(ackedBeforeSave.size).toBeGreaterThanOrEqual(40);
      const twice = await client.getEntry('twice');
      await client.close();

      // Destroy the source cluster: every process SIGKILLed, its data removed.
      for (const n of readClusterFile(source)?.nodes ?? [])
        if (isAlive(n.pid)) process.kill(n.pid as number, 'SIGKILL');
      rmSync(source, { recursive: true, force: true });

      const status = await cli(['snapshot', 'status', file]);
      expect(status.code).toBe(0);
      expect(status.stdout).toContain(`${PARTITIONS} partitions`);
      expect(status.stdout).toContain('(verified)');

      const target = join(root, 'restored');
      clusterDirs.push(target);
      const restored = await cli(['snapshot', 'restore', file, '--dir', target, '--keep-running']);
      expect(restored.stderr).toContain(`snapshot restore: partition ${PARTITIONS}/${PARTITIONS}: restored`);
      expect(restored.stdout).toMatch(/^restored 4 partitions, \d+ keys, 1 leases/);
      expect(restored.code).toBe(0);

      const back = createClient({ servers: serversOf(target), requestTimeoutMs: 15_000 });
      try {
        const same = (v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v);
        for (const key of ackedBeforeSave)
          expect(same(await back.get(key)), key).toEqual(same(valueFor(key)));
        // Nothing that was never written: every key of the new cluster is one some writer attempted.
        const all = await back.prefix('load:', { keysOnly: true, limit: 100_000 });
        for (const kv of all.kvs) expect(attempted.has(kv.key), kv.key).toBe(true);
        expect(await back.get('leased')).toBe('on a lease');
        expect((await back.leases()).map((l) => l.lease)).toEqual([lease.lease]);
        expect(await back.getEntry('twice')).toMatchObject({
          value: 'second',
          version: twice.version,
          modRevision: twice.modRevision,
        });
        // The restored cluster takes writes like any other.
        expect(await back.put('after', 'restore')).toMatchObject({ created: true });

        // A restore into a cluster that holds data is refused and changes nothing.
        const again = await cli(['--servers', serversOf(target).join(','), 'snapshot', 'restore', file]);
        expect(again.code).toBe(2);
        expect(again.stderr).toMatch(/partition \d+ of the cluster is not empty .*nothing was changed/);
        expect(await back.get('after')).toBe('restore');

        // A partition over the 8 MiB one snapshot message carries: save names it, the limit and what to
        // do, and writes no file. Nine values of 1,000,000 bytes under one hash tag: one partition.
        const big = new Uint8Array(1_000_000).fill(0x61);
        for (let i = 0; i < 9; i++) await back.put(`{big}:${i}`, big);
        const bigFile = join(root, 'too-large.paxkv');
        const tooLarge = await cli(['--servers', serversOf(target).join(','), 'snapshot', 'save', bigFile]);
        expect(tooLarge.code).toBe(2);
        expect(tooLarge.stderr).toMatch(
          new RegExp(
            `partition \\d+ holds 8\\.\\d MiB \\(\\d+ keys\\), over the 8\\.0 MiB .*nothing was written to ${bigFile}.*needs at least ${PARTITIONS * 2} partitions \\(now ${PARTITIONS}\\)`,
          ),
        );
        expect(existsSync(bigFile)).toBe(false);
      } finally {
        await back.close();
      }

      // Damaged files: refused with what is wrong, before any cluster is started.
      const good = readFileSync(file);
      const flipped = Buffer.from(good);
      const mid = Math.floor(flipped.length / 2);
      flipped[mid] = (flipped[mid] as number) ^ 0x01;
      const cases: Array<[string, Buffer, RegExp]> = [
        ['flipped', flipped, /is not a usable paxkv snapshot: checksum mismatch/],
        [
          'truncated',
          good.subarray(0, good.length - 100),
          /is not a usable paxkv snapshot: checksum mismatch/,
        ],
        ['other', Buffer.from('{"not":"a snapshot"}'), /is not a paxkv snapshot/],
      ];
      for (const [name, bytes, message] of cases) {
        const bad = join(root, `${name}.paxkv`);
        writeFileSync(bad, bytes);
        const dir = join(root, `never-${name}`);
        const r = await cli(['snapshot', 'restore', bad, '--dir', dir]);
        expect(r.code, name).toBe(2);
        expect(r.stderr, name).toMatch(message);
        expect(existsSync(join(dir, 'cluster.json')), name).toBe(false);
      }
    } finally {
      stop = true;
      await Promise.allSettled(writers);
      await client.close();
    }
  }, 300_000);
});
