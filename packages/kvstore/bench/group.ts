/**
 * Replicated write throughput of one partition: 3 ReplicaGroups in one process on the real file system
 * (NodeDisk, temp dirs, fsync batch by default), messages passed in memory through msgpack, 64 concurrent
 * clients doing session puts against the leader. Reports writes/s, latency percentiles and fsyncs/s.
 *
 * Run: `tsx --conditions=@paxkv/source bench/group.ts`.
 * Env: GROUP_BENCH_SECONDS (default 3), GROUP_BENCH_CLIENTS (default 64), GROUP_BENCH_FSYNC (default batch),
 * GROUP_BENCH_VALUE_BYTES (default 100).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReconfigMessage } from '@paxkv/paxos';
import { decode, encode } from '../src/codec.js';
import { type FsyncMode, type KvCommand, NodeDisk, ReplicaGroup, WriteAheadLog } from '../src/index.js';

const seconds = Number(process.env.GROUP_BENCH_SECONDS ?? 3);
const clients = Number(process.env.GROUP_BENCH_CLIENTS ?? 64);
const fsync = (process.env.GROUP_BENCH_FSYNC ?? 'batch') as FsyncMode;
const valueBytes = Number(process.env.GROUP_BENCH_VALUE_BYTES ?? 100);

const root = mkdtempSync(join(tmpdir(), 'paxkv-group-bench-'));
const ids = [1, 2, 3];
const groups = new Map<number, ReplicaGroup>();
const wals: WriteAheadLog[] = [];
const disk = new NodeDisk();
let bytesOnWire = 0;
for (const pid of ids) {
  const { wal } = await WriteAheadLog.open({ disk, dir: join(root, `n${pid}`, 'wal'), fsync });
  wals.push(wal);
  const g = await ReplicaGroup.open({
    partition: 0,
    pid,
    peers: ids.filter((p) => p !== pid),
    wal,
    disk,
    dir: join(root, `n${pid}`, 'p0'),
    nonce: 'bench',
    config: { snapshotEveryEntries: 50_000 },
    send: (to, message) => {
      const bytes = encode(message);
      bytesOnWire += bytes.length;
      setImmediate(() =>
        groups.get(to)?.handle(pid, decode(bytes, 'bench message') as ReconfigMessage<KvCommand>),
      );
    },
  });
  groups.set(pid, g);
}
const ticker = setInterval(() => {
  for (const g of groups.values()) g.tick();
}, 5);
const leader = async (): Promise<ReplicaGroup> => {
  for (;;) {
    const l = [...groups.values()].find((g) => g.role === 'leader' && g.phase === 'accept');
    if (l) return l;
    await new Promise((r) => setTimeout(r, 5));
  }
};
await leader();
const value = 'v'.repeat(valueBytes);
const latencies: number[] = [];
let done = 0;
let errors = 0;
const start = performance.now();
const end = start + seconds * 1000;
await Promise.all(
  Array.from({ length: clients }, async (_, c) => {
    let seq = 0;
    while (performance.now() < end) {
      const l = await leader();
      const t0 = performance.now();
      try {
        await l.submit(
          { op: 'put', key: `key-${c}-${seq % 16}`, value },
          { session: { client: `c${c}`, seq: ++seq } },
        );
        latencies.push(performance.now() - t0);
        done++;
      } catch {
        errors++;
      }
    }
  }),
);
const elapsed = (performance.now() - start) / 1000;
clearInterval(ticker);
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
const l = await leader();
console.log(
  `group bench: 3 replicas, fsync=${fsync}, ${clients} clients, ${valueBytes} B values, ${seconds} s: ` +
    `${Math.round(done / elapsed).toLocaleString('en-US')} writes/s, p50 ${pct(0.5).toFixed(2)} ms, p99 ${pct(0.99).toFixed(2)} ms, ` +
    `errors ${errors}, decided ${l.decidedIndex}, ${(bytesOnWire / 1e6 / elapsed).toFixed(1)} MB/s on the wire`,
);
for (const g of groups.values()) await g.close();
for (const w of wals) await w.close();
rmSync(root, { recursive: true, force: true });
