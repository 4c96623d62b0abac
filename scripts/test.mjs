#!/usr/bin/env node
// The one test command (`pnpm test`): build every package, run every vitest project once from the
// root, run the package hygiene checks (publint, attw), and end with one line `N passed, M failed`.
// Extra arguments are passed to vitest (for example a file filter). `--soak` (`pnpm test:soak`) sets
// PAXKV_SOAK=1: the tests that have a longer tier (more simulator seeds, more nemesis seeds, longer chaos
// runs) run it. Every step prints how long it took.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkPackages } from './check-packages.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const soak = process.argv.includes('--soak');
const args = process.argv.slice(2).filter((a) => a !== '--soak');
const env = {
  ...process.env,
  ...(soak ? { PAXKV_SOAK: '1' } : {}),
  TURBO_TELEMETRY_DISABLED: '1',
  FORCE_COLOR: process.env.CI ? '0' : process.env.FORCE_COLOR,
};
const run = (cmd, argv) => spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', env });

let passed = 0;
let failed = 0;
/** Each failed test with the first lines of its error, printed again just before the summary line. */
const failures = [];
/** How many lines of a failed test's error the end of the run repeats. */
const failureLinesShown = 12;
const started = Date.now();
let stepStart = 0;
/** Prints the step's header and the time the previous step took. */
function step(label) {
  const now = Date.now();
  if (stepStart > 0) console.log(`   (${((now - stepStart) / 1000).toFixed(1)} s)`);
  stepStart = now;
  console.log(`== ${label} ==`);
}

// Whatever happens below (a crash of this script included), the run ends with the summary line.
try {
  if (soak) console.log('PAXKV_SOAK=1: the long tier of every test that has one');
  step('build (turbo)');
  const build = run('pnpm', ['-s', 'build']);
  if (build.status !== 0) {
    console.error('build failed');
    failed += 1;
  }

  step('tests (vitest)');
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
    ...args,
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
    // The failed tests again at the end, where a CI log's tail shows them.
    for (const file of report.testResults ?? []) {
      for (const a of file.assertionResults ?? []) {
        if (a.status !== 'failed') continue;
        const where = relative(root, file.name);
        const why = String(a.failureMessages?.[0] ?? '')
          .split('\n')
          .filter((line) => !/^\s*at .*(node_modules|node:internal|<anonymous>)/.test(line))
          .slice(0, failureLinesShown)
          .join('\n      ');
        failures.push(`FAILED ${where} > ${a.fullName}\n      ${why}`);
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

  if (args.length === 0) {
    step('package checks (publint, attw, import/require, bins)');
    const pkg = checkPackages(root);
    passed += pkg.passed;
    failed += pkg.failed;

    for (const [label, script] of [
      ['typecheck (tsc --build)', 'typecheck'],
      ['lint (biome check)', 'lint'],
    ]) {
      step(label);
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

if (stepStart > 0) console.log(`   (${((Date.now() - stepStart) / 1000).toFixed(1)} s)`);
for (const f of failures) console.log(f);
console.log(`   (whole run ${((Date.now() - started) / 1000).toFixed(0)} s)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
