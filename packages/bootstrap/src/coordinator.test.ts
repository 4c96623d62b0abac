import { ConfigError, type LookupTable, parseBootstrapRequest } from '@paxkv/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BootstrapCoordinator } from './coordinator.js';
import { InvalidLookupTableError } from './errors.js';
import { replicaLoad, validateLookupTable } from './table.js';

const addr = (i: number) => `127.0.0.1:${7000 + i}`;

function checkin(c: BootstrapCoordinator, i: number, now: number, nodeId?: number) {
  return c.handleCheckin(
    nodeId === undefined
      ? { type: 'checkin', address: addr(i) }
      : { type: 'checkin', address: addr(i), nodeId },
    now,
  );
}

describe('BootstrapCoordinator configuration', () => {
  it.each([
    [{ threshold: 2, replication: 3 }, /threshold/],
    [{ partitions: 0 }, /partitions/],
    [{ suspectAfterMs: -5 }, /suspectAfterMs/],
    [{ replication: 1.5 }, /replication/],
  ])('rejects %j', (config, why) => {
    expect(() => new BootstrapCoordinator({ config })).toThrow(ConfigError);
    expect(() => new BootstrapCoordinator({ config })).toThrow(why);
  });

  it('uses documented defaults', () => {
    const c = new BootstrapCoordinator();
    expect(c.config).toEqual({ threshold: 3, partitions: 16, replication: 3, suspectAfterMs: 3000 });
  });

  it('rejects a bad self address', () => {
    expect(() => new BootstrapCoordinator({ self: { address: 'nope' } })).toThrow(/self.address/);
  });
});

describe('BootstrapCoordinator start', () => {
  it('builds the table when the threshold is reached, counting itself, and pushes it to every member', () => {
    const c = new BootstrapCoordinator({ self: { address: addr(1) } });
    const r2 = checkin(c, 2, 0);
    expect(r2).toEqual({ type: 'checkin.ok', nodeId: 2, table: null });
    expect(c.started).toBe(false);
    const r3 = checkin(c, 3, 10);
    expect(r3.type).toBe('checkin.ok');
    const table = (r3 as { table: LookupTable }).table;
    expect(table.version).toBe(1);
    expect(table.nodes.map((n) => n.id)).toEqual([1, 2, 3]);
    expect(validateLookupTable(table, { partitions: 16, replication: 3 })).toEqual([]);
    const out = c.drainOutbox();
    // Node 3 got the table in its reply; node 2 gets a push; both get the member list.
    expect(out.filter((o) => o.message.type === 'table.push').map((o) => o.to)).toEqual([2]);
    expect(out.filter((o) => o.message.type === 'members').map((o) => o.to)).toEqual([2, 3]);
    expect(c.drainOutbox()).toEqual([]);
    const events = c.drainEvents().map((e) => e.type);
    expect(events).toEqual(['registered', 'registered', 'registered', 'table-built']);
  });

  it('registers later check-ins as spares and lists them in the members', () => {
    const c = new BootstrapCoordinator({
      self: { address: addr(1) },
      config: { threshold: 2, replication: 2 },
    });
    checkin(c, 2, 0);
    expect(c.started).toBe(true);
    const r = checkin(c, 3, 5);
    expect(r).toMatchObject({ type: 'checkin.ok', nodeId: 3, table: { version: 1 } });
    expect(c.members()).toEqual([
      { id: 1, address: addr(1), state: 'alive' },
      { id: 2, address: addr(2), state: 'alive' },
      { id: 3, address: addr(3), state: 'spare' },
    ]);
    expect(c.spares()).toEqual([{ id: 3, address: addr(3) }]);
  });

  it('works without registering itself (a dedicated bootstrap server)', () => {
    const c = new BootstrapCoordinator({ config: { threshold: 3 } });
    for (let i = 1; i <= 3; i++) checkin(c, i, i);
    expect(c.table?.nodes.map((n) => n.address)).toEqual([addr(1), addr(2), addr(3)]);
    expect(c.selfId).toBeNull();
  });

  it('re-sends the member list to a server that checks in again (it may have missed pushes)', () => {
    const c = new BootstrapCoordinator({ self: { address: addr(1) } });
    checkin(c, 2, 0);
    c.drainOutbox();
    expect(c.drainOutbox()).toEqual([]);
    checkin(c, 2, 10, 2);
    expect(c.drainOutbox()).toEqual([{ to: 2, message: { type: 'members', members: c.members() } }]);
  });

  it('is idempotent for a repeated check-in (lost reply) and keeps ids for known addresses', () => {
    const c = new BootstrapCoordinator({ self: { address: addr(1) } });
    const a = checkin(c, 2, 0);
    const b = checkin(c, 2, 100);
    expect(a).toEqual(b);
    expect(c.members()).toHaveLength(2);
  });

  it('keeps a restarting replica its id and bumps the table version when its address changed', () => {
    const c = new BootstrapCoordinator({ self: { address: addr(1) } });
    checkin(c, 2, 0);
    checkin(c, 3, 0);
    c.drainOutbox();
    const r = checkin(c, 9, 50, 3);
    expect(r).toMatchObject({ type: 'checkin.ok', nodeId: 3, table: { version: 2 } });
    expect(c.table?.nodes.find((n) => n.id === 3)?.address).toBe(addr(9));
    const pushes = c.drainOutbox().filter((o) => o.message.type === 'table.push');
    expect(pushes.map((p) => p.to)).toEqual([2]);
  });

  it('refuses an address held by another live node, and the bootstrap server own id or address', () => {
    const c = new BootstrapCoordinator({ self: { address: addr(1) } });
    checkin(c, 2, 0);
    expect(checkin(c, 2, 1, 7)).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    expect(checkin(c, 5, 1, 1)).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    expect(checkin(c, 1, 1)).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
  });

  it('lets a new node take over the address of a silent pending node', () => {
    const c = new BootstrapCoordinator({ self: { address: addr(1) }, config: { suspectAfterMs: 100 } });
    checkin(c, 2, 0);
    c.tick(500);
    expect(checkin(c, 2, 500, 8)).toMatchObject({ type: 'checkin.ok', nodeId: 8 });
    expect(c.members().map((m) => m.id)).toEqual([1, 8]);
  });

  it('does not count suspected servers toward the threshold', () => {
    const c = new BootstrapCoordinator({ self: { address: addr(1) }, config: { suspectAfterMs: 1000 } });
    checkin(c, 2, 0);
    c.tick(2000);
    expect(c.members().find((m) => m.id === 2)?.state).toBe('suspected');
    checkin(c, 3, 2000);
    expect(c.started).toBe(false);
    c.handleHeartbeat({ type: 'heartbeat', nodeId: 2 }, 2100);
    expect(c.started).toBe(true);
    expect(c.table?.nodes.map((n) => n.id)).toEqual([1, 2, 3]);
  });

  it('answers malformed input with an error reply, never an exception', () => {
    const c = new BootstrapCoordinator({ self: { address: addr(1) } });
    fc.assert(
      fc.property(fc.anything(), fc.string(), fc.integer(), (junk, address, nodeId) => {
        const parsed = parseBootstrapRequest(junk);
        if (parsed.ok) c.handle(parsed.value, 0);
        const r = c.handle({ type: 'checkin', address, nodeId } as never, 0);
        expect(r === null || r.type === 'checkin.ok' || r.type === 'error').toBe(true);
        expect(c.handle({ type: 'bogus' } as never, 0)).toMatchObject({ type: 'error' });
      }),
    );
  });
});

describe('BootstrapCoordinator failure detection', () => {
  it('marks silent members suspected after suspectAfterMs and alive on the next heartbeat', () => {
    const c = new BootstrapCoordinator({ self: { address: addr(1) }, config: { suspectAfterMs: 3000 } });
    checkin(c, 2, 0);
    checkin(c, 3, 0);
    c.drainOutbox();
    c.drainEvents();
    c.handleHeartbeat({ type: 'heartbeat', nodeId: 2 }, 2500);
    c.tick(3000);
    expect(c.members().map((m) => m.state)).toEqual(['alive', 'alive', 'alive']);
    c.tick(3001);
    expect(c.members().map((m) => m.state)).toEqual(['alive', 'alive', 'suspected']);
    expect(c.drainEvents()).toEqual([{ type: 'suspected', node: 3, silentForMs: 3001 }]);
    expect(c.drainOutbox().map((o) => [o.to, o.message.type])).toEqual([
      [2, 'members'],
      [3, 'members'],
    ]);
    c.tick(5501);
    expect(c.members().map((m) => m.state)).toEqual(['alive', 'suspected', 'suspected']);
    expect(c.handleHeartbeat({ type: 'heartbeat', nodeId: 3 }, 6000)).toBe(true);
    expect(c.members().map((m) => m.state)).toEqual(['alive', 'suspected', 'alive']);
    expect(c.drainEvents()).toEqual([
      { type: 'suspected', node: 2, silentForMs: 3001 },
      { type: 'alive', node: 3 },
    ]);
    // The bootstrap server itself is never suspected; the table is unchanged by suspicion.
    expect(c.table?.version).toBe(1);
  });

  it('returns false for heartbeats from unknown nodes', () => {
    const c = new BootstrapCoordinator({ self: { address: addr(1) } });
    expect(c.handleHeartbeat({ type: 'heartbeat', nodeId: 42 }, 0)).toBe(false);
    expect(c.handleHeartbeat({ type: 'heartbeat', nodeId: 1 }, 0)).toBe(false);
  });
});

describe('BootstrapCoordinator restore', () => {
  function started(): BootstrapCoordinator {
    const c = new BootstrapCoordinator({ self: { address: addr(1) }, config: { threshold: 3 } });
    checkin(c, 2, 0);
    checkin(c, 3, 0);
    checkin(c, 4, 0);
    return c;
  }

  it('restores the table and spares, and starts the failure clock at the first tick', () => {
    const before = started();
    const c = new BootstrapCoordinator({
      self: { address: addr(1) },
      config: { suspectAfterMs: 1000 },
      restore: { table: before.table, spares: before.spares() },
    });
    expect(c.table).toEqual(before.table);
    expect(c.members()).toEqual(before.members());
    c.tick(10_000);
    expect(c.members().every((m) => m.state !== 'suspected')).toBe(true);
    c.tick(11_001);
    expect(
      c
        .members()
        .filter((m) => m.state === 'suspected')
        .map((m) => m.id),
    ).toEqual([2, 3, 4]);
    // A restored node checks in with its id and keeps it; a new one gets the next free id.
    expect(checkin(c, 2, 11_002, 2)).toMatchObject({ nodeId: 2, table: { version: 1 } });
    expect(checkin(c, 7, 11_003)).toMatchObject({ nodeId: 5 });
  });

  it('rejects an invalid restored table', () => {
    const t = started().table!;
    const broken = { ...t, groups: t.groups.slice(1) };
    expect(() => new BootstrapCoordinator({ restore: { table: broken } })).toThrow(InvalidLookupTableError);
  });
});

describe('BootstrapCoordinator property', () => {
  it('any order of check-ins/heartbeats/ticks keeps a valid, balanced, growing-version table over live nodes', () => {
    const action = fc.oneof(
      fc.record({
        kind: fc.constant('checkin' as const),
        port: fc.integer({ min: 2, max: 9 }),
        useId: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('heartbeat' as const), node: fc.integer({ min: 1, max: 10 }) }),
      fc.record({ kind: fc.constant('tick' as const), advance: fc.integer({ min: 0, max: 2000 }) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 1, max: 5 }),
        fc.array(action, { maxLength: 60 }),
        (threshold, partitions, replication, actions) => {
          fc.pre(replication <= threshold);
          const c = new BootstrapCoordinator({
            self: { address: addr(1) },
            config: { threshold, partitions, replication, suspectAfterMs: 1500 },
          });
          let now = 0;
          let version = 0;
          const ids = new Map<number, number>();
          for (const a of actions) {
            if (a.kind === 'tick') {
              now += a.advance;
              c.tick(now);
            } else if (a.kind === 'heartbeat') {
              c.handleHeartbeat({ type: 'heartbeat', nodeId: a.node }, now);
            } else {
              const known = ids.get(a.port);
              const r = checkin(c, a.port, now, a.useId ? known : undefined);
              if (r.type === 'checkin.ok') ids.set(a.port, r.nodeId);
            }
            const t = c.table;
            if (t) {
              expect(validateLookupTable(t, { partitions, replication })).toEqual([]);
              expect(t.version).toBeGreaterThanOrEqual(version);
              version = t.version;
              const load = [...replicaLoad(t).values()];
              expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(1);
            } else {
              expect(c.liveCount).toBeLessThan(threshold);
            }
            const memberIds = c.members().map((m) => m.id);
            expect(new Set(memberIds).size).toBe(memberIds.length);
            const addresses = c.members().map((m) => m.address);
            expect(new Set(addresses).size).toBe(addresses.length);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
