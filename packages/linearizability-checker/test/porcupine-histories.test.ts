import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSync } from '../src/check.js';
import { readHistory } from '../src/formats.js';
import { sharedHistories } from './repo-paths.js';

const root = sharedHistories();
const porcupine = root === undefined ? undefined : join(root, 'porcupine');

interface Expected {
  file: string;
  linearizable: boolean | null;
  operations: number;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const DATA = /\.(log|txt|edn|jsonl)$/;

if (porcupine === undefined) {
  describe.skip('Porcupine histories (../shared/histories/porcupine is absent next to the repo root: nothing to check)', () => {
    it.skip('skipped', () => {});
  });
} else {
  const expected: Expected[] = JSON.parse(readFileSync(join(porcupine, 'expected.json'), 'utf8')).histories;
  const byFile = new Map(expected.map((e) => [e.file, e]));
  const files = walk(porcupine)
    .map((p) => relative(porcupine, p).split('\\').join('/'))
    .filter((f) => DATA.test(f))
    .sort();

  describe('Porcupine histories: every data file is listed in expected.json', () => {
    it.each(files)('%s has an expected verdict entry', (file) => {
      expect(byFile.has(file), `${file} is new: add it to expected.json`).toBe(true);
    });
  });

  describe('Porcupine histories: verdicts match expected.json', () => {
    it.each(files.filter((f) => byFile.has(f)))('%s', (file) => {
      const exp = byFile.get(file) as Expected;
      const history = readHistory(readFileSync(join(porcupine, file), 'utf8'));
      expect(history.operations.length).toBe(exp.operations);
      // verdicts only: no shrinking of the violations
      const result = checkSync(history, { timeoutMs: 60_000, shrink: false });
      if (exp.linearizable === null) {
        expect(result.verdict).not.toBe('unknown');
      } else {
        expect(result.verdict).toBe(exp.linearizable ? 'linearizable' : 'not-linearizable');
      }
    });
  });

  const UNPARTITIONED_CHECK_MS = 300_000;
  const UNPARTITIONED_TEST_MS = UNPARTITIONED_CHECK_MS + 30_000;

  describe('Porcupine kv histories, unpartitioned (Porcupine checks c01 and c10 both ways)', () => {
    // The unpartitioned c10 histories take seconds of search (12 s at load 46 alone), a minute and more
    // beside a whole suite on a loaded machine: the check's budget is wall time, so it gets ample room
    // (a verdict, not a speed, is what this test checks; speed is in the checker's benchmark).
    it.each(files.filter((f) => /kv\/c(01|10)-/.test(f)))(
      '%s',
      { timeout: UNPARTITIONED_TEST_MS },
      (file) => {
        const exp = byFile.get(file) as Expected;
        const history = readHistory(readFileSync(join(porcupine, file), 'utf8'));
        const result = checkSync(history, {
          model: 'porcupine-kv:unpartitioned',
          timeoutMs: UNPARTITIONED_CHECK_MS,
          shrink: false,
        });
        expect(result.partitions).toHaveLength(1);
        expect(result.verdict).toBe(exp.linearizable ? 'linearizable' : 'not-linearizable');
      },
    );
  });
}
