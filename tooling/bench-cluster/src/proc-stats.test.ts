import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  cpuShareSince,
  cpuSnapshot,
  parseProcStat,
  processCpuSeconds,
  processRssBytes,
} from './proc-stats.js';

describe('parseProcStat', () => {
  it('splits after the last parenthesis, so odd command names do not shift the fields', () => {
    const line =
      '4242 (node (worker) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 567 0 0 20 0 11 0 100 1000000 2560 18446744073709551615';
    expect(parseProcStat(line)).toEqual({ cpuTicks: 1234 + 567, rssPages: 2560 });
  });

  it('rejects lines of another form', () => {
    expect(parseProcStat('garbage')).toBeUndefined();
    expect(parseProcStat('1 (x) S 1 2')).toBeUndefined();
  });
});

describe.runIf(process.platform === 'linux')('process counters', () => {
  it('reads this process', () => {
    expect(processCpuSeconds(process.pid)).toBeGreaterThan(0);
    expect(processRssBytes(process.pid)).toBeGreaterThan(10 * 1024 * 1024);
    expect(processCpuSeconds(2 ** 22 + 12_345)).toBeUndefined();
  });

  it('attributes a busy server process to the servers and idle time to nobody', async () => {
    const child = spawn(process.execPath, [
      '-e',
      'const end = Date.now() + 1500; while (Date.now() < end) {}',
    ]);
    try {
      await new Promise((r) => setTimeout(r, 100));
      const snap = cpuSnapshot([child.pid as number]);
      await new Promise((r) => setTimeout(r, 800));
      const share = cpuShareSince(snap);
      // A busy loop uses about one core (less when other work shares the cores).
      expect(share.serversPct).toBeGreaterThan(5);
      expect(share.serversPct).toBeLessThan(110);
      expect(share.loadgenPct).toBeLessThan(50);
      expect(share.cores).toBeGreaterThan(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
