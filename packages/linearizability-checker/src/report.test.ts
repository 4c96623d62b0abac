import { describe, expect, it } from 'vitest';
import { checkSync } from './check.js';
import { generateHistory } from './generate.js';
import { buildHistory, type OperationSpec } from './history.js';
import { readJsonl } from './jsonl.js';
import { formatText, renderHtml } from './report.js';

function generated(ops: number, violate: boolean): string {
  let text = '';
  generateHistory({ ops, keys: 10, violate, seed: 11 }, (c) => {
    text += c;
  });
  return text;
}

function data(
  html: string,
): { parts: Record<string, unknown>[]; ops: unknown[]; hidden: { partitions: number } }[] {
  return JSON.parse(/const DATA=(.*);\n/.exec(html)?.[1] ?? 'null');
}

describe('reports of large histories', () => {
  it('stay small: a window around the violation, the minimal sub-history, the rest counted', () => {
    const h = readJsonl(generated(100_000, true));
    const r = checkSync(h, { checkAllPartitions: true });
    expect(r.verdict).toBe('not-linearizable');
    const html = renderHtml([{ name: 'big', result: r }]);
    expect(html.length).toBeLessThan(10 * 1024 * 1024);
    expect(html.length).toBeLessThan(2 * 1024 * 1024);
    const [file] = data(html);
    const bad = file?.parts.find((p) => p.verdict === 'not-linearizable') as {
      ops: number[];
      minimal: number[];
      total: number;
      before: number;
      after: number;
    };
    expect(bad.ops.length).toBeLessThanOrEqual(400);
    expect(bad.before + bad.ops.length + bad.after).toBe(bad.total);
    for (const i of bad.minimal) expect(bad.ops).toContain(i);
    // and the text names the minimal sub-history
    expect(formatText('big', r)).toMatch(/minimal failing sub-history \(.+\):\n(\s+\[p.*\n){2,6}/);
  });

  it('clip huge values and list at most maxPartitions partitions', () => {
    const huge = 'x'.repeat(2_000_000);
    const specs: OperationSpec[] = [
      { process: 1, call: 0, ret: 1, input: { f: 'put', key: 'a', value: huge }, output: {} },
      { process: 2, call: 2, ret: 3, input: { f: 'get', key: 'a' }, output: { value: huge } },
      ...Array.from({ length: 300 }, (_, i) => ({
        process: 3,
        call: 10 + 2 * i,
        ret: 11 + 2 * i,
        input: { f: 'get', key: `k${i}` },
        output: { value: null },
      })),
    ];
    const r = checkSync(buildHistory(specs, 'kv'));
    const html = renderHtml([{ name: 'huge', result: r }], { maxPartitions: 50 });
    expect(html.length).toBeLessThan(200_000);
    const [file] = data(html);
    expect(file?.parts).toHaveLength(50);
    expect(file?.hidden.partitions).toBe(251);
    expect(html).toMatch(/… \(20000\d\d chars\)/);
  });
});
