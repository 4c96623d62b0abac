import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSync } from './check.js';
import { CompactHistory } from './compact.js';
import { readHistoryFile } from './formats.js';
import { generateHistory } from './generate.js';
import { readJsonl } from './jsonl.js';

function generate(options: Parameters<typeof generateHistory>[0]): {
  text: string;
  violationId: number | undefined;
} {
  let text = '';
  const s = generateHistory(options, (chunk) => {
    text += chunk;
  });
  return { text, violationId: s.violationId };
}

describe('generator', () => {
  it('writes linearizable histories, decided by the fast path, with failed and indeterminate ops', () => {
    const { text } = generate({ ops: 20_000, keys: 5, seed: 3, infoRate: 0.01, failRate: 0.01 });
    const h = readJsonl(text);
    expect(h.size).toBe(20_000);
    expect(h.operations.filter((o) => o.status === 'info').length).toBeGreaterThan(50);
    expect(h.operations.filter((o) => o.status === 'fail').length).toBeGreaterThan(20);
    const r = checkSync(h);
    expect(r.verdict).toBe('linearizable');
    expect(r.partitions.every((p) => p.method === 'fast')).toBe(true);
    // and the general search agrees
    expect(
      checkSync(readJsonl(generate({ ops: 2_000, keys: 5, seed: 3 }).text), { fastPath: false }).verdict,
    ).toBe('linearizable');
  });

  it('injects one stale read with --violate, found and shrunk to a few operations', () => {
    const { text, violationId } = generate({ ops: 20_000, keys: 5, seed: 4, violate: true });
    expect(violationId).toBeDefined();
    const h = readJsonl(text);
    const r = checkSync(h);
    expect(r.verdict).toBe('not-linearizable');
    const bad = r.partitions.find((p) => p.verdict === 'not-linearizable');
    expect(bad?.minimal?.length).toBeLessThanOrEqual(10);
    expect(bad?.minimal?.map((i) => h.op(i).id)).toContain(violationId);
  });

  it('is reproducible from its seed', () => {
    expect(generate({ ops: 500, seed: 9 }).text).toBe(generate({ ops: 500, seed: 9 }).text);
    expect(generate({ ops: 500, seed: 9 }).text).not.toBe(generate({ ops: 500, seed: 10 }).text);
  });
});

describe('streaming JSON-lines reader', () => {
  it('reads the same history through the fast line scanner and the general JSON path', () => {
    const { text } = generate({ ops: 3_000, keys: 3, seed: 5, infoRate: 0.02, failRate: 0.02 });
    // a space after each opening brace defeats the scanner: every line then takes JSON.parse
    const slow = text
      .split('\n')
      .map((l) => l.replace(/^\{/, '{ '))
      .join('\n');
    const a = readJsonl(text);
    const b = readJsonl(slow);
    expect(a).toBeInstanceOf(CompactHistory);
    expect(a.operations).toEqual(b.operations);
    expect(a.model).toBe('kv');
  });

  it('streams a file in chunks, with lines cut across chunks and completions before invokes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lin-'));
    try {
      const { text } = generate({ ops: 20_000, keys: 4, seed: 6 });
      const lines = text.trimEnd().split('\n');
      // move every completion of an even id before the invokes (merged per-client logs)
      const head = lines.slice(0, 1);
      const isEarly = (l: string): boolean => !l.includes('"invoke"') && /"id":\d*[02468],/.test(l);
      const early = lines.slice(1).filter(isEarly);
      const rest = lines.slice(1).filter((l) => !isEarly(l));
      const file = join(dir, 'h.jsonl');
      writeFileSync(file, `${[...head, ...early, ...rest].join('\n')}\n`);
      const streamed = await readHistoryFile(file);
      // lines moved, so compare everything but the line numbers
      const strip = (h: { operations: { line?: number }[] }): string =>
        JSON.stringify(h.operations.map(({ line: _line, ...rest }) => rest));
      expect(strip(streamed) === strip(readJsonl(text))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
