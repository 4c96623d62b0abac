/**
 * Replica movers over a real replica group (the kvstore simulation) and a metadata that is one
 * linearizable register (what `casChange` gives: every change applies to the newest version). Each
 * refusal of the group crosses the wire as a forwarded `group.reconfigure` answer does (encoded,
 * decoded with the peer schema, rebuilt with `errorFromWire`).
 *
 * 1. Two metadata leaders run the same rejoin from different metadata versions (the session-5
 *    full-suite failure): each step re-reads the move (`move-steps.ts`) and the group compares-and-sets
 *    its configuration; with both rules broken on purpose the stale rejoin removes a replica the
 *    metadata still lists.
 * 2. The metadata fell two configurations behind its group (both metadata writes of a rejoin lost):
 *    the refusal carries the group's configuration, the mover records it and the move then succeeds.
 */
import {
  addMember,
  buildLookupTable,
  seedMetadata,
  startRejoin,
  unsafeMembershipMutations,
} from '@paxkv/bootstrap';
import {
  type ClusterMetadata,
  errorFromWire,
  errorMessage,
  METADATA_PARTITION,
  type NodeId,
  NoLeaderError,
  parsePeerMessage,
} from '@paxkv/common';
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
import { type GroupReconfigurer, ReplicaMover, type ReplicaMoverDeps } from './replica-mover.js';
import type { RequestPath } from './request-path.js';

const nodes = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: i + 1, address: `127.0.0.1:${7001 + i}` }));

/** `e` as a server on the other end of a forwarded `group.reconfigure` gets it back. */
function overTheWire(e: unknown, olderSender: boolean): Error {
  const { configuration, ...old } = errorMessage(e, 1);
  const r = parsePeerMessage(olderSender ? old : { ...old, ...(configuration ? { configuration } : {}) });
  if (!r.ok || r.value.type !== 'error') throw new Error('the refusal did not decode');
  return errorFromWire(r.value);
}

/** A cluster of `replicas` (+ `spares`) replicas of partition 0 with an elected leader. */
async function cluster(options: {
  seed: number;
  spares?: number;
  unsafeGroup?: boolean;
  /** The partition the simulated group plays (default 0; METADATA_PARTITION: the metadata group). */
  partition?: number;
}) {
  const simulated = options.partition ?? 0;
  const c = new GroupCluster({
    seed: options.seed,
    spares: options.spares ?? 0,
    ...(options.unsafeGroup ? { group: { unsafeMutation: 'ignoreExpectedConfiguration' as const } } : {}),
  });
  const leaderOf = (): ReplicaGroup | undefined =>
    c.ids
      .map((p) => c.group(p))
      .find((g) => g?.role === 'leader' && g.phase === 'accept' && !g.removed && g.configuration);
  expect(await c.runUntil(() => leaderOf() !== undefined, 600)).toBeGreaterThanOrEqual(0);
  /** The group's leader runs the change (the server routes `group.reconfigure` there). */
  const reconfigurer = (
    o: { olderSender?: boolean; hold?: () => Promise<void> } = {},
  ): GroupReconfigurer => ({
    reconfigure: async (partition, replicas, expect) => {
      if (partition !== simulated) throw new Error(`no group of partition ${partition} in this simulation`);
      for (let i = 0; i < 100_000 && !leaderOf(); i++) await new Promise((r) => setImmediate(r));
      const leader = leaderOf();
      if (!leader) throw new NoLeaderError({});
      try {
        return await leader.reconfigure(replicas, { configId: expect.configId, members: expect.replicas });
      } catch (e) {
        await o.hold?.();
        throw overTheWire(e, o.olderSender === true);
      }
    },
  });
  /** Runs `replicas` on the leader directly (a change the metadata never hears of). */
  const reconfigureBehindMetadata = async (
    replicas: NodeId[],
    from: { configId: number; members: NodeId[] },
  ) => {
    let done = false;
    void leaderOf()!
      .reconfigure(replicas, from)
      .then(() => {
        done = true;
      });
    const started = () => done && leaderOf()?.configuration?.configId === from.configId + 1;
    expect(await c.runUntil(started, 4000)).toBeGreaterThanOrEqual(0);
  };
  return { c, leaderOf, reconfigurer, reconfigureBehindMetadata };
}

/** A metadata register whose every change is linearizable; `records` keeps `recordOf` of each version. */
function register(first: ClusterMetadata, recordOf = (m: ClusterMetadata) => m.table.groups[0]?.config ?? 0) {
  const reg = { current: first, records: [recordOf(first)] };
  const change: MetadataChanger = async (_group, fn) => {
    const out = fn(reg.current);
    if (out.changed) {
      reg.current = out.metadata;
      reg.records.push(recordOf(out.metadata));
    }
    return out;
  };
  return { reg, change };
}

/** A `ReplicaMover` as the metadata leader runs it; `lost` nodes are suspected for good. */
function mover(
  deps: Pick<ReplicaMoverDeps, 'reconfigurer' | 'metadata' | 'change'> & {
    unsafe?: ReplicaMoverDeps['unsafeMoveSteps'];
    lost?: readonly NodeId[];
  },
) {
  const warnings: string[] = [];
  const warn: LogFn = (fields, message) => warnings.push(`${message}: ${String(fields.err ?? '')}`);
  const ctx = {
    config: parseServerConfig({ dataDir: '/nonexistent', replaceAfter: 1, moveIntervalMs: 0 }),
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
  const lost = new Set(deps.lost ?? []);
  const watch = {
    suspectedForMs: (n: NodeId) => (lost.has(n) ? Number.MAX_SAFE_INTEGER : 0),
    upForMs: (n: NodeId) => (lost.has(n) ? 0 : Number.MAX_SAFE_INTEGER),
  } as unknown as MemberWatch;
  const m = new ReplicaMover(ctx, {
    requests: () => ({}) as RequestPath,
    watch,
    reconfigurer: deps.reconfigurer,
    metadata: deps.metadata,
    change: deps.change,
    unsafeMoveSteps: deps.unsafe ?? 'none',
  });
  return { run: () => m.moveReplicas({} as ReplicaGroupPort), warnings };
}

async function staleRejoin(o: { unsafeGroup: boolean; unsafeMover: boolean }) {
  const { c, reconfigurer } = await cluster({ seed: 7, unsafeGroup: o.unsafeGroup });
  const seeded = seedMetadata(
    buildLookupTable({ nodes: nodes(3), partitions: 1, replication: 3, version: 1 }),
  );
  // Node 2's replica of partition 0 could not read its state: it asked to rejoin.
  const { reg, change } = register(startRejoin(seeded, 0, 2));
  const planned = reg.current;
  // The leader of the metadata group runs the rejoin: fence (configuration 1 without node 2), re-add.
  const fresh = mover({ reconfigurer: reconfigurer(), metadata: () => reg.current, change });
  fresh.run();
  expect(await c.runUntil(() => reg.current.moving.length === 0, 4000)).toBeGreaterThanOrEqual(0);
  expect(fresh.warnings).toEqual([]);
  expect(reg.current.table.groups[0]).toMatchObject({ replicas: [1, 2, 3], config: 2 });

  // The restarted server leads the metadata group for a moment, holding the version that planned it.
  const stale = mover({
    reconfigurer: reconfigurer(),
    metadata: () => planned,
    change,
    unsafe: o.unsafeMover ? 'heldMetadata' : 'none',
  });
  stale.run();
  expect(await c.runUntil(() => stale.warnings.length > 0, 4000)).toBeGreaterThanOrEqual(0);
  await c.runUntil(() => false, 200);
  return {
    warnings: stale.warnings,
    group: c.group(1)!.configuration,
    metadata: reg.current.table.groups[0],
  };
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

/**
 * The group ran a rejoin of node 2 (configuration 1 = [1, 3], configuration 2 = [1, 2, 3]) whose two
 * metadata writes were lost: the metadata still records configuration 0. Then node 2 is lost for good
 * and node 4 (a spare) is there to replace it. Every step of the replacement expects configuration 0.
 * `meta`: the simulated group is the metadata group (`metaReplicas`, `metaConfig`); the data group
 * is then listed on nodes 1, 3 and 4 and nothing else moves.
 */
async function twoBehind(o: {
  seed: number;
  olderSender?: boolean;
  unsafe?: ReplicaMoverDeps['unsafeMoveSteps'];
  meta?: boolean;
}) {
  const partition = o.meta ? METADATA_PARTITION : 0;
  const g = await cluster({ seed: o.seed, spares: 1, partition });
  await g.reconfigureBehindMetadata([1, 3], { configId: 0, members: [1, 2, 3] });
  await g.reconfigureBehindMetadata([1, 2, 3], { configId: 1, members: [1, 3] });
  g.c.crash(2);
  const seeded = addMember(
    seedMetadata(buildLookupTable({ nodes: nodes(3), partitions: 1, replication: 3, version: 1 })),
    '127.0.0.1:7004',
  ).metadata;
  const record = (m: ClusterMetadata) =>
    o.meta
      ? { replicas: m.metaReplicas, config: m.metaConfig ?? 0 }
      : { replicas: m.table.groups[0]?.replicas ?? [], config: m.table.groups[0]?.config ?? 0 };
  const { reg, change } = register(
    o.meta
      ? { ...seeded, table: { ...seeded.table, groups: [{ partition: 0, replicas: [1, 3, 4] }] } }
      : // The metadata group runs on nodes 1 and 3 (only the data group moves).
        { ...seeded, metaReplicas: [1, 3] },
    (m) => record(m).config,
  );
  const reconfigurer = g.reconfigurer(o.olderSender ? { olderSender: true } : {});
  const leader = mover({
    reconfigurer,
    metadata: () => reg.current,
    change,
    lost: [2],
    ...(o.unsafe ? { unsafe: o.unsafe } : {}),
  });
  const healed = () => reg.current.moving.length === 0 && record(reg.current).config === 3;
  // The metadata leader's heartbeat: plan and run the moves due.
  const steps = await g.c.runUntil(() => {
    leader.run();
    return healed();
  }, 3000);
  return { g, reg, leader, steps, record: () => record(reg.current) };
}

describe.each([
  ['a data group', false],
  ['the metadata group', true],
])('ReplicaMover: metadata two configurations behind %s', (_which, meta) => {
  it('records the configuration the refusal carries (over the wire), then the replacement succeeds', async () => {
    const { g, reg, leader, steps, record } = await twoBehind({ seed: 7, meta });
    expect(steps).toBeGreaterThanOrEqual(0);
    const repairs = leader.warnings.filter((w) => w.includes('recorded the group'));
    expect(repairs).toHaveLength(1);
    expect(repairs[0]).toMatch(/recorded configuration 0 \[1, 2, 3\] but the group runs 2 \[1, 2, 3\]/);
    // Repaired once (config 2), then the planned replacement of node 2 by node 4 ran and was recorded.
    expect(reg.records.filter((r, i) => r !== reg.records[i - 1])).toEqual([0, 2, 3]);
    // (A data move lists the new replica last; a metadata move puts it in the old one's place.)
    expect(record()).toEqual({ replicas: meta ? [1, 4, 3] : [1, 3, 4], config: 3 });
    // The group runs it, and takes writes again with node 4 in it (node 2 is gone for good).
    expect(
      await g.c.runUntil(() => g.leaderOf()?.configuration?.configId === 3, 2000),
    ).toBeGreaterThanOrEqual(0);
    expect(g.leaderOf()?.configuration).toEqual({ configId: 3, members: [1, 3, 4] });
    let put: unknown;
    void g.c.submit(g.leaderOf()!.pid, { op: 'put', key: 'k', value: 'v' }).then((r) => {
      put = r;
    });
    expect(await g.c.runUntil(() => put !== undefined, 2000)).toBeGreaterThanOrEqual(0);
    expect(put).not.toBeInstanceOf(Error);
    expect(
      await g.c.runUntil(() => g.c.group(4)?.decidedIndex === g.leaderOf()?.decidedIndex, 2000),
    ).toBeGreaterThanOrEqual(0);
  });

  it.each([
    ['the repair is off (unsafeMoveSteps: noRepair)', { unsafe: 'noRepair' as const }],
    ['the refusal comes from an older server (no configuration on the wire)', { olderSender: true }],
  ])('mutation check: when %s the move is refused forever (caught)', async (_what, o) => {
    const { g, leader, steps, record } = await twoBehind({ seed: 7, meta, ...o });
    expect(steps).toBe(-1);
    const refusals = leader.warnings.filter((w) =>
      /runs configuration 2 \[1, 2, 3\], not the expected 0/.test(w),
    );
    expect(refusals.length).toBeGreaterThan(10);
    expect(record()).toEqual({ replicas: [1, 2, 3], config: 0 });
    expect(g.leaderOf()?.configuration).toEqual({ configId: 2, members: [1, 2, 3] });
  });
});

/**
 * A late refusal: metadata leader A's step is refused (the group runs configuration 2, A expected 0),
 * but the answer reaches A only after leader B repaired the record and ran the replacement
 * (configuration 3); A leads the metadata group again when it acts on it.
 */
async function lateRefusal() {
  const g = await cluster({ seed: 11, spares: 1 });
  await g.reconfigureBehindMetadata([1, 3], { configId: 0, members: [1, 2, 3] });
  await g.reconfigureBehindMetadata([1, 2, 3], { configId: 1, members: [1, 3] });
  g.c.crash(2);
  const seeded = seedMetadata(
    buildLookupTable({ nodes: nodes(3), partitions: 1, replication: 3, version: 1 }),
  );
  const { reg, change } = register({ ...addMember(seeded, '127.0.0.1:7004').metadata, metaReplicas: [1, 3] });
  let release = () => {};
  const held = new Promise<void>((r) => {
    release = r;
  });
  const a = mover({
    reconfigurer: g.reconfigurer({ hold: () => held }),
    metadata: () => reg.current,
    change,
    lost: [2],
  });
  const b = mover({ reconfigurer: g.reconfigurer(), metadata: () => reg.current, change, lost: [2] });
  a.run();
  expect(await g.c.runUntil(() => reg.current.moving.length > 0, 100)).toBeGreaterThanOrEqual(0);
  const healed = await g.c.runUntil(() => {
    b.run();
    return reg.current.moving.length === 0 && reg.current.table.groups[0]?.config === 3;
  }, 3000);
  expect(healed).toBeGreaterThanOrEqual(0);
  release();
  expect(await g.c.runUntil(() => a.warnings.length > 0, 1000)).toBeGreaterThanOrEqual(0);
  await g.c.runUntil(() => false, 50);
  return { reg, warnings: a.warnings, group: g.leaderOf()?.configuration ?? g.c.group(1)?.configuration };
}

describe('ReplicaMover: a late refusal never moves the record backwards', () => {
  it('the repair applies only while the record is older than the configuration the refusal names', async () => {
    const { reg, warnings } = await lateRefusal();
    expect(warnings.join('\n')).toMatch(/move of partition 0 failed; it will be planned again/);
    expect(reg.current.table.groups[0]).toMatchObject({ replicas: [1, 3, 4], config: 3 });
    expect(reg.records).toEqual([...reg.records].sort((x, y) => x - y));
  });

  it('mutation check: adoptOlderConfiguration records the late configuration 2 behind the group (caught)', async () => {
    unsafeMembershipMutations.adoptOlderConfiguration = true;
    try {
      const { reg, warnings, group } = await lateRefusal();
      expect(warnings.join('\n')).toMatch(/recorded configuration 0 \[1, 2, 3\] but the group runs 2/);
      // The metadata now routes to node 2 (gone) and not to node 4, a configuration behind the group.
      expect(reg.current.table.groups[0]).toMatchObject({ replicas: [1, 3, 2], config: 2 });
      expect(group).toEqual({ configId: 3, members: [1, 3, 4] });
      expect(reg.records).not.toEqual([...reg.records].sort((x, y) => x - y));
    } finally {
      unsafeMembershipMutations.adoptOlderConfiguration = false;
    }
  });
});
