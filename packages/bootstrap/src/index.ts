/**
 * `@paxkv/bootstrap`: the bootstrap protocol of paxkv as sans-IO state machines.
 *
 * - {@link BootstrapCoordinator} runs on the bootstrap server: check-ins, the start threshold, the
 *   versioned lookup table, spares, and heartbeat-based failure detection.
 * - {@link BootstrapMember} runs on every other server: check-in, heartbeats, table pushes.
 * - {@link buildLookupTable} / {@link validateLookupTable}: the deterministic, balanced placement of
 *   partitions on servers and its checks.
 *
 * Neither class opens sockets or reads clocks: messages and time come in as values, and outgoing
 * messages are drained, so the server app wires them to its transport and timers.
 * @packageDocumentation
 */
export * from './config.js';
export * from './coordinator.js';
export * from './errors.js';
export * from './member.js';
export * from './membership.js';
export * from './table.js';
