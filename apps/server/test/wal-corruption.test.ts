/**
 * Real processes: a server whose write-ahead log was damaged while it was stopped (one byte flipped in a
 * record that had been durable before later writes) refuses to start: it exits 1, and its output names
 * the segment file and the offset and says how to restore the node. It never serves from a log that
 * forgot accepted entries and promises (recovery used to cut the log there and carry on).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WAL_HEADER_BYTES, WAL_MARKER_RECORD_BYTES } from '@paxkv/kvstore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, TestCluster, type TestServer } from './harness.js';

let cluster: TestCluster;
const node = (i: number) => cluster.servers[i - 1] as TestServer;

beforeAll(async () => {
  cluster = await TestCluster.create({ nodes: 3, partitions: 2 });
  cluster.startAll();
  await cluster.waitReady(60_000);
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
});

/** A put retried on the answers a busy or electing cluster gives (a guard of 30 s per put). */
async function put(client: RawClient, key: string, value: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const reply = (await client.call({ type: 'kv', op: { op: 'put', key, value } }, 10_000)) as {
      type?: string;
      code?: string;
    } | null;
    if (reply?.type === 'kv.ok') return;
    if (Date.now() > deadline) throw new Error(`put ${key}: ${JSON.stringify(reply)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a write-ahead log damaged in the middle', () => {
  it('makes the server exit 1 with the file, the offset and what to do, instead of cutting the log', async () => {
    const client = await RawClient.connect(node(1).address);
    try {
      for (let i = 0; i < 20; i++) await put(client, `k${i}`, `v${i}`);
    } finally {
      client.close();
    }
    const victim = node(3);
    expect(await cluster.kill(victim, 'SIGTERM')).toBe('code 0');
    const walDir = join(victim.dataDir, 'wal');
    const segments = readdirSync(walDir)
      .filter((n) => /^wal-\d{16}\.log$/.test(n))
      .sort();
    expect(segments.length).toBeGreaterThan(0);
    const file = join(walDir, segments[0]!);
    const bytes = readFileSync(file);
    // A byte inside the first record of the first write (after the segment header and the write's
    // sync marker): every write after it says the log was durable past it.
    const offset = WAL_HEADER_BYTES + WAL_MARKER_RECORD_BYTES;
    expect(bytes.length).toBeGreaterThan(offset + 1000);
    bytes[offset + 14]! ^= 0x20;
    writeFileSync(file, bytes);

    const child = cluster.start(victim);
    // The exit is the event; the guard only ends a run that did not fail fast (the old recovery cut the
    // log and served on).
    const code = await new Promise<number | string | null>((resolve) => {
      const guard = setTimeout(() => resolve('still running after 90 s'), 90_000);
      child.once('exit', (c) => {
        clearTimeout(guard);
        resolve(c);
      });
    });
    if (code === 'still running after 90 s') await cluster.kill(victim);
    victim.child = null;
    const log = cluster.log(victim, 60);
    expect(code, log).toBe(1);
    expect(log).toContain(`write-ahead log ${file} is corrupt at offset ${offset} (checksum mismatch`);
    expect(log).toMatch(/move its data dir away/);
    // The file is as the damage left it: nothing was cut.
    expect(readFileSync(file).equals(bytes)).toBe(true);
  }, 180_000);
});
