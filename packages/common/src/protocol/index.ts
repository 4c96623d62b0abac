/**
 * The paxkv wire protocol: schemas, types, parsers and key routing.
 * @module
 */
export * from './auth.js';
export * from './cluster.js';
export * from './history.js';
export * from './keys.js';
export * from './kv.js';
export * from './lease.js';
export * from './limits.js';
export * from './membership.js';
export * from './message-set.js';
export * from './messages.js';
export * from './partition.js';
export * from './paxos-frame.js';
export * from './primitives.js';
export * from './revisions.js';
export * from './snapshot.js';
export * from './txn.js';
export * from './watch.js';
