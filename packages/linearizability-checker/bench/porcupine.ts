/**
 * Times the checker on every history of Porcupine's test data (`<repo root>/../shared/histories/porcupine`)
 * and prints each next to Porcupine's own time on this machine (BASELINE.md, method B: median of
 * repeated checks of a parsed history), with the ratio ours / Porcupine (below 1 = faster).
 *
 * Usage: pnpm --filter @paxkv/linearizability-checker bench [-- --budget-ms 2000 --unpartitioned]
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CheckOptions, check, checkSync, closeWorkerPool } from '../src/check.js';
import { readHistory } from '../src/formats.js';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
/** Time spent re-checking one history (Porcupine's method B used 2 s). */
const BUDGET_MS = flag('--budget-ms', 1000);
/** Fewest and most timed checks per history. */
const MIN_RUNS = 5;
const MAX_RUNS = 200;
const UNPARTITIONED = args.includes('--unpartitioned');
/** With `--workers N`, partitioned histories are checked with `check` on N worker threads. */
const WORKERS = flag('--workers', 0);

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('run inside the repository');
    dir = up;
  }
  return dir;
}

const folder = join(repoRoot(), '..', 'shared', 'histories', 'porcupine');
if (!existsSync(folder)) {
  console.error(`no Porcupine histories at ${folder}: nothing to measure`);
  process.exit(0);
}
const expected: { file: string; linearizable: boolean | null }[] = JSON.parse(
  readFileSync(join(folder, 'expected.json'), 'utf8'),
).histories;

// BASELINE.md rows: | `file` | model | ops | verdict | A | B median | ...
const baseline = new Map<string, number>();
for (const line of readFileSync(join(folder, 'BASELINE.md'), 'utf8').split('\n')) {
  const m = /^\| `([^`]+)` \| ([\w-]+) \| [\d,]+ \| [^|]+\| [\d.]+ \| ([\d.]+) \|/.exec(line);
  if (!m) continue;
  const [, file, model, median] = m;
  const key = model === 'kv-nopartition' ? `${file}:unpartitioned` : (file as string);
  baseline.set(key, Number(median));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

interface Row {
  file: string;
  ops: number;
  verdict: string;
  parseMs: number;
  ms: number;
  /** Process CPU time (all threads, so GC helpers count too): steadier than wall time on a busy machine. */
  cpuMs: number;
  porcupine: number | undefined;
}

const rows: Row[] = [];
const loadStart = (await import('node:os'))
  .loadavg()
  .map((x) => x.toFixed(1))
  .join(' ');
const jobs: { file: string; model?: string; label: string }[] = expected.map((e) => ({
  file: e.file,
  label: e.file,
}));
if (UNPARTITIONED) {
  for (const f of ['kv/c01-ok.txt', 'kv/c01-bad.txt', 'kv/c10-ok.txt', 'kv/c10-bad.txt']) {
    jobs.push({ file: f, model: 'porcupine-kv:unpartitioned', label: `${f}:unpartitioned` });
  }
}
let mismatches = 0;
for (const job of jobs) {
  const text = readFileSync(join(folder, job.file), 'utf8');
  const p0 = performance.now();
  const history = readHistory(text);
  const parseMs = performance.now() - p0;
  const opts = job.model === undefined ? { timeoutMs: 120_000 } : { timeoutMs: 120_000, model: job.model };
  const run = async (): Promise<ReturnType<typeof checkSync>> =>
    WORKERS > 0
      ? check(history, { ...opts, workers: WORKERS, parallelMinOperations: 0 } as CheckOptions)
      : checkSync(history, opts);
  const first = await run();
  const exp = expected.find((e) => e.file === job.file)?.linearizable;
  if (exp !== null && exp !== undefined && first.verdict !== (exp ? 'linearizable' : 'not-linearizable'))
    mismatches++;
  const times: number[] = [];
  const cpu: number[] = [];
  const start = performance.now();
  while (times.length < MAX_RUNS && (times.length < MIN_RUNS || performance.now() - start < BUDGET_MS)) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  rows.push({
    cpuMs: median(cpu),
    file: job.label,
    ops: history.operations.length,
    verdict: first.verdict,
    parseMs,
    ms: median(times),
    porcupine: baseline.get(job.label),
  });
}

const fmt = (x: number | undefined): string => (x === undefined ? '—' : x < 10 ? x.toFixed(3) : x.toFixed(1));
const os = await import('node:os');
console.log(`load average at start: ${loadStart}`);
console.log(
  '| history | ops | verdict | parse ms | ours wall ms (median) | ours CPU ms (median) | Porcupine ms (B median) | ours wall / Porcupine |',
);
console.log('|---|---:|---|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const ratio = r.porcupine ? (r.ms / r.porcupine).toFixed(2) : '—';
  console.log(
    `| ${r.file} | ${r.ops} | ${r.verdict} | ${fmt(r.parseMs)} | ${fmt(r.ms)} | ${fmt(r.cpuMs)} | ${fmt(r.porcupine)} | ${ratio} |`,
  );
}
const main = rows.filter((r) => !r.file.endsWith(':unpartitioned'));
const sum = (xs: Row[], f: (r: Row) => number | undefined): number => xs.reduce((s, r) => s + (f(r) ?? 0), 0);
const etcd = main.filter((r) => r.file.startsWith('jepsen/'));
const kv = main.filter((r) => r.file.startsWith('kv/'));
console.log('');
for (const [name, set] of [
  ['etcd (102 files)', etcd],
  ['kv partitioned (6 files)', kv],
  ['total', main],
] as const) {
  const ours = sum(set, (r) => r.ms);
  const oursCpu = sum(set, (r) => r.cpuMs);
  const theirs = sum(set, (r) => r.porcupine);
  console.log(
    `${name}: ours ${ours.toFixed(1)} ms wall (${oursCpu.toFixed(1)} ms CPU), Porcupine ${theirs.toFixed(1)} ms, ratio ${(ours / theirs).toFixed(2)} wall, ${(oursCpu / theirs).toFixed(2)} CPU`,
  );
}
for (const r of [...main].sort((a, b) => (b.porcupine ?? 0) - (a.porcupine ?? 0)).slice(0, 2)) {
  console.log(
    `Porcupine's slowest, ${r.file}: ours ${r.ms.toFixed(1)} ms wall (${r.cpuMs.toFixed(1)} ms CPU) vs ${fmt(r.porcupine)} ms, ratio ${(r.ms / (r.porcupine ?? 1)).toFixed(2)}`,
  );
}
const oursSlowest = [...main].sort((a, b) => b.ms - a.ms)[0];
if (oursSlowest) console.log(`our slowest: ${oursSlowest.file} ${oursSlowest.ms.toFixed(1)} ms`);
console.log(
  `parse total: ${sum(main, (r) => r.parseMs).toFixed(1)} ms (not included above; Porcupine's parse is excluded too)`,
);
console.log(
  `load average at end: ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')} on ${os.availableParallelism()} CPUs`,
);
await closeWorkerPool();
if (mismatches > 0) {
  console.error(`${mismatches} verdicts differ from expected.json`);
  process.exitCode = 1;
}
