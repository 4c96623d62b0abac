/**
 * The /metrics exposition is valid for Prometheus: checked by `promtool check metrics` when it is
 * installed (Debian `prometheus`, which `.ci/run` installs), and always by the exposition-format and naming
 * rules that promtool applies, checked here.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ServerMetrics } from './metrics.js';

async function exposition(): Promise<string> {
  const m = new ServerMetrics();
  m.observeOp('put', 'ok', 0.002);
  m.observeKvResult(
    {
      op: 'txn',
      succeeded: true,
      results: [{ op: 'put', key: '{a}x', created: true, createRevision: 3, modRevision: 3, version: 1 }],
      revision: 3,
      partition: 0,
    },
    2,
  );
  m.observeKvResult({ op: 'range', kvs: [], more: true, revision: 3, partition: 0 }, 0);
  return m.render();
}

/** Problems promtool's linter would report, plus malformed lines. */
function lint(text: string): string[] {
  const problems: string[] = [];
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, metric, rest] = meta as unknown as [string, string, string, string];
      if (!name.test(metric)) problems.push(`bad metric name ${metric}`);
      if (kind === 'HELP') {
        if (rest.trim() === '') problems.push(`${metric}: empty HELP`);
        helps.add(metric);
      } else {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest))
          problems.push(`${metric}: type ${rest}`);
        types.set(metric, rest);
        if (rest === 'counter' && !metric.endsWith('_total'))
          problems.push(`${metric}: counter without _total`);
        if (rest !== 'counter' && metric.endsWith('_total'))
          problems.push(`${metric}: non-counter with _total`);
      }
      if (/(^|_)(\w+)_\2_/.test(metric)) problems.push(`${metric}: repeated word`);
      if (/_(milliseconds|microseconds|kilobytes|megabytes)(_|$)/.test(metric))
        problems.push(`${metric}: not a base unit`);
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)( \d+)?$/.exec(line);
    if (!sample) {
      problems.push(`malformed sample line: ${line}`);
      continue;
    }
    const [, metric, , value] = sample as unknown as [string, string, string, string];
    if (!/^(-?\d+(\.\d+)?(e[+-]?\d+)?|NaN|[+-]Inf)$/i.test(value))
      problems.push(`${metric}: bad value ${value}`);
    const family = [metric, metric.replace(/_(bucket|sum|count)$/, '')].find((f) => types.has(f));
    if (!family) problems.push(`${metric}: sample without a TYPE`);
  }
  for (const metric of types.keys()) if (!helps.has(metric)) problems.push(`${metric}: no HELP`);
  return problems;
}

describe('/metrics exposition', () => {
  it('follows the exposition format and naming rules (no process_process_, counters end in _total)', async () => {
    const text = await exposition();
    expect(text).not.toMatch(/process_process_|paxkv_process_/);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(lint(text)).toEqual([]);
  });

  it('counts transactions by outcome and size, and range reads by keys returned', async () => {
    const text = await exposition();
    expect(text).toMatch(/^paxkv_txn_total\{outcome="succeeded"\} 1$/m);
    expect(text).toMatch(/^paxkv_txn_operations_sum 3$/m); // 2 compares + 1 put
    expect(text).toMatch(/^paxkv_range_keys_count 1$/m);
    expect(text).toMatch(/^paxkv_range_truncated_total 1$/m);
  });

  it('the checker itself catches what it must', () => {
    expect(lint('# HELP x_count a\n# TYPE x_count counter\nx_count 1\n')).toContain(
      'x_count: counter without _total',
    );
    expect(
      lint('# HELP a_process_process_b h\n# TYPE a_process_process_b gauge\na_process_process_b 1\n'),
    ).toContain('a_process_process_b: repeated word');
    expect(lint('y 1\n')).toContain('y: sample without a TYPE');
  });

  it('passes `promtool check metrics` (where promtool is installed)', async (ctx) => {
    const probe = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    if (probe.error) {
      ctx.skip();
      return;
    }
    const r = spawnSync('promtool', ['check', 'metrics'], { input: await exposition(), encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });
});
