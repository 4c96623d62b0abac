/**
 * Test helpers of `@paxkv/kvstore`: the deterministic whole-group simulation and the simulated disk.
 * @packageDocumentation
 */
export { type CrashOptions, SimDisk, type SimDiskOptions } from '../storage/sim-disk.js';
export {
  BANK_INITIAL_BALANCE,
  type BankRandom,
  type BankView,
  bankAccounts,
  bankRead,
  checkBankRead,
  lostBankWrites,
  nextBankOp,
  noteBankWrites,
} from './bank.js';
export {
  CALL_MAX_TICKS,
  GroupCluster,
  type GroupClusterOptions,
  type GroupSimulationOptions,
  type GroupSimulationResult,
  simulateGroup,
} from './group-simulation.js';
export {
  type LeaseWatchSimulationOptions,
  type LeaseWatchSimulationResult,
  type SimChange,
  type SimLeaseEvent,
  simulateLeasesAndWatches,
} from './lease-watch-simulation.js';
