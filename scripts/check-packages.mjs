#!/usr/bin/env node
// Package hygiene: every publishable package in packages/* must pass `publint --strict` and
// `attw --pack` (ESM only, so the CommonJS resolution modes are ignored). Run after `pnpm build`.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Runs the checks and returns the counts; prints one line per check. */
export function checkPackages(root) {
  let passed = 0;
  let failed = 0;
  const dir = join(root, 'packages');
  for (const name of readdirSync(dir).sort()) {
    const pkgDir = join(dir, name);
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    if (pkg.private) continue;
    const checks = [
      ['publint', ['exec', 'publint', '--strict', pkgDir]],
      ['attw', ['exec', 'attw', '--pack', pkgDir, '--profile', 'esm-only', '--format', 'ascii']],
    ];
    for (const [label, args] of checks) {
      const r = spawnSync('pnpm', args, { cwd: root, encoding: 'utf8' });
      if (r.status === 0) {
        passed += 1;
        console.log(`  ok   ${label} ${pkg.name}`);
      } else {
        failed += 1;
        console.log(`  FAIL ${label} ${pkg.name}\n${r.stdout}\n${r.stderr}`);
      }
    }
  }
  return { passed, failed };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const { passed, failed } = checkPackages(root);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}
