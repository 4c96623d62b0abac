/** Shared by the simulation test files: run a range of seeds and assert they are all clean. */
import { expect } from 'vitest';
import { DEFAULT_PAXOS_CONFIG } from '../config.js';
import { runSeed, type SeedRunOptions } from './run-seed.js';

export const SEEDS = Number(process.env.PAXOS_SIM_SEEDS ?? 1000);
/** The liveness bound every run is held to: 4 election timeouts (OmniPaxos paper's recovery claim). */
export const BOUND = 4 * DEFAULT_PAXOS_CONFIG.electionTimeoutTicks;

/** Runs seeds `[from, from + count)` and expects no violation, real work, and recovery within {@link BOUND}. */
export function sweep(label: string, from: number, count: number, opts: SeedRunOptions): void {
  const failures: string[] = [];
  let decided = 0;
  let faults = 0;
  let maxRecovery = 0;
  for (let seed = from; seed < from + count; seed++) {
    // 200 fault ticks per seed (the sim CLI uses 300): the CI budget is spent on seeds, not ticks.
    const r = runSeed(seed, { faultTicks: 200, ...opts });
    decided += r.decided;
    faults += r.faults;
    maxRecovery = Math.max(maxRecovery, r.recoveryTicks);
    if (r.violations.length > 0) failures.push(`seed ${seed}: ${r.violations.join('; ')}`);
  }
  expect(failures, `${label}: failing seeds (replay with runSeed(seed, opts))`).toEqual([]);
  // The runs did real work: entries were decided and faults were injected.
  expect(decided / count).toBeGreaterThan(20);
  expect(faults / count).toBeGreaterThan(1);
  expect(maxRecovery).toBeLessThanOrEqual(BOUND);
}
