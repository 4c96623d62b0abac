import { describe, expect, it } from 'vitest';
import {
  type CpuProfile,
  profileTimeline,
  renderProfileSummary,
  summarizeProfile,
} from './profile-summary.js';

// root -> main -> (hot, idle); hot -> gc-heavy leaf
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 5] },
    {
      id: 2,
      callFrame: { functionName: 'main', url: 'file:///r/apps/server/src/main.ts', lineNumber: 9 },
      children: [3],
    },
    {
      id: 3,
      callFrame: { functionName: 'hot', url: 'file:///r/packages/kvstore/src/wal.ts', lineNumber: 41 },
      children: [4],
    },
    {
      id: 4,
      callFrame: {
        functionName: 'pack',
        url: 'file:///r/node_modules/.pnpm/msgpackr@2/node_modules/msgpackr/pack.js',
        lineNumber: 0,
      },
    },
    { id: 5, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
  ],
  startTime: 0,
  endTime: 10_000,
  // samples: main x1, hot x2, pack x1, idle x1 (each 1 ms: deltas are the time before each sample)
  samples: [2, 3, 3, 4, 5],
  timeDeltas: [0, 1_000, 1_000, 1_000, 1_000, 1_000],
};

describe('summarizeProfile', () => {
  it('splits busy and idle time and attributes self and total time', () => {
    const s = summarizeProfile(profile);
    expect(s.busyMs).toBe(4);
    expect(s.idleMs).toBe(1);
    const byName = new Map(s.functions.map((f) => [f.name.split(' ')[0], f]));
    expect(byName.get('hot')).toMatchObject({ selfMs: 2, totalMs: 3, selfPct: 50, totalPct: 75 });
    expect(byName.get('main')).toMatchObject({ selfMs: 1, totalMs: 4, totalPct: 100 });
    expect(byName.get('pack')).toMatchObject({ selfMs: 1, totalMs: 1 });
    expect(s.functions[0]?.name).toBe('hot kvstore/src/wal.ts:42');
    expect(s.files.map((f) => f.name)).toContain('msgpackr/pack.js');
  });

  it('renders a readable summary', () => {
    const text = renderProfileSummary('server 1', summarizeProfile(profile), 3);
    expect(text).toContain('server 1: 10 ms profiled, busy 4 ms');
    expect(text).toContain('hot kvstore/src/wal.ts:42');
  });

  it('summarises a time window of the profile, and its busy time per bucket', () => {
    // Samples at 0, 1, 2, 3, 4 ms (µs clock): main, hot, hot, pack, idle.
    const w = summarizeProfile(profile, { fromUs: 1_000, toUs: 3_000 });
    expect(w.busyMs).toBe(2);
    expect(w.durationMs).toBe(2);
    expect(w.functions[0]).toMatchObject({ name: 'hot kvstore/src/wal.ts:42', selfMs: 2 });
    const t = profileTimeline(profile, 0, 2);
    expect(t.map((b) => [b.atMs, b.busyMs])).toEqual([
      [0, 2],
      [2, 2],
    ]);
    expect(t[1]?.top).toMatch(/^hot |^pack /);
  });
});
