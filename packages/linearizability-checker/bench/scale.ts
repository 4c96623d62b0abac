/**
 * The checker at scale, as a user runs it: `paxkv-check` (built JavaScript, one child process per
 * check) on generated kv histories. Measures wall time and peak RSS of the child.
 *
 * 1. 1,000,000 operations over 10 keys, linearizable: goal under 10 s wall and under 1 GB RSS.
 * 2. 200,000 operations with one injected stale read: found, and shrunk to at most 10 operations.
 * 3. The same 1 M history through Porcupine when Go and Porcupine's sources are on this machine
 *    (skipped with a message otherwise).
 * 4. The time budget on a history built to be hard: honoured within 10%?
 *
 * Usage: pnpm --filter @paxkv/linearizability-checker bench [-- --ops 1000000 --keys 10 --keep]
 * (`bench:porcupine` times Porcupine's own test histories.)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkSync } from '../src/check.js';
import { generateHistory } from '../src/generate.js';
import { buildHistory, type OperationSpec } from '../src/history.js';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const OPS = flag('--ops', 1_000_000);
const KEYS = flag('--keys', 10);
const VIOLATE_OPS = flag('--violate-ops', 200_000);
const KEEP = args.includes('--keep');
const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Wall time, peak RSS and output of one child process. */
interface Run {
  wallMs: number;
  /** User + system CPU time of the child (GNU time only): the fairer figure on a loaded machine. */
  cpuMs: number | undefined;
  peakRssKb: number;
  rssSource: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command and measures it. Peak RSS: GNU time's maxrss of the child when /usr/bin/time is
 * installed, else the child's VmHWM (peak resident set) read from /proc every 10 ms.
 */
function measure(cmd: string, argv: string[]): Promise<Run> {
  const gnuTime = existsSync('/usr/bin/time');
  const marker = '@@maxrss=';
  const [c, a] = gnuTime ? ['/usr/bin/time', ['-f', `${marker}%M %U %S`, cmd, ...argv]] : [cmd, argv];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(c as string, a as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hwm = 0;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) hwm = Math.max(hwm, Number(m[1]));
      } catch {
        // exited between two polls
      }
    }, 10);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      const wallMs = performance.now() - t0;
      const m = new RegExp(`${marker}(\\d+) ([\\d.]+) ([\\d.]+)`).exec(stderr);
      const peak = m ? Number(m[1]) : hwm;
      resolve({
        wallMs,
        cpuMs: m ? (Number(m[2]) + Number(m[3])) * 1000 : undefined,
        peakRssKb: peak,
        rssSource: m ? 'GNU time maxrss' : '/proc VmHWM polled every 10 ms',
        code,
        stdout,
        stderr: stderr.replace(new RegExp(`${marker}[^\\n]*\\n?`), ''),
      });
    });
  });
}

function generateTo(file: string, ops: number, violate: boolean): number | undefined {
  const chunks: string[] = [];
  let size = 0;
  const flush = (): void => {
    writeFileSync(file, chunks.join(''), { flag: 'a' });
    chunks.length = 0;
    size = 0;
  };
  writeFileSync(file, '');
  const s = generateHistory({ ops, keys: KEYS, violate, seed: 42 }, (chunk) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size > 8 << 20) flush();
  });
  flush();
  return s.violationId;
}

const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;
const cpu = (r: Run): string => (r.cpuMs === undefined ? '?' : `${(r.cpuMs / 1000).toFixed(2)} s`);

console.log(`building dist (tsup, JavaScript only)...`);
const build = spawnSync('pnpm', ['exec', 'tsup', '--no-dts'], { cwd: pkg, encoding: 'utf8' });
if (build.status !== 0) {
  console.error(build.stdout, build.stderr);
  process.exit(1);
}
const cli = join(pkg, 'dist', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'paxkv-check-bench-'));
let failed = false;
try {
  console.log(
    `load average at start: ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')} on ${cpus().length} CPUs`,
  );

  // 1. a big linearizable history
  const big = join(dir, `kv-${OPS}.jsonl`);
  let t0 = performance.now();
  generateTo(big, OPS, false);
  const bigBytes = statSync(big).size;
  console.log(
    `generated ${OPS.toLocaleString('en')} ops over ${KEYS} keys: ${(bigBytes / 1048576).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const r1 = await measure(process.execPath, [cli, '--json', '--timeout', '10m', big]);
  const j1 = JSON.parse(r1.stdout.trim().split('\n').pop() ?? '{}') as {
    verdict?: string;
    ms?: number;
    details?: { method?: string }[];
  };
  const fast = (j1.details ?? []).filter((d) => d.method === 'fast').length;
  const perOp = (r1.peakRssKb * 1024) / OPS;
  console.log(
    `1. paxkv-check on ${OPS.toLocaleString('en')} ops: ${j1.verdict} — wall ${(r1.wallMs / 1000).toFixed(2)} s, CPU ${cpu(r1)} (reading + checking; check alone ${((j1.ms ?? 0) / 1000).toFixed(2)} s wall), peak RSS ${mb(r1.peakRssKb)} (${perOp.toFixed(0)} B/op; ${r1.rssSource}); ${fast}/${j1.details?.length ?? 0} partitions by the fast path`,
  );
  const ok1 = j1.verdict === 'linearizable' && r1.wallMs < 10_000 && r1.peakRssKb < 1024 * 1024;
  console.log(
    `   goal < 10 s wall and < 1 GB RSS: ${ok1 ? 'met' : 'NOT met'}${r1.cpuMs !== undefined && r1.cpuMs < 10_000 && !ok1 ? ' (CPU time under 10 s: the wall time is the load)' : ''}`,
  );
  if (j1.verdict !== 'linearizable') failed = true;

  // 2. one injected violation
  const bad = join(dir, `kv-${VIOLATE_OPS}-violation.jsonl`);
  const vid = generateTo(bad, VIOLATE_OPS, true);
  const r2 = await measure(process.execPath, [cli, '--json', '--timeout', '10m', bad]);
  const j2 = JSON.parse(r2.stdout.trim().split('\n').pop() ?? '{}') as {
    verdict?: string;
    details?: { verdict: string; minimal?: unknown[]; why?: string }[];
  };
  const part = (j2.details ?? []).find((d) => d.verdict === 'not-linearizable');
  const minimal = part?.minimal ?? [];
  const ok2 =
    j2.verdict === 'not-linearizable' && minimal.length > 0 && minimal.length <= 10 && minimal.includes(vid);
  console.log(
    `2. paxkv-check on ${VIOLATE_OPS.toLocaleString('en')} ops with a stale read at id ${vid}: ${j2.verdict}, shrunk to ${minimal.length} operations (ids ${JSON.stringify(minimal)}: ${part?.why ?? '?'}) — wall ${(r2.wallMs / 1000).toFixed(2)} s, CPU ${cpu(r2)}, peak RSS ${mb(r2.peakRssKb)}; ${ok2 ? 'met' : 'NOT met'}`,
  );
  if (!ok2) failed = true;

  // 2b. the general search at scale: 200 k ops over 5 keys with the fast path off
  const gen = join(dir, `kv-${VIOLATE_OPS}-5keys.jsonl`);
  writeFileSync(gen, '');
  {
    const chunks: string[] = [];
    generateHistory({ ops: VIOLATE_OPS, keys: 5, seed: 43 }, (chunk) => chunks.push(chunk));
    writeFileSync(gen, chunks.join(''));
  }
  const r3 = await measure(process.execPath, [cli, '--json', '--no-fast-path', '--timeout', '10m', gen]);
  const j3 = JSON.parse(r3.stdout.trim().split('\n').pop() ?? '{}') as { verdict?: string };
  console.log(
    `2b. general search (--no-fast-path) on ${VIOLATE_OPS.toLocaleString('en')} ops over 5 keys: ${j3.verdict} — wall ${(r3.wallMs / 1000).toFixed(2)} s, CPU ${cpu(r3)}, peak RSS ${mb(r3.peakRssKb)} (${((r3.peakRssKb * 1024) / VIOLATE_OPS).toFixed(0)} B/op)`,
  );
  if (j3.verdict !== 'linearizable') failed = true;

  // 3. Porcupine, when it can run here
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error !== undefined || go.status !== 0) {
    console.log('3. Porcupine: skipped: Go is not installed (Debian package golang-go)');
  } else {
    const modcache = spawnSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).stdout.trim();
    const src = join(modcache, 'github.com', 'anishathalye');
    if (!existsSync(src)) {
      console.log(
        `3. Porcupine: skipped: ${go.stdout.trim()} is installed, but Porcupine's sources are not in ${src} and cannot be fetched offline`,
      );
    } else {
      console.log(
        `3. Porcupine: skipped: its sources are in ${src}, but this bench has no Go harness for JSON-lines histories yet`,
      );
    }
  }
  // 4. the time budget on a history built to be hard (28 concurrent indeterminate writes, then a
  // read of a value nothing wrote: refuting it means trying every subset)
  for (const budget of [500, 2000]) {
    const specs: OperationSpec[] = [];
    for (let i = 0; i < 28; i++) specs.push({ process: i, call: i, input: { f: 'write', value: i } });
    specs.push({ process: 99, call: 100, ret: 101, input: { f: 'read' }, output: { value: -1 } });
    t0 = performance.now();
    const r = checkSync(buildHistory(specs, 'register'), { timeoutMs: budget, fastPath: false });
    const took = performance.now() - t0;
    const within = took <= budget * 1.1;
    console.log(
      `4. time budget ${budget} ms on a hard history: ${r.verdict} after ${took.toFixed(0)} ms (${(((took - budget) / budget) * 100).toFixed(1)}% over; longest prefix ${r.partitions[0]?.longestPrefix?.length ?? 0} of 29 ops); within 10%: ${within ? 'yes' : 'NO'}`,
    );
    if (!within || r.verdict !== 'unknown') failed = true;
  }
  console.log(
    `load average at end: ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  console.log('(a shared, loaded machine: wall times include waiting for a CPU)');
} finally {
  if (KEEP) console.log(`histories kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
if (failed) process.exitCode = 1;
