/**
 * `@paxkv/nemesis`: fault testing of paxkv on real server processes.
 *
 * - {@link FaultProxy}: a TCP proxy in front of each server that cuts, delays or drops links one direction at a
 *   time, learning the source node of a peer connection from its `peer.hello` frame.
 * - Named partial partitions ({@link PartitionScenario}, {@link scenarioCuts}).
 * - {@link ManagedCluster}: real `paxkv-server` processes behind the proxy (kill, pause, restart).
 * - {@link Nemesis} playing a seeded schedule ({@link buildSchedule}); {@link Workload} of concurrent clients.
 * - {@link runNemesis}: one whole run, checked per key and for lost writes; {@link formatSummary}.
 * - A seeded PRNG ({@link Rng}) from which every random choice of a run is drawn.
 *
 * @packageDocumentation
 */
export * from './args.js';
export * from './bank.js';
export * from './client-adapter.js';
export * from './cluster.js';
export * from './frames.js';
export * from './history.js';
export * from './nemesis.js';
export * from './proxy.js';
export * from './rng.js';
export * from './rpc.js';
export * from './run.js';
export * from './scenarios.js';
export * from './schedule.js';
export * from './server-command.js';
export * from './verify.js';
export * from './workload.js';
