import { describe, expect, it } from 'vitest';
import type { CellResult } from './load-generator.js';
import type { WorkloadName } from './options.js';
import {
  checkGoals,
  computeRatios,
  formatMs,
  markdownTable,
  renderMainTable,
  type SystemRun,
  summaryLine,
} from './report.js';

function cell(workload: WorkloadName, concurrency: number, opsPerSec: number, p50: number): CellResult {
  return {
    workload,
    concurrency,
    ops: opsPerSec * 5,
    errors: 0,
    windowMs: 5_000,
    opsPerSec,
    latencyUs: {
      count: opsPerSec * 5,
      p50,
      p90: p50 * 2,
      p99: p50 * 3,
      p999: p50 * 4,
      max: p50 * 10,
      mean: p50,
    },
    casApplied: 0,
    casMismatch: 0,
    cpu: { serversPct: 120, loadgenPct: 60, otherPct: 5, cores: 2 },
    firstError: undefined,
  };
}

function run(system: 'paxkv' | 'etcd', cells: CellResult[]): SystemRun {
  return { system, version: '1', settings: {}, cells };
}

describe('ratios, goals and the summary line', () => {
  const paxkv = run('paxkv', [
    cell('put', 1, 3_000, 300),
    cell('put', 64, 50_000, 1_200),
    cell('get', 64, 20_000, 2_000),
  ]);
  const etcd = run('etcd', [
    cell('put', 1, 600, 1_500),
    cell('put', 64, 4_000, 16_000),
    cell('get', 64, 10_000, 5_000),
  ]);

  it('computes paxkv/etcd for the cells both measured', () => {
    const ratios = computeRatios([paxkv, etcd]);
    expect(ratios).toEqual([
      { workload: 'put', concurrency: 1, throughput: 5, p50: 0.2 },
      { workload: 'put', concurrency: 64, throughput: 12.5, p50: 0.08 },
      { workload: 'get', concurrency: 64, throughput: 2, p50: 0.4 },
    ]);
    expect(computeRatios([paxkv])).toEqual([]);
  });

  it('checks the goals of the issue', () => {
    const goals = checkGoals([paxkv, etcd], computeRatios([paxkv, etcd]));
    expect(goals.map((g) => [g.goal, g.met])).toEqual([
      ['put@64 ops/s >= 5x etcd', true],
      ['get@64 ops/s >= 3x etcd', false],
      ["put@1 p50 <= etcd's", true],
    ]);
  });

  it('ends with put@64 ratio, or paxkv-only without etcd', () => {
    expect(summaryLine([paxkv, etcd], computeRatios([paxkv, etcd]))).toBe('put@64 ratio 12.50');
    expect(summaryLine([paxkv], [])).toBe('paxkv-only 50000');
    expect(summaryLine([run('paxkv', [cell('get', 1, 1, 1)])], [])).toBe('put@64 not measured');
  });

  it('renders one row per workload and concurrency with both systems side by side', () => {
    const text = renderMainTable([paxkv, etcd], computeRatios([paxkv, etcd]));
    const lines = text.split('\n');
    expect(lines).toHaveLength(2 + 3);
    expect(lines[0]).toContain('paxkv ops/s');
    expect(lines[0]).toContain('etcd ops/s');
    expect(lines[3]).toContain('50,000');
    expect(lines[3]).toContain('12.50x');
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
  });
});

describe('formatting', () => {
  it('formats latencies in ms with sensible precision', () => {
    expect(formatMs(345)).toBe('0.34');
    expect(formatMs(12_345)).toBe('12.3');
    expect(formatMs(1_234_567)).toBe('1235');
  });

  it('aligns a markdown table', () => {
    expect(markdownTable(['a', 'bb'], [['xxx', '1']])).toBe('| a   | bb |\n|:----|---:|\n| xxx |  1 |');
  });
});

describe('failover series, restart-all, stability and a baseline run', () => {
  const kill = (ms: number | null) => ({ killed: 'paxkv1', firstWriteMs: ms, leaderElectedMs: ms });
  const failover = (kills: Array<number | null>, median: number | null, max: number | null) => ({
    kills: kills.map(kill),
    firstWriteMedianMs: median,
    firstWriteMaxMs: max,
    killed: 'paxkv1',
    concurrency: 64,
    baselineOpsPerSec: 1_000,
    firstWriteMs: kills[0] ?? null,
    leaderElectedMs: kills[0] ?? null,
    recovered90Ms: 300,
    bucketsOpsPerSec: [],
    bucketMs: 100,
    errors: 0,
  });

  it('checks the median and the largest first write, the restart and the stability goals', () => {
    const good: SystemRun = {
      ...run('paxkv', []),
      failover: failover([100, 120, 480], 120, 480),
      restartAll: { rounds: [], firstWriteMedianMs: 300, firstWriteMaxMs: 1_900 },
      stability: { hogs: 4, windowMs: 10_000, leaderChanges: 0, opsPerSec: 100, errors: 0 },
    };
    expect(checkGoals([good], []).map((g) => g.met)).toEqual([true, true, true, true]);
    const bad: SystemRun = {
      ...good,
      failover: failover([100, 120, 510], 120, 510),
      restartAll: { rounds: [], firstWriteMedianMs: 300, firstWriteMaxMs: 2_000 },
      stability: { hogs: 4, windowMs: 10_000, leaderChanges: 1, opsPerSec: 100, errors: 0 },
    };
    expect(checkGoals([bad], []).map((g) => g.met)).toEqual([true, false, false, false]);
    const never: SystemRun = { ...good, failover: failover([100, null], null, null) };
    expect(checkGoals([never], [])[0]?.met).toBe(false);
  });

  it('never takes the baseline for this tree: ratios and goals use the unlabelled paxkv run', () => {
    const before: SystemRun = {
      ...run('paxkv', [cell('put', 64, 1_000, 1_000)]),
      label: 'paxkv@e4ba261',
      failover: failover([600], 600, 600),
    };
    const now = run('paxkv', [cell('put', 64, 8_000, 1_000)]);
    const etcd = run('etcd', [cell('put', 64, 4_000, 1_000)]);
    expect(computeRatios([before, now, etcd])[0]?.throughput).toBe(2);
    expect(
      checkGoals([before, now, etcd], computeRatios([before, now, etcd])).some((g) =>
        g.goal.startsWith('failover'),
      ),
    ).toBe(false);
    const table = renderMainTable([before, now, etcd], computeRatios([before, now, etcd]));
    expect(table.split('\n')[0]).toContain('paxkv@e4ba261 ops/s');
    expect(table.split('\n')[0]).toContain('ops ratio');
  });

  it('shows the workloads a baseline could not run as "not run", not as figures', () => {
    const before: SystemRun = {
      ...run('paxkv', [cell('put', 64, 1_000, 1_000)]),
      label: 'paxkv@e4ba261',
      skippedWorkloads: ['txn'],
    };
    const now = run('paxkv', [cell('put', 64, 8_000, 1_000), cell('txn', 64, 5_000, 1_000)]);
    const table = renderMainTable([before, now], []);
    const txn = table.split('\n').find((l) => l.startsWith('| txn'));
    expect(txn).toMatch(/^\| txn\s+\|\s+64 \|\s+not run \|/);
    expect(txn).toContain('5,000');
  });
});
