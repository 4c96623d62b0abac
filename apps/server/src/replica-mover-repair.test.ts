/**
 * Metadata that fell behind its group heals (`repairRecord` in `move-steps.ts`, `adoptConfiguration` of
 * `@paxkv/bootstrap`): movers over a real replica group and a linearizable metadata register
 * (`test/mover-sim.ts`), every refusal carried over the wire. Mutation checks: the repair off
 * (`unsafeMoveSteps: 'noRepair'`), a refusal from an older server without the configuration, and a
 * repair that may move a record backwards (`adoptOlderConfiguration`).
 */
import {
  addMember,
  buildLookupTable,
  seedMetadata,
  startRejoin,
  unsafeMembershipMutations,
} from '@paxkv/bootstrap';
import { type ClusterMetadata, METADATA_PARTITION } from '@paxkv/common';
import { describe, expect, it } from 'vitest';
import { cluster, mover, nodes, register } from '../test/mover-sim.js';
import type { ReplicaGroupPort } from './group-port.js';
import type { ReplicaMoverDeps } from './replica-mover.js';

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

/**
 * A rejoin planned from a record two configurations behind: the group added node 4 (configuration 1)
 * and removed it again (configuration 2), unrecorded; then node 3's replica cannot read its state and
 * asks to rejoin. Its fence step expects configuration 0 and is refused; the repair records
 * configuration 2 and drops the move; node 3 asks again (as `RejoinRequester` does every 2 s while it is
 * listed) and is fenced above the repaired configuration.
 */
async function rejoinBehind(o: { unsafe?: ReplicaMoverDeps['unsafeMoveSteps'] }) {
  const g = await cluster({ seed: 5, spares: 1 });
  await g.reconfigureBehindMetadata([1, 2, 3, 4], { configId: 0, members: [1, 2, 3] });
  await g.reconfigureBehindMetadata([1, 2, 3], { configId: 1, members: [1, 2, 3, 4] });
  const seeded = seedMetadata(
    buildLookupTable({ nodes: nodes(3), partitions: 1, replication: 3, version: 1 }),
  );
  const { reg, change } = register(addMember(seeded, '127.0.0.1:7004').metadata);
  const token = 'node3-unreadable';
  const ask = () =>
    change({} as ReplicaGroupPort, (m) => {
      const next = m.moving.length === 0 && !m.rejoined?.length ? startRejoin(m, 0, 3, token) : m;
      return { metadata: next, changed: next !== m };
    });
  const leader = mover({
    reconfigurer: g.reconfigurer(),
    metadata: () => reg.current,
    change,
    ...(o.unsafe ? { unsafe: o.unsafe } : {}),
  });
  const steps = await g.c.runUntil(() => {
    void ask();
    leader.run();
    return (reg.current.rejoined?.length ?? 0) > 0;
  }, 3000);
  return { g, reg, leader, steps };
}

describe('ReplicaMover: a rejoin planned from a record two configurations behind', () => {
  it('repairs the record, then fences the member above the configuration the group runs', async () => {
    const { g, reg, leader, steps } = await rejoinBehind({});
    expect(steps).toBeGreaterThanOrEqual(0);
    const repairs = leader.warnings.filter((w) => w.includes('recorded the group'));
    expect(repairs).toHaveLength(1);
    expect(repairs[0]).toMatch(/recorded configuration 0 \[1, 2, 3\] but the group runs 2 \[1, 2, 3\]/);
    // Fenced by configuration 3 (the group's 2 without node 3), re-added in 4: above every configuration
    // whose promises node 3's replica may have held.
    expect(reg.current.rejoined).toEqual([{ partition: 0, node: 3, fence: 3, token: 'node3-unreadable' }]);
    expect(reg.current.table.groups[0]).toMatchObject({ replicas: [1, 2, 3], config: 4 });
    expect(
      await g.c.runUntil(() => g.leaderOf()?.configuration?.configId === 4, 2000),
    ).toBeGreaterThanOrEqual(0);
  });

  it('mutation check: without the repair the rejoin is refused forever (caught)', async () => {
    const { g, reg, leader, steps } = await rejoinBehind({ unsafe: 'noRepair' });
    expect(steps).toBe(-1);
    expect(
      leader.warnings.filter((w) => /rejoin of node 3 in partition 0 failed/.test(w)).length,
    ).toBeGreaterThan(10);
    expect(reg.current.table.groups[0]?.config ?? 0).toBe(0);
    expect(g.leaderOf()?.configuration).toEqual({ configId: 2, members: [1, 2, 3] });
  });
});
