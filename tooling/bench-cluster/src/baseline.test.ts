import { describe, expect, it } from 'vitest';
import { baselineArgs, helpHasFlag, helpWorkloads, splitWorkloads } from './baseline.js';
import { parseBenchArgs, USAGE } from './options.js';

// Milestone 1's (e4ba261) help line, verbatim.
const MILESTONE1_HELP = '  --workloads LIST        put,get,mixed,cas (default all)\n  --concurrency LIST ...';

describe('baseline workloads', () => {
  it('reads the workloads a bench:cluster lists in its help, ours included', () => {
    expect(helpWorkloads(MILESTONE1_HELP)).toEqual(['put', 'get', 'mixed', 'cas']);
    expect(helpWorkloads(USAGE)).toEqual(['put', 'get', 'mixed', 'cas', 'txn', 'range']);
    expect(helpWorkloads('usage: nothing about workloads')).toBeUndefined();
  });

  it('passes the baseline only the workloads it knows and names the rest', () => {
    const parsed = parseBenchArgs(['--workloads', 'put,txn,get,range', '--baseline', 'e4ba261']);
    if (parsed.help) throw new Error('unexpected --help');
    const { options } = parsed;
    const split = splitWorkloads(options.workloads, helpWorkloads(MILESTONE1_HELP));
    expect(split).toEqual({ run: ['put', 'get'], skipped: ['txn', 'range'] });
    const args = baselineArgs(options, '/tmp/x.json', split.run);
    expect(args[args.indexOf('--workloads') + 1]).toBe('put,get');
    expect(splitWorkloads(options.workloads, undefined).skipped).toEqual([]);
  });

  it("profiles the baseline servers beside this run's when --cpu-prof is given and its bench knows the flag", () => {
    const help = '  --cpu-prof DIR          run the paxkv servers under node --cpu-prof, profiles into DIR\n';
    expect(helpHasFlag(help, '--cpu-prof')).toBe(true);
    expect(helpHasFlag(MILESTONE1_HELP, '--cpu-prof')).toBe(false);
    expect(helpHasFlag(USAGE, '--cpu-prof')).toBe(true);
    const parsed = parseBenchArgs(['--workloads', 'get', '--baseline', 'e4ba261', '--cpu-prof', '/tmp/p']);
    if (parsed.help) throw new Error('unexpected --help');
    const args = baselineArgs(parsed.options, '/tmp/x.json', ['get'], help);
    expect(args.slice(args.indexOf('--cpu-prof'), args.indexOf('--cpu-prof') + 2)).toEqual([
      '--cpu-prof',
      '/tmp/p/baseline',
    ]);
    expect(baselineArgs(parsed.options, '/tmp/x.json', ['get'], MILESTONE1_HELP)).not.toContain('--cpu-prof');
  });
});
