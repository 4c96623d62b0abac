import type { WarmUpOptions, WarmUpReport } from '@paxkv/kvstore';
import { describe, expect, it } from 'vitest';
import type { LogFn, ServerLogger } from './logger.js';
import { ServerWarmUp } from './warm-up.js';

const REPORT: WarmUpReport = {
  steps: 10,
  operations: 5,
  reconfigurations: 2,
  joins: 2,
  removals: 2,
  aborted: false,
};

function recordingLog(): { log: ServerLogger; lines: string[] } {
  const lines: string[] = [];
  const fn: LogFn = (_fields, message) => lines.push(message);
  return { log: { debug: fn, info: fn, warn: fn, error: fn }, lines };
}

/** A run that ends when `finish()` is called, or as aborted when its signal fires. */
function controlledRun() {
  const calls: WarmUpOptions[] = [];
  let finish: (r: WarmUpReport) => void = () => {};
  const run = (o: WarmUpOptions = {}) => {
    calls.push(o);
    return new Promise<WarmUpReport>((resolve) => {
      finish = resolve;
      o.signal?.addEventListener('abort', () => resolve({ ...REPORT, aborted: true }));
    });
  };
  return { run, calls, finish: (r: WarmUpReport) => finish(r) };
}

const until = async (pred: () => boolean) => {
  while (!pred()) await new Promise<void>((r) => setTimeout(r, 1));
};

describe('ServerWarmUp', () => {
  it('runs once after the delay and logs what it did', async () => {
    const { log, lines } = recordingLog();
    const c = controlledRun();
    const w = new ServerWarmUp({ warmUp: true, warmUpDelayMs: 5 }, log, c.run);
    expect(w.state).toBe('scheduled');
    w.start();
    w.start();
    expect(c.calls).toHaveLength(0);
    await until(() => c.calls.length > 0);
    expect(w.state).toBe('running');
    c.finish(REPORT);
    await until(() => w.report !== undefined);
    expect(w.state).toBe('done');
    expect(lines.some((l) => l.startsWith('warm-up done in') && l.includes('2 reconfigurations'))).toBe(true);
    await w.close();
    expect(c.calls).toHaveLength(1);
  });

  it('never runs when it is off', async () => {
    const c = controlledRun();
    const w = new ServerWarmUp({ warmUp: false, warmUpDelayMs: 0 }, recordingLog().log, c.run);
    w.start();
    await new Promise<void>((r) => setTimeout(r, 5));
    expect(c.calls).toHaveLength(0);
    expect(w.state).toBe('off');
    await w.close();
  });

  it('close() before the delay cancels the run; close() during it stops it', async () => {
    const early = controlledRun();
    const a = new ServerWarmUp({ warmUp: true, warmUpDelayMs: 5 }, recordingLog().log, early.run);
    a.start();
    await a.close();
    expect(a.state).toBe('stopped');
    await new Promise<void>((r) => setTimeout(r, 10));
    expect(early.calls).toHaveLength(0);

    const during = controlledRun();
    const { log, lines } = recordingLog();
    const b = new ServerWarmUp({ warmUp: true, warmUpDelayMs: 0 }, log, during.run);
    b.start();
    await until(() => during.calls.length > 0);
    await b.close();
    expect(during.calls[0]?.signal?.aborted).toBe(true);
    expect(b.report?.aborted).toBe(true);
    expect(b.state).toBe('stopped');
    expect(lines).toEqual([]);
  });

  it('logs a failed run as a warning and does not throw', async () => {
    const { log, lines } = recordingLog();
    const w = new ServerWarmUp({ warmUp: true, warmUpDelayMs: 0 }, log, () =>
      Promise.reject(new Error('boom')),
    );
    w.start();
    await until(() => lines.length > 0);
    expect(lines[0]).toContain('warm-up failed');
    expect(w.state).toBe('failed');
    await w.close();
  });
});
