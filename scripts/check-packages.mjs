#!/usr/bin/env node
// Package hygiene, run after `pnpm build` on every publishable package of packages/* and apps/*:
// - `publint --strict` (the manifest: exports, files, bin);
// - `attw --pack --profile node16` (types resolve from ESM, from CommonJS and for bundlers; node10
//   resolution, which knows no exports map, is not a target). The packages
//   are ESM with a `default` condition: on Node >= 20.19 (our `engines`) `require()` loads them, so attw's
//   "CJS resolves to ESM" note is expected and ignored; everything else must be green;
// - every exported entry point really loads, with `import` and with `require`, in a plain Node process
//   (no custom condition: the built dist, as a user gets it).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The publishable packages (not private) of packages/* and apps/*: `{ dir, pkg }`. */
export function publishablePackages(root) {
  const out = [];
  for (const group of ['packages', 'apps']) {
    const dir = join(root, group);
    for (const name of readdirSync(dir).sort()) {
      const pkgDir = join(dir, name);
      let pkg;
      try {
        pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
      } catch {
        continue;
      }
      if (!pkg.private) out.push({ dir: pkgDir, pkg });
    }
  }
  return out;
}

/** The JavaScript entry points of an exports map (`.`, `./testing`...), as specifiers. */
function entryPoints(pkg) {
  return Object.entries(pkg.exports ?? {})
    .filter(([, target]) => typeof target === 'object' && target !== null)
    .map(([sub]) => (sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`));
}

/** Runs the checks and returns the counts; prints one line per check. */
export function checkPackages(root) {
  let passed = 0;
  let failed = 0;
  const report = (ok, label, detail) => {
    if (ok) passed += 1;
    else failed += 1;
    console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${label}${ok ? '' : `\n${detail}`}`);
  };
  for (const { dir, pkg } of publishablePackages(root)) {
    const checks = [['publint', ['exec', 'publint', '--strict', dir]]];
    if (entryPoints(pkg).length > 0) {
      checks.push([
        'attw',
        [
          'exec',
          'attw',
          '--pack',
          dir,
          '--profile',
          'node16',
          '--ignore-rules',
          'cjs-resolves-to-esm',
          '--format',
          'ascii',
        ],
      ]);
    }
    for (const [label, args] of checks) {
      const r = spawnSync('pnpm', args, { cwd: root, encoding: 'utf8' });
      report(r.status === 0, `${label} ${pkg.name}`, `${r.stdout}\n${r.stderr}`);
    }
    // A package can name itself through its own exports map: this resolves exactly as a user's would.
    for (const spec of entryPoints(pkg)) {
      const s = JSON.stringify(spec);
      for (const [how, args] of [
        ['require', ['-e', `const m = require(${s}); if (Object.keys(m).length === 0) process.exit(3);`]],
        [
          'import',
          [
            '--input-type=module',
            '-e',
            `const m = await import(${s}); if (Object.keys(m).length === 0) process.exit(3);`,
          ],
        ],
      ]) {
        const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });
        report(r.status === 0 && !/Warning/.test(r.stderr), `${how}('${spec}')`, `${r.stdout}\n${r.stderr}`);
      }
    }
    // Every bin runs and answers --version.
    for (const [bin, file] of Object.entries(pkg.bin ?? {})) {
      const r = spawnSync(process.execPath, [join(dir, file), '--version'], { cwd: dir, encoding: 'utf8' });
      const ok = r.status === 0 && r.stdout.trim() === pkg.version;
      report(
        ok,
        `${bin} --version`,
        `expected ${pkg.version}, got status ${r.status}: ${r.stdout}${r.stderr}`,
      );
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
