import type { CellResult } from './load-generator.js';
import type { BenchOptions, SystemName, WorkloadName } from './options.js';
import type { MachineInfo } from './proc-stats.js';

/** The failover figure of one system. */
export interface FailoverResult {
  /** Name of the killed server. */
  readonly killed: string;
  /** Concurrency of the put load. */
  readonly concurrency: number;
  /** Puts/s to the victim group over the baseline window before the kill. */
  readonly baselineOpsPerSec: number;
  /**
   * ms from the SIGKILL to the first acknowledgement of a probe write to the victim group issued
   * after the kill (one every 10 ms); `null` when none succeeded within the watch window.
   */
  readonly firstWriteMs: number | null;
  /**
   * ms from the SIGKILL until a live server reports itself leader of the group (status polled every
   * 10 ms): the election alone, without the client's retries; `null` when not seen.
   */
  readonly leaderElectedMs: number | null;
  /**
   * ms from the SIGKILL to the end of the first bucket from which throughput stays at >= 90% of the
   * baseline for a whole second (10 buckets of 100 ms); `null` when that never happened.
   */
  readonly recovered90Ms: number | null;
  /** Throughput per bucket after the kill (ops/s), for the curve. */
  readonly bucketsOpsPerSec: readonly number[];
  readonly bucketMs: number;
  /** Writes that failed during the watch window (the client gave up on them). */
  readonly errors: number;
}

/** The memory figure of one system. */
export interface MemoryResult {
  readonly keys: number;
  readonly valueBytes: number;
  /** RSS of each server before loading. */
  readonly rssBeforeBytes: readonly number[];
  /** RSS of each server after loading. */
  readonly rssAfterBytes: readonly number[];
  /** Seconds the load took, and its rate. */
  readonly loadSeconds: number;
  readonly loadOpsPerSec: number;
}

/** Everything measured for one system. */
export interface SystemRun {
  readonly system: SystemName;
  readonly version: string;
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  readonly cells: readonly CellResult[];
  readonly failover?: FailoverResult;
  readonly memory?: MemoryResult;
  /** Set when the system could not be run at all (binary missing, start-up failure). */
  readonly error?: string;
}

/** paxkv/etcd figures of one cell. */
export interface Ratio {
  readonly workload: WorkloadName;
  readonly concurrency: number;
  /** paxkv ops/s divided by etcd ops/s. */
  readonly throughput: number;
  /** paxkv p50 divided by etcd p50 (below 1: paxkv is faster). */
  readonly p50: number;
}

/** A goal of issue 9 and whether this run reached it. */
export interface GoalCheck {
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

/** The JSON report written by `--json` (format version 1). */
export interface BenchReport {
  readonly format: 'paxkv-bench-cluster/1';
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly machine: MachineInfo;
  readonly options: BenchOptions;
  readonly runs: readonly SystemRun[];
  readonly ratios: readonly Ratio[];
  readonly goals: readonly GoalCheck[];
  readonly notes: readonly string[];
}

/** Formats microseconds as milliseconds with a precision suited to the magnitude. */
export function formatMs(us: number): string {
  const ms = us / 1_000;
  if (ms < 10) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return ms.toFixed(0);
}

/** Formats a count with thousands separators. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function cellOf(run: SystemRun | undefined, w: WorkloadName, c: number): CellResult | undefined {
  return run?.cells.find((x) => x.workload === w && x.concurrency === c);
}

/** paxkv/etcd ratios of every cell both systems measured. */
export function computeRatios(runs: readonly SystemRun[]): Ratio[] {
  const paxkv = runs.find((r) => r.system === 'paxkv');
  const etcd = runs.find((r) => r.system === 'etcd');
  if (paxkv === undefined || etcd === undefined) return [];
  const out: Ratio[] = [];
  for (const p of paxkv.cells) {
    const e = cellOf(etcd, p.workload, p.concurrency);
    if (e === undefined || e.opsPerSec === 0) continue;
    out.push({
      workload: p.workload,
      concurrency: p.concurrency,
      throughput: round2(p.opsPerSec / e.opsPerSec),
      p50: e.latencyUs.p50 === 0 ? 0 : round2(p.latencyUs.p50 / e.latencyUs.p50),
    });
  }
  return out;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Checks the goals of issue 9 against the measured figures (only those this run measured). */
export function checkGoals(runs: readonly SystemRun[], ratios: readonly Ratio[]): GoalCheck[] {
  const goals: GoalCheck[] = [];
  const ratio = (w: WorkloadName, c: number) => ratios.find((r) => r.workload === w && r.concurrency === c);
  for (const [w, c, min] of [
    ['put', 64, 5],
    ['put', 256, 5],
    ['get', 64, 3],
    ['get', 256, 3],
  ] as const) {
    const r = ratio(w, c);
    if (r !== undefined) {
      goals.push({
        goal: `${w}@${c} ops/s >= ${min}x etcd`,
        measured: `${r.throughput.toFixed(2)}x`,
        met: r.throughput >= min,
      });
    }
  }
  for (const w of ['put', 'get'] as const) {
    const r = ratio(w, 1);
    if (r !== undefined) {
      goals.push({
        goal: `${w}@1 p50 <= etcd's`,
        measured: `${r.p50.toFixed(2)}x etcd's p50`,
        met: r.p50 <= 1,
      });
    }
  }
  const failover = runs.find((r) => r.system === 'paxkv')?.failover;
  if (failover !== undefined) {
    goals.push({
      goal: 'failover: first successful write < 300 ms after SIGKILL of the leader',
      measured: failover.firstWriteMs === null ? 'never' : `${failover.firstWriteMs} ms`,
      met: failover.firstWriteMs !== null && failover.firstWriteMs < 300,
    });
  }
  return goals;
}

function pad(cells: readonly string[], widths: readonly number[], right: readonly boolean[]): string {
  return `| ${cells.map((c, i) => (right[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join(' | ')} |`;
}

/** Renders rows as an aligned Markdown table. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  rightAlign?: readonly boolean[],
): string {
  const right = rightAlign ?? header.map((_, i) => i > 0);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const sep = `|${widths.map((w, i) => (right[i] ? `${'-'.repeat(w + 1)}:` : `:${'-'.repeat(w + 1)}`)).join('|')}|`;
  return [pad(header, widths, right), sep, ...rows.map((r) => pad(r, widths, right))].join('\n');
}

/** The side-by-side table: one row per (workload, concurrency), both systems' figures and the ratio. */
export function renderMainTable(runs: readonly SystemRun[], ratios: readonly Ratio[]): string {
  const systems = runs.filter((r) => r.error === undefined);
  const header = ['workload', 'conc'];
  for (const s of systems) header.push(`${s.system} ops/s`, 'p50 ms', 'p99 ms', 'max ms', 'CPU srv/lg %');
  const both = systems.length === 2;
  if (both) header.push('ops ratio', 'p50 ratio');
  const keys: Array<[WorkloadName, number]> = [];
  for (const s of systems) {
    for (const c of s.cells) {
      if (!keys.some(([w, n]) => w === c.workload && n === c.concurrency))
        keys.push([c.workload, c.concurrency]);
    }
  }
  const rows = keys.map(([w, n]) => {
    const row = [w, String(n)];
    for (const s of systems) {
      const c = cellOf(s, w, n);
      if (c === undefined) {
        row.push('-', '-', '-', '-', '-');
        continue;
      }
      const errs = c.errors > 0 ? ` (${c.errors} err)` : '';
      row.push(
        formatCount(c.opsPerSec) + errs,
        formatMs(c.latencyUs.p50),
        formatMs(c.latencyUs.p99),
        formatMs(c.latencyUs.max),
        `${c.cpu.serversPct.toFixed(0)}/${c.cpu.loadgenPct.toFixed(0)}`,
      );
    }
    if (both) {
      const r = ratios.find((x) => x.workload === w && x.concurrency === n);
      row.push(
        r === undefined ? '-' : `${r.throughput.toFixed(2)}x`,
        r === undefined ? '-' : `${r.p50.toFixed(2)}x`,
      );
    }
    return row;
  });
  return markdownTable(header, rows);
}

/** Renders the failover and memory figures. */
export function renderFigures(runs: readonly SystemRun[]): string {
  const out: string[] = [];
  const fo = runs.filter((r) => r.failover !== undefined);
  if (fo.length > 0) {
    out.push(
      markdownTable(
        [
          'failover',
          'killed',
          'conc',
          'baseline ops/s',
          'new leader ms',
          'first write ms',
          '90% throughput ms',
          'errors',
        ],
        fo.map((r) => {
          const f = r.failover as FailoverResult;
          return [
            r.system,
            f.killed,
            String(f.concurrency),
            formatCount(f.baselineOpsPerSec),
            f.leaderElectedMs === null ? 'never' : String(f.leaderElectedMs),
            f.firstWriteMs === null ? 'never' : String(f.firstWriteMs),
            f.recovered90Ms === null ? 'never' : String(f.recovered90Ms),
            String(f.errors),
          ];
        }),
        [false, false, true, true, true, true, true, true],
      ),
    );
  }
  const mem = runs.filter((r) => r.memory !== undefined);
  if (mem.length > 0) {
    const mib = (b: number) => (b / 1024 / 1024).toFixed(0);
    out.push(
      markdownTable(
        ['memory', 'keys', 'value B', 'RSS before MiB', 'RSS after MiB', 'per key B', 'load ops/s'],
        mem.map((r) => {
          const m = r.memory as MemoryResult;
          const before = m.rssBeforeBytes.reduce((a, b) => a + b, 0) / Math.max(1, m.rssBeforeBytes.length);
          const after = m.rssAfterBytes.reduce((a, b) => a + b, 0) / Math.max(1, m.rssAfterBytes.length);
          return [
            r.system,
            formatCount(m.keys),
            String(m.valueBytes),
            m.rssBeforeBytes.map(mib).join('/'),
            m.rssAfterBytes.map(mib).join('/'),
            formatCount((after - before) / m.keys),
            formatCount(m.loadOpsPerSec),
          ];
        }),
        [false, true, true, true, true, true, true],
      ),
    );
  }
  return out.join('\n\n');
}

/** Renders the goal checks. */
export function renderGoals(goals: readonly GoalCheck[]): string {
  if (goals.length === 0) return '';
  return markdownTable(
    ['goal', 'measured', 'met'],
    goals.map((g) => [g.goal, g.measured, g.met ? 'yes' : 'NO']),
    [false, true, false],
  );
}

/**
 * The machine-readable last line: `put@64 ratio X.XX` when both systems measured put@64,
 * `paxkv-only <ops/s>` when only paxkv did, otherwise a line saying put@64 was not measured.
 */
export function summaryLine(runs: readonly SystemRun[], ratios: readonly Ratio[]): string {
  const r = ratios.find((x) => x.workload === 'put' && x.concurrency === 64);
  if (r !== undefined) return `put@64 ratio ${r.throughput.toFixed(2)}`;
  const p = cellOf(
    runs.find((x) => x.system === 'paxkv'),
    'put',
    64,
  );
  if (p !== undefined) return `paxkv-only ${p.opsPerSec}`;
  return 'put@64 not measured';
}
