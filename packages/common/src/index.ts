/**
 * `@paxkv/common`: the building blocks shared by every paxkv package: node ids and addresses, the
 * wire protocol (zod schemas and types of every message), typed errors, the msgpack codec,
 * length-prefixed framing, the TCP transport, config helpers and the logger factory.
 * @packageDocumentation
 */
export * from './address.js';
export * from './errors.js';
export * from './protocol/index.js';
