import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
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
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/paxkv-server: cannot create the data dir .*ENOTDIR/);
    expect(r.stderr).not.toMatch(/listening/);
  }, 60_000);
});
