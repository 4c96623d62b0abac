import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './scripts/test-sequencer.js';

/**
 * Test files run in this many workers at once (default 2; `PAXKV_TEST_WORKERS=1` runs them one at a
 * time, vitest's `--maxWorkers` overrides both). Two fit the 2-core machines the suite runs on: half of
 * the time goes to tests of real server processes that wait on events (elections, faults, timeouts),
 * during which the other worker's CPU-bound simulations run.
 */
const workers = Number(process.env.PAXKV_TEST_WORKERS ?? 2);

// One run over every package and app: each has its own vitest.config.ts (a "project").
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'tooling/*', 'scripts'],
    maxWorkers: Number.isInteger(workers) && workers > 0 ? workers : 2,
    sequence: { sequencer: LongestFirstSequencer },
  },
});
