/**
 * Authentication of peers with a cluster token (HMAC challenge-response; the token never travels).
 * @module
 */
export * from './access.js';
export * from './cluster-token.js';
export * from './handshake-hook.js';
export * from './peer-handshake.js';
