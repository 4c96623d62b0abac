/**
 * `GroupObserver`: a request waiting for a usable leader wakes when the local replica's leader or role
 * changes (seen after a tick), or when its wait ends; nothing stays registered either way.
 */
import { describe, expect, it } from 'vitest';
import { parseServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import type { ReplicaGroupPort } from './group-port.js';
import { GroupObserver } from './group-ticks.js';
import { silentLogger } from './logger.js';
import { ServerMetrics } from './metrics.js';

function observer(): GroupObserver {
  const ctx = {
    config: parseServerConfig({ dataDir: '/nonexistent' }),
    log: silentLogger,
    metrics: new ServerMetrics(),
    now: () => performance.now(),
  } as unknown as ServerContext;
  return new GroupObserver(ctx);
}

/** The fields of a replica the observer reads. */
function replica(partition: number) {
  return { partition, leader: null, role: 'follower', isolated: false } as {
    partition: number;
    leader: number | null;
    role: ReplicaGroupPort['role'];
    isolated: boolean;
  };
}
const asPort = (r: ReturnType<typeof replica>) => r as unknown as ReplicaGroupPort;

/** A wait far longer than the test's own timeout: only a wake can end it in time. */
const LONG_MS = 600_000;

describe('GroupObserver.changeOrTimeout', () => {
  it('wakes the waiters of a partition when its leader changes, then when its role does', async () => {
    const o = observer();
    const g = replica(3);
    const other = replica(4);
    o.observe(asPort(g));
    o.observe(asPort(other));
    const woken: string[] = [];
    const a = o.changeOrTimeout(3, LONG_MS).then(() => woken.push('a'));
    const b = o.changeOrTimeout(3, LONG_MS).then(() => woken.push('b'));
    const c = o.changeOrTimeout(4, LONG_MS).then(() => woken.push('c'));
    // A tick that changes nothing wakes nobody.
    o.observe(asPort(g));
    await Promise.resolve();
    expect(woken).toEqual([]);
    g.leader = 2;
    o.observe(asPort(g));
    await Promise.all([a, b]);
    expect(woken).toEqual(['a', 'b']);
    expect(o.waiting(3)).toBe(0);
    expect(o.waiting(4)).toBe(1);
    // Partition 4 elects this replica (1), which then completes its prepare phase: it leads now.
    other.leader = 1;
    o.observe(asPort(other));
    await c;
    const d = o.changeOrTimeout(4, LONG_MS);
    other.role = 'leader';
    o.observe(asPort(other));
    await d;
    expect(o.waiting(4)).toBe(0);
  });

  it('ends at the timeout without a change, and when the group is forgotten (closed)', async () => {
    const o = observer();
    const g = replica(1);
    o.observe(asPort(g));
    await o.changeOrTimeout(1, 1);
    expect(o.waiting(1)).toBe(0);
    const closed = o.changeOrTimeout(1, LONG_MS);
    expect(o.waiting(1)).toBe(1);
    o.forget(1);
    await closed;
    expect(o.waiting(1)).toBe(0);
  });
});
