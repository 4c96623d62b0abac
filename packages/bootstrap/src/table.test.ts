import { ConfigError, type LookupTable, type NodeEntry } from '@paxkv/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidLookupTableError, ReplicationTooLargeError } from './errors.js';
import {
  assertValidLookupTable,
  buildLookupTable,
  preferredLeaderLoad,
  replicaLoad,
  sameTable,
  validateLookupTable,
} from './table.js';

const nodes = (n: number, firstId = 1): NodeEntry[] =>
  Array.from({ length: n }, (_, i) => ({ id: firstId + i, address: `127.0.0.1:${7001 + i}` }));

function spread(values: Iterable<number>): number {
  const v = [...values];
  return Math.max(...v) - Math.min(...v);
}

describe('buildLookupTable', () => {
  it.each([
    { n: 3, p: 16, d: 3 },
    { n: 3, p: 1, d: 1 },
    { n: 4, p: 16, d: 3 },
    { n: 5, p: 7, d: 2 },
    { n: 10, p: 64, d: 3 },
    { n: 1, p: 4, d: 1 },
  ])('places $p partitions with replication $d on $n nodes, balanced and valid', ({ n, p, d }) => {
    const t = buildLookupTable({ nodes: nodes(n), partitions: p, replication: d, version: 1 });
    expect(validateLookupTable(t)).toEqual([]);
    expect(t.groups).toHaveLength(p);
    expect(spread(replicaLoad(t).values())).toBeLessThanOrEqual(1);
    let total = 0;
    for (const c of replicaLoad(t).values()) total += c;
    expect(total).toBe(p * d);
  });

  it('is the documented round-robin for 3 nodes, 4 partitions, replication 2', () => {
    const t = buildLookupTable({ nodes: nodes(3), partitions: 4, replication: 2, version: 7 });
    // slots: p0 {1,2}, p1 {3,1}, p2 {2,3}, p3 {1,2}; first replica rotated to the least-used leader.
    expect(t.groups).toEqual([
      { partition: 0, replicas: [1, 2] },
      { partition: 1, replicas: [3, 1] },
      { partition: 2, replicas: [2, 3] },
      { partition: 3, replicas: [1, 2] },
    ]);
    expect(t.version).toBe(7);
    expect(t.nodes.map((x) => x.id)).toEqual([1, 2, 3]);
  });

  it('spreads preferred leaders when every node is in every group', () => {
    const t = buildLookupTable({ nodes: nodes(3), partitions: 16, replication: 3, version: 1 });
    expect(spread(preferredLeaderLoad(t).values())).toBeLessThanOrEqual(1);
    expect(t.groups[0]!.replicas).toEqual([1, 2, 3]);
    expect(t.groups[1]!.replicas).toEqual([2, 3, 1]);
  });

  it('does not depend on the order of the input nodes', () => {
    const a = buildLookupTable({ nodes: nodes(5), partitions: 16, replication: 3, version: 1 });
    const b = buildLookupTable({ nodes: nodes(5).reverse(), partitions: 16, replication: 3, version: 1 });
    expect(sameTable(a, b)).toBe(true);
  });

  it('throws a typed error when replication exceeds the nodes', () => {
    const f = () => buildLookupTable({ nodes: nodes(2), partitions: 4, replication: 3, version: 1 });
    expect(f).toThrow(ReplicationTooLargeError);
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ReplicationTooLargeError).code).toBe('INVALID_CONFIG');
      expect((e as Error).message).toMatch(/start more servers/);
    }
  });

  it.each([
    { partitions: 0, replication: 1, why: /partitions/ },
    { partitions: 1.5, replication: 1, why: /partitions/ },
    { partitions: 4, replication: 0, why: /replication/ },
  ])('rejects bad counts ($partitions, $replication)', ({ partitions, replication, why }) => {
    expect(() => buildLookupTable({ nodes: nodes(3), partitions, replication, version: 1 })).toThrow(why);
  });

  it('rejects duplicate node ids and addresses', () => {
    const dupId = [...nodes(2), { id: 1, address: '127.0.0.1:9999' }];
    expect(() => buildLookupTable({ nodes: dupId, partitions: 2, replication: 1, version: 1 })).toThrow(
      /id 1/,
    );
    const dupAddr = [...nodes(2), { id: 9, address: '127.0.0.1:7001' }];
    expect(() => buildLookupTable({ nodes: dupAddr, partitions: 2, replication: 1, version: 1 })).toThrow(
      /address 127.0.0.1:7001/,
    );
  });

  it('property: any threshold/partitions/replication yields a balanced valid table or a typed error', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 24 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 7 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 10_000 }), { minLength: 24, maxLength: 24 }),
        (n, partitions, replication, ids) => {
          const input = ids.slice(0, n).map((id, i) => ({ id, address: `10.0.0.${i + 1}:7000` }));
          if (replication > n) {
            expect(() => buildLookupTable({ nodes: input, partitions, replication, version: 1 })).toThrow(
              ReplicationTooLargeError,
            );
            return;
          }
          const t = buildLookupTable({ nodes: input, partitions, replication, version: 1 });
          expect(
            validateLookupTable(t, { partitions, replication, liveNodes: new Set(ids.slice(0, n)) }),
          ).toEqual([]);
          expect(spread(replicaLoad(t).values())).toBeLessThanOrEqual(1);
          // Determinism: same input, same table.
          expect(
            sameTable(
              t,
              buildLookupTable({ nodes: [...input].reverse(), partitions, replication, version: 1 }),
            ),
          ).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('validateLookupTable', () => {
  const good = (): LookupTable =>
    buildLookupTable({ nodes: nodes(3), partitions: 4, replication: 2, version: 3 });

  it.each<{ name: string; mutate: (t: LookupTable) => unknown; problem: RegExp }>([
    { name: 'a missing group', mutate: (t) => ({ ...t, groups: t.groups.slice(1) }), problem: /no group/ },
    {
      name: 'a group with too few replicas',
      mutate: (t) => ({ ...t, groups: t.groups.map((g, i) => (i === 0 ? { ...g, replicas: [1] } : g)) }),
      problem: /expected exactly 2/,
    },
    {
      name: 'a repeated replica',
      mutate: (t) => ({ ...t, groups: t.groups.map((g, i) => (i === 0 ? { ...g, replicas: [1, 1] } : g)) }),
      problem: /listed twice/,
    },
    {
      name: 'an unknown replica',
      mutate: (t) => ({ ...t, groups: t.groups.map((g, i) => (i === 0 ? { ...g, replicas: [1, 99] } : g)) }),
      problem: /unknown node 99/,
    },
    {
      name: 'a duplicate address',
      mutate: (t) => ({ ...t, nodes: t.nodes.map((n) => ({ ...n, address: '127.0.0.1:1' })) }),
      problem: /listed for two nodes/,
    },
    { name: 'a negative version', mutate: (t) => ({ ...t, version: -1 }), problem: /version/ },
    { name: 'not an object', mutate: () => 'table', problem: /table/ },
    { name: 'a partition out of range', mutate: (t) => ({ ...t, partitions: 2 }), problem: /outside/ },
  ])('reports $name', ({ mutate, problem }) => {
    const problems = validateLookupTable(mutate(good()));
    expect(problems.join('\n')).toMatch(problem);
    expect(() => assertValidLookupTable(mutate(good()))).toThrow(InvalidLookupTableError);
  });

  it('checks liveness, partitions and replication expectations', () => {
    expect(validateLookupTable(good(), { liveNodes: new Set([1, 2]) }).join()).toMatch(
      /node 3, which is not live/,
    );
    expect(validateLookupTable(good(), { partitions: 8 }).join()).toMatch(/expected 8 partitions/);
    expect(validateLookupTable(good(), { replication: 3 }).join()).toMatch(/expected replication 3/);
    expect(
      validateLookupTable(good(), { liveNodes: new Set([1, 2, 3]), partitions: 4, replication: 2 }),
    ).toEqual([]);
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.anything(), (x) => {
        expect(Array.isArray(validateLookupTable(x))).toBe(true);
      }),
    );
  });
});
