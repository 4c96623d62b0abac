import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  cpuShareSince,
  cpuSnapshot,
  mainThreadCpuSeconds,
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
    // The main thread is part of the process: never more than the whole (read second, so any tick
    // the process gains in between only widens the gap).
    const main = mainThreadCpuSeconds(process.pid);
    expect(main).toBeGreaterThan(0);
    expect(main).toBeLessThanOrEqual(processCpuSeconds(process.pid) ?? 0);
    expect(mainThreadCpuSeconds(2 ** 22 + 12_345)).toBeUndefined();
  });

  it('attributes a busy server process to the servers and idle time to nobody', async () => {
    // The child says when its busy loop starts; the measurement then runs until the child has used
    // 0.2 s of CPU, however long that takes on a loaded machine (events, not a fixed window).
    const child = spawn(process.execPath, ['-e', 'process.stdout.write("busy\\n"); for (;;) {}']);
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('error', reject);
      });
      const pid = child.pid as number;
      const snap = cpuSnapshot([pid]);
      const before = processCpuSeconds(pid) ?? 0;
      const guard = Date.now() + 120_000;
      while ((processCpuSeconds(pid) ?? 0) - before < 0.2) {
        if (Date.now() > guard) throw new Error('the busy child used under 0.2 s of CPU in 120 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      const share = cpuShareSince(snap);
      // A busy loop uses at most about one core; this process mostly waited.
      expect(share.serversPct).toBeGreaterThan(0);
      expect(share.serversPct).toBeLessThan(110);
      expect(share.serversPct).toBeGreaterThan(share.loadgenPct);
      expect(share.loadgenPct).toBeLessThan(50);
      expect(share.cores).toBeGreaterThan(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 180_000);
});
