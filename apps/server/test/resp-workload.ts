/**
 * The concurrent Redis workload of the RESP tests and the model its history is checked against: each
 * connection runs GET, SET (a third of them with EX, a lease), EXPIRE, APPEND, DEL, CAS (SET IFEQ / SET
 * NX after a GET) and INCRBY/GET on counters,
 * recording every call with its answer, or without one when the outcome is unknown (an error).
 */
import { defineModel, type OperationSpec } from '@paxkv/linearizability-checker';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { TestCluster } from './harness.js';

/** The input of one recorded operation. */
export type LinInput = { f: string; key: string; value?: string; expected?: string | null; by?: number };
/** The output of one recorded operation (undefined: unknown outcome). */
export type LinOutput = { value?: string | null | number; existed?: boolean; ok?: boolean };

/**
 * A per-key string register with the operations the workload sends through Redis: get, put (SET, with or
 * without EX), expire (EXPIRE with a TTL no test outlives), append (APPEND), delete (DEL), cas (SET IFEQ /
 * SET NX) and incr (INCRBY: the stored text read as an integer, absent = 0). Output undefined = unknown
 * outcome: the effect may apply.
 */
export const redisModel = defineModel<string | null, LinInput, LinOutput>({
  name: 'redis-strings',
  init: () => null,
  partition: (i) => i.key,
  readOnly: (i) => i.f === 'get',
  step(s, i, o) {
    switch (i.f) {
      case 'get':
        return o === undefined || o.value === s ? { ok: true, state: s } : { ok: false };
      case 'put':
        return { ok: true, state: i.value as string };
      case 'append':
        return { ok: true, state: (s ?? '') + (i.value as string) };
      case 'delete':
        return o?.existed !== undefined && o.existed !== (s !== null)
          ? { ok: false }
          : { ok: true, state: null };
      case 'expire':
        // EXPIRE with a TTL far longer than the test: 1 if the key exists (value unchanged), else 0.
        return o?.existed !== undefined && o.existed !== (s !== null)
          ? { ok: false }
          : { ok: true, state: s };
      case 'cas': {
        const matches = i.expected === null ? s === null : s === i.expected;
        if (o?.ok !== undefined && o.ok !== matches) return { ok: false };
        return { ok: true, state: matches ? (i.value as string) : s };
      }
      case 'incr': {
        const next = Number(s ?? '0') + (i.by as number);
        if (o !== undefined && o.value !== next) return { ok: false };
        return { ok: true, state: String(next) };
      }
      default:
        return { ok: false };
    }
  },
});

/** Options of {@link redisWorkload}. */
export interface RedisWorkloadOptions {
  /** The string keys (counters are `<first key>:n0` and `:n1`). */
  readonly keys: readonly string[];
  /** Operations per connection, unless `until` is given. */
  readonly opsPerClient?: number;
  /** Keep going until this returns true (checked before each operation). */
  readonly until?: () => boolean;
  /** Called after each operation with whether it was answered. */
  readonly onOp?: (answered: boolean) => void;
  /** Time origin of the history (default: the call). */
  readonly t0?: number;
}

/**
 * Runs the workload on every connection at once and resolves with the history. A connection that is
 * no longer `ready` after an error (its server went away) stops: its last operation is recorded
 * without an answer.
 */
export async function redisWorkload(
  conns: readonly Redis[],
  options: RedisWorkloadOptions,
): Promise<OperationSpec<LinInput, LinOutput>[]> {
  const { keys } = options;
  const t0 = options.t0 ?? performance.now();
  const now = () => performance.now() - t0;
  const ops: OperationSpec<LinInput, LinOutput>[] = [];
  const counters = [`${keys[0]}:n0`, `${keys[0]}:n1`];
  let counter = 0;
  const more = (n: number) => (options.until ? !options.until() : n < (options.opsPerClient ?? 60));
  await Promise.all(
    conns.map(async (r, process) => {
      for (let n = 0; more(n); n++) {
        const key = keys[(process + n * 7) % keys.length] as string;
        const pick = (process * 31 + n * 17) % 10;
        const value = `p${process}.${n}.${counter++}`;
        const call = now();
        let input: LinInput = { f: 'get', key };
        let output: LinOutput | undefined;
        try {
          if (n % 5 === 4) {
            // Counters get INCRBY and GET only (an INCR of a text value is an error, not an operation).
            const c = counters[process % 2] as string;
            if (pick < 3) {
              input = { f: 'get', key: c };
              output = { value: await r.get(c) };
            } else {
              const by = 1 + (n % 3);
              input = { f: 'incr', key: c, by };
              output = { value: await r.incrby(c, by) };
            }
          } else if (pick < 3) {
            input = { f: 'get', key };
            output = { value: await r.get(key) };
          } else if (pick < 4) {
            input = { f: 'expire', key };
            output = { existed: (await r.expire(key, 100_000)) === 1 };
          } else if (pick < 7) {
            input = { f: 'put', key, value };
            // A third of the writes carry a TTL (a lease of their own) far longer than the test.
            if (n % 3 === 0) await r.set(key, value, 'EX', 100_000);
            else await r.set(key, value);
            output = {};
          } else if (pick < 8) {
            input = { f: 'append', key, value };
            await r.append(key, value);
            output = {};
          } else if (pick < 9) {
            input = { f: 'delete', key };
            output = { existed: (await r.del(key)) === 1 };
          } else {
            // CAS against a value read just before: succeeds unless another client got in between.
            const seen = await r.get(key);
            input = { f: 'cas', key, expected: seen, value };
            const res =
              seen === null ? await r.set(key, value, 'NX') : await r.call('SET', key, value, 'IFEQ', seen);
            output = { ok: res === 'OK' };
          }
          ops.push({ process, call, ret: now(), input, output });
          options.onOp?.(true);
        } catch {
          // Unknown outcome: recorded without a return, the checker lets it take effect or not.
          ops.push({ process, call, input });
          options.onOp?.(false);
          if (r.status !== 'ready') return;
        }
      }
    }),
  );
  return ops;
}

/**
 * An ioredis client of the RESP port `port` for tests: no offline queue and no retries of a command (a
 * failed command is an unknown outcome, recorded as such), connected on `connect()`. `stayDown`: no
 * reconnection once the connection is lost.
 */
export function testRedis(port: number, stayDown = false): Redis {
  const r = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    ...(stayDown ? { retryStrategy: () => null } : {}),
  });
  r.on('error', () => {}); // a lost connection fails the commands on it; that is what the tests record
  return r;
}

/** Error replies a careful Redis client retries: the cluster refused for now (election, isolation, load). */
export const RETRYABLE_REPLY = /^(UNAVAILABLE|TIMEOUT|NO_LEADER|NOT_LEADER) /;

/**
 * Runs `attempt` again while it fails with a retryable error reply ({@link RETRYABLE_REPLY}), as a
 * careful client does on a loaded machine, until `deadlineMs` has passed (then the last error is
 * thrown). Use it only for attempts that may be repeated (idempotent commands, or fresh keys per try).
 */
export async function retrying<T>(attempt: (n: number) => Promise<T>, deadlineMs = 30_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      if (!RETRYABLE_REPLY.test((e as Error).message) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50 * Math.min(2 ** n, 20)));
    }
  }
}

/**
 * A real 3-server cluster with RESP ports (4 partitions) for the tests of one file: started before
 * them, destroyed after them with every ioredis client `track` was given.
 */
export function respClusterFixture(): {
  readonly cluster: () => TestCluster;
  readonly track: (r: Redis) => Redis;
} {
  let cluster: TestCluster | undefined;
  const clients: Redis[] = [];
  beforeAll(async () => {
    cluster = await TestCluster.create({ nodes: 3, partitions: 4, resp: true });
    cluster.startAll();
    await cluster.waitReady(60_000);
  }, 90_000);
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await cluster?.destroy();
  });
  return {
    cluster: () => {
      if (!cluster) throw new Error('the RESP cluster is not started yet (use it inside a test)');
      return cluster;
    },
    track: (r) => {
      clients.push(r);
      return r;
    },
  };
}
