/**
 * `@paxkv/nemesis`: fault testing of paxkv on real server processes.
 *
 * - {@link FaultProxy}: a TCP proxy in front of each server that cuts, delays or drops links one direction at a
 *   time, learning the source node of a peer connection from its `peer.hello` frame.
 * - Named partial partitions ({@link PartitionScenario}, {@link scenarioCuts}).
 * - A seeded PRNG ({@link Rng}) from which every random choice of a run is drawn.
 *
 * @packageDocumentation
 */
export * from './frames.js';
export * from './proxy.js';
export * from './rng.js';
export * from './scenarios.js';
