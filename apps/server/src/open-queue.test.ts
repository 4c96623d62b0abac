import { describe, expect, it } from 'vitest';
import { OpenQueue } from './open-queue.js';

/** A job that records when it starts and ends when `finish` is called. */
function gate(started: number[], partition: number) {
  let finish!: (v: number) => void;
  let fail!: (e: Error) => void;
  const done = new Promise<number>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const job = () => {
    started.push(partition);
    return done;
  };
  return { job, finish: () => finish(partition), fail: (e: Error) => fail(e) };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

describe('OpenQueue', () => {
  it('runs one open at a time in queue order, the partitions asked for first, first asked first', async () => {
    const q = new OpenQueue();
    const started: number[] = [];
    const gates = [0, 1, 2, 3, 4].map((p) => gate(started, p));
    const results = gates.map((g, p) => q.run(p, g.job));
    await turn();
    expect(started).toEqual([0]);
    expect(q.queued).toBe(4);
    // Clients wait for partitions 3, then 2: they go before 1 and 4, after the open in progress, and 2
    // does not overtake 3.
    expect(q.prioritize(3)).toBe(true);
    expect(q.prioritize(2)).toBe(true);
    expect(q.prioritize(3)).toBe(false); // asked for already
    expect(q.prioritize(0)).toBe(false); // running, not queued
    expect(q.prioritize(9)).toBe(false); // never queued
    expect(started).toEqual([0]);
    for (const p of [0, 3]) {
      gates[p]!.finish();
      await turn();
    }
    // Asked for while 2 is still queued: behind 2 (asked earlier), before 1.
    expect(q.prioritize(4)).toBe(true);
    for (const p of [2, 4, 1]) {
      gates[p]!.finish();
      await turn();
    }
    expect(started).toEqual([0, 3, 2, 4, 1]);
    expect(await Promise.all(results)).toEqual([0, 1, 2, 3, 4]);
    expect(q.queued).toBe(0);
  });

  it('goes on after a failed open, which rejects only its own caller', async () => {
    const q = new OpenQueue();
    const started: number[] = [];
    const a = gate(started, 0);
    const b = gate(started, 1);
    const first = q.run(0, a.job).catch((e: Error) => e.message);
    const second = q.run(1, b.job);
    await turn();
    a.fail(new Error('unreadable'));
    await turn();
    expect(started).toEqual([0, 1]);
    b.finish();
    expect(await first).toBe('unreadable');
    expect(await second).toBe(1);
    // A job that throws at once (not a rejected promise) fails its caller only, too.
    const thrown = q.run(2, () => {
      throw new Error('bad spec');
    });
    await expect(thrown).rejects.toThrow('bad spec');
    const c = gate(started, 3);
    const third = q.run(3, c.job);
    await turn();
    c.finish();
    expect(await third).toBe(3);
  });
});
