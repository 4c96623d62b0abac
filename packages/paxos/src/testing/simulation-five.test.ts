/** The 5-replica half of the seeded simulation suite (a separate file so both halves run in parallel). */
import { describe, it } from 'vitest';
import { BOUND, SEEDS, sweep } from './sweep.test-helper.js';

describe(`random faults, safety after every event, liveness within ${BOUND} ticks of healing`, () => {
  // In chunks, so each test stays well inside the per-test timeout on a busy machine.
  const chunk = Math.ceil(SEEDS / 4);
  for (let from = 0; from < SEEDS; from += chunk) {
    const count = Math.min(chunk, SEEDS - from);
    it(`5 replicas, seeds ${100_001 + from}..${100_000 + from + count}`, { timeout: 120_000 }, () =>
      sweep('5 replicas', 100_001 + from, count, { replicas: 5 }),
    );
  }
});
