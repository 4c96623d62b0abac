/**
 * `@paxkv/client`: the paxkv client library.
 *
 * ```ts
 * import { createClient } from '@paxkv/client';
 * const kv = createClient({ servers: ['127.0.0.1:7001'] });
 * await kv.put('greeting', 'hello');
 * console.log(await kv.get('greeting')); // 'hello'
 * await kv.close();
 * ```
 * @packageDocumentation
 */
export * from './auth.js';
export * from './client.js';
export * from './concurrency.js';
export * from './connection.js';
export * from './errors.js';
export * from './history.js';
export * from './options.js';
export * from './sessions.js';
export * from './tcp.js';
export * from './watch.js';
