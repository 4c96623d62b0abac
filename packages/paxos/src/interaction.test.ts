/**
 * Data-driven interaction scripts: `src/testdata/*.txt` hold commands and their expected output.
 * Rewrite the expected output after an intended change with `vitest run --project paxos -u`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InteractionDriver } from './testing/interaction.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const files = readdirSync(dir).filter((f) => f.endsWith('.txt'));

describe('interaction scripts', () => {
  it('has scripts', () => expect(files.length).toBeGreaterThan(0));
  for (const f of files) {
    it(f, async () => {
      const path = join(dir, f);
      const actual = new InteractionDriver().runScript(readFileSync(path, 'utf8'));
      await expect(actual).toMatchFileSnapshot(path);
    });
  }
});
