/**
 * The RESP (Redis protocol) front-end of paxkv-server: parser, encoder, command table, connections and
 * the listener. See `apps/server/RESP.md`.
 * @module
 */
export * from './backend.js';
export * from './commands.js';
export * from './connection.js';
export * from './encoder.js';
export * from './limits.js';
export * from './parser.js';
export * from './resp-server.js';
