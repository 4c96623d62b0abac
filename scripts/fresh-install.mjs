#!/usr/bin/env node
// What a user outside the repository gets: packs every publishable package (`pnpm pack`, so
// `workspace:*` becomes real versions), installs the tarballs with plain `npm install` in fresh
// directories, and shows, as a transcript:
//  - the install size of @paxkv/client alone (what an application pulls in), package by package;
//  - `npx paxkv --version`, `npx paxkv-check --version` and `npx paxkv-check` on a history;
//  - a local cluster started with `npx paxkv cluster start --detach`, an ESM and a CommonJS script using
//    the client against it, and TypeScript resolving the client's types from both (module nodenext);
//  - the cluster stopped with `npx paxkv cluster stop`.
// Needs `pnpm build` first and the npm registry (for the third-party dependencies). Usage:
//   node scripts/fresh-install.mjs [DIR]        (default: a new directory under the OS temp dir)
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { publishablePackages } from './check-packages.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const base = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'paxkv-fresh-install-'));
mkdirSync(base, { recursive: true });
let failures = 0;

/** Runs a command in `cwd`, echoing it and its output like a terminal session. */
function sh(cwd, cmd, args, { env = {}, expectCode = 0 } = {}) {
  console.log(`$ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trimEnd();
  if (out) console.log(out);
  if (r.status !== expectCode) {
    failures += 1;
    console.log(`!! exit ${r.status ?? r.signal}, expected ${expectCode}`);
  }
  return r;
}

function duBytes(path) {
  let total = 0;
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  for (const e of readdirSync(path)) total += duBytes(join(path, e));
  return total;
}

const mb = (b) => `${(b / 1e6).toFixed(2)} MB`;

// 1. Pack.
const tarballs = join(base, 'tarballs');
mkdirSync(tarballs, { recursive: true });
const packed = new Map();
for (const { dir, pkg } of publishablePackages(root)) {
  execFileSync('pnpm', ['pack', '--pack-destination', tarballs], { cwd: dir, stdio: 'ignore' });
  const file = `${pkg.name.replace('@', '').replace('/', '-')}-${pkg.version}.tgz`;
  packed.set(pkg.name, join(tarballs, file));
}
console.log(`packed ${packed.size} packages into ${tarballs}`);
const npmInstall = (cwd, names, extra = []) =>
  sh(cwd, 'npm', [
    'install',
    '--no-audit',
    '--no-fund',
    '--loglevel=error',
    ...names.map((n) => packed.get(n)),
    ...extra,
  ]);
const freshDir = (name) => {
  const d = join(base, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(
    join(d, 'package.json'),
    `${JSON.stringify({ name, private: true, version: '1.0.0' }, null, 2)}\n`,
  );
  return d;
};

// 2. The client alone: its install size.
const clientDir = freshDir('client-only');
npmInstall(clientDir, ['@paxkv/common', '@paxkv/client']);
const nm = join(clientDir, 'node_modules');
const sizes = [];
for (const e of readdirSync(nm)) {
  if (e.startsWith('.')) continue;
  if (e.startsWith('@'))
    for (const s of readdirSync(join(nm, e))) sizes.push([`${e}/${s}`, duBytes(join(nm, e, s))]);
  else sizes.push([e, duBytes(join(nm, e))]);
}
sizes.sort((a, b) => b[1] - a[1]);
console.log(`@paxkv/client install size: ${mb(duBytes(nm))} in node_modules, ${sizes.length} packages:`);
for (const [n, b] of sizes) console.log(`  ${n.padEnd(48)} ${mb(b)}`);

// 3. Everything: the CLI, the server, the checker, the client.
const app = freshDir('app');
npmInstall(app, [...packed.keys()], ['typescript@6.0.3', '@types/node@^20.19.0']);
sh(app, 'npx', ['paxkv', '--version']);
sh(app, 'npx', ['paxkv-server', '--version']);
sh(app, 'npx', ['paxkv-check', '--version']);
cpSync(
  join(root, 'packages', 'linearizability-checker', 'test', 'fixtures', 'kv-ok.jsonl'),
  join(app, 'history.jsonl'),
);
sh(app, 'npx', ['paxkv-check', 'history.jsonl']);
const clusterDir = join(app, 'cluster');
const started = sh(app, 'npx', [
  'paxkv',
  'cluster',
  'start',
  '--detach',
  '--dir',
  clusterDir,
  '--partitions',
  '4',
]);
try {
  if (started.status === 0) {
    const servers = JSON.parse(
      spawnSync('npx', ['paxkv', '--json', 'cluster', 'status', '--dir', clusterDir], {
        cwd: app,
        encoding: 'utf8',
      }).stdout,
    ).cluster.nodes.map((n) => n.address);
    const env = { PAXKV_SERVERS: servers.join(',') };
    writeFileSync(
      join(app, 'esm.mjs'),
      `import { createClient } from '@paxkv/client';
const kv = createClient({ servers: process.env.PAXKV_SERVERS.split(',') });
await kv.put('from-esm', 'hello from import');
console.log('esm:', await kv.get('from-esm'));
await kv.close();
`,
    );
    writeFileSync(
      join(app, 'cjs.cjs'),
      `const { createClient } = require('@paxkv/client');
(async () => {
  const kv = createClient({ servers: process.env.PAXKV_SERVERS.split(',') });
  await kv.put('from-cjs', 'hello from require');
  console.log('cjs:', await kv.get('from-cjs'), '| esm wrote:', await kv.get('from-esm'));
  await kv.close();
})();
`,
    );
    sh(app, 'node', ['esm.mjs'], { env });
    sh(app, 'node', ['cjs.cjs'], { env });
    // Types from both module systems (typed, not `any`: the @ts-expect-error line must be an error).
    writeFileSync(
      join(app, 'types-esm.mts'),
      `import { createClient, type PaxkvClient } from '@paxkv/client';\nconst kv: PaxkvClient = createClient({ servers: ['127.0.0.1:1'] });\n// @ts-expect-error (only when the types resolve: a value is a string or bytes, never a number)\nconst wrong: Promise<number> = kv.get('k');\nvoid wrong;\n`,
    );
    writeFileSync(
      join(app, 'types-cjs.cts'),
      `import client = require('@paxkv/client');\nconst kv: client.PaxkvClient = client.createClient({ servers: ['127.0.0.1:1'] });\n// @ts-expect-error (only when the types resolve: a value is a string or bytes, never a number)\nconst wrong: Promise<number> = kv.get('k');\nvoid wrong;\n`,
    );
    sh(app, 'npx', [
      'tsc',
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--types',
      'node',
      'types-esm.mts',
      'types-cjs.cts',
    ]);
  }
} finally {
  sh(app, 'npx', ['paxkv', 'cluster', 'stop', '--dir', clusterDir]);
}
console.log(
  failures === 0 ? 'fresh install: every step passed' : `fresh install: ${failures} step(s) failed`,
);
process.exit(failures === 0 ? 0 : 1);
