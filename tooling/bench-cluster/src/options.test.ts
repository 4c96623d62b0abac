import { describe, expect, it } from 'vitest';
import { DEFAULT_BENCH_OPTIONS, parseBenchArgs, parseDuration, UsageError } from './options.js';

function options(argv: string[]) {
  const parsed = parseBenchArgs(argv);
  if (parsed.help) throw new Error('unexpected help');
  return parsed.options;
}

describe('parseBenchArgs', () => {
  it('gives the documented defaults without flags', () => {
    expect(options([])).toEqual(DEFAULT_BENCH_OPTIONS);
    expect(DEFAULT_BENCH_OPTIONS.concurrency).toEqual([1, 16, 64, 256]);
    expect(DEFAULT_BENCH_OPTIONS.workloads).toEqual(['put', 'get', 'mixed', 'cas', 'txn', 'range']);
  });

  it('parses lists, durations, numbers and switches', () => {
    const o = options([
      '--systems',
      'etcd',
      '--workloads',
      'put,cas,put',
      '--concurrency',
      '1,64',
      '--duration',
      '500ms',
      '--warmup',
      '0',
      '--json',
      'out.json',
      '--keys',
      '1_000_000',
      '--no-failover',
      '--no-memory',
      '--etcd-endpoints',
      'leader',
      '--paxkv-fsync',
      'always',
      '--cpu-prof',
      '/tmp/prof',
      '--keep',
      '--cluster-token',
    ]);
    expect(o.systems).toEqual(['etcd']);
    expect(o.workloads).toEqual(['put', 'cas']);
    expect(o.concurrency).toEqual([1, 64]);
    expect(o.durationMs).toBe(500);
    expect(o.warmupMs).toBe(0);
    expect(o.jsonFile).toBe('out.json');
    expect(o.memoryKeys).toBe(1_000_000);
    expect(o.failover).toBe(false);
    expect(o.memory).toBe(false);
    expect(o.etcdEndpoints).toBe('leader');
    expect(o.paxkvFsync).toBe('always');
    expect(o.cpuProfDir).toBe('/tmp/prof');
    expect(o.keepData).toBe(true);
    expect(o.clusterToken).toBe(true);
    expect(options([]).clusterToken).toBe(false);
  });

  it('parses the failover series, restart-all, stability, tick and baseline flags', () => {
    const o = options([
      '--failover-kills',
      '3',
      '--restart-all',
      '0',
      '--stability',
      '5s',
      '--cpu-hogs',
      '6',
      '--paxkv-tick-ms',
      '10',
      '--baseline',
      'e4ba261',
    ]);
    expect(o.failoverKills).toBe(3);
    expect(o.restartAllRounds).toBe(0);
    expect(o.stabilityMs).toBe(5_000);
    expect(o.cpuHogs).toBe(6);
    expect(o.paxkvTickMs).toBe(10);
    expect(o.baseline).toBe('e4ba261');
    expect(() => options(['--failover-kills', '0'])).toThrow(/--failover-kills/);
  });

  it('asks for help', () => {
    expect(parseBenchArgs(['--help'])).toEqual({ help: true });
  });

  it.each([
    [['--systems', 'redis'], /--systems: unknown "redis"/],
    [['--workloads', ''], /--workloads/],
    [['--concurrency', '0'], /--concurrency/],
    [['--concurrency', 'x'], /--concurrency/],
    [['--duration', 'soon'], /--duration/],
    [['--duration', '10ms'], /at least 100ms/],
    [['--preload', '200', '--key-space', '100'], /must not exceed/],
    [['--etcd-endpoints', 'some'], /--etcd-endpoints/],
    [['--bogus'], /bogus/],
    [['--keys'], /keys/],
  ])('rejects %j with a UsageError naming the flag', (argv, message) => {
    expect(() => parseBenchArgs(argv)).toThrow(UsageError);
    expect(() => parseBenchArgs(argv)).toThrow(message);
  });
});

describe('parseDuration', () => {
  it.each([
    ['5', 5_000],
    ['5s', 5_000],
    ['1.5s', 1_500],
    ['250ms', 250],
    ['2m', 120_000],
  ])('%s = %d ms', (text, ms) => {
    expect(parseDuration(text, '--d')).toBe(ms);
  });
});

describe('--reconfig server flags', () => {
  it('passes --replace-after and --move-interval-ms (0 allowed) to the figure, the server default otherwise', () => {
    const o = options(['--reconfig', '--replace-after', '7', '--move-interval-ms', '0']);
    expect(o.reconfigReplaceAfterS).toBe(7);
    expect(o.reconfigMoveIntervalMs).toBe(0);
    expect(options(['--reconfig']).reconfigMoveIntervalMs).toBeUndefined();
    expect(() => parseBenchArgs(['--move-interval-ms', 'x'])).toThrow(/--move-interval-ms/);
  });
});

describe('--server-node-args', () => {
  it('splits the node flags for every paxkv server; none by default', () => {
    expect(options([]).serverNodeArgs).toEqual([]);
    expect(options(['--server-node-args= --trace-deopt  --max-semi-space-size=64 ']).serverNodeArgs).toEqual([
      '--trace-deopt',
      '--max-semi-space-size=64',
    ]);
  });

  it('refuses an empty list and a word that is not a flag (a script would replace the server)', () => {
    expect(() => parseBenchArgs(['--server-node-args', '  '])).toThrow(UsageError);
    expect(() => parseBenchArgs(['--server-node-args=--inspect evil.js'])).toThrow(
      /node flags only.*evil\.js/,
    );
  });
});
