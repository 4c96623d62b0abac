/**
 * Client benchmark: throughput and latency of `@paxkv/client` over real TCP against the fake
 * 3-server cluster of the tests, running in a child process. Measures the client library and the
 * transport (routing, pipelining, sessions, history), not consensus: the fake servers answer from
 * memory. Run: `pnpm --filter @paxkv/client bench` (env BENCH_SECONDS, default 3 per case).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient } from '../src/index.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const here = dirname(fileURLToPath(import.meta.url));
const child = spawn(
  process.execPath,
  ['--conditions=@paxkv/source', '--import', 'tsx', join(here, 'fake-cluster-server.ts')],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const first = await new Promise<string>((resolve) => {
  createInterface({ input: child.stdout! }).once('line', resolve);
});
const { servers } = JSON.parse(first) as { servers: string[] };
const dir = mkdtempSync(join(tmpdir(), 'paxkv-client-bench-'));

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function run(name: string, concurrency: number, workload: 'put' | 'get' | 'mixed', history: boolean) {
  const client = createClient({ servers, ...(history ? { history: join(dir, `${name}.jsonl`) } : {}) });
  await client.put('warm', 'x');
  const value = 'v'.repeat(100);
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const worker = async (w: number) => {
    while (performance.now() < end) {
      const key = `key-${w}-${n % 1000}`;
      const t0 = performance.now();
      const kind = workload === 'mixed' ? (n % 2 === 0 ? 'put' : 'get') : workload;
      if (kind === 'put') await client.put(key, value);
      else await client.get(key);
      latencies.push(performance.now() - t0);
      n++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const elapsed = (performance.now() - t0) / 1000;
  await client.close();
  latencies.sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(3);
  console.log(
    `${name.padEnd(28)} ${String(Math.round(n / elapsed)).padStart(8)} ops/s   p50 ${f(pct(latencies, 50))} ms  p90 ${f(
      pct(latencies, 90),
    )} ms  p99 ${f(pct(latencies, 99))} ms  max ${f(latencies.at(-1) ?? Number.NaN)} ms`,
  );
}

console.log(
  `@paxkv/client over loopback TCP against a fake in-memory 3-server cluster, ${seconds} s per case`,
);
for (const [workload, concurrency] of [
  ['get', 1],
  ['put', 1],
  ['get', 16],
  ['put', 16],
  ['mixed', 64],
  ['mixed', 256],
] as const) {
  await run(`${workload} x${concurrency}`, concurrency, workload, false);
}
await run('mixed x64 + history file', 64, 'mixed', true);
child.stdin!.end();
rmSync(dir, { recursive: true, force: true });
