/**
 * `@paxkv/paxos/testing`: the deterministic simulator and the ready-made Paxos harness.
 *
 * - {@link Simulator}: any {@link SimNode} (a core, or a whole replica with its state machine and
 *   simulated disk) under FIFO sessions with seeded delays, session breaks, partitions, crashes.
 * - {@link Rng}: the one seeded PRNG.
 * - {@link Nemesis} and the partition {@link Scenario}s of the OmniPaxos paper.
 * - {@link PaxosCluster}: N `SequencePaxos` over {@link CheckedStorage}, with the {@link InvariantChecker}.
 * - {@link runSeed}: one randomized run with faults, healing, a liveness bound and convergence.
 * @packageDocumentation
 */
export { CheckedStorage, InvariantViolation } from './checked-storage.js';
export { formatMessage, InteractionDriver } from './interaction.js';
export { Nemesis, type NemesisOptions, type NemesisStats } from './nemesis.js';
export {
  FNV_OFFSET,
  fnv1a,
  HashApp,
  InvariantChecker,
  PaxosCluster,
  type PaxosClusterOptions,
} from './paxos-cluster.js';
export {
  ReconfigCluster,
  type ReconfigClusterOptions,
  type ReconfigSeedOptions,
  type ReconfigSeedResult,
  type ReconfigStats,
  runReconfigSeed,
} from './reconfig-cluster.js';
export { Rng } from './rng.js';
export {
  runPartitionScenario,
  runSeed,
  type ScenarioRunOptions,
  type ScenarioRunResult,
  type SeedRunOptions,
  type SeedRunResult,
} from './run-seed.js';
export {
  buildScenario,
  type Connectivity,
  chained,
  constrainedElection,
  eligibleLeaders,
  fullPartition,
  quorumLoss,
  type Scenario,
  type ScenarioName,
} from './scenarios.js';
export {
  type SimEvent,
  type SimHook,
  type SimNode,
  type SimNodeFactory,
  type SimStats,
  SimulationError,
  Simulator,
  type SimulatorOptions,
} from './simulator.js';
