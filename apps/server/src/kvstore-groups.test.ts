/**
 * The kvstore group factory opens a restarted server's groups one at a time, in the order asked: a
 * group with much state to replay is serving before the groups asked after it are opened, instead of
 * all of them finishing together.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { GroupSpec, ReplicaGroupPort } from './group-port.js';
import { kvstoreGroupFactory } from './kvstore-groups.js';
import { silentLogger } from './logger.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function factory(logger = silentLogger) {
  return kvstoreGroupFactory({
    tickMs: 20,
    requestTimeoutMs: 5000,
    snapshotEveryEntries: 1_000_000,
    logger,
    onFatal: (p, e) => {
      throw new Error(`partition ${p} failed: ${e.message}`);
    },
  });
}

function spec(dataDir: string, partition: number): GroupSpec {
  return {
    partition,
    pid: 1,
    peers: [],
    preferredLeader: true,
    dataDir: join(dataDir, `partition-${partition}`),
    fsync: 'never',
    send: () => {},
    addressOf: () => undefined,
    onFlush: () => {},
  };
}

async function leader(g: ReplicaGroupPort): Promise<void> {
  for (let i = 0; i < 10_000 && g.role !== 'leader'; i++) {
    g.tick();
    await new Promise((r) => setImmediate(r));
  }
  expect(g.role).toBe('leader');
}

describe('kvstoreGroupFactory', () => {
  it("opens a server's groups one at a time, in the order asked", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paxkv-groups-'));
    dirs.push(dataDir);
    // Partition 0 holds a log to replay (no snapshot: every entry is decoded and applied on open).
    const first = factory();
    const g0 = await first(spec(dataDir, 0));
    await leader(g0);
    for (let i = 0; i < 4000; i += 200) {
      await Promise.all(
        Array.from({ length: 200 }, (_, j) =>
          g0.submit({ op: 'put', key: `k${i + j}`, value: 'v'.repeat(100) }, { consistency: 'linearizable' }),
        ),
      );
    }
    await g0.close();
    // A restart asks for partition 0, then three empty ones, all at once.
    const lines: Array<{ fields: Record<string, unknown>; msg: string }> = [];
    const again = factory({
      ...silentLogger,
      info: (fields, msg) => lines.push({ fields: fields as Record<string, unknown>, msg }),
    });
    const order: number[] = [];
    const groups = await Promise.all(
      [0, 1, 2, 3].map((p) =>
        again(spec(dataDir, p)).then((g) => {
          order.push(p);
          return g;
        }),
      ),
    );
    expect(order).toEqual([0, 1, 2, 3]);
    expect(groups[0]!.logLength).toBeGreaterThanOrEqual(4000);
    // The restart timeline: one line per opened group, in open order, saying what it read.
    const opened = lines.filter((l) => /^partition \d+ opened in \d+ ms/.test(l.msg));
    expect(opened.map((l) => l.fields.partition)).toEqual([0, 1, 2, 3]);
    expect(opened[0]!.fields.recoveredRecords).toBeGreaterThan(0);
    expect(opened[0]!.fields.decodedRecords).toBeGreaterThan(0);
    expect(opened[1]!.fields.recoveredRecords).toBe(0);
    for (const l of opened) {
      for (const k of ['ms', 'cpuMs', 'walMs', 'storageMs', 'replayMs', 'uptimeMs', 'snapshotBytes'])
        expect(typeof l.fields[k], `${k} of ${l.msg}`).toBe('number');
    }
    const wal = lines.find((l) => l.msg.startsWith('write-ahead log recovered'));
    expect(wal?.fields.bytes).toBeGreaterThan(0);
    for (const g of groups) await g.close();
  });
});
