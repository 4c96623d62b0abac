/** Locates the repository root and the shared histories folder beside it (`<repo root>/../shared/histories`). */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest ancestor holding `pnpm-workspace.yaml`. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('pnpm-workspace.yaml not found above the test directory');
    dir = up;
  }
}

/**
 * `<repo root>/../shared/histories` (or `$PAXKV_SHARED_HISTORIES`, for a clone that lives
 * elsewhere, such as a git worktree), or `undefined` when that folder is absent.
 */
export function sharedHistories(): string | undefined {
  const dir = process.env.PAXKV_SHARED_HISTORIES ?? join(repoRoot(), '..', 'shared', 'histories');
  return existsSync(dir) ? dir : undefined;
}
