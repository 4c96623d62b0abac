/**
 * The nemesis' seeded random numbers: the one PRNG of the project, `@paxkv/paxos/testing`'s `Rng`
 * (sfc32 seeded through splitmix32), with the two conveniences the nemesis uses. This file held a
 * copy of the same generator before; the sequences are bit-for-bit the same, so nemesis seeds replay
 * as before, with one exception: `chance(p)` with `p <= 0` no longer draws a number (only reachable
 * with a configured probability of exactly 0).
 * @module
 */
import { Rng as SharedRng } from '@paxkv/paxos/testing';

/** A seeded PRNG: `@paxkv/paxos/testing`'s `Rng` plus {@link Rng.between} and {@link Rng.fork}. */
export class Rng extends SharedRng {
  /** A uniform integer in `[min, max]` (both included). */
  between(min: number, max: number): number {
    return this.range(min, max);
  }

  /** A new generator whose sequence is determined by this one's (for independent streams from one seed). */
  fork(): Rng {
    return new Rng(this.nextUint32());
  }
}

/** A fresh random seed (for runs started without `--seed`). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff) + 1;
}
