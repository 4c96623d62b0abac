/**
 * `@paxkv/common`: the building blocks shared by every paxkv package: node ids and addresses, the
 * wire protocol (zod schemas and types of every message), typed errors, the msgpack codec,
 * length-prefixed framing, the TCP transport and the logger interface.
 * @packageDocumentation
 */
export * from './address.js';
export * from './auth/index.js';
export * from './codec/bounded.js';
export * from './codec/framing.js';
export * from './codec/msgpack.js';
export * from './errors.js';
export * from './logging/logger.js';
export * from './protocol/index.js';
export * from './transport/backoff.js';
export * from './transport/framed-connection.js';
export * from './transport/options.js';
export * from './transport/reconnecting-connection.js';
export * from './transport/server.js';
export * from './transport/tls.js';
