import { describe, expect, it } from 'vitest';
import {
  buildSchedule,
  FAULT_KINDS,
  MEMBERSHIP_FAULTS,
  PROCESS_AND_LINK_FAULTS,
  parseFaults,
} from './schedule.js';

describe('buildSchedule', () => {
  it('replays exactly from the seed and differs across seeds', () => {
    const cfg = { durationMs: 60_000, servers: 5, faults: [...FAULT_KINDS] };
    expect(buildSchedule(7, cfg)).toEqual(buildSchedule(7, cfg));
    expect(buildSchedule(7, cfg)).not.toEqual(buildSchedule(8, cfg));
  });

  it('keeps episodes inside the run, in order, never overlapping, with at most a minority down', () => {
    for (const servers of [3, 5]) {
      for (let seed = 1; seed <= 50; seed++) {
        const eps = buildSchedule(seed, { durationMs: 30_000, servers, faults: [...FAULT_KINDS] });
        expect(eps.length).toBeGreaterThan(0);
        let end = 0;
        for (const e of eps) {
          expect(e.atMs).toBeGreaterThanOrEqual(end);
          end = e.atMs + e.durationMs;
          expect(end).toBeLessThanOrEqual(30_000);
          const down = e.faults.filter(
            (f) => f.kind === 'kill' || f.kind === 'pause' || f.kind === 'replace',
          ).length;
          expect(down).toBeLessThanOrEqual(Math.floor((servers - 1) / 2));
        }
      }
    }
  });

  it('keeps the schedule of the process and link faults when membership faults exist (seeds replay)', () => {
    // Episode times and kinds drawn for the same faults list do not depend on the membership kinds.
    const a = buildSchedule(11, { durationMs: 30_000, servers: 5, faults: [...PROCESS_AND_LINK_FAULTS] });
    expect(a.flatMap((e) => e.faults.map((f) => f.kind)).every((k) => !MEMBERSHIP_FAULTS.includes(k))).toBe(
      true,
    );
    const m = buildSchedule(11, { durationMs: 60_000, servers: 5, faults: ['kill', ...MEMBERSHIP_FAULTS] });
    const kinds = new Set(m.flatMap((e) => e.faults.map((f) => f.kind)));
    for (const k of MEMBERSHIP_FAULTS) expect(kinds.has(k), k).toBe(true);
  });

  it('only uses the enabled faults', () => {
    const eps = buildSchedule(3, { durationMs: 60_000, servers: 3, faults: ['pause'] });
    expect(eps.flatMap((e) => e.faults.map((f) => f.kind))).toEqual(eps.map(() => 'pause'));
  });
});

describe('parseFaults', () => {
  it('parses lists and all, rejects unknown kinds', () => {
    expect(parseFaults('kill, partition,kill')).toEqual(['kill', 'partition']);
    expect(parseFaults('all')).toEqual([...PROCESS_AND_LINK_FAULTS]);
    expect(parseFaults('kill,membership')).toEqual(['kill', ...MEMBERSHIP_FAULTS]);
    expect(parseFaults('all,membership')).toEqual([...FAULT_KINDS]);
    expect(() => parseFaults('kill,meteor')).toThrow(/unknown fault "meteor"/);
  });
});
