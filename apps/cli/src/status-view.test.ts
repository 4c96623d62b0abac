import { describe, expect, it } from 'vitest';
import { allPartitionsLed, formatStatus, mergeStatus, type ServerStatusLike } from './status-view.js';

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
    expect(view.groups).toEqual([
      { partition: 0, replicas: [1, 2], leader: 2, decidedIndex: 7, config: 0 },
      { partition: 1, replicas: [2, 3], leader: 3, decidedIndex: 3, config: 0 },
    ]);
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
    expect(formatStatus(view)).toMatch(/part\s+replicas\s+config\s+leader\s+decided/);
  });
});
