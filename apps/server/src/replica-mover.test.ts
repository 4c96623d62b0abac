/**
 * Two metadata leaders run the same rejoin from different metadata versions (the session-5 full-suite
 * failure: a restarted server led the metadata group with a stale copy and re-ran a rejoin another
 * leader had finished). The data group is a real replica group (the kvstore simulation); the metadata
 * is one linearizable register (what `casChange` gives: every change applies to the newest version).
 * Each step re-reads the move (`move-steps.ts`) and the group compares-and-sets its configuration;
 * with both rules broken on purpose the stale rejoin removes a replica the metadata still lists.
 */
import { buildLookupTable, seedMetadata, startRejoin } from '@paxkv/bootstrap';
import { type ClusterMetadata, NoLeaderError } from '@paxkv/common';
import type { ReplicaGroup } from '@paxkv/kvstore';
import { GroupCluster } from '@paxkv/kvstore/testing';
import { describe, expect, it } from 'vitest';
import { parseServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import type { ReplicaGroupPort } from './group-port.js';
import type { LogFn } from './logger.js';
import type { MemberWatch } from './member-watch.js';
import { ServerMetrics } from './metrics.js';
import type { MetadataChanger } from './move-steps.js';
import { type GroupReconfigurer, ReplicaMover } from './replica-mover.js';
import type { RequestPath } from './request-path.js';

interface Options {
  /** The group ignores the configuration a change expects to replace. */
  readonly unsafeGroup: boolean;
  /** The stale mover trusts its held metadata at each step. */
  readonly unsafeMover: boolean;
}

async function staleRejoin(o: Options) {
  const c = new GroupCluster({
    seed: 7,
    ...(o.unsafeGroup ? { group: { unsafeMutation: 'ignoreExpectedConfiguration' as const } } : {}),
  });
  const leaderOf = (): ReplicaGroup | undefined =>
    [1, 2, 3]
      .map((p) => c.group(p))
      .find((g) => g?.role === 'leader' && g.phase === 'accept' && !g.removed && g.configuration);
  expect(await c.runUntil(() => leaderOf() !== undefined, 600)).toBeGreaterThanOrEqual(0);

  const nodes = [1, 2, 3].map((id) => ({ id, address: `127.0.0.1:${7000 + id}` }));
  const seeded = seedMetadata(buildLookupTable({ nodes, partitions: 1, replication: 3, version: 1 }));
  // Node 2's replica of partition 0 could not read its state: it asked to rejoin.
  let current: ClusterMetadata = startRejoin(seeded, 0, 2);
  const planned = current;
  const change: MetadataChanger = async (_group, fn) => {
    const out = fn(current);
    if (out.changed) current = out.metadata;
    return out;
  };
  // The group's leader runs the change (the server routes `group.reconfigure` there).
  const reconfigurer: GroupReconfigurer = {
    reconfigure: async (_partition, replicas, expect) => {
      for (let i = 0; i < 100_000 && !leaderOf(); i++) await new Promise((r) => setImmediate(r));
      const leader = leaderOf();
      if (!leader) throw new NoLeaderError({});
      return leader.reconfigure(replicas, { configId: expect.configId, members: expect.replicas });
    },
  };
  const mover = (metadata: () => ClusterMetadata, unsafe: boolean) => {
    const warnings: string[] = [];
    const warn: LogFn = (fields, message) => warnings.push(`${message}: ${String(fields.err ?? '')}`);
    const ctx = {
      config: parseServerConfig({ dataDir: '/nonexistent', replaceAfter: 1 }),
      log: { debug: () => {}, info: () => {}, warn, error: warn },
      metrics: new ServerMetrics(),
      now: () => 0,
      nodeId: null,
      table: null,
      stopping: false,
      advertised: '127.0.0.1:7000',
      authRequired: false,
      tls: undefined,
    } satisfies ServerContext;
    const watch = {
      suspectedForMs: () => 0,
      upForMs: () => Number.MAX_SAFE_INTEGER,
    } as unknown as MemberWatch;
    const m = new ReplicaMover(ctx, {
      requests: () => ({}) as RequestPath,
      watch,
      reconfigurer,
      metadata,
      change,
      unsafeMoveSteps: unsafe ? 'heldMetadata' : 'none',
    });
    return { run: () => m.moveReplicas({} as ReplicaGroupPort), warnings };
  };

  // The leader of the metadata group runs the rejoin: fence (configuration 1 without node 2), re-add.
  const fresh = mover(() => current, false);
  fresh.run();
  expect(await c.runUntil(() => current.moving.length === 0, 4000)).toBeGreaterThanOrEqual(0);
  expect(fresh.warnings).toEqual([]);
  expect(current.table.groups[0]).toMatchObject({ replicas: [1, 2, 3], config: 2 });

  // The restarted server leads the metadata group for a moment, holding the version that planned it.
  const stale = mover(() => planned, o.unsafeMover);
  stale.run();
  expect(await c.runUntil(() => stale.warnings.length > 0, 4000)).toBeGreaterThanOrEqual(0);
  await c.runUntil(() => false, 200);
  return { warnings: stale.warnings, group: c.group(1)!.configuration, metadata: current.table.groups[0] };
}

describe('ReplicaMover: a move run twice from different metadata versions', () => {
  it('the stale run stops before its first step: the move is no longer recorded (re-read through the metadata group)', async () => {
    const out = await staleRejoin({ unsafeGroup: false, unsafeMover: false });
    expect(out.warnings.join('\n')).toMatch(/no longer recorded at this step/);
    expect(out.group).toEqual({ configId: 2, members: [1, 2, 3] });
    expect(out.metadata).toMatchObject({ replicas: [1, 2, 3], config: 2 });
  });

  it('mutation: a step that trusts its stale copy is still refused by the group (configuration compare-and-set)', async () => {
    const out = await staleRejoin({ unsafeGroup: false, unsafeMover: true });
    expect(out.warnings.join('\n')).toMatch(/runs configuration 2 \[1, 2, 3\], not the expected 0/);
    expect(out.group).toEqual({ configId: 2, members: [1, 2, 3] });
  });

  it('mutation check: with both rules broken the stale rejoin removes node 2 behind the metadata (caught)', async () => {
    const out = await staleRejoin({ unsafeGroup: true, unsafeMover: true });
    // The group runs a configuration the metadata never recorded: node 2's replica never runs again.
    expect(out.group).toEqual({ configId: 3, members: [1, 3] });
    expect(out.metadata).toMatchObject({ replicas: [1, 2, 3], config: 2 });
  });
});
