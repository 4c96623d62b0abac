#!/usr/bin/env node
// The one test command (`pnpm test`): build every package, run every vitest project once from the
// root, run the package hygiene checks (publint, attw), and end with one line `N passed, M failed`.
// Extra arguments are passed to vitest (for example a file filter).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkPackages } from './check-packages.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = {
  ...process.env,
  TURBO_TELEMETRY_DISABLED: '1',
  FORCE_COLOR: process.env.CI ? '0' : process.env.FORCE_COLOR,
};
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });

let passed = 0;
let failed = 0;

// Whatever happens below (a crash of this script included), the run ends with the summary line.
try {
  console.log('== build (turbo) ==');
  const build = run('pnpm', ['-s', 'build']);
  if (build.status !== 0) {
    console.error('build failed');
    failed += 1;
  }

  console.log('== tests (vitest) ==');
  const outDir = join(root, 'test-results');
  mkdirSync(outDir, { recursive: true });
  const jsonFile = join(outDir, 'vitest.json');
  rmSync(jsonFile, { force: true });
  const vitest = run('pnpm', [
    'exec',
    'vitest',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${jsonFile}`,
    ...process.argv.slice(2),
  ]);
  if (existsSync(jsonFile)) {
    const report = JSON.parse(readFileSync(jsonFile, 'utf8'));
    passed += report.numPassedTests ?? 0;
    failed += report.numFailedTests ?? 0;
    // Test files that failed without a failed assertion (import or collect errors).
    for (const file of report.testResults ?? []) {
      const failedInFile = (file.assertionResults ?? []).filter((a) => a.status === 'failed').length;
      if (file.status === 'failed' && failedInFile === 0) {
        console.error(`test file failed to run: ${file.name}: ${file.message ?? ''}`);
        failed += 1;
      }
    }
    if (vitest.status !== 0 && failed === 0) {
      console.error('vitest exited non-zero with no failed test (unhandled error?)');
      failed += 1;
    }
  } else {
    console.error('vitest wrote no report');
    failed += 1;
  }

  if (process.argv.length <= 2) {
    console.log('== package checks (publint, attw, import/require, bins) ==');
    const pkg = checkPackages(root);
    passed += pkg.passed;
    failed += pkg.failed;

    for (const [label, script] of [
      ['typecheck (tsc --build)', 'typecheck'],
      ['lint (biome check)', 'lint'],
    ]) {
      console.log(`== ${label} ==`);
      const r = run('pnpm', ['-s', script]);
      if (r.status === 0) {
        passed += 1;
        console.log(`  ok   ${label}`);
      } else {
        failed += 1;
        console.log(`  FAIL ${label}`);
      }
    }
  }
} catch (e) {
  console.error(`test runner error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  failed += 1;
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
