import { type ClusterMetadata, ClusterMetadataSchema, METADATA_PARTITION, type NodeId } from '@paxkv/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MembershipRefusedError } from './errors.js';
import {
  abandonMove,
  addMember,
  adoptConfiguration,
  applyMove,
  fenceRejoin,
  finishRejoin,
  metadataReplicasOf,
  movedReplicas,
  partitionsOf,
  planLeaderBalance,
  planMoves,
  preferLeader,
  removeMember,
  seedMetadata,
  startMove,
  startRejoin,
  unsafeMembershipMutations,
} from './membership.js';
import { buildLookupTable, replicaLoad, validateLookupTable } from './table.js';

const addr = (id: number) => `127.0.0.1:${7000 + id}`;
const nodes = (n: number) => Array.from({ length: n }, (_, i) => ({ id: i + 1, address: addr(i + 1) }));

function seed(n = 3, partitions = 8, replication = 3): ClusterMetadata {
  return seedMetadata(buildLookupTable({ nodes: nodes(n), partitions, replication, version: 1 }));
}

function valid(m: ClusterMetadata): void {
  expect(ClusterMetadataSchema.safeParse(m).success).toBe(true);
  expect(validateLookupTable(m.table)).toEqual([]);
}

const everyoneAlive = () => true;
const plan = (m: ClusterMetadata, extra: Partial<Parameters<typeof planMoves>[1]> = {}) =>
  planMoves(m, {
    alive: everyoneAlive,
    replace: new Set(),
    inFlight: new Set(),
    maxInFlight: 1,
    rebalance: true,
    ...extra,
  });

describe('seedMetadata', () => {
  it('lists the table nodes, the first three as metadata replicas, and the next free id', () => {
    const m = seed(4);
    valid(m);
    expect(m.metaReplicas).toEqual([1, 2, 3]);
    expect(m.nextNodeId).toBe(5);
    expect(m.table.version).toBe(1);
    expect(
      metadataReplicasOf(buildLookupTable({ nodes: nodes(2), partitions: 1, replication: 1, version: 1 })),
    ).toEqual([1, 2]);
  });

  it('adds the spares the bootstrap server registered, as a new version', () => {
    const t = buildLookupTable({ nodes: nodes(3), partitions: 4, replication: 3, version: 1 });
    const m = seedMetadata(t, [{ id: 4, address: addr(4) }]);
    valid(m);
    expect(m.table.nodes.map((n) => n.id)).toEqual([1, 2, 3, 4]);
    expect(m.table.version).toBe(2);
    expect(m.nextNodeId).toBe(5);
  });
});

describe('addMember', () => {
  it('gives a new server the next id, as a spare, in a new version', () => {
    const m = seed();
    const r = addMember(m, addr(9));
    expect(r.changed).toBe(true);
    expect(r.node).toEqual({ id: 4, address: addr(9) });
    expect(r.metadata.table.version).toBe(m.table.version + 1);
    expect(partitionsOf(r.metadata.table, 4)).toEqual([]);
    valid(r.metadata);
    // Adding it again changes nothing.
    const again = addMember(r.metadata, addr(9));
    expect(again.changed).toBe(false);
    expect(again.node.id).toBe(4);
  });

  it('keeps the id of a server that checks in again, and follows its new address', () => {
    const m = seed();
    expect(addMember(m, addr(2), 2).changed).toBe(false);
    const moved = addMember(m, '127.0.0.1:9999', 2);
    expect(moved.changed).toBe(true);
    expect(moved.metadata.table.nodes.find((n) => n.id === 2)?.address).toBe('127.0.0.1:9999');
    valid(moved.metadata);
  });

  it('never hands the id of a server holding replicas to a server with an empty data dir', () => {
    const m = seed();
    expect(() => addMember(m, addr(2))).toThrow(/holds replicas of partitions .*remove node 2 first/);
    expect(() => addMember(m, addr(2))).toThrow(MembershipRefusedError);
  });

  it('refuses an id that was removed, and never reuses ids', () => {
    let m = addMember(seed(), addr(4)).metadata;
    m = removeMember(m, 4).metadata;
    expect(() => addMember(m, addr(4), 4)).toThrow(/node 4 was removed/);
    const fresh = addMember(m, addr(4));
    expect(fresh.node.id).toBe(5);
  });
});

describe('removeMember', () => {
  it('removes a spare at once', () => {
    const m = addMember(seed(), addr(4)).metadata;
    const r = removeMember(m, 4);
    expect(r.state).toBe('removed');
    expect(r.metadata.table.nodes.map((n) => n.id)).toEqual([1, 2, 3]);
    valid(r.metadata);
  });

  it('drains a server that holds replicas: its replicas move, then it leaves', () => {
    let m = seed(5, 8, 3);
    m = { ...m, metaReplicas: [1, 2] };
    const r = removeMember(m, 5);
    expect(r.state).toBe('draining');
    m = r.metadata;
    const held = partitionsOf(m.table, 5).length;
    expect(held).toBeGreaterThan(0);
    for (let i = 0; i < held; i++) {
      const moves = plan(m);
      expect(moves).toHaveLength(1);
      expect(moves[0]).toMatchObject({ from: 5, reason: 'drain' });
      m = applyMove(m, moves[0]!);
      valid(m);
    }
    expect(m.table.nodes.some((n) => n.id === 5)).toBe(false);
    expect(m.draining).toEqual([]);
    // Whatever the drain left uneven is evened out by rebalancing moves.
    for (let moves = plan(m); moves.length > 0; moves = plan(m)) m = applyMove(m, moves[0]!);
    const load = [...replicaLoad(m.table).values()];
    expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(1);
  });

  it("a drain spreads the leaving server's preferred leaderships over the servers that stay", () => {
    const leaders = (m: ClusterMetadata) => {
      const c = new Map<number, number>();
      for (const g of m.table.groups) c.set(g.replicas[0]!, (c.get(g.replicas[0]!) ?? 0) + 1);
      return [...c.values()];
    };
    const drain = (balanced: boolean) => {
      let m = removeMember(seed(4, 16, 3), 4).metadata;
      for (let moves = plan(m); moves.length > 0; moves = plan(m)) {
        const mv = moves[0]!;
        const g = m.table.groups.find((x) => x.partition === mv.partition)!;
        // As the replica mover does: the configuration's order is chosen once, then recorded.
        const replicas = balanced
          ? movedReplicas(g.replicas, mv.from, mv.to, m.table)
          : movedReplicas(g.replicas, mv.from, mv.to);
        m = applyMove(startMove(m, mv), mv, undefined, replicas);
        valid(m);
        if (!m.draining.includes(4)) break;
      }
      expect(m.table.nodes.map((n) => n.id)).toEqual([1, 2, 3]);
      return leaders(m);
    };
    // Node 4 led 4 groups, each also held by nodes 1 and 2 (never by 3): the best a move can do
    // without making the joining replica preferred is 2 each to nodes 1 and 2 (6/6/4).
    const even = drain(true);
    expect(even.reduce((a, b) => a + b, 0)).toBe(16);
    expect([...even].sort((x, y) => x - y)).toEqual([4, 6, 6]);
    // Without the table (the next replica of each list takes over), the same drain piles them up.
    expect(drain(false).sort((x, y) => x - y)).toEqual([4, 4, 8]);
  });

  it('movedReplicas: the least preferred staying replica leads only when the leaving one was first', () => {
    const m = seed(4, 16, 3);
    const g = m.table.groups.find((x) => x.replicas[0] !== 4 && x.replicas.includes(4))!;
    // `from` is not first: the order is kept whatever the load.
    expect(movedReplicas(g.replicas, 4, 9, m.table)).toEqual([...g.replicas.filter((r) => r !== 4), 9]);
    const first = m.table.groups.find((x) => x.replicas[0] === 4)!;
    const [a, b] = first.replicas.slice(1) as [number, number];
    // Ties keep the list's order; without a table the order is kept too.
    expect(movedReplicas(first.replicas, 4, 9, { ...m.table, groups: [first] })).toEqual([a, b, 9]);
    expect(movedReplicas(first.replicas, 4, 9)).toEqual([a, b, 9]);
    // The second staying replica leads when it is preferred for fewer groups.
    const heavier = { ...m.table, groups: [first, { ...first, partition: 99, replicas: [a, 4, b] }] };
    expect(movedReplicas(first.replicas, 4, 9, heavier)).toEqual([b, a, 9]);
    // A recorded order must hold the same replicas as the move.
    const spare = [1, 2, 3].find((n) => !first.replicas.includes(n))!;
    const mv = { partition: first.partition, from: 4, to: spare, reason: 'drain' as const };
    expect(
      applyMove(m, mv, undefined, [b, a, spare]).table.groups.find((x) => x.partition === mv.partition)
        ?.replicas,
    ).toEqual([b, a, spare]);
    expect(() => applyMove(m, mv, undefined, [a, 4, spare])).toThrow(/instead of/);
  });

  it('refuses what would leave a group short, and the metadata group', () => {
    const m = seed(3);
    expect(() => removeMember({ ...m, metaReplicas: [1] }, 3)).toThrow(
      /would leave partition \d+ with 2 of 3 replicas.*add a server first/,
    );
    expect(() => removeMember(m, 1)).toThrow(/metadata group/);
    expect(() => removeMember(m, 42)).toThrow(/not a member/);
  });
});

describe('moves in the metadata', () => {
  it('record the configuration a move started, and keep a move target from being taken over', () => {
    let m = addMember(seed(3, 2, 3), addr(4)).metadata;
    const mv = { partition: 0, from: 3, to: 4, reason: 'replace' as const };
    m = startMove(m, mv);
    valid(m);
    expect(m.moving).toEqual([mv]);
    expect(() => startMove(m, { ...mv, to: 4 })).toThrow(/cannot move/);
    // A fresh server at node 4's address while node 4 receives a replica: refused.
    expect(() => addMember(m, addr(4))).toThrow(/holds replicas of partitions 0/);
    expect(abandonMove(m, 0).moving).toEqual([]);
    const done = applyMove(m, mv, 7);
    valid(done);
    expect(done.moving).toEqual([]);
    expect(done.table.groups[0]).toMatchObject({ config: 7 });
    expect(done.table.groups[0]?.replicas).toContain(4);
    expect(applyMove(m, mv).table.groups[0]?.config).toBe(1);
  });
});

/** The configuration id the metadata records for the group of `partition`. */
const configOf = (m: ClusterMetadata, partition: number) =>
  partition === METADATA_PARTITION
    ? (m.metaConfig ?? 0)
    : (m.table.groups.find((g) => g.partition === partition)?.config ?? 0);

describe('adoptConfiguration: a record that fell behind its group', () => {
  it('records the configuration the group runs, drops the move planned from the stale record, never backwards', () => {
    let m = addMember(addMember(seed(3, 2, 3), addr(4)).metadata, addr(5)).metadata;
    const g0 = m.table.groups[0]!;
    const mv = { partition: 0, from: g0.replicas[1]!, to: 4, reason: 'replace' as const };
    m = startMove(m, mv);
    // The group ran two configurations the metadata never recorded: it dropped g0.replicas[0], added 5.
    const running = { configId: 2, replicas: [5, g0.replicas[2]!, g0.replicas[1]!] };
    const next = adoptConfiguration(m, 0, running, mv);
    valid(next);
    expect(next.table.version).toBe(m.table.version + 1);
    expect(next.moving).toEqual([]);
    // Staying replicas keep their order (the preferred leader first), the new one comes last.
    expect(next.table.groups[0]).toEqual({
      ...g0,
      replicas: [g0.replicas[1], g0.replicas[2], 5],
      config: 2,
    });
    expect(next.table.groups[1]).toEqual(m.table.groups[1]);
    // Never backwards, never sideways: an older or equal configuration changes nothing.
    for (const stale of [
      { configId: 1, replicas: [1, 2, 3] },
      { configId: 2, replicas: [1, 2, 4] },
    ]) {
      expect(adoptConfiguration(next, 0, stale)).toBe(next);
    }
    // Another leader's move of the group is left alone.
    const other = startMove(next, { partition: 0, from: 5, to: 4, reason: 'rebalance' });
    expect(adoptConfiguration(other, 0, { configId: 3, replicas: [1, 2, 3] }, mv)).toBe(other);
    // A configuration the metadata cannot record is refused with what to do.
    expect(() => adoptConfiguration(next, 0, { configId: 3, replicas: [1, 9] })).toThrow(
      /node 9 is not a member/,
    );
    expect(() => adoptConfiguration(next, 0, { configId: 3, replicas: [1, 1] })).toThrow(
      MembershipRefusedError,
    );
  });

  it('mutation check: adoptOlderConfiguration moves a record backwards (caught)', () => {
    const m = adoptConfiguration(seed(3, 1, 3), 0, { configId: 4, replicas: [1, 2, 3] });
    expect(m.table.groups[0]?.config).toBe(4);
    unsafeMembershipMutations.adoptOlderConfiguration = true;
    try {
      expect(adoptConfiguration(m, 0, { configId: 2, replicas: [1, 2, 3] }).table.groups[0]?.config).toBe(2);
    } finally {
      unsafeMembershipMutations.adoptOlderConfiguration = false;
    }
    expect(adoptConfiguration(m, 0, { configId: 2, replicas: [1, 2, 3] })).toBe(m);
  });

  it("repairs the metadata group's record the same way; a drained member that holds nothing leaves", () => {
    let m = addMember(addMember(seed(3, 2, 3), addr(4)).metadata, addr(5)).metadata;
    const mv = { partition: METADATA_PARTITION, from: 1, to: 4, reason: 'replace' as const };
    m = startMove(m, mv);
    const next = adoptConfiguration(m, METADATA_PARTITION, { configId: 3, replicas: [2, 3, 4] }, mv);
    valid(next);
    expect(next.metaReplicas).toEqual([2, 3, 4]);
    expect(next.metaConfig).toBe(3);
    expect(next.moving).toEqual([]);
    expect(next.table.groups).toEqual(m.table.groups);
    expect(adoptConfiguration(next, METADATA_PARTITION, { configId: 2, replicas: [1, 2, 3] })).toBe(next);
    expect(() =>
      adoptConfiguration(next, METADATA_PARTITION, { configId: 4, replicas: [1, 2, 3, 4, 5, 6, 7, 8] }),
    ).toThrow(MembershipRefusedError);
    // Node 4 (not a metadata replica) drains; the group of partition 1 ran its move off node 4, unrecorded.
    let d = addMember(seed(4, 2, 3), addr(5)).metadata;
    expect(d.table.groups[1]?.replicas).toEqual([4, 1, 2]);
    d = removeMember(d, 4).metadata;
    expect(d.draining).toEqual([4]);
    const healed = adoptConfiguration(d, 1, { configId: 1, replicas: [1, 2, 5] });
    valid(healed);
    expect(healed.table.groups[1]).toMatchObject({ replicas: [1, 2, 5], config: 1 });
    expect(healed.table.nodes.map((n) => n.id)).toEqual([1, 2, 3, 5]);
    expect(healed.draining).toEqual([]);
  });
});

describe('rejoin of a replica whose state cannot be read', () => {
  it('is recorded once, fenced by the configuration without the member, then done in a later one', () => {
    let m = seed(3, 2, 3);
    m = startRejoin(m, 1, 3);
    valid(m);
    expect(m.moving).toEqual([{ partition: 1, from: 3, to: 3, reason: 'rejoin' }]);
    // Asked again: unchanged. Another move of the group, or a finish before the fence: refused.
    expect(startRejoin(m, 1, 3)).toBe(m);
    expect(() => startMove(m, { partition: 1, from: 3, to: 4, reason: 'replace' })).toThrow(/cannot move/);
    expect(() => finishRejoin(m, 1, 5)).toThrow(/no rejoin past/);
    // A rejoin holds no planned move in its group.
    expect(plan(m, { replace: new Set([2]) }).some((x) => x.partition === 1)).toBe(false);
    const fenced = fenceRejoin(m, 1, 4);
    valid(fenced);
    expect(fenced.moving[0]?.fence).toBe(4);
    expect(fenceRejoin(fenced, 1, 4)).toBe(fenced);
    expect(() => finishRejoin(fenced, 1, 4)).toThrow(/no rejoin past/);
    const done = finishRejoin(fenced, 1, 5);
    valid(done);
    expect(done.moving).toEqual([]);
    expect(done.table.groups.find((g) => g.partition === 1)).toMatchObject({ config: 5 });
    expect(done.table.version).toBe(m.table.version + 2);
    expect(() => startRejoin(seed(4, 2, 3), 0, 9)).toThrow(/not a replica/);
    // The schema refuses a rejoin that names two members, and a fence on another kind of move.
    const twoMembers = { ...m, moving: [{ partition: 1, from: 3, to: 2, reason: 'rejoin' as const }] };
    expect(ClusterMetadataSchema.safeParse(twoMembers).success).toBe(false);
    const fencedMove = {
      ...m,
      moving: [{ partition: 1, from: 3, to: 3, reason: 'drain' as const, fence: 2 }],
    };
    expect(ClusterMetadataSchema.safeParse(fencedMove).success).toBe(false);
  });
});

describe('leadership rebalancing', () => {
  it('evens out preferred leaders one group at a time, to within one per live server', () => {
    // 4 servers, 12 groups of 3 built for 3 servers, then rebalanced replicas onto node 4.
    let m = addMember(seed(3, 12, 3), addr(4)).metadata;
    for (let i = 0; i < 20; i++) {
      const [mv] = plan(m);
      if (!mv) break;
      m = applyMove(startMove(m, mv), mv);
    }
    const preferred = (x: ClusterMetadata) => {
      const c = new Map<number, number>();
      for (const g of x.table.groups)
        c.set(g.replicas[0] as number, (c.get(g.replicas[0] as number) ?? 0) + 1);
      return [1, 2, 3, 4].map((n) => c.get(n) ?? 0);
    };
    let steps = 0;
    for (let next = planLeaderBalance(m, everyoneAlive); next; next = planLeaderBalance(m, everyoneAlive)) {
      const before = m.table.version;
      m = preferLeader(m, next.partition, next.leader);
      valid(m);
      expect(m.table.version).toBe(before + 1);
      expect(++steps).toBeLessThan(20);
    }
    const counts = preferred(m);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    // Replica sets are unchanged by leadership rebalancing; a dead server is left out of the counts.
    expect(planLeaderBalance(m, (n) => n !== 4)).toBeNull();
    expect(() => preferLeader(m, 0, 99)).toThrow(/not a replica/);
    expect(preferLeader(m, 0, m.table.groups[0]?.replicas[0] as number)).toBe(m);
  });
});

describe('moving the metadata group', () => {
  it('moves a removed or dead metadata replica to another server, first; the member leaves after it', () => {
    let m = addMember(seed(3, 4, 3), addr(4)).metadata;
    // Node 1 (a metadata replica, the bootstrap server) is removed: drained, metadata group first.
    const r = removeMember(m, 1);
    expect(r.state).toBe('draining');
    m = r.metadata;
    const [first] = plan(m, { maxInFlight: 1 });
    expect(first).toEqual({ partition: METADATA_PARTITION, from: 1, to: 4, reason: 'drain' });
    m = startMove(m, first!);
    valid(m);
    expect(() => startMove(m, first!)).toThrow(/cannot move/);
    m = applyMove(m, first!, 1);
    valid(m);
    expect(m.metaReplicas).toEqual([4, 2, 3]);
    expect(m.metaConfig).toBe(1);
    // Then its data replicas; it leaves with the last one.
    for (let i = 0; i < 10 && m.table.nodes.some((n) => n.id === 1); i++) {
      const [mv] = plan(m, { maxInFlight: 1 });
      if (!mv) break;
      m = applyMove(startMove(m, mv), mv);
      valid(m);
    }
    expect(m.table.nodes.map((n) => n.id)).toEqual([2, 3, 4]);
    // A dead metadata replica is replaced only where a live majority of the metadata group stays.
    const dead = new Set<NodeId>([2]);
    const healing = plan(m, { alive: (n) => !dead.has(n), replace: dead, maxInFlight: 1 });
    expect(healing).toEqual([]); // no live server outside the metadata group
    const bigger = addMember(m, addr(5)).metadata;
    expect(plan(bigger, { alive: (n) => !dead.has(n), replace: dead, maxInFlight: 1 })[0]).toMatchObject({
      partition: METADATA_PARTITION,
      from: 2,
      to: 5,
    });
    const twoDead = new Set<NodeId>([2, 3]);
    expect(
      plan(bigger, { alive: (n) => !twoDead.has(n), replace: twoDead, maxInFlight: 1 }).some(
        (x) => x.partition === METADATA_PARTITION,
      ),
    ).toBe(false);
  });
});

describe('planMoves', () => {
  it('replaces a dead server group by group, bounded by maxInFlight, only where a live majority stays', () => {
    const m = addMember(seed(4, 8, 3), addr(5)).metadata;
    const dead = new Set<NodeId>([4]);
    const alive = (n: NodeId) => !dead.has(n);
    const moves = plan(m, { alive, replace: dead, maxInFlight: 2 });
    expect(moves).toHaveLength(2);
    for (const mv of moves) {
      expect(mv.from).toBe(4);
      expect(mv.reason).toBe('replace');
      expect(m.table.groups.find((g) => g.partition === mv.partition)?.replicas).not.toContain(mv.to);
    }
    expect(new Set(moves.map((x) => x.partition)).size).toBe(2);
    // The partitions in flight are skipped and count against the bound.
    expect(
      plan(m, { alive, replace: dead, maxInFlight: 2, inFlight: new Set([moves[0]!.partition]) }),
    ).toHaveLength(1);
    // Two dead replicas in one group of three: no majority stays, no move there.
    const twoDead = new Set<NodeId>([1, 2]);
    const stuck = plan(m, { alive: (n) => !twoDead.has(n), replace: twoDead, maxInFlight: 8 });
    for (const mv of stuck) {
      const replicas =
        mv.partition === METADATA_PARTITION
          ? m.metaReplicas
          : m.table.groups.find((x) => x.partition === mv.partition)!.replicas;
      expect(replicas.filter((r) => !twoDead.has(r)).length).toBeGreaterThanOrEqual(2);
    }
  });

  it('rebalances onto a new server until loads differ by at most one', () => {
    let m = addMember(seed(3, 6, 3), addr(4)).metadata;
    for (let i = 0; i < 20; i++) {
      const moves = plan(m);
      if (moves.length === 0) break;
      expect(moves[0]?.reason).toBe('rebalance');
      m = applyMove(m, moves[0]!);
    }
    valid(m);
    const load = [...replicaLoad(m.table).values()];
    expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(1);
    expect(partitionsOf(m.table, 4).length).toBeGreaterThan(0);
  });

  it('keeps the metadata valid and versions growing by one under random changes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('add' as const), port: fc.integer({ min: 1, max: 12 }) }),
            fc.record({ kind: fc.constant('remove' as const), node: fc.integer({ min: 1, max: 14 }) }),
            fc.record({ kind: fc.constant('move' as const), dead: fc.integer({ min: 1, max: 14 }) }),
            // A group (6: the metadata group) reports the configuration it runs: record it if newer.
            fc.record({
              kind: fc.constant('adopt' as const),
              partition: fc.integer({ min: 0, max: 6 }),
              ahead: fc.integer({ min: -2, max: 3 }),
              replicas: fc.uniqueArray(fc.integer({ min: 1, max: 14 }), { minLength: 1, maxLength: 5 }),
            }),
          ),
          { maxLength: 40 },
        ),
        (steps) => {
          let m = seed(4, 6, 3);
          const everIds = new Map<number, string>(m.table.nodes.map((n) => [n.id, n.address]));
          for (const s of steps) {
            const before = m.table.version;
            let next = m;
            try {
              if (s.kind === 'add') next = addMember(m, addr(s.port + 100)).metadata;
              else if (s.kind === 'remove') next = removeMember(m, s.node).metadata;
              else if (s.kind === 'adopt') {
                const p = s.partition === 6 ? METADATA_PARTITION : s.partition;
                const was = configOf(m, p);
                next = adoptConfiguration(m, p, {
                  configId: Math.max(0, was + s.ahead),
                  replicas: s.replicas,
                });
                // Only forward: a record never moves back, nor sideways to another configuration.
                if (next !== m) expect(configOf(next, p)).toBeGreaterThan(was);
              } else {
                const dead = new Set<NodeId>([s.dead]);
                const mv = plan(m, { alive: (n) => !dead.has(n), replace: dead })[0];
                if (mv) next = applyMove(m, mv);
              }
            } catch (e) {
              expect(e).toBeInstanceOf(MembershipRefusedError);
            }
            if (next !== m) expect(next.table.version).toBe(before + 1);
            m = next;
            // A group's size is what it runs once a configuration was adopted (not always 3).
            expect(ClusterMetadataSchema.safeParse(m).success).toBe(true);
            expect(validateLookupTable(m.table).filter((p) => !/replicas, expected exactly/.test(p))).toEqual(
              [],
            );
            for (const n of m.table.nodes) {
              const known = everIds.get(n.id);
              if (known === undefined) everIds.set(n.id, n.address);
            }
            expect(m.nextNodeId).toBeGreaterThan(Math.max(...everIds.keys()));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

/**
 * Random membership histories (joins by check-in, fresh servers at known addresses, removals, deaths and
 * the moves planned for them) and the safety rules checked after every step; returns the violations.
 */
function violations(seed: number, steps = 60): string[] {
  let state = seed >>> 0 || 1;
  const rnd = (n: number) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 16) % n;
  };
  const out: string[] = [];
  let m = seed % 2 === 0 ? seed_(4) : seed_(5);
  const dead = new Set<NodeId>();
  for (let i = 0; i < steps && out.length === 0; i++) {
    const kind = rnd(5);
    try {
      if (kind === 0) m = addMember(m, addr(100 + rnd(6))).metadata;
      else if (kind === 1) {
        // A server with an empty data dir at the address of a member.
        const n = m.table.nodes[rnd(m.table.nodes.length)]!;
        const r = addMember(m, n.address);
        if (partitionsOf(m.table, r.node.id).length > 0)
          out.push(`step ${i}: a fresh server got id ${r.node.id}, which holds replicas`);
        m = r.metadata;
      } else if (kind === 2) {
        // One or two servers die at once.
        for (let k = 0; k <= rnd(2); k++) dead.add(m.table.nodes[rnd(m.table.nodes.length)]!.id);
      } else if (kind === 4) {
        // An operator removes a member (it drains first when it holds replicas).
        const n = m.table.nodes[rnd(m.table.nodes.length)]!;
        m = removeMember(m, n.id).metadata;
      } else {
        const alive = (x: NodeId) => !dead.has(x);
        const moves = plan(m, { alive, replace: dead, maxInFlight: 2 });
        // Self-healing: a dead server's replica that can move (a live majority stays, a live server
        // outside the group can take it) is planned, unless another move runs in its group.
        if (moves.length === 0 && m.moving.length === 0) {
          for (const g of m.table.groups) {
            // The planner moves the first leaving replica of a group (draining or dead).
            const from = g.replicas.find((r) => dead.has(r) || m.draining.includes(r));
            const staying = g.replicas.filter((r) => r !== from && alive(r)).length;
            const receiver = m.table.nodes.some(
              (n) => alive(n.id) && !m.draining.includes(n.id) && !g.replicas.includes(n.id),
            );
            if (from !== undefined && receiver && staying >= Math.floor(g.replicas.length / 2) + 1)
              out.push(`step ${i}: partition ${g.partition}'s replica on leaving node ${from} not moved`);
          }
        }
        for (const mv of moves) {
          const replicas =
            mv.partition === METADATA_PARTITION
              ? m.metaReplicas
              : m.table.groups.find((x) => x.partition === mv.partition)!.replicas;
          const staying = replicas.filter((r) => r !== mv.from && alive(r)).length;
          if (staying < Math.floor(replicas.length / 2) + 1)
            out.push(`step ${i}: partition ${mv.partition} moved with ${staying} live staying replicas`);
          m = applyMove(m, mv);
        }
      }
    } catch (e) {
      if (!(e instanceof MembershipRefusedError)) throw e;
    }
    const members = new Set(m.table.nodes.map((n) => n.id));
    for (const g of m.table.groups)
      for (const r of g.replicas)
        if (!members.has(r))
          out.push(`step ${i}: partition ${g.partition} has a replica on node ${r}, not a member`);
  }
  return out;
}

function seed_(n: number): ClusterMetadata {
  return seed(n, 6, 3);
}

describe('membership safety rules (with mutation checks)', () => {
  const seeds = Array.from({ length: 300 }, (_, i) => i + 1);

  it('hold over 300 random histories', () => {
    for (const s of seeds) expect(violations(s), `seed ${s}`).toEqual([]);
  });

  it.each([
    ['freshTakesReplicaId', /a fresh server got id \d+, which holds replicas/],
    ['moveWithoutMajority', /moved with \d live staying replicas/],
    ['removeWithoutDrain', /has a replica on node \d+, not a member/],
    ['ignoreLostServers', /replica on leaving node \d+ not moved/],
  ] as const)('catch the mutation %s', (mutation, expected) => {
    unsafeMembershipMutations[mutation] = true;
    try {
      const caught = seeds.map((s) => violations(s)).find((v) => v.length > 0);
      expect(caught?.[0]).toMatch(expected);
    } finally {
      unsafeMembershipMutations[mutation] = false;
    }
  });
});
