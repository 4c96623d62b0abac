import { describe, expect, it } from 'vitest';
import { WARM_UP_WRITES, warmUpReplicaGroups } from './warm-up.js';

describe('warmUpReplicaGroups', () => {
  it('runs every path of a replica move: two stop-signs, two joins by snapshot transfer, two removals', async () => {
    const r = await warmUpReplicaGroups();
    expect(r.aborted).toBe(false);
    expect(r.reconfigurations).toBe(2);
    expect(r.joins).toBe(2);
    expect(r.removals).toBe(2);
    // Seven phases of writes (both partitions before the moves, both beside each move, one after the
    // handover), each write with distinct keys, reads, compare-and-sets, deletes and ranges beside it.
    expect(r.operations).toBeGreaterThanOrEqual(7 * WARM_UP_WRITES);
  });

  it('is the same run every time (a fixed seed)', async () => {
    const a = await warmUpReplicaGroups({ writes: 8 });
    const b = await warmUpReplicaGroups({ writes: 8 });
    expect(b).toEqual(a);
  });

  it('stops between two steps once its signal is aborted', async () => {
    const abort = new AbortController();
    const run = warmUpReplicaGroups({ signal: abort.signal });
    await new Promise<void>((r) => setImmediate(r));
    abort.abort();
    const r = await run;
    expect(r.aborted).toBe(true);
    expect(r.reconfigurations).toBe(0);
  });
});
