import { describe, expect, it } from 'vitest';
import { check, checkSync, closeWorkerPool } from './check.js';
import { buildHistory, type OperationSpec } from './history.js';

/**
 * Histories built to be hard for the general search: `n` concurrent indeterminate writes (or
 * appends) and, after them, a read of a value that nothing wrote. Refuting it means trying every
 * subset (and, for appends, every order) of the writes: far beyond any budget used here.
 */
function hardRegister(n: number): OperationSpec[] {
  const specs: OperationSpec[] = [];
  for (let i = 0; i < n; i++) specs.push({ process: i, call: i, input: { f: 'write', value: i } });
  specs.push({ process: 999, call: 1000, ret: 1001, input: { f: 'read' }, output: { value: -1 } });
  return specs;
}

function hardKv(key: string, n: number): OperationSpec[] {
  const specs: OperationSpec[] = [];
  for (let i = 0; i < n; i++)
    specs.push({ process: `${key}${i}`, call: i, input: { f: 'append', key, value: `${i},` } });
  specs.push({
    process: `${key}r`,
    call: 1000,
    ret: 1001,
    input: { f: 'get', key },
    output: { value: 'never' },
  });
  return specs;
}

/** Generous slack for a loaded machine: the test checks that the budget holds, not speed. */
const SLACK_MS = 2_000;

describe('time budget', () => {
  it('is honoured by the search, with a partial result', () => {
    const budget = 400;
    const t0 = performance.now();
    const r = checkSync(buildHistory(hardRegister(28), 'register'), { timeoutMs: budget, fastPath: false });
    const elapsed = performance.now() - t0;
    expect(r.verdict).toBe('unknown');
    expect(r.budgetExhausted).toBe(true);
    expect(r.partitionsFinished).toBe(0);
    const p = r.partitions[0];
    expect(p?.reason).toMatch(/time budget exhausted/);
    // the search did work up to the deadline and reports how far it got
    expect(p?.longestPrefix?.length).toBeGreaterThan(0);
    expect(p?.steps).toBeGreaterThan(1000);
    expect(elapsed).toBeGreaterThanOrEqual(budget);
    expect(elapsed).toBeLessThan(budget * 1.1 + SLACK_MS);
  });

  it('is honoured across worker threads: the hard partition stops in time', async () => {
    const budget = 1500; // worker threads that load TypeScript sources take a while to start
    const easy = (key: string): OperationSpec[] => [
      { process: `${key}w`, call: 0, ret: 2, input: { f: 'append', key, value: 'a' }, output: {} },
      { process: `${key}r`, call: 3, ret: 4, input: { f: 'get', key }, output: { value: 'a' } },
    ];
    const h = buildHistory([...hardKv('hard', 24), ...easy('e1'), ...easy('e2')], 'kv');
    const t0 = performance.now();
    const r = await check(h, { timeoutMs: budget, workers: 2, parallelMinOperations: 0 });
    const elapsed = performance.now() - t0;
    await closeWorkerPool();
    expect(r.verdict).toBe('unknown');
    expect(r.budgetExhausted).toBe(true);
    const hard = r.partitions.find((p) => p.key === 'hard');
    expect(hard?.reason).toMatch(/time budget exhausted/);
    // the easy partitions finish unless starting the threads alone took the budget (a loaded
    // machine): either way each one is accounted for
    for (const p of r.partitions) {
      if (p.verdict === 'unknown') expect(p.reason).toMatch(/time budget exhausted/);
      else expect(p.verdict).toBe('linearizable');
    }
    expect(r.partitionsFinished).toBe(r.partitions.filter((p) => p.verdict !== 'unknown').length);
    expect(elapsed).toBeLessThan(budget * 1.1 + SLACK_MS);
  });

  it('says so in the text report', async () => {
    const { formatText } = await import('./report.js');
    const r = checkSync(buildHistory(hardRegister(28), 'register'), { timeoutMs: 50, fastPath: false });
    const text = formatText('hard', r);
    expect(text).toMatch(
      /unknown: time budget exhausted \(longest linearizable prefix found: \d+ of 29 ops\)/,
    );
    expect(text).toMatch(/partial result: 0 of 1 partitions finished within the time budget/);
  });
});
