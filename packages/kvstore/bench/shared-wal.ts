/**
 * Many replica groups per server: ONE write-ahead log per server (shared by all its groups) versus one
 * log per group, in the same run. 3 simulated servers in one process, each hosting every one of G groups
 * (default 16, as a paxkv server does), on the real file system (NodeDisk, temp dirs), messages passed
 * in memory through msgpack; C concurrent clients (default 256) doing session puts spread over the
 * groups. The two layouts alternate (shared, per-group, shared, per-group) so both see the same machine
 * load. Reports writes/s, latency percentiles, write calls and syncs per second (all 3 servers), and CPU
 * time per write. First the log alone (no paxos: G groups appending and flushing), then whole groups.
 *
 * Run: `pnpm --filter @paxkv/kvstore bench:shared-wal` (or `tsx --conditions=@paxkv/source bench/shared-wal.ts`).
 * Env: SHARED_WAL_BENCH_SECONDS (default 4), SHARED_WAL_BENCH_GROUPS (16), SHARED_WAL_BENCH_CLIENTS (256),
 * SHARED_WAL_BENCH_FSYNC (batch), SHARED_WAL_BENCH_VALUE_BYTES (100), SHARED_WAL_BENCH_ROUNDS (2),
 * SHARED_WAL_BENCH_WRITERS_PER_GROUP (4, log-only part), SHARED_WAL_BENCH_IN_FLIGHT (the log's default),
 * SHARED_WAL_BENCH_DIR (the OS temp dir).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReconfigMessage } from '@paxkv/paxos';
import { decode, encode } from '../src/codec.js';
import {
  DEFAULT_WAL_OPTIONS,
  type FsyncMode,
  type KvCommand,
  NodeDisk,
  ReplicaGroup,
  WriteAheadLog,
} from '../src/index.js';

const seconds = Number(process.env.SHARED_WAL_BENCH_SECONDS ?? 4);
const groupCount = Number(process.env.SHARED_WAL_BENCH_GROUPS ?? 16);
const clients = Number(process.env.SHARED_WAL_BENCH_CLIENTS ?? 256);
const fsync = (process.env.SHARED_WAL_BENCH_FSYNC ?? 'batch') as FsyncMode;
const valueBytes = Number(process.env.SHARED_WAL_BENCH_VALUE_BYTES ?? 100);
const rounds = Number(process.env.SHARED_WAL_BENCH_ROUNDS ?? 2);
const base = process.env.SHARED_WAL_BENCH_DIR ?? tmpdir();
const inFlight = Number(process.env.SHARED_WAL_BENCH_IN_FLIGHT ?? DEFAULT_WAL_OPTIONS.maxWritesInFlight);

type Layout = 'shared' | 'per-group';

interface Result {
  readonly layout: Layout;
  readonly writes: number;
  readonly elapsed: number;
  readonly p50: number;
  readonly p99: number;
  readonly walWrites: number;
  readonly fsyncs: number;
  readonly cpuMs: number;
  readonly errors: number;
}

async function run(layout: Layout): Promise<Result> {
  const root = mkdtempSync(join(base, `paxkv-shared-wal-bench-${layout}-`));
  const disk = new NodeDisk();
  const ids = [1, 2, 3];
  /** groups.get(pid)[partition] */
  const groups = new Map<number, ReplicaGroup[]>();
  const wals: WriteAheadLog[] = [];
  const openWal = async (dir: string) => {
    const { wal } = await WriteAheadLog.open({ disk, dir, fsync, maxWritesInFlight: inFlight });
    wals.push(wal);
    return wal;
  };
  for (const pid of ids) {
    const shared = layout === 'shared' ? await openWal(join(root, `n${pid}`, 'wal')) : undefined;
    const mine: ReplicaGroup[] = [];
    for (let partition = 0; partition < groupCount; partition++) {
      const dir = join(root, `n${pid}`, `partition-${partition}`);
      const g = await ReplicaGroup.open({
        partition,
        pid,
        peers: ids.filter((p) => p !== pid),
        wal: shared ?? (await openWal(join(dir, 'wal'))),
        disk,
        dir,
        nonce: 'bench',
        config: { snapshotEveryEntries: 50_000 },
        send: (to, message) => {
          const bytes = encode(message);
          setImmediate(() =>
            groups
              .get(to)
              ?.[partition]?.handle(pid, decode(bytes, 'bench message') as ReconfigMessage<KvCommand>),
          );
        },
      });
      mine.push(g);
    }
    groups.set(pid, mine);
  }
  const all = [...groups.values()].flat();
  const ticker = setInterval(() => {
    for (const g of all) g.tick();
  }, 5);
  const leaderOf = async (partition: number): Promise<ReplicaGroup> => {
    for (;;) {
      const l = ids
        .map((pid) => groups.get(pid)![partition]!)
        .find((g) => g.role === 'leader' && g.phase === 'accept');
      if (l) return l;
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  for (let p = 0; p < groupCount; p++) await leaderOf(p);
  const value = 'v'.repeat(valueBytes);
  const latencies: number[] = [];
  let writes = 0;
  let errors = 0;
  const walBefore = wals.map((w) => w.stats);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const partition = c % groupCount;
      let seq = 0;
      while (performance.now() < end) {
        const l = await leaderOf(partition);
        const t0 = performance.now();
        try {
          await l.submit(
            { op: 'put', key: `key-${c}-${seq % 16}`, value },
            { session: { client: `c${c}`, seq: ++seq } },
          );
          latencies.push(performance.now() - t0);
          writes++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(ticker);
  let walWrites = 0;
  let fsyncs = 0;
  wals.forEach((w, i) => {
    walWrites += w.stats.writes - walBefore[i]!.writes;
    fsyncs += w.stats.fsyncs - walBefore[i]!.fsyncs;
  });
  for (const g of all) await g.close();
  for (const w of wals) await w.close();
  rmSync(root, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  return {
    layout,
    writes,
    elapsed,
    p50: pct(0.5),
    p99: pct(0.99),
    walWrites,
    fsyncs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    errors,
  };
}

interface WalOnly {
  readonly layout: Layout;
  readonly records: number;
  readonly elapsed: number;
  readonly p50: number;
  readonly p99: number;
  readonly writes: number;
  readonly cpuMs: number;
}

/**
 * The log alone, without paxos: G groups on one server, each with `writersPerGroup` writers that append
 * a record and wait for its flush, in a loop (what a busy group's pumps do). Isolates the cost of
 * dispatching the writes.
 */
async function runWalOnly(layout: Layout, writersPerGroup: number): Promise<WalOnly> {
  const root = mkdtempSync(join(base, `paxkv-shared-wal-only-${layout}-`));
  const disk = new NodeDisk();
  const wals: WriteAheadLog[] = [];
  const open = async (dir: string) => {
    const { wal } = await WriteAheadLog.open({ disk, dir, fsync, maxWritesInFlight: inFlight });
    wals.push(wal);
    return wal;
  };
  const shared = layout === 'shared' ? await open(join(root, 'wal')) : undefined;
  const logs: WriteAheadLog[] = [];
  for (let p = 0; p < groupCount; p++) logs.push(shared ?? (await open(join(root, `p${p}`))));
  const payload = new Uint8Array(valueBytes + 60).fill(7);
  const latencies: number[] = [];
  let records = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: groupCount * writersPerGroup }, async (_, w) => {
      const p = w % groupCount;
      const log = logs[p]!;
      while (performance.now() < end) {
        const t0 = performance.now();
        log.append(p, payload);
        await log.flush();
        latencies.push(performance.now() - t0);
        records++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const writes = wals.reduce((n, w) => n + w.stats.writes, 0);
  for (const w of wals) await w.close();
  rmSync(root, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0;
  return {
    layout,
    records,
    elapsed,
    p50: pct(0.5),
    p99: pct(0.99),
    writes,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
{
  const writersPerGroup = Number(process.env.SHARED_WAL_BENCH_WRITERS_PER_GROUP ?? 4);
  console.log(
    `WAL only: ${groupCount} groups x ${writersPerGroup} writers, ${valueBytes + 60} B records, fsync=${fsync}, ${inFlight} writes in flight per log, ${seconds} s per run, ${rounds} rounds alternating, dir ${base}`,
  );
  const rs: WalOnly[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const layout of ['shared', 'per-group'] as const) {
      const x = await runWalOnly(layout, writersPerGroup);
      rs.push(x);
      console.log(
        `${layout.padEnd(9)} ${fmt(x.records / x.elapsed).padStart(8)} records/s  p50 ${x.p50.toFixed(2)} ms  p99 ${x.p99.toFixed(2)} ms  ` +
          `${fmt(x.writes / x.elapsed).padStart(6)} writes/s  ${((x.cpuMs * 1000) / Math.max(1, x.records)).toFixed(1)} µs CPU/record`,
      );
    }
  }
  const sum = (layout: Layout) => {
    const xs = rs.filter((x) => x.layout === layout);
    const n = xs.reduce((a, x) => a + x.records, 0);
    return { rate: n / xs.reduce((a, x) => a + x.elapsed, 0), cpu: xs.reduce((a, x) => a + x.cpuMs, 0) / n };
  };
  const a = sum('shared');
  const b = sum('per-group');
  console.log(
    `WAL only, shared / per-group: throughput ${(a.rate / b.rate).toFixed(2)}x, CPU per record ${(a.cpu / b.cpu).toFixed(2)}x`,
  );
}
console.log(
  `shared-WAL bench: 3 servers x ${groupCount} groups, fsync=${fsync}, ${clients} clients, ${valueBytes} B values, ` +
    `${seconds} s per run, ${rounds} rounds alternating, dir ${base}`,
);
const results: Result[] = [];
for (let r = 0; r < rounds; r++) {
  for (const layout of ['shared', 'per-group'] as const) {
    const x = await run(layout);
    results.push(x);
    console.log(
      `${layout.padEnd(9)} ${fmt(x.writes / x.elapsed).padStart(7)} writes/s  p50 ${x.p50.toFixed(2)} ms  p99 ${x.p99.toFixed(2)} ms  ` +
        `${fmt(x.walWrites / x.elapsed).padStart(6)} WAL writes/s  ${fmt(x.fsyncs / x.elapsed).padStart(6)} syncs/s  ` +
        `${((x.cpuMs * 1000) / Math.max(1, x.writes)).toFixed(0)} µs CPU/write  errors ${x.errors}`,
    );
  }
}
const total = (layout: Layout) => {
  const rs = results.filter((x) => x.layout === layout);
  const writes = rs.reduce((n, x) => n + x.writes, 0);
  const elapsed = rs.reduce((n, x) => n + x.elapsed, 0);
  const cpu = rs.reduce((n, x) => n + x.cpuMs, 0);
  const walWrites = rs.reduce((n, x) => n + x.walWrites, 0);
  return { rate: writes / elapsed, cpuPerWrite: cpu / writes, walWritesPerWrite: walWrites / writes };
};
const s = total('shared');
const p = total('per-group');
console.log(
  `shared / per-group: throughput ${(s.rate / p.rate).toFixed(2)}x, CPU per write ${(s.cpuPerWrite / p.cpuPerWrite).toFixed(2)}x, ` +
    `WAL writes per client write ${s.walWritesPerWrite.toFixed(3)} vs ${p.walWritesPerWrite.toFixed(3)}`,
);
