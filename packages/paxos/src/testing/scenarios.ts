/**
 * Partial-connectivity scenarios of the OmniPaxos paper (EuroSys 2023), as connectivity predicates.
 * @module
 */
import type { NodeId } from '../ballot.js';

/** A connectivity: whether the session between two nodes is up. */
export type Connectivity = (a: NodeId, b: NodeId) => boolean;

/** The names of the built-in partition scenarios. */
export type ScenarioName = 'full' | 'quorum-loss' | 'constrained-election' | 'chained';

/** A partition scenario applied to a group, with the replicas that must be able to lead under it. */
export interface Scenario {
  readonly name: ScenarioName;
  readonly connectivity: Connectivity;
  /** Replicas that are quorum-connected and can reach a majority directly: one of them must lead. */
  readonly eligible: readonly NodeId[];
}

/**
 * The replicas that can lead under `connectivity`: those with direct sessions to a majority (itself
 * included), which is also what makes them quorum-connected in Ballot Leader Election.
 */
export function eligibleLeaders(ids: readonly NodeId[], connectivity: Connectivity): NodeId[] {
  const majority = Math.floor(ids.length / 2) + 1;
  return ids.filter((p) => 1 + ids.filter((q) => q !== p && connectivity(p, q)).length >= majority);
}

const pair = (x: NodeId, y: NodeId) => (a: NodeId, b: NodeId) => (a === x && b === y) || (a === y && b === x);

/**
 * Full partition: a majority `side` is fully connected, the rest are isolated from it (and connected
 * among themselves).
 */
export function fullPartition(ids: readonly NodeId[], majoritySide: readonly NodeId[]): Scenario {
  const inSide = new Set(majoritySide);
  const connectivity: Connectivity = (a, b) => inSide.has(a) === inSide.has(b);
  return { name: 'full', connectivity, eligible: eligibleLeaders(ids, connectivity) };
}

/**
 * Quorum loss: every server is connected only to one `hub` (not the old leader), so only the hub is
 * quorum-connected. Plain Raft and Multi-Paxos stall here: the old leader keeps a link to the hub
 * but cannot reach a majority, and nobody else can win an election except the hub.
 */
export function quorumLoss(ids: readonly NodeId[], leader: NodeId): Scenario {
  const hub = ids.find((p) => p !== leader) as NodeId;
  const connectivity: Connectivity = (a, b) => a === hub || b === hub;
  return { name: 'quorum-loss', connectivity, eligible: eligibleLeaders(ids, connectivity) };
}

/**
 * Constrained election: the leader is fully isolated, and the replica that would win a plain
 * election (the highest id among the others) is connected to only one peer, so it is not
 * quorum-connected and must not be elected. The others are fully connected.
 */
export function constrainedElection(ids: readonly NodeId[], leader: NodeId): Scenario {
  const others = ids.filter((p) => p !== leader).sort((a, b) => a - b);
  const top = others[others.length - 1] as NodeId;
  const buddy = others[0] as NodeId;
  const rest = new Set(others.filter((p) => p !== top));
  const connectivity: Connectivity = (a, b) => {
    if (a === leader || b === leader) return false;
    if (a === top || b === top) return others.length <= 2 ? true : pair(top, buddy)(a, b);
    return rest.has(a) && rest.has(b);
  };
  return { name: 'constrained-election', connectivity, eligible: eligibleLeaders(ids, connectivity) };
}

/**
 * Chained: the replicas form a line starting at the old leader (leader – a – b – ...); only
 * neighbours are connected. The inner replicas are quorum-connected with a majority of direct links
 * (with 3 or 5 replicas); the ends are not.
 */
export function chained(ids: readonly NodeId[], leader: NodeId): Scenario {
  const line = [leader, ...ids.filter((p) => p !== leader).sort((a, b) => a - b)];
  const pos = new Map(line.map((p, i) => [p, i]));
  const connectivity: Connectivity = (a, b) => Math.abs((pos.get(a) ?? -9) - (pos.get(b) ?? -9)) === 1;
  return { name: 'chained', connectivity, eligible: eligibleLeaders(ids, connectivity) };
}

/** Builds the named scenario for a group whose current leader is `leader`. */
export function buildScenario(name: ScenarioName, ids: readonly NodeId[], leader: NodeId): Scenario {
  switch (name) {
    case 'full': {
      const others = ids.filter((p) => p !== leader);
      return fullPartition(ids, others.slice(0, Math.floor(ids.length / 2) + 1));
    }
    case 'quorum-loss':
      return quorumLoss(ids, leader);
    case 'constrained-election':
      return constrainedElection(ids, leader);
    case 'chained':
      return chained(ids, leader);
  }
}
