import { describe, expect, it } from 'vitest';
import { Rng } from './rng.js';
import { type PartitionScenario, randomScenario, scenarioCuts } from './scenarios.js';

const nodes3 = [1, 2, 3];
const nodes5 = [1, 2, 3, 4, 5];

/** Servers that hear a majority (themselves included) over links in both directions. */
function quorumConnected(nodes: number[], cuts: ReadonlyArray<readonly [number, number]>): number[] {
  const cut = new Set(cuts.map(([a, b]) => `${a}>${b}`));
  const majority = Math.floor(nodes.length / 2) + 1;
  return nodes.filter(
    (n) =>
      1 + nodes.filter((o) => o !== n && !cut.has(`${n}>${o}`) && !cut.has(`${o}>${n}`)).length >= majority,
  );
}

describe('scenarioCuts', () => {
  const table: Array<[string, PartitionScenario, number[], Array<[number, number]>]> = [
    [
      'isolate',
      { kind: 'isolate', node: 2 },
      nodes3,
      [
        [1, 2],
        [2, 1],
        [2, 3],
        [3, 2],
      ],
    ],
    [
      'cut-pair',
      { kind: 'cut-pair', a: 1, b: 3 },
      nodes3,
      [
        [1, 3],
        [3, 1],
      ],
    ],
    ['one-way', { kind: 'one-way', from: 3, to: 1 }, nodes3, [[3, 1]]],
    [
      'chain',
      { kind: 'chain', order: [1, 2, 3] },
      nodes3,
      [
        [1, 3],
        [3, 1],
      ],
    ],
    [
      'leader-cut (3)',
      { kind: 'leader-cut-from-majority', leader: 1, keep: [] },
      nodes3,
      [
        [1, 2],
        [1, 3],
        [2, 1],
        [3, 1],
      ],
    ],
    [
      'quorum-loss (3)',
      { kind: 'quorum-loss', hub: 2 },
      nodes3,
      [
        [1, 3],
        [3, 1],
      ],
    ],
    [
      'split',
      { kind: 'split', side: [1] },
      nodes3,
      [
        [1, 2],
        [1, 3],
        [2, 1],
        [3, 1],
      ],
    ],
  ];
  it.each(table)('%s', (_name, scenario, nodes, expected) => {
    const sort = (l: ReadonlyArray<readonly [number, number]>) => [...l].map((x) => x.join('>')).sort();
    expect(sort(scenarioCuts(scenario, nodes))).toEqual(sort(expected));
  });

  it('quorum-loss on 5 servers leaves only the hub quorum-connected', () => {
    expect(quorumConnected(nodes5, scenarioCuts({ kind: 'quorum-loss', hub: 4 }, nodes5))).toEqual([4]);
  });

  it('leader-cut-from-majority leaves the leader without a quorum and the rest with one', () => {
    for (const nodes of [nodes3, nodes5]) {
      for (let seed = 1; seed < 50; seed++) {
        const rng = new Rng(seed);
        let s: PartitionScenario;
        do s = randomScenario(rng, nodes, 1);
        while (s.kind !== 'leader-cut-from-majority');
        const qc = quorumConnected(nodes, scenarioCuts(s, nodes));
        expect(qc).not.toContain(1);
        expect(qc.length).toBeGreaterThanOrEqual(Math.floor(nodes.length / 2) + 1);
      }
    }
  });

  it('random scenarios only name known servers and are reproducible from the seed', () => {
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 30 }, () => randomScenario(rng, nodes5, 3));
    };
    expect(draw(42)).toEqual(draw(42));
    for (const s of draw(42)) {
      for (const [a, b] of scenarioCuts(s, nodes5)) {
        expect(nodes5).toContain(a);
        expect(nodes5).toContain(b);
      }
    }
  });
});
