/**
 * The member side of leadership rebalancing over fake group ports: a server takes over the groups it is
 * the preferred leader of (one at a time), not while replicas move or a member drains (nor for
 * {@link QUIET_HEARTBEATS} after), and the mutation that turns the rule off is caught.
 */
import { buildLookupTable, seedMetadata } from '@paxkv/bootstrap';
import type { ClusterMetadata } from '@paxkv/common';
import { afterEach, describe, expect, it } from 'vitest';
import { parseServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';
import { LeaderBalancer, QUIET_HEARTBEATS, unsafeLeaderBalance } from './leader-balancer.js';
import { silentLogger } from './logger.js';
import { ServerMetrics } from './metrics.js';

const ME = 2;

interface FakeGroup {
  role: 'leader' | 'follower';
  leader: number;
  transfers: number;
}

function setup() {
  let clock = 0;
  const config = parseServerConfig({ dataDir: '/nonexistent', replaceAfter: 1 });
  const ctx = {
    config,
    log: silentLogger,
    metrics: new ServerMetrics(),
    now: () => clock,
    nodeId: ME,
    table: null,
    stopping: false,
    advertised: '127.0.0.1:7002',
    authRequired: false,
    tls: undefined,
  } satisfies ServerContext;
  const nodes = [1, 2, 3].map((id) => ({ id, address: `127.0.0.1:${7000 + id}` }));
  const m0 = seedMetadata(buildLookupTable({ nodes, partitions: 3, replication: 3, version: 1 }));
  // Node 2 is the preferred leader (first replica) of every group; node 1 leads them all.
  const metadata: ClusterMetadata = {
    ...m0,
    table: {
      ...m0.table,
      groups: m0.table.groups.map((g) => ({ ...g, replicas: [ME, ...g.replicas.filter((r) => r !== ME)] })),
    },
  };
  const groups = new Map<number, FakeGroup>(
    metadata.table.groups.map((g) => [g.partition, { role: 'follower', leader: 1, transfers: 0 }]),
  );
  const host = {
    get: (partition: number) => {
      const g = groups.get(partition);
      if (!g) return undefined;
      return {
        get role() {
          return g.role;
        },
        isolated: false,
        get leader() {
          return g.leader;
        },
        configuration: { configId: 0, replicas: [1, 2, 3] },
        transferLeadership: () => {
          // The election completes before the next heartbeat.
          g.transfers += 1;
          g.role = 'leader';
          g.leader = ME;
          return true;
        },
      };
    },
  } as unknown as GroupHost;
  const balancer = new LeaderBalancer(ctx, { groups: host, suspectedForMs: () => 0 });
  return {
    metadata,
    groups,
    /** Heartbeats for `ms` ms of the clock with metadata `m`. */
    run(m: ClusterMetadata, ms: number) {
      for (const end = clock + ms; clock < end; ) {
        clock += config.heartbeatMs;
        balancer.heartbeat(m);
      }
    },
    transfers: () => [...groups.values()].reduce((n, g) => n + g.transfers, 0),
  };
}

afterEach(() => {
  unsafeLeaderBalance.skip = false;
});

describe('LeaderBalancer', () => {
  it('takes over its preferred groups one at a time, and none while replicas move or a member drains', () => {
    const s = setup();
    const beat = parseServerConfig({ dataDir: '/x' }).heartbeatMs;
    // A drain in progress (and the quiet time after it): no transfer.
    const draining = { ...s.metadata, draining: [3] };
    s.run(draining, 5_000);
    expect(s.transfers()).toBe(0);
    s.run(s.metadata, (QUIET_HEARTBEATS - 2) * beat);
    expect(s.transfers()).toBe(0);
    // Quiet: one group is taken over; the next waits until it completed (or gave up) and a pause.
    s.run(s.metadata, 4 * beat);
    expect(s.transfers()).toBe(1);
    // A move starts: nothing more until it is over and the quiet time passed.
    const moving = {
      ...s.metadata,
      moving: [{ partition: 1, from: 3, to: 1, reason: 'rebalance' as const }],
    };
    s.run(moving, 2_000);
    expect(s.transfers()).toBe(1);
    s.run(s.metadata, 60 * beat);
    expect(s.transfers()).toBe(3);
    expect([...s.groups.values()].every((g) => g.transfers === 1)).toBe(true);
  });

  it('mutation check: with the rule off no leadership is taken over', () => {
    unsafeLeaderBalance.skip = true;
    const s = setup();
    s.run(s.metadata, 10_000);
    expect(s.transfers()).toBe(0);
  });
});
