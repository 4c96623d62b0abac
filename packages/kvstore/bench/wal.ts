/**
 * Durable log throughput: records/s and fsyncs/s with `fsync: always` versus `batch` (group commit) under
 * 64 concurrent writers on the real file system (NodeDisk, a temp directory).
 *
 * Run: `pnpm --filter @paxkv/kvstore bench` (or `tsx --conditions=@paxkv/source bench/wal.ts`).
 * Env: WAL_BENCH_SECONDS (default 3), WAL_BENCH_WRITERS (default 64), WAL_BENCH_RECORD_BYTES (default 128),
 * WAL_BENCH_DIR (default the OS temp dir).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FsyncMode, NodeDisk, WriteAheadLog } from '../src/index.js';

const seconds = Number(process.env.WAL_BENCH_SECONDS ?? 3);
const writers = Number(process.env.WAL_BENCH_WRITERS ?? 64);
const recordBytes = Number(process.env.WAL_BENCH_RECORD_BYTES ?? 128);
const base = process.env.WAL_BENCH_DIR ?? tmpdir();

interface Result {
  mode: FsyncMode;
  records: number;
  fsyncs: number;
  elapsed: number;
  p50: number;
  p99: number;
}

async function run(mode: FsyncMode): Promise<Result> {
  const dir = mkdtempSync(join(base, `paxkv-wal-bench-${mode}-`));
  try {
    const { wal } = await WriteAheadLog.open({ disk: new NodeDisk(), dir, fsync: mode });
    const payload = new Uint8Array(recordBytes).fill(7);
    const latencies: number[] = [];
    const start = performance.now();
    const end = start + seconds * 1000;
    let records = 0;
    const writer = async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        wal.append(0, payload);
        await wal.flush();
        latencies.push(performance.now() - t0);
        records++;
      }
    };
    await Promise.all(Array.from({ length: writers }, writer));
    const elapsed = (performance.now() - start) / 1000;
    const fsyncs = wal.stats.fsyncs;
    await wal.close();
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
    return { mode, records, fsyncs, elapsed, p50: pct(0.5), p99: pct(0.99) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  `WAL bench: ${writers} concurrent writers, ${recordBytes} B records, ${seconds} s per mode, dir ${base}`,
);
const results: Result[] = [];
for (const mode of ['always', 'batch', 'never'] as const) {
  const r = await run(mode);
  results.push(r);
  console.log(
    `fsync=${mode.padEnd(6)} ${fmt(r.records / r.elapsed).padStart(9)} records/s  ${fmt(r.fsyncs / r.elapsed).padStart(7)} fsyncs/s  ` +
      `${(r.records / Math.max(1, r.fsyncs)).toFixed(1).padStart(6)} records/fsync  latency p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms`,
  );
}
const always = results.find((r) => r.mode === 'always')!;
const batch = results.find((r) => r.mode === 'batch')!;
const ratio = batch.records / batch.elapsed / (always.records / always.elapsed);
console.log(
  `batch / always throughput: ${ratio.toFixed(1)}x ${ratio >= 10 ? '(>= 10x: ok)' : '(below the expected 10x)'}`,
);
