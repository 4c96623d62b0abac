import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { runCliCaptured } from '../test/run-cli.js';
import { isAlive, isServerProcess, processState } from './cluster.js';
import { bashCompletion, zshCompletion } from './completion.js';
import { DialError, dialAny } from './dial.js';
import { editDistance, suggest } from './suggest.js';
import { bytesToValue, resolveValue, ValueInputError } from './value-input.js';
import { formatHealth, renderTable } from './views.js';

const run = (args: string[], env: Record<string, string> = {}) =>
  runCliCaptured(args, { PAXKV_SERVERS: '', ...env });

describe('unknown commands', () => {
  it('names the command and suggests the closest one', async () => {
    const r = await run(['clustr']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "clustr" (did you mean "cluster"?)');
    const far = await run(['frob']);
    expect(far.stderr).toContain('unknown command "frob"');
    expect(far.stderr).not.toContain('too many arguments');
  });

  it('suggests by edit distance and prefix, and not for far words', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(suggest('gte', ['get', 'put'])).toBe('get');
    expect(suggest('clu', ['cluster', 'cas'])).toBe('cluster');
    expect(suggest('frob', ['get', 'put', 'cas'])).toBeNull();
  });
});

describe('value input', () => {
  it('reads stdin for `-`, a file for --file, byte for byte; bytes that are not UTF-8 stay bytes', async () => {
    expect(await resolveValue('-', undefined, Readable.from([Buffer.from('a\nb\n')]))).toBe('a\nb\n');
    expect(await resolveValue('plain', undefined, Readable.from([]))).toBe('plain');
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-value-'));
    const bin = Buffer.from([0xff, 0x00, 0xfe]);
    writeFileSync(join(dir, 'v.bin'), bin);
    const fromFile = await resolveValue(undefined, join(dir, 'v.bin'), Readable.from([]));
    expect(typeof fromFile).not.toBe('string');
    expect(Buffer.from(fromFile as Uint8Array).equals(bin)).toBe(true);
    expect(bytesToValue(Buffer.from('héllo'))).toBe('héllo');
    await expect(resolveValue('x', join(dir, 'v.bin'), Readable.from([]))).rejects.toThrow(ValueInputError);
    await expect(resolveValue(undefined, undefined, Readable.from([]))).rejects.toThrow(/missing value/);
    await expect(resolveValue(undefined, join(dir, 'nope'), Readable.from([]))).rejects.toThrow(
      /cannot read/,
    );
  });
});

describe('--dial-timeout', () => {
  it('fails fast when no server accepts a connection, naming each', async () => {
    await expect(dialAny(['127.0.0.1:1'], 5000)).rejects.toThrow(DialError);
    const r = await run(['--servers', '127.0.0.1:1', '--dial-timeout', '5000', 'get', 'k']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot connect to any server.*127\.0\.0\.1:1/);
  });
});

describe('output formats', () => {
  it('renders tables, simple lines and JSON', () => {
    expect(
      renderTable(
        ['A', 'BB'],
        [
          ['x', 'y'],
          ['long', 'z'],
        ],
      ),
    ).toBe('A     BB\nx     y\nlong  z');
    const rows = [
      { endpoint: 'h:1', health: true, tookMs: 1.25 },
      { endpoint: 'h:2', health: false, tookMs: 3, error: 'refused' },
    ];
    expect(formatHealth(rows, 'simple')).toBe('h:1 is healthy: took 1.3 ms\nh:2 is unhealthy: refused');
    expect(JSON.parse(formatHealth(rows, 'json'))).toEqual(rows);
  });
});

describe('completion', () => {
  const program = new Command('paxkv').option('--servers <list>');
  program.command('get').option('--stale');
  const cluster = program.command('cluster').description('local cluster');
  cluster.command('start').option('--dir <dir>');
  cluster.command('stop');

  it('gives a bash script that completes commands, subcommands and options', () => {
    const script = bashCompletion(program);
    const complete = (words: string[]) => {
      const r = spawnSync(
        'bash',
        [
          '-c',
          `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _paxkv; echo "\${COMPREPLY[*]}"`,
        ],
        { encoding: 'utf8' },
      );
      expect(r.stderr).toBe('');
      return r.stdout.trim();
    };
    expect(complete(['paxkv', 'cl'])).toBe('cluster');
    expect(complete(['paxkv', 'cluster', 'st'])).toBe('start stop');
    expect(complete(['paxkv', 'cluster', 'start', '--d'])).toBe('--dir');
    expect(complete(['paxkv', 'get', '--'])).toBe('--stale');
  });

  it('gives a zsh script', () => {
    const script = zshCompletion(program);
    expect(script.startsWith('#compdef paxkv')).toBe(true);
    expect(script).toContain("'cluster:local cluster'");
    const zsh = spawnSync('zsh', ['-n'], { input: script, encoding: 'utf8' });
    if (!zsh.error) expect(zsh.status).toBe(0); // syntax-checked where zsh is installed
  });
});

describe('launcher liveness', () => {
  it('does not take a zombie for a running server, nor a live process of another dir', async () => {
    // `sh` starts a child, SIGKILLs it and execs into sleep, which never reaps it: the child stays a zombie.
    const sh = spawn('sh', ['-c', 'sleep 1000 & echo $!; kill -9 $!; exec sleep 600'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const pid = Number(await new Promise<string>((r) => sh.stdout.once('data', (d) => r(String(d)))));
      const deadline = Date.now() + 10_000;
      while (processState(pid) !== 'Z' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(processState(pid)).toBe('Z');
      expect(isAlive(pid)).toBe(true); // kill(pid, 0) succeeds on a zombie...
      expect(isServerProcess({ pid, dataDir: '/x' })).toBe(false); // ...the launcher is not fooled
    } finally {
      sh.kill('SIGKILL');
    }
    const dir = mkdtempSync(join(tmpdir(), 'paxkv-live-'));
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)', join(dir, 'node-1')], {
      stdio: 'ignore',
    });
    try {
      await new Promise((r) => live.once('spawn', r));
      expect(isServerProcess({ pid: live.pid as number, dataDir: join(dir, 'node-1') })).toBe(true);
      expect(isServerProcess({ pid: live.pid as number, dataDir: join(dir, 'node-2') })).toBe(false);
    } finally {
      live.kill('SIGKILL');
    }
  });
});
