/**
 * `paxkv-server` refuses to start without peer authentication (no cluster token, no TLS) unless
 * `--insecure` is given: without it, one forged max-ballot `Prepare` from any process that reaches the
 * port stalls a partition for good (issue 14). Every test harness passes a token, TLS or `--insecure`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { insecureStartProblem, parseServerConfig } from './config.js';

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const main = fileURLToPath(new URL('./main.ts', import.meta.url));

describe('starting without peer authentication', () => {
  it('is refused unless insecure, and allowed with a token or TLS', () => {
    expect(insecureStartProblem(parseServerConfig({}))).toMatch(/--cluster-token-file.*--insecure/s);
    expect(insecureStartProblem(parseServerConfig({ insecure: true }))).toBeNull();
    expect(insecureStartProblem(parseServerConfig({ clusterToken: 'x'.repeat(16) }))).toBeNull();
    expect(insecureStartProblem(parseServerConfig({ clusterTokenFile: '/etc/paxkv/token' }))).toBeNull();
    expect(
      insecureStartProblem(parseServerConfig({ tlsCert: 'c.pem', tlsKey: 'k.pem', tlsCa: 'ca.pem' })),
    ).toBeNull();
  });

  it('makes paxkv-server exit 2 with what to do, before it listens or writes anything', () => {
    const data = join(mkdtempSync(join(tmpdir(), 'paxkv-insecure-')), 'data');
    const r = spawnSync(
      process.execPath,
      ['--conditions=@paxkv/source', '--import', tsx, main, '--port', '0', '--data-dir', data],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PAXKV_CLUSTER_TOKEN: '' } },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /paxkv-server: no peer authentication: .*--cluster-token-file.*pass --insecure/s,
    );
    expect(r.stderr).not.toMatch(/listening/);
    expect(() => readdirSync(data)).toThrow(/ENOENT/);
  }, 60_000);

  it('takes the token from PAXKV_CLUSTER_TOKEN as well (then it gets past the check)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-insecure-'));
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, '');
    const r = spawnSync(
      process.execPath,
      ['--conditions=@paxkv/source', '--import', tsx, main, '--port', '0', '--data-dir', join(file, 'data')],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PAXKV_CLUSTER_TOKEN: 'y'.repeat(32) } },
    );
    // Past the peer-authentication check: it fails on the data dir (exit 1), not on security (exit 2).
    expect(r.stderr).not.toMatch(/no peer authentication/);
    expect(r.status).toBe(1);
  }, 60_000);
});
