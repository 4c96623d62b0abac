import { describe, expect, it } from 'vitest';
import { type MetadataView, parseMetadata, placementProblems, replicaCounts } from './membership.js';

const settled: MetadataView = {
  version: 9,
  nodes: [1, 2, 3, 5].map((id) => ({ id, address: `127.0.0.1:${9000 + id}` })),
  groups: [
    { partition: 0, replicas: [1, 2, 3] },
    { partition: 1, replicas: [2, 3, 5] },
    { partition: 2, replicas: [5, 1, 2] },
  ],
  metaReplicas: [1, 2, 3],
  moving: [],
  draining: [],
};

describe('parseMetadata', () => {
  it('reads the fields of a member.list.ok reply', () => {
    const reply = {
      type: 'member.list.ok',
      metadata: {
        table: { version: 9, nodes: settled.nodes, groups: settled.groups, partitions: 3 },
        metaReplicas: [1, 2, 3],
        moving: [],
        draining: [],
        nextNodeId: 6,
      },
      members: [],
    };
    expect(parseMetadata(reply)).toEqual(settled);
  });

  it('is undefined for an error or a reply without metadata', () => {
    expect(parseMetadata({ type: 'error', code: 'UNAVAILABLE' })).toBeUndefined();
    expect(parseMetadata({ type: 'member.list.ok', metadata: null })).toBeUndefined();
    expect(parseMetadata(null)).toBeUndefined();
  });
});

describe('placementProblems', () => {
  it('holds when every partition is on its replication degree of live servers', () => {
    expect(placementProblems(settled, [1, 2, 3, 5], 3, 3)).toEqual([]);
    expect(replicaCounts(settled)).toEqual(
      new Map([
        [1, 2],
        [2, 3],
        [3, 2],
        [5, 2],
      ]),
    );
  });

  it('names replicas on servers gone, members gone, live servers not listed, moves and drains', () => {
    const m: MetadataView = {
      ...settled,
      groups: [...settled.groups.slice(0, 2), { partition: 2, replicas: [4, 1, 2] }],
      nodes: [...settled.nodes, { id: 4, address: '127.0.0.1:9004' }],
      moving: [{ partition: 2, from: 4, to: 5 }],
      draining: [4],
    };
    const p = placementProblems(m, [1, 2, 3, 5, 6], 3, 3);
    expect(p).toContain('moves in progress: p2 4->5');
    expect(p).toContain('draining: 4');
    expect(p).toContain('p2 has replicas on servers gone: 4');
    expect(p).toContain('live servers not members: 6');
    expect(p).toContain('members that are gone still listed: 4');
  });

  it('names a group below or above its replication degree, or listed twice on one server', () => {
    const m: MetadataView = {
      ...settled,
      groups: [
        { partition: 0, replicas: [1, 2] },
        { partition: 1, replicas: [2, 2, 5] },
      ],
    };
    expect(placementProblems(m, [1, 2, 3, 5], 3, 3)).toEqual([
      '2 groups listed, expected 3',
      'p0 on [1,2], expected 3 distinct replicas',
      'p1 on [2,2,5], expected 3 distinct replicas',
    ]);
  });
});
