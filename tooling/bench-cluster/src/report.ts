import type { CellResult } from './load-generator.js';
import type { BenchOptions, SystemName, WorkloadName } from './options.js';
import type { MachineInfo } from './proc-stats.js';
import type { RestartAllResult } from './restart-all.js';
import type { StabilityResult } from './stability.js';
import type { WatchResult } from './watch-bench.js';

/** One leader kill of the failover figure. */
export interface FailoverKill {
  readonly killed: string;
  /** See {@link FailoverResult.firstWriteMs}. */
  readonly firstWriteMs: number | null;
  /** See {@link FailoverResult.leaderElectedMs}. */
  readonly leaderElectedMs: number | null;
}

/**
 * The failover figure of one system: every kill's figures, and the throughput curve of the first
 * kill (the fields from `killed` on).
 */
export interface FailoverResult {
  /** Every kill, in order. */
  readonly kills: readonly FailoverKill[];
  /** Median and largest first-write time over the kills (`null` when one never wrote). */
  readonly firstWriteMedianMs: number | null;
  readonly firstWriteMaxMs: number | null;
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
  /**
   * How the run is named in the tables when it is not this tree's build (the baseline: `paxkv@<ref>`).
   * Default: `system`.
   */
  readonly label?: string;
  readonly version: string;
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  readonly cells: readonly CellResult[];
  readonly failover?: FailoverResult;
  readonly memory?: MemoryResult;
  readonly restartAll?: RestartAllResult;
  readonly stability?: StabilityResult;
  /** The watch figure (puts under a watched prefix: events/s and put-to-event latency). */
  readonly watch?: WatchResult;
  /** Set when the system could not be run at all (binary missing, start-up failure). */
  readonly error?: string;
  /**
   * Workloads of this run's table the system's benchmark could not run (a baseline older than the
   * workload): their cells show `not run` instead of figures.
   */
  readonly skippedWorkloads?: readonly WorkloadName[];
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

/** The run of `system` built from this tree (not a baseline). */
export function currentRun(runs: readonly SystemRun[], system: SystemName): SystemRun | undefined {
  return runs.find((r) => r.system === system && r.label === undefined);
}

/** The name of a run in the tables. */
export function runLabel(run: SystemRun): string {
  return run.label ?? run.system;
}

/** paxkv/etcd ratios of every cell both systems measured (this tree's paxkv, never the baseline). */
export function computeRatios(runs: readonly SystemRun[]): Ratio[] {
  const paxkv = currentRun(runs, 'paxkv');
  const etcd = currentRun(runs, 'etcd');
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
  const paxkv = currentRun(runs, 'paxkv');
  const failover = paxkv?.failover;
  if (failover !== undefined) {
    const med = failover.firstWriteMedianMs;
    const max = failover.firstWriteMaxMs;
    const n = failover.kills?.length ?? 1;
    goals.push({
      goal: `failover: median first write after SIGKILL of a group leader < 300 ms (${n} kills)`,
      measured: med === null ? 'a kill never wrote' : `${med} ms`,
      met: med !== null && med < 300,
    });
    goals.push({
      goal: `failover: no first write > 500 ms (${n} kills)`,
      measured: max === null ? 'a kill never wrote' : `max ${max} ms`,
      met: max !== null && max <= 500,
    });
  }
  const restart = paxkv?.restartAll;
  if (restart !== undefined) {
    goals.push({
      goal: `SIGKILL of all servers: first write < 2 s after the last server is up (${restart.rounds.length} rounds)`,
      measured:
        restart.firstWriteMaxMs === null ? 'a round never wrote' : `max ${restart.firstWriteMaxMs} ms`,
      met: restart.firstWriteMaxMs !== null && restart.firstWriteMaxMs < 2_000,
    });
  }
  const stability = paxkv?.stability;
  if (stability !== undefined) {
    goals.push({
      goal: `no leader change in a fault-free ${stability.windowMs / 1_000} s window with ${stability.hogs} CPU hogs`,
      measured: `${stability.leaderChanges} changes`,
      met: stability.leaderChanges === 0,
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
  for (const s of systems) header.push(`${runLabel(s)} ops/s`, 'p50 ms', 'p99 ms', 'max ms', 'CPU srv/lg %');
  const both = ratios.length > 0;
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
        row.push(s.skippedWorkloads?.includes(w) === true ? 'not run' : '-', '-', '-', '-', '-');
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
          'kills',
          'first write median ms',
          'max ms',
          'every kill ms',
          'conc',
          'baseline ops/s',
          '1st kill: new leader ms',
          '90% throughput ms',
          'errors',
        ],
        fo.map((r) => {
          const f = r.failover as FailoverResult;
          const kills = f.kills ?? [
            { killed: f.killed, firstWriteMs: f.firstWriteMs, leaderElectedMs: f.leaderElectedMs },
          ];
          const ms = (v: number | null | undefined) => (v === null || v === undefined ? 'never' : String(v));
          return [
            runLabel(r),
            String(kills.length),
            ms(f.firstWriteMedianMs ?? f.firstWriteMs),
            ms(f.firstWriteMaxMs ?? f.firstWriteMs),
            kills.map((k) => ms(k.firstWriteMs)).join(' '),
            String(f.concurrency),
            formatCount(f.baselineOpsPerSec),
            ms(f.leaderElectedMs),
            ms(f.recovered90Ms),
            String(f.errors),
          ];
        }),
        [false, true, true, true, false, true, true, true, true, true],
      ),
    );
  }
  const wa = runs.filter((r) => r.watch !== undefined);
  if (wa.length > 0) {
    out.push(
      markdownTable(
        [
          'watch',
          'watchers',
          'writers',
          'puts/s',
          'events/s',
          'put→event p50 ms',
          'p99 ms',
          'max ms',
          'missing',
        ],
        wa.map((r) => {
          const w = r.watch as WatchResult;
          return [
            runLabel(r),
            String(w.watchers),
            String(w.writers),
            formatCount(w.putsPerSec),
            formatCount(w.eventsPerSec),
            formatMs(w.latencyUs.p50),
            formatMs(w.latencyUs.p99),
            formatMs(w.latencyUs.max),
            String(w.missing),
          ];
        }),
        [false, true, true, true, true, true, true, true, true],
      ),
    );
  }
  const ra = runs.filter((r) => r.restartAll !== undefined);
  if (ra.length > 0) {
    const ms = (v: number | null) => (v === null ? 'never' : String(v));
    out.push(
      markdownTable(
        [
          'restart all',
          'rounds',
          'first write median ms',
          'max ms',
          'every round: first write / all groups / last up ms',
        ],
        ra.map((r) => {
          const x = r.restartAll as RestartAllResult;
          return [
            runLabel(r),
            String(x.rounds.length),
            ms(x.firstWriteMedianMs),
            ms(x.firstWriteMaxMs),
            x.rounds.map((d) => `${ms(d.firstWriteMs)}/${ms(d.allGroupsMs)}/${d.lastUpMs}`).join(' '),
          ];
        }),
        [false, true, true, true, false],
      ),
    );
  }
  const st = runs.filter((r) => r.stability !== undefined);
  if (st.length > 0) {
    out.push(
      markdownTable(
        ['stability', 'CPU hogs', 'window s', 'leader changes', 'put ops/s', 'errors', 'settings'],
        st.map((r) => {
          const x = r.stability as StabilityResult;
          return [
            runLabel(r),
            String(x.hogs),
            String(x.windowMs / 1_000),
            String(x.leaderChanges),
            formatCount(x.opsPerSec),
            String(x.errors),
            r.system === 'paxkv' ? `tickMs ${String(r.settings.tickMs ?? 'default')}` : 'defaults',
          ];
        }),
        [false, true, true, true, true, true, false],
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
            runLabel(r),
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
  const p = cellOf(currentRun(runs, 'paxkv'), 'put', 64);
  if (p !== undefined) return `paxkv-only ${p.opsPerSec}`;
  return 'put@64 not measured';
}
