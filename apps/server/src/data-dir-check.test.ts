import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkDataDir, DataDirError } from './data-dir-check.js';

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const main = fileURLToPath(new URL('./main.ts', import.meta.url));

describe('checkDataDir', () => {
  it('creates a missing dir, leaves no probe behind, and accepts readable files', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'paxkv-dd-')), 'a', 'b');
    checkDataDir(dir);
    mkdirSync(join(dir, 'wal'));
    writeFileSync(join(dir, 'wal', 'seg-1'), 'x');
    checkDataDir(dir);
    expect(readdirSync(dir)).toEqual(['wal']);
  });

  it('refuses a data dir that cannot be created or written, saying what to do', () => {
    const base = mkdtempSync(join(tmpdir(), 'paxkv-dd-'));
    writeFileSync(join(base, 'file'), 'not a dir');
    expect(() => checkDataDir(join(base, 'file', 'data'))).toThrow(DataDirError);
    expect(() => checkDataDir(join(base, 'file', 'data'))).toThrow(
      /cannot create the data dir .*ENOTDIR.*--data-dir/,
    );
    expect(() => checkDataDir(join(base, 'file'))).toThrow(/cannot create|not writable/);
  });

  it('makes the server exit 1 at once with the message, before it listens', () => {
    const base = mkdtempSync(join(tmpdir(), 'paxkv-dd-'));
    writeFileSync(join(base, 'file'), 'not a dir');
    const r = spawnSync(
      process.execPath,
      [
        '--conditions=@paxkv/source',
        '--import',
        tsx,
        main,
        '--port',
        '0',
        '--data-dir',
        join(base, 'file', 'data'),
        '--insecure',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/paxkv-server: cannot create the data dir .*ENOTDIR/);
    expect(r.stderr).not.toMatch(/listening/);
  }, 60_000);

  it('makes the server exit 1 on a data dir it may not write (EACCES), as root too', () => {
    // A dir the server's user cannot write. chmod does not stop root (CAP_DAC_OVERRIDE), so as root the
    // server runs as `nobody` (uid/gid 65534), for which a root-owned 0555 dir is read-only.
    const base = mkdtempSync(join(tmpdir(), 'paxkv-dd-'));
    chmodSync(base, 0o755);
    const data = join(base, 'data');
    mkdirSync(data, { mode: 0o555 });
    chmodSync(data, 0o555);
    const asRoot = process.getuid?.() === 0;
    const r = spawnSync(
      process.execPath,
      ['--conditions=@paxkv/source', '--import', tsx, main, '--port', '0', '--data-dir', data, '--insecure'],
      {
        encoding: 'utf8',
        timeout: 60_000,
        ...(asRoot ? { uid: 65534, gid: 65534, env: { ...process.env, HOME: tmpdir() } } : {}),
      },
    );
    chmodSync(data, 0o755);
    expect(r.stderr).toMatch(/paxkv-server: the data dir .* is not writable \(EACCES\): fix its permissions/);
    expect(r.stderr).not.toMatch(/listening/);
    expect(r.status).toBe(1);
  }, 60_000);
});
