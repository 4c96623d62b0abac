import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  applyV8Flags,
  DEFAULT_SERVER_V8_FLAGS,
  SERVER_V8_FLAGS_ENV,
  serverV8Flags,
  V8FlagsError,
} from './v8-tuning.js';

describe('server V8 flags', () => {
  it('defaults to the inlining cap, which PAXKV_V8_FLAGS replaces (empty: none)', () => {
    expect(serverV8Flags({})).toEqual(['--max-inlined-bytecode-size-cumulative=230']);
    expect(serverV8Flags({})).toBe(DEFAULT_SERVER_V8_FLAGS);
    expect(serverV8Flags({ [SERVER_V8_FLAGS_ENV]: '' })).toEqual([]);
    expect(serverV8Flags({ [SERVER_V8_FLAGS_ENV]: '  --a=1   --b ' })).toEqual(['--a=1', '--b']);
  });

  it('refuses a word that is not a flag, naming it', () => {
    expect(() => serverV8Flags({ [SERVER_V8_FLAGS_ENV]: '--a max' })).toThrow(V8FlagsError);
    expect(() => serverV8Flags({ [SERVER_V8_FLAGS_ENV]: '--a max' })).toThrow(/'max'/);
  });

  it('sets each flag in order', () => {
    const set: string[] = [];
    applyV8Flags(['--a', '--b=2'], (f) => set.push(f));
    expect(set).toEqual(['--a', '--b=2']);
  });

  it('makes paxkv-server exit 2 on a PAXKV_V8_FLAGS that is not a list of flags, saying why', () => {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const main = fileURLToPath(new URL('./main.ts', import.meta.url));
    const r = spawnSync(process.execPath, ['--conditions=@paxkv/source', '--import', tsx, main, '--help'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, [SERVER_V8_FLAGS_ENV]: '--stack-size=2000 lots' },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/paxkv-server: PAXKV_V8_FLAGS takes V8 flags .* got 'lots'/);
  }, 60_000);
});
