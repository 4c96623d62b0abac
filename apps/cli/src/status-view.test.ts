import { describe, expect, it } from 'vitest';
import {
  allPartitionsLed,
  formatStatus,
  fullyReplicated,
  mergeStatus,
  type ServerStatusLike,
} from './status-view.js';

const table = {
  version: 2,
  partitions: 2,
  replication: 2,
  nodes: [
    { id: 1, address: '127.0.0.1:7001' },
    { id: 2, address: '127.0.0.1:7002' },
    { id: 3, address: '127.0.0.1:7003' },
  ],
  groups: [
    { partition: 0, replicas: [1, 2] },
    { partition: 1, replicas: [2, 3] },
  ],
};

const members = [
  { id: 1, address: '127.0.0.1:7001', state: 'alive' },
  { id: 2, address: '127.0.0.1:7002', state: 'alive' },
  { id: 3, address: '127.0.0.1:7003', state: 'suspected' },
];

function status(node: number, groups: ServerStatusLike['groups']): ServerStatusLike {
  return { node, table, groups, members: node === 1 ? members : [] };
}

describe('mergeStatus', () => {
  it("shows how far the slowest replica of the group's newest configuration is behind", () => {
    const view = mergeStatus([
      {
        address: '127.0.0.1:7001',
        // Still running configuration 1 (its indexes are not comparable with configuration 2's).
        status: status(1, [{ partition: 0, leader: 2, role: 'stopped', decidedIndex: 900, configId: 1 }]),
      },
      {
        address: '127.0.0.1:7002',
        status: status(2, [
          { partition: 0, leader: 2, role: 'leader', decidedIndex: 40, appliedIndex: 40, configId: 2 },
          { partition: 1, leader: 2, role: 'leader', decidedIndex: 12, appliedIndex: 12 },
        ]),
      },
      {
        address: '127.0.0.1:7003',
        status: status(3, [
          // Decided 38 but applied 10: a new replica catching up.
          { partition: 0, leader: 2, role: 'follower', decidedIndex: 38, appliedIndex: 10, configId: 2 },
          { partition: 1, leader: 2, role: 'follower', decidedIndex: 12, appliedIndex: 12 },
        ]),
      },
    ]);
    expect(view.groups.map((g) => [g.partition, g.config, g.behind])).toEqual([
      [0, 2, 30],
      [1, 0, 0],
    ]);
    const text = formatStatus(view);
    expect(text).toMatch(/decided\s+behind\s+reconfiguration/);
    expect(text).toMatch(/^\s+0\s+1,2\s+2\/2\s+2\s+2\s+900\s+30\s+/m);
  });

  it('takes leaders from the replicas that lead, and marks unreachable servers', () => {
    const view = mergeStatus([
      {
        address: '127.0.0.1:7001',
        status: status(1, [{ partition: 0, leader: 2, role: 'follower', decidedIndex: 5 }]),
      },
      {
        address: '127.0.0.1:7002',
        status: status(2, [
          { partition: 0, leader: 2, role: 'leader', decidedIndex: 7 },
          { partition: 1, leader: 3, role: 'follower', decidedIndex: 3 },
        ]),
      },
      { address: '127.0.0.1:7003', error: 'cannot reach 127.0.0.1:7003' },
    ]);
    expect(view.tableVersion).toBe(2);
    expect(
      view.groups.map(({ partition, replicas, leader, decidedIndex, config }) => ({
        partition,
        replicas,
        leader,
        decidedIndex,
        config,
      })),
    ).toEqual([
      { partition: 0, replicas: [1, 2], leader: 2, decidedIndex: 7, config: 0 },
      { partition: 1, replicas: [2, 3], leader: 3, decidedIndex: 3, config: 0 },
    ]);
    // Node 1 answered but reports no replica of partition 0 here; node 3 did not answer.
    expect(view.groups[0]?.replicaStatus).toEqual([
      { node: 1, live: true, role: 'follower', configId: null, appliedIndex: 5 },
      { node: 2, live: true, role: 'leader', configId: null, appliedIndex: 7 },
    ]);
    // Node 1 has decided 5 of the leader's 7 (and reports no applied index, so 5 counts as applied).
    expect(view.groups.map((g) => g.behind)).toEqual([2, 0]);
    expect(view.groups[1]?.replicaStatus.map((r) => [r.node, r.live])).toEqual([
      [2, true],
      [3, false],
    ]);
    expect(view.groups.map((g) => g.liveReplicas)).toEqual([2, 1]);
    expect(view.groups.every((g) => g.reconfiguration === null)).toBe(true);
    expect(fullyReplicated(view)).toBe(false);
    expect(view.servers.map((s) => [s.id, s.reachable, s.state])).toEqual([
      [1, true, 'alive'],
      [2, true, 'alive'],
      [3, false, 'suspected'],
    ]);
    expect(allPartitionsLed(view)).toBe(true);
    const text = formatStatus(view);
    expect(text).toContain('lookup table v2');
    expect(text).toContain('suspected');
  });

  it('is not ready without a table or with a leaderless partition', () => {
    expect(allPartitionsLed(mergeStatus([{ address: 'a:1', error: 'down' }]))).toBe(false);
    const view = mergeStatus([
      {
        address: '127.0.0.1:7002',
        status: status(2, [{ partition: 0, leader: 2, role: 'leader', decidedIndex: 1 }]),
      },
    ]);
    expect(view.groups.find((g) => g.partition === 1)?.leader).toBeNull();
    expect(allPartitionsLed(view)).toBe(false);
    expect(formatStatus(mergeStatus([]))).toContain('not built yet');
  });

  it("shows each group's configuration: the table's, or a replica's when it is ahead (a move in progress)", () => {
    const table = {
      version: 3,
      partitions: 2,
      replication: 2,
      nodes: [1, 2, 3].map((id) => ({ id, address: `h:${id}` })),
      groups: [
        { partition: 0, replicas: [1, 3], config: 1 },
        { partition: 1, replicas: [2, 3] },
      ],
    };
    const view = mergeStatus([
      {
        address: 'h:1',
        status: {
          node: 1,
          table,
          groups: [{ partition: 1, leader: 2, role: 'follower', decidedIndex: 4, configId: 2 }],
          members: [],
        },
      },
    ]);
    expect(view.groups.map((g) => g.config)).toEqual([1, 2]);
    expect(formatStatus(view)).toMatch(
      /part\s+replicas\s+live\s+config\s+leader\s+decided\s+behind\s+reconfiguration/,
    );
  });

  it('marks replicas that are not live, shows the moves the metadata records, and tells when the cluster is healed', () => {
    const t = {
      version: 7,
      partitions: 2,
      replication: 2,
      nodes: [1, 2, 3].map((id) => ({ id, address: `h:${id}` })),
      groups: [
        { partition: 0, replicas: [1, 2], config: 1 },
        { partition: 1, replicas: [1, 3] },
      ],
    };
    const row = (partition: number, leader: number, role: string, configId: number) => ({
      partition,
      leader,
      role,
      decidedIndex: 9,
      configId,
    });
    const replies = (up: number[]) =>
      [1, 2, 3].map((node) =>
        up.includes(node)
          ? {
              address: `h:${node}`,
              status: {
                node,
                table: t,
                members: [],
                groups: t.groups
                  .filter((g) => g.replicas.includes(node))
                  .map((g) => row(g.partition, 1, node === 1 ? 'leader' : 'follower', g.config ?? 0)),
              },
            }
          : { address: `h:${node}`, error: 'cannot reach' },
      );
    const moving = {
      table: { version: 7 },
      metaReplicas: [1, 2, 3],
      metaConfig: 2,
      moving: [
        { partition: 1, from: 3, to: 2, reason: 'replace' },
        { partition: 1 << 20, from: 3, to: 4, reason: 'replace' },
      ],
      draining: [],
    };
    const lost = mergeStatus(replies([1, 2]), moving);
    expect(lost.groups[1]?.liveReplicas).toBe(1);
    expect(lost.groups[1]?.reconfiguration).toEqual({ from: 3, to: 2, reason: 'replace', configs: [0] });
    expect(lost.moving).toBe(2);
    // The metadata group: from the metadata, live = its server answered.
    expect(lost.metadataGroup).toEqual({
      config: 2,
      replicas: [1, 2, 3],
      replicaStatus: [
        { node: 1, live: true },
        { node: 2, live: true },
        { node: 3, live: false },
      ],
      liveReplicas: 2,
      reconfiguration: { from: 3, to: 4, reason: 'replace', configs: [2] },
    });
    expect(fullyReplicated(lost)).toBe(false);
    const text = formatStatus(lost);
    expect(text).toMatch(/1\s+1,3\*\s+1\/2\s+0\s+1\s+9\s+0\s+node 3 -> node 2 \(replace\)/);
    expect(text).toContain('2 replica move(s) in progress');
    expect(text).toContain(
      'metadata group: replicas 1,2,3*, live 2/3, config 2, reconfiguration node 3 -> node 4 (replace)',
    );

    const healed = mergeStatus(replies([1, 2, 3]), { ...moving, moving: [] });
    expect(healed.groups.map((g) => g.liveReplicas)).toEqual([2, 2]);
    expect(fullyReplicated(healed)).toBe(true);
    expect(formatStatus(healed)).toContain('no replica moves in progress');
    // Without metadata, a replica ahead of the table still shows a change in progress.
    const ahead = replies([1, 2, 3]);
    const r2 = ahead[1] as { status: ServerStatusLike };
    r2.status = { ...r2.status, groups: [row(0, 1, 'follower', 2)] };
    const view = mergeStatus(ahead);
    expect(view.groups[0]?.reconfiguration).toEqual({ from: null, to: null, reason: null, configs: [1, 2] });
    expect(view.metadataRead).toBe(false);
    expect(view.metadataGroup).toBeNull();
    expect(fullyReplicated(view)).toBe(false);
  });
});
