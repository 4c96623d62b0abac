import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOptions, WorkloadName } from './options.js';
import type { BenchReport, SystemRun } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The script that exports and builds a commit for the baseline. */
export const PREPARE_BASELINE_SCRIPT = join(here, '..', 'scripts', 'prepare-baseline.sh');

/**
 * The flags of this run that a baseline's own `bench:cluster` understands (those of milestone 1's
 * benchmark): the table's cells, the failover load, the memory figure and the paxkv durability.
 */
export function baselineArgs(
  options: BenchOptions,
  jsonFile: string,
  workloads: readonly WorkloadName[] = options.workloads,
  baselineHelp = '',
): string[] {
  const args = [
    '--systems',
    'paxkv',
    '--json',
    jsonFile,
    '--workloads',
    workloads.join(','),
    '--concurrency',
    options.concurrency.join(','),
    '--duration',
    `${options.durationMs}ms`,
    '--warmup',
    `${options.warmupMs}ms`,
    '--key-space',
    String(options.keySpace),
    '--value-bytes',
    String(options.valueBytes),
    '--preload',
    String(options.preloadKeys),
    '--failover-concurrency',
    String(options.failoverConcurrency),
    '--keys',
    String(options.memoryKeys),
    '--paxkv-fsync',
    options.paxkvFsync,
  ];
  if (!options.failover) args.push('--no-failover');
  if (!options.memory) args.push('--no-memory');
  // Its servers' CPU profiles go beside this run's, in `<dir>/baseline` (when its bench has the flag).
  if (options.cpuProfDir !== undefined && helpHasFlag(baselineHelp, '--cpu-prof'))
    args.push('--cpu-prof', join(options.cpuProfDir, 'baseline'));
  return args;
}

/** Whether a `bench:cluster --help` text lists `flag` (e.g. `--cpu-prof`) as an option. */
export function helpHasFlag(help: string, flag: string): boolean {
  return help.split('\n').some((line) => line.trimStart().split(/\s/, 1)[0] === flag);
}

/**
 * The workloads a `bench:cluster` lists in its `--help` (the line `--workloads LIST  put,get,... (default
 * all)`); `undefined` when the text has no such line.
 */
export function helpWorkloads(help: string): string[] | undefined {
  const m = /--workloads\s+LIST\s+([a-z]+(?:,[a-z]+)*)/.exec(help);
  return m?.[1]?.split(',');
}

/**
 * Splits this run's workloads into those the baseline knows (`run`, in this run's order) and those it
 * does not (`skipped`: milestone 1 knows put/get/mixed/cas, not txn/range). When the baseline's help
 * names no workloads, every workload is tried.
 */
export function splitWorkloads(
  workloads: readonly WorkloadName[],
  supported: readonly string[] | undefined,
): { run: WorkloadName[]; skipped: WorkloadName[] } {
  if (supported === undefined) return { run: [...workloads], skipped: [] };
  return {
    run: workloads.filter((w) => supported.includes(w)),
    skipped: workloads.filter((w) => !supported.includes(w)),
  };
}

function run(
  command: string,
  args: readonly string[],
  cwd: string,
  log: (line: string) => void,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    let partial = '';
    child.stderr.on('data', (b: Buffer) => {
      partial += b.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) if (l.trim().length > 0) log(l);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}`));
    });
  });
}

/**
 * The baseline run: prepares `ref` (see `scripts/prepare-baseline.sh`), runs that commit's own
 * `bench:cluster` for paxkv with the flags it understands, and returns its paxkv run labelled
 * `paxkv@<ref>`. Its failover figure is what that version measures (milestone 1: one kill).
 * @throws Error when the ref cannot be prepared or its benchmark fails (the message says which step).
 */
export async function runBaseline(
  ref: string,
  options: BenchOptions,
  log: (line: string) => void,
): Promise<SystemRun> {
  log(`baseline ${ref}: preparing (export, install, build; reused when already prepared)`);
  const out = await run('bash', [PREPARE_BASELINE_SCRIPT, ref], here, (l) => log(`baseline ${ref}: ${l}`));
  const dir = out.trim().split('\n').pop() ?? '';
  if (dir.length === 0) throw new Error(`baseline ${ref}: prepare-baseline.sh printed no directory`);
  const bench = ['exec', 'tsx', '--conditions=@paxkv/source', 'tooling/bench-cluster/src/main.ts'];
  const help = await run('pnpm', [...bench, '--help'], dir, (l) => log(`baseline ${ref}: ${l}`));
  const { run: workloads, skipped } = splitWorkloads(options.workloads, helpWorkloads(help));
  const label = `paxkv@${ref}`;
  if (skipped.length > 0)
    log(`baseline ${ref}: its bench:cluster does not know ${skipped.join(', ')}: not run`);
  if (workloads.length === 0) {
    throw new Error(
      `baseline ${ref}: its bench:cluster knows none of the workloads ${options.workloads.join(', ')} ` +
        `(it knows ${helpWorkloads(help)?.join(', ') ?? 'none it lists'}); add one of those to --workloads`,
    );
  }
  const tmp = mkdtempSync(join(tmpdir(), 'paxkv-bench-baseline-'));
  const jsonFile = join(tmp, 'baseline.json');
  try {
    await run('pnpm', [...bench, ...baselineArgs(options, jsonFile, workloads, help)], dir, (l) =>
      log(`baseline ${ref}: ${l}`),
    );
    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as BenchReport;
    const paxkv = report.runs.find((r) => r.system === 'paxkv');
    if (paxkv === undefined) throw new Error(`baseline ${ref}: its report has no paxkv run`);
    return { ...paxkv, label, ...(skipped.length === 0 ? {} : { skippedWorkloads: skipped }) };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
