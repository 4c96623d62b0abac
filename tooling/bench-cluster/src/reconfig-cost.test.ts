import { describe, expect, it } from 'vitest';
import { parseBenchArgs, UsageError } from './options.js';
import { type CpuReading, formatMoveCost, moveCostFigures, settled } from './reconfig-cost.js';

function reading(entries: Array<[number, number, number]>): CpuReading {
  return new Map(entries.map(([node, cpuMs, mainMs]) => [node, { cpuMs, mainMs }]));
}

describe('moveCostFigures', () => {
  it('subtracts the idle rate over the moves and divides by the moves', () => {
    // Idle: 5 s in which node 1 used 250 ms (50 ms/s, 40 on its main thread) and node 2 100 ms.
    const idle = [
      reading([
        [1, 1_000, 800],
        [2, 500, 400],
      ]),
      reading([
        [1, 1_250, 1_000],
        [2, 600, 480],
      ]),
    ] as const;
    // Moves: 10 s in which node 1 used 2,500 ms (1,400 main) and node 2 700 ms (500 main).
    const moves = [
      reading([
        [1, 2_000, 1_500],
        [2, 1_000, 800],
      ]),
      reading([
        [1, 4_500, 2_900],
        [2, 1_700, 1_300],
      ]),
    ] as const;
    const f = moveCostFigures(idle, 5_000, moves, 10_000, 4);
    expect(f.idleMsPerS).toBe(50 + 20);
    expect(f.idleMainMsPerS).toBe(40 + 16);
    // 3,200 ms used, 700 of it the idle rate over 10 s.
    expect(f.aboveIdleMs).toBe(2_500);
    expect(f.aboveIdleMainMs).toBe(1_900 - 560);
    expect(f.perMoveMs).toBe(625);
    expect(f.perMoveMainMs).toBe(335);
    expect(f.servers.map((s) => [s.node, s.cpuMs, s.mainMs])).toEqual([
      [1, 2_500, 1_400],
      [2, 700, 500],
    ]);
  });

  it('counts nothing for a server missing from a reading, and never divides by zero moves', () => {
    const idle = [reading([[1, 0, 0]]), reading([[1, 100, 100]])] as const;
    const moves = [
      reading([
        [1, 100, 100],
        [4, 50, 50],
      ]),
      reading([[1, 1_100, 600]]),
    ] as const;
    const f = moveCostFigures(idle, 1_000, moves, 1_000, 0);
    expect(f.servers.find((s) => s.node === 4)?.cpuMs).toBe(0);
    expect(f.aboveIdleMs).toBe(900);
    expect(f.perMoveMs).toBe(900);
    const lines = formatMoveCost({
      ...f,
      round: 1,
      keys: 100_000,
      valueBytes: 256,
      loadMs: 9_000,
      groupsMoved: 0,
    });
    expect(lines[0]).toContain('900 ms per move');
    expect(lines[1]).toContain('node 4 (removed) 0 ms');
  });
});

describe('settled', () => {
  it('takes two idle rates within 10 % of the larger as settled', () => {
    expect(settled(190, 200)).toBe(true);
    expect(settled(200, 181)).toBe(true);
    expect(settled(300, 190)).toBe(false);
    expect(settled(0, 0)).toBe(true);
  });
});

describe('--reconfig-cost', () => {
  it('is a run of its own', () => {
    const on = parseBenchArgs(['--reconfig-cost']);
    const off = parseBenchArgs([]);
    if (on.help || off.help) throw new Error('unexpected help');
    expect(on.options.reconfigCost).toBe(true);
    expect(off.options.reconfigCost).toBe(false);
    expect(() => parseBenchArgs(['--reconfig-cost', '--reconfig'])).toThrow(UsageError);
    expect(() => parseBenchArgs(['--reconfig-cost', '--tls'])).toThrow(UsageError);
  });
});
