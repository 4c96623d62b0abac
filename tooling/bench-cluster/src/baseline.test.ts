import { describe, expect, it } from 'vitest';
import { baselineArgs, helpWorkloads, splitWorkloads } from './baseline.js';
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
});
