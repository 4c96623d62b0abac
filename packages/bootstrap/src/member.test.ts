import { type LookupTable, NotReadyError } from '@paxkv/common';
import { describe, expect, it } from 'vitest';
import { BootstrapCoordinator } from './coordinator.js';
import { BootstrapMember } from './member.js';
import { buildLookupTable } from './table.js';

const addr = (i: number) => `127.0.0.1:${7000 + i}`;
const table = (version: number, n = 3): LookupTable =>
  buildLookupTable({
    nodes: Array.from({ length: n }, (_, i) => ({ id: i + 1, address: addr(i + 1) })),
    partitions: 4,
    replication: Math.min(3, n),
    version,
  });

describe('BootstrapMember', () => {
  it('checks in right away, retries every checkinRetryMs, then heartbeats every heartbeatIntervalMs', () => {
    const m = new BootstrapMember({
      address: addr(2),
      config: { checkinRetryMs: 500, heartbeatIntervalMs: 200 },
    });
    m.tick(0);
    expect(m.drainOutbox()).toEqual([{ type: 'checkin', address: addr(2) }]);
    m.tick(499);
    expect(m.drainOutbox()).toEqual([]);
    m.tick(500);
    expect(m.drainOutbox()).toEqual([{ type: 'checkin', address: addr(2) }]);
    expect(m.handle({ type: 'checkin.ok', nodeId: 2, table: null }, 510)).toEqual({ nodeId: 2 });
    expect(m.checkedIn).toBe(true);
    m.tick(709);
    expect(m.drainOutbox()).toEqual([]);
    m.tick(710);
    expect(m.drainOutbox()).toEqual([{ type: 'heartbeat', nodeId: 2 }]);
    m.tick(910);
    m.tick(911);
    expect(m.drainOutbox()).toEqual([{ type: 'heartbeat', nodeId: 2 }]);
  });

  it('passes its old node id when restarted with one', () => {
    const m = new BootstrapMember({ address: addr(2), nodeId: 5 });
    m.tick(0);
    expect(m.drainOutbox()).toEqual([{ type: 'checkin', address: addr(2), nodeId: 5 }]);
    expect(m.handle({ type: 'checkin.ok', nodeId: 5, table: null }, 0)).toEqual({});
  });

  it('keeps only the newest valid table: versions only grow', () => {
    const m = new BootstrapMember({ address: addr(2) });
    expect(m.handle({ type: 'table.push', table: table(2) }, 0)).toEqual({ table: table(2) });
    expect(m.offerTable(table(2))).toEqual({ outcome: 'unchanged', currentVersion: 2 });
    expect(m.handle({ type: 'table.push', table: table(1) }, 0)).toEqual({
      rejectedTable: { outcome: 'stale', currentVersion: 2 },
    });
    const conflicting = { ...table(2, 4) };
    expect(m.offerTable(conflicting)).toEqual({ outcome: 'stale', currentVersion: 2 });
    const broken = { ...table(3), groups: table(3).groups.slice(1) };
    const r = m.offerTable(broken);
    expect(r.outcome).toBe('invalid');
    expect(m.table?.version).toBe(2);
    expect(m.offerTable(table(3))).toMatchObject({ outcome: 'accepted', previousVersion: 2 });
    expect(m.table?.version).toBe(3);
  });

  it('ignores an invalid restored table and accepts a valid one', () => {
    expect(new BootstrapMember({ address: addr(2), table: { ...table(1), groups: [] } }).table).toBeNull();
    expect(new BootstrapMember({ address: addr(2), table: table(4) }).table?.version).toBe(4);
  });

  it('records an error reply and retries the check-in later', () => {
    const m = new BootstrapMember({ address: addr(2), config: { checkinRetryMs: 100 } });
    m.tick(0);
    m.drainOutbox();
    const u = m.handle({ type: 'error', id: null, code: 'NOT_READY', message: 'later' }, 5);
    expect(u.error).toBeInstanceOf(NotReadyError);
    expect(m.lastError?.code).toBe('NOT_READY');
    m.tick(100);
    expect(m.drainOutbox()).toHaveLength(1);
  });

  it('stores the member list', () => {
    const m = new BootstrapMember({ address: addr(2) });
    const members = [{ id: 1, address: addr(1), state: 'alive' as const }];
    expect(m.handle({ type: 'members', members }, 0)).toEqual({ members });
    expect(m.members).toEqual(members);
  });

  it('goes quiet while disconnected and checks in again with its id when reconnected', () => {
    const m = new BootstrapMember({ address: addr(2), config: { heartbeatIntervalMs: 100 } });
    m.tick(0);
    m.drainOutbox();
    m.handle({ type: 'checkin.ok', nodeId: 2, table: null }, 0);
    m.connectionLost();
    m.tick(1000);
    expect(m.drainOutbox()).toEqual([]);
    m.connectionRestored();
    m.tick(1001);
    expect(m.drainOutbox()).toEqual([{ type: 'checkin', address: addr(2), nodeId: 2 }]);
  });

  it('rejects bad options with typed errors', () => {
    expect(() => new BootstrapMember({ address: 'x' })).toThrow(/address/);
    expect(() => new BootstrapMember({ address: addr(1), nodeId: 0 })).toThrow(/nodeId/);
    expect(() => new BootstrapMember({ address: addr(1), config: { heartbeatIntervalMs: 0 } })).toThrow(
      /heartbeatIntervalMs/,
    );
  });
});

describe('coordinator and members together (simulated network, no sockets)', () => {
  it('starts a 3-node cluster, detects a silent member, and re-admits it after a coordinator restart', () => {
    let coordinator = new BootstrapCoordinator({
      self: { address: addr(1) },
      config: { suspectAfterMs: 300 },
    });
    const members = [2, 3].map(
      (i) =>
        new BootstrapMember({ address: addr(i), config: { heartbeatIntervalMs: 100, checkinRetryMs: 100 } }),
    );
    const silenced = new Set<number>();
    const step = (now: number) => {
      coordinator.tick(now);
      for (const m of members) {
        if (m.nodeId !== null && silenced.has(m.nodeId)) continue;
        m.tick(now);
        for (const msg of m.drainOutbox()) {
          const reply = coordinator.handle(msg, now);
          if (reply) m.handle(reply, now);
        }
      }
      for (const { to, message } of coordinator.drainOutbox()) {
        members.find((m) => m.nodeId === to)?.handle(message, now);
      }
    };
    for (let t = 0; t <= 1000; t += 50) step(t);
    expect(coordinator.table?.version).toBe(1);
    for (const m of members) {
      expect(m.table).toEqual(coordinator.table);
      expect(m.members.map((x) => x.state)).toEqual(['alive', 'alive', 'alive']);
    }
    silenced.add(3);
    for (let t = 1050; t <= 1600; t += 50) step(t);
    expect(members[0]!.members.find((x) => x.id === 3)?.state).toBe('suspected');
    silenced.clear();
    for (let t = 1650; t <= 1800; t += 50) step(t);
    expect(members[0]!.members.find((x) => x.id === 3)?.state).toBe('alive');

    // The bootstrap server restarts with its persisted table; members reconnect and check in again.
    coordinator = new BootstrapCoordinator({
      self: { address: addr(1) },
      config: { suspectAfterMs: 300 },
      restore: { table: coordinator.table },
    });
    for (const m of members) {
      m.connectionLost();
      m.connectionRestored();
    }
    for (let t = 1850; t <= 2500; t += 50) step(t);
    expect(members.map((m) => m.nodeId)).toEqual([2, 3]);
    expect(coordinator.members().map((x) => x.state)).toEqual(['alive', 'alive', 'alive']);
    expect(members[1]!.table?.version).toBe(1);
  });
});
