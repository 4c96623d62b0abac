/**
 * Real processes: a partition whose state is far larger than one peer frame (about 42 MB under one hash
 * tag; frames are limited to 16 MiB) still reaches a replica that needs it whole.
 *
 * 1. A replica left behind a compacted log (stopped while the others took snapshots) catches up by a
 *    chunked `AcceptSync` and serves every key from its own state.
 * 2. The same replica, whose snapshot of that partition is then corrupted on disk, is removed and
 *    rejoins as a new replica (the rejoin path of issue 13): it starts from a chunked `JoinState` and
 *    again serves every key.
 *
 * Before chunked transfer the message was dropped at the frame limit (logged, counted in
 * `paxkv_paxos_messages_unsendable_total`) and the replica never caught up.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { partitionOf } from '@paxkv/common';
import { afterEach, describe, expect, it } from 'vitest';
import { groupRows, snapshotFiles } from './group-status.js';
import { RawClient, TestCluster, type TestServer, until } from './harness.js';

const PARTITIONS = 2;
const TAG = '{big}';
const BIG = partitionOf(`${TAG}:0`, PARTITIONS);
/** 42 values of 1,000,000 bytes: the partition's state is ~42 MB, well over the 16 MiB frame limit. */
const VALUES = 42;
const VALUE_BYTES = 1_000_000;

function bigValue(i: number): string {
  return `${i}:`.padEnd(VALUE_BYTES, String.fromCharCode(97 + (i % 26)));
}

let cluster: TestCluster | undefined;

afterEach(async () => {
  await cluster?.destroy();
  cluster = undefined;
});

/** The last lines of a server's log that say something (not the per-connection and majority chatter). */
function notable(c: TestCluster, s: TestServer): string {
  return c
    .log(s, 3000)
    .split('\n')
    .filter((l) => !/connected from|cannot reach a majority/.test(l))
    .slice(-40)
    .map((l) => l.slice(0, 400))
    .join('\n');
}

/** Waits until `victim`'s replica of the big partition has decided as far as `reference`'s. */
async function caughtUp(c: TestCluster, victim: TestServer, reference: TestServer, what: string) {
  return until(
    what,
    async () => {
      const mine = (await groupRows(victim.address))?.find((g) => g.partition === BIG);
      const ref = (await groupRows(reference.address))?.find((g) => g.partition === BIG);
      return mine && ref && mine.configId === ref.configId && mine.decidedIndex >= ref.decidedIndex
        ? mine
        : null;
    },
    240_000,
  ).catch((e: Error) => {
    throw new Error(
      `${e.message}\n--- victim\n${notable(c, victim)}\n--- reference\n${notable(c, reference)}`,
    );
  });
}

/** Reads every key from `server`'s own state (stale reads: no leader involved) and compares it. */
async function readsEveryKey(server: TestServer, acked: ReadonlyMap<string, string>): Promise<void> {
  const reader = await RawClient.connect(server.address);
  try {
    // Decided is not yet applied: the snapshot is installed once its file is durable.
    const [lastKey, lastValue] = [...acked].at(-1) as [string, string];
    await until(
      `${server.address} applied ${lastKey}`,
      async () => {
        const r = (await reader.call(
          { type: 'kv', op: { op: 'get', key: lastKey }, consistency: 'stale' },
          30_000,
        )) as {
          result?: { value?: unknown };
        } | null;
        return r?.result?.value === lastValue ? true : null;
      },
      120_000,
    );
    for (const [key, value] of acked) {
      const r = (await reader.callRetrying(
        { type: 'kv', op: { op: 'get', key }, consistency: 'stale' },
        30_000,
      )) as {
        type?: string;
        result?: { value?: unknown };
      } | null;
      expect(r?.type, key).toBe('kv.ok');
      const got = r?.result?.value;
      const show = (v: unknown) =>
        typeof v === 'string' ? `string of ${v.length}: ${v.slice(0, 12)}...${v.slice(-4)}` : String(v);
      expect(got === value, `${key}: got ${show(got)}, want ${show(value)}`).toBe(true);
    }
  } finally {
    reader.close();
  }
}

describe('a partition larger than one peer frame', () => {
  it('reaches a replica behind a compacted log, and a replica that rejoins, in chunks', async () => {
    const c = await TestCluster.create({ nodes: 3, partitions: PARTITIONS, replication: 3 });
    cluster = c;
    const configFile = join(c.dir, 'server-config.json');
    writeFileSync(configFile, JSON.stringify({ snapshotEveryEntries: 20 }));
    const flags = ['--config', configFile, '--replace-after', '0'];
    for (const s of c.servers) c.start(s, flags);
    await c.waitReady(60_000);
    const node = (i: number) => c.servers[i - 1] as TestServer;
    const acked = new Map<string, string>();
    const writer = await RawClient.connect(node(1).address);
    let seq = 0;
    const write = async (key: string, value: string) => {
      seq++;
      const reply = await writer.callRetrying(
        { type: 'kv', op: { op: 'put', key, value }, session: { client: 'big', seq } },
        60_000,
      );
      expect(reply?.type, `put ${key}: ${JSON.stringify(reply)?.slice(0, 300)}`).toBe('kv.ok');
      acked.set(key, value);
    };
    try {
      for (let i = 0; i < 3; i++) await write(`${TAG}:warm${i}`, `w${i}`);
      const victim = node(3);
      await c.kill(victim, 'SIGTERM');
      // ~42 MB into one partition while node 3 is away: the others snapshot every 20 entries.
      for (let i = 0; i < VALUES; i++) await write(`${TAG}:${i}`, bigValue(i));

      // 1. Behind a compacted log: catches up by a chunked AcceptSync.
      c.start(victim, flags);
      await caughtUp(c, victim, node(1), 'node 3 caught up after its restart');
      await readsEveryKey(victim, acked);
      const received = c.log(victim, 2000).match(/[^\n]*"msg":"snapshot transfer received"[^\n]*/g) ?? [];
      expect(received.join('\n'), 'a chunked transfer of the big partition').toMatch(/"bytes":[0-9]{8,}/);
      for (const s of [node(1), node(2)]) {
        const metrics = await fetch(`http://127.0.0.1:${s.httpPort}/metrics`).then((r) => r.text());
        expect(metrics, 'no paxos message dropped at the frame limit').not.toMatch(
          /paxkv_paxos_messages_unsendable_total\{[^}]*\} [1-9]/,
        );
      }

      // 2. Its snapshot of the partition corrupted: removed, rejoins as a new replica from a chunked JoinState.
      const before = (await groupRows(victim.address))?.find((g) => g.partition === BIG);
      await c.kill(victim, 'SIGTERM');
      const snaps = snapshotFiles(join(victim.dataDir, `partition-${BIG}`));
      expect(snaps.length, 'a snapshot of the partition exists on node 3').toBeGreaterThan(0);
      for (const f of snaps) {
        const bytes = readFileSync(f);
        for (let i = Math.floor(bytes.length / 2); i < Math.floor(bytes.length / 2) + 4096; i++)
          bytes[i] = (bytes[i] as number) ^ 0xa5;
        writeFileSync(f, bytes);
      }
      c.start(victim, flags);
      await write(`${TAG}:after`, 'after the corruption');
      await until(
        "node 3's replica running a later configuration",
        async () => {
          const r = (await groupRows(victim.address))?.find((g) => g.partition === BIG);
          return r?.configId !== undefined && r.configId > (before?.configId ?? 0) ? r : null;
        },
        240_000,
      ).catch((e: Error) => {
        throw new Error(
          `${e.message}\n--- node 3\n${notable(c, victim)}\n--- node 1\n${notable(c, node(1))}`,
        );
      });
      expect(c.log(victim, 4000)).toMatch(/stored state cannot be read/);
      await caughtUp(c, victim, node(1), 'node 3 caught up after rejoining');
      await readsEveryKey(victim, acked);
      const joins = c.log(victim, 4000).match(/[^\n]*"msg":"snapshot transfer received"[^\n]*/g) ?? [];
      expect(joins.join('\n'), 'a chunked JoinState').toMatch(
        /"type":"JoinState"[^\n]*"bytes":[0-9]{8,}|"bytes":[0-9]{8,}[^\n]*"type":"JoinState"/,
      );
    } finally {
      writer.close();
    }
  }, 600_000);
});
