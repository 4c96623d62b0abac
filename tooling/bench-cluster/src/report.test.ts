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
