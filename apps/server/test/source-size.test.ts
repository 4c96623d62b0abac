/**
 * Issue 12 asks that no file under `apps/server/src` grow past 400 lines: the server is a set of small
 * parts (transport, links, request path, groups, membership, access control), each readable alone. A
 * file that crosses the line is split by responsibility, not trimmed of comments.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** The limit the issue names. */
const MAX_LINES_PER_SOURCE_FILE = 400;
const SOURCE_DIR = join(import.meta.dirname, '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('apps/server/src', () => {
  it(`has no file over ${MAX_LINES_PER_SOURCE_FILE} lines`, () => {
    const files = sourceFiles(SOURCE_DIR);
    expect(files.length).toBeGreaterThan(10);
    const over = files
      .map((f) => ({
        file: f.slice(SOURCE_DIR.length + 1),
        lines: readFileSync(f, 'utf8').split('\n').length - 1,
      }))
      .filter((f) => f.lines > MAX_LINES_PER_SOURCE_FILE);
    expect(over).toEqual([]);
  });
});
