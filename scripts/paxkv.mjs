#!/usr/bin/env node
// `pnpm paxkv ...` in a clone: builds the CLI and what it needs (turbo, cached; its output is shown only
// when the build fails), then runs `paxkv` with the arguments. Use `pnpm -s paxkv ...` in
// scripts: without -s, pnpm prints its own two-line header on stdout first.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'apps', 'cli', 'dist', 'main.js');
if (!existsSync(main)) process.stderr.write('building paxkv (the first time takes a minute)...\n');
const build = spawnSync(
  'pnpm',
  ['exec', 'turbo', 'run', 'build', '--filter=@paxkv/cli...', '--output-logs=errors-only'],
  { cwd: root, encoding: 'utf8', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } },
);
if (build.status !== 0) {
  process.stderr.write(
    `${build.stdout ?? ''}${build.stderr ?? ''}paxkv: building the CLI failed (see above)\n`,
  );
  process.exit(2);
}
// The user's working directory (pnpm runs scripts from the root; INIT_CWD is where `pnpm` was typed).
const invokedAs = process.env.npm_lifecycle_event === 'start' ? 'pnpm start' : 'pnpm paxkv';
const cli = spawn(process.execPath, [main, ...process.argv.slice(2)], {
  stdio: 'inherit',
  cwd: process.env.INIT_CWD ?? process.cwd(),
  env: { ...process.env, PAXKV_INVOKED_AS: invokedAs },
});
// Ctrl-C reaches the CLI itself (same process group): it decides what to do (stop its cluster), and this
// wrapper only waits for it. SIGTERM and SIGHUP sent to the wrapper are passed on.
process.on('SIGINT', () => {});
for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => cli.kill(signal));
cli.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
