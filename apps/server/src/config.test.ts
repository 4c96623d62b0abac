import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseServerConfig } from './config.js';
import { loadServerConfig } from './server-flags.js';

function tempFile(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'paxkv-config-'));
  const file = join(dir, 'server.json');
  writeFileSync(file, content);
  return file;
}

const silent = { writeOut: () => {}, writeErr: () => {} };

describe('server configuration', () => {
  it('has documented defaults', () => {
    const c = parseServerConfig({});
    expect(c).toMatchObject({
      port: 7000,
      host: '127.0.0.1',
      fsync: 'batch',
      bootstrapThreshold: 3,
      replication: 3,
      partitions: 16,
      logLevel: 'info',
    });
    expect(c.join).toBeUndefined();
    expect(c.httpPort).toBeUndefined();
  });

  it('lets flags override the config file, which overrides defaults', () => {
    const file = tempFile(JSON.stringify({ port: 7100, fsync: 'always', partitions: 8, httpPort: 9100 }));
    const c = loadServerConfig(
      ['--config', file, '--port', '7200', '--join', '127.0.0.1:7000', '--data-dir', 'd'],
      '1.0.0',
      silent,
    );
    expect(c.port).toBe(7200);
    expect(c.fsync).toBe('always');
    expect(c.partitions).toBe(8);
    expect(c.httpPort).toBe(9100);
    expect(c.join).toBe('127.0.0.1:7000');
    expect(c.dataDir.endsWith('/d')).toBe(true);
  });

  it.each([
    [['--port', 'abc'], /--port/],
    [['--port', '70000'], /port/],
    [['--fsync', 'sometimes'], /fsync|sometimes/],
    [['--join', 'nohost'], /join/],
    [['--bogus'], /unknown option/],
    [['--partitions', '0'], /partitions/],
    [
      ['--bootstrap-threshold', '2', '--replication', '3'],
      /bootstrapThreshold: must be at least the replication/,
    ],
  ])('rejects %j naming the problem', (argv, pattern) => {
    let error: unknown;
    try {
      loadServerConfig(argv, '1.0.0', silent);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).exitCode).toBe(2);
    expect((error as Error).message).toMatch(pattern);
  });

  it('runs the start-up warm-up by default; --warm-up off or warmUp: false in the file turns it off', () => {
    expect(parseServerConfig({})).toMatchObject({ warmUp: true, warmUpDelayMs: 3000 });
    expect(loadServerConfig(['--warm-up', 'off'], '1.0.0', silent).warmUp).toBe(false);
    const file = tempFile(JSON.stringify({ warmUp: false, warmUpDelayMs: 10 }));
    expect(loadServerConfig(['--config', file], '1.0.0', silent)).toMatchObject({
      warmUp: false,
      warmUpDelayMs: 10,
    });
    // The flag wins over the file.
    expect(loadServerConfig(['--config', file, '--warm-up', 'on'], '1.0.0', silent).warmUp).toBe(true);
    expect(() => loadServerConfig(['--warm-up', 'maybe'], '1.0.0', silent)).toThrow(ConfigError);
  });

  it('rejects unknown and invalid fields of the config file', () => {
    expect(() => loadServerConfig(['--config', tempFile('{"prot": 1}')], '1', silent)).toThrow(/prot/);
    expect(() => loadServerConfig(['--config', tempFile('{"replication": "3"}')], '1', silent)).toThrow(
      /replication/,
    );
    expect(() => loadServerConfig(['--config', tempFile('not json')], '1', silent)).toThrow(/not valid JSON/);
    expect(() => loadServerConfig(['--config', '/nonexistent/x.json'], '1', silent)).toThrow(/cannot read/);
  });

  it('treats --help and --version as a clean exit', () => {
    let out = '';
    const io = { writeOut: (s: string) => (out += s), writeErr: () => {} };
    try {
      loadServerConfig(['--help'], '1.2.3', io);
    } catch (e) {
      expect((e as ConfigError).exitCode).toBe(0);
    }
    expect(out).toContain('--bootstrap-threshold');
    expect(out).toContain('--http-port');
  });
});
