/** The 5-replica half of the seeded simulation suite (a separate file so both halves run in parallel). */
import { describe, it } from 'vitest';
import { BOUND, SEEDS, sweep } from './sweep.test-helper.js';

describe(`random faults, safety after every event, liveness within ${BOUND} ticks of healing`, () => {
  it(`${SEEDS} seeds, 5 replicas`, () => sweep('5 replicas', 100_001, SEEDS, { replicas: 5 }));
});
