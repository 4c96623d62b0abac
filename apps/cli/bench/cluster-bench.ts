/**
 * `pnpm --filter paxkv-cli bench`: starts a local 3-server cluster in a temp dir (the built servers when
 * `pnpm build` ran, else from source), runs `paxkv bench` workloads against it and prints ops/s and latency
 * percentiles, then stops the cluster. Options through env: BENCH_DURATION_S (default 10), BENCH_CLIENTS
 * (default 32), BENCH_WORKLOADS (default put,get,mixed,cas), BENCH_FSYNC (default batch).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerCommand } from '@paxkv/server/launcher';
import { type BenchReport, formatBenchReport, runBench, WORKLOADS, type Workload } from '../src/bench.js';
import { clusterServers, startCluster, stopCluster } from '../src/cluster.js';
import { openClient, statusOf } from '../src/connect.js';

const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
const clients = Number(process.env.BENCH_CLIENTS ?? 32);
const workloads = (process.env.BENCH_WORKLOADS ?? WORKLOADS.join(',')).split(',') as Workload[];
const fsync = (process.env.BENCH_FSYNC ?? 'batch') as 'always' | 'batch' | 'never';

const dir = mkdtempSync(join(tmpdir(), 'paxkv-bench-'));
const command = resolveServerCommand();
process.stderr.write(`starting 3 servers (${command.kind}, fsync ${fsync}) in ${dir}\n`);
const started = await startCluster({
  dir,
  nodes: 3,
  fsync,
  serverCommand: command,
  statusOf: (a) => statusOf(a, 1000),
});
const servers = clusterServers(started.file);
const reports: BenchReport[] = [];
try {
  for (const workload of workloads) {
    const pool = await Promise.all(
      Array.from({ length: clients }, () => openClient(servers, { timeoutMs: 10_000 })),
    );
    let next = 0;
    const report = await runBench(() => pool[next++] as (typeof pool)[number], {
      clients,
      workload,
      durationMs: durationS * 1000,
      progress: (line) => process.stderr.write(`  ${line}\n`),
    });
    reports.push(report);
    process.stdout.write(`${formatBenchReport(report)}\n\n`);
  }
} finally {
  await stopCluster(dir);
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(
  `${JSON.stringify({ fsync, servers: 3, partitions: started.file.partitions, reports })}\n`,
);
