import type { Rng } from './rng.js';

/**
 * A named network partition among the servers, full or partial (the scenarios of the Omni-Paxos paper on
 * partial connectivity plus the classic ones). {@link scenarioCuts} turns it into the directed links to cut.
 */
export type PartitionScenario =
  /** One server cut from every other server, both directions. */
  | { readonly kind: 'isolate'; readonly node: number }
  /** One server cut from one peer only (both directions); every other link passes. */
  | { readonly kind: 'cut-pair'; readonly a: number; readonly b: number }
  /** One direction of one link cut: `from` cannot reach `to`, `to` still reaches `from`. */
  | { readonly kind: 'one-way'; readonly from: number; readonly to: number }
  /** Servers in a line: only neighbours in `order` are connected. */
  | { readonly kind: 'chain'; readonly order: readonly number[] }
  /**
   * The leader keeps links only to `keep` (fewer than a majority with itself); the rest of the cluster stays
   * fully connected.
   */
  | { readonly kind: 'leader-cut-from-majority'; readonly leader: number; readonly keep: readonly number[] }
  /**
   * Quorum loss: only `hub` stays connected to everyone; every link between two other servers is cut, so
   * `hub` is the only quorum-connected server.
   */
  | { readonly kind: 'quorum-loss'; readonly hub: number }
  /** Two sides, no link between them (a majority and a minority). */
  | { readonly kind: 'split'; readonly side: readonly number[] };

/** The scenario kinds, in the order {@link randomScenario} knows them. */
export const SCENARIO_KINDS = [
  'isolate',
  'cut-pair',
  'one-way',
  'chain',
  'leader-cut-from-majority',
  'quorum-loss',
  'split',
] as const satisfies ReadonlyArray<PartitionScenario['kind']>;

/** A scenario kind. */
export type ScenarioKind = PartitionScenario['kind'];

/** The scenarios that take the leader away from a quorum (while clients can still reach it). */
export const LEADER_ISOLATING_SCENARIOS: readonly ScenarioKind[] = [
  'isolate',
  'leader-cut-from-majority',
  'split',
];

/** A directed link `[from, to]` between two servers. */
export type DirectedLink = readonly [number, number];

/**
 * The directed server-to-server links a scenario cuts, among `nodes`. Client links are never cut here
 * (a client keeps talking to an isolated server, which must then refuse to answer stale data).
 */
export function scenarioCuts(scenario: PartitionScenario, nodes: readonly number[]): DirectedLink[] {
  const connected = new Set<string>();
  const both = (a: number, b: number): void => {
    connected.add(`${a}>${b}`);
    connected.add(`${b}>${a}`);
  };
  const allPairs = (): void => {
    for (const a of nodes) for (const b of nodes) if (a !== b) connected.add(`${a}>${b}`);
  };
  switch (scenario.kind) {
    case 'isolate':
      allPairs();
      for (const o of nodes) {
        connected.delete(`${scenario.node}>${o}`);
        connected.delete(`${o}>${scenario.node}`);
      }
      break;
    case 'cut-pair':
      allPairs();
      connected.delete(`${scenario.a}>${scenario.b}`);
      connected.delete(`${scenario.b}>${scenario.a}`);
      break;
    case 'one-way':
      allPairs();
      connected.delete(`${scenario.from}>${scenario.to}`);
      break;
    case 'chain':
      for (let i = 0; i + 1 < scenario.order.length; i++)
        both(scenario.order[i] as number, scenario.order[i + 1] as number);
      break;
    case 'leader-cut-from-majority':
      for (const a of nodes)
        for (const b of nodes) if (a !== b && a !== scenario.leader && b !== scenario.leader) both(a, b);
      for (const k of scenario.keep) both(scenario.leader, k);
      break;
    case 'quorum-loss':
      for (const o of nodes) if (o !== scenario.hub) both(scenario.hub, o);
      break;
    case 'split': {
      const side = new Set(scenario.side);
      for (const a of nodes)
        for (const b of nodes) if (a !== b && side.has(a) === side.has(b)) connected.add(`${a}>${b}`);
      break;
    }
  }
  const cuts: DirectedLink[] = [];
  for (const a of nodes) for (const b of nodes) if (a !== b && !connected.has(`${a}>${b}`)) cuts.push([a, b]);
  return cuts;
}

/** A short human-readable name of a scenario, e.g. `isolate(2)` or `chain(1-3-2)`. */
export function describeScenario(s: PartitionScenario): string {
  switch (s.kind) {
    case 'isolate':
      return `isolate(${s.node})`;
    case 'cut-pair':
      return `cut-pair(${s.a}|${s.b})`;
    case 'one-way':
      return `one-way(${s.from}-x->${s.to})`;
    case 'chain':
      return `chain(${s.order.join('-')})`;
    case 'leader-cut-from-majority':
      return `leader-cut-from-majority(${s.leader} keeps [${s.keep.join(',')}])`;
    case 'quorum-loss':
      return `quorum-loss(hub ${s.hub})`;
    case 'split':
      return `split([${s.side.join(',')}])`;
  }
}

/**
 * Draws a scenario among `nodes` (at least 2). `leader`, when known, is the server that leader-targeted
 * scenarios aim at (otherwise a random server). `kinds` restricts the draw (default: every kind).
 */
export function randomScenario(
  rng: Rng,
  nodes: readonly number[],
  leader?: number,
  kinds: readonly PartitionScenario['kind'][] = SCENARIO_KINDS,
): PartitionScenario {
  if (nodes.length < 2) throw new RangeError('a partition needs at least two servers');
  if (kinds.length === 0) throw new RangeError('randomScenario needs at least one scenario kind');
  const target = leader !== undefined && nodes.includes(leader) ? leader : rng.pick(nodes);
  const others = nodes.filter((n) => n !== target);
  const kind = rng.pick(kinds);
  switch (kind) {
    case 'isolate':
      return { kind, node: target };
    case 'cut-pair':
      return { kind, a: target, b: rng.pick(others) };
    case 'one-way':
      return rng.chance(0.5)
        ? { kind, from: target, to: rng.pick(others) }
        : { kind, from: rng.pick(others), to: target };
    case 'chain':
      return { kind, order: rng.shuffle(nodes) };
    case 'leader-cut-from-majority': {
      const majority = Math.floor(nodes.length / 2) + 1;
      return { kind, leader: target, keep: rng.shuffle(others).slice(0, Math.max(0, majority - 2)) };
    }
    case 'quorum-loss':
      return { kind, hub: rng.pick(others) };
    case 'split': {
      const minority = Math.floor((nodes.length - 1) / 2);
      const shuffled = rng.shuffle(others);
      return { kind, side: [target, ...shuffled.slice(0, Math.max(0, minority - 1))] };
    }
  }
}
