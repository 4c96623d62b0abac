import { createClient } from '@paxkv/client';
import type { TlsOptions } from '@paxkv/common';
import type { BankClient, BankClientFactory } from './bank.js';
import type { LineSink } from './history.js';
import type { WorkloadClient, WorkloadClientFactory } from './workload.js';

/**
 * The workload's clients on top of `@paxkv/client`: each one records its history into the given sink
 * (the client writes the checker's JSON-lines format itself; timeouts are recorded as indeterminate) and
 * gives up on an operation after `operationTimeoutMs`.
 * @param servers - addresses to find the cluster through (the proxy listeners).
 * @param tls - TLS options of a TLS cluster (see `ManagedCluster.clientTls`); default plain TCP.
 */
export function createWorkloadClient(
  servers: readonly string[],
  operationTimeoutMs: number,
  tls?: TlsOptions,
): WorkloadClientFactory {
  return (_index: number, history: LineSink): WorkloadClient => {
    const client = createClient({
      servers: [...servers],
      ...(tls === undefined ? {} : { tls }),
      history,
      requestTimeoutMs: operationTimeoutMs,
      attemptTimeoutMs: Math.max(100, Math.floor(operationTimeoutMs / 2)),
    });
    const text = (v: string | Uint8Array | null): string | null =>
      v === null || typeof v === 'string' ? v : Buffer.from(v).toString('utf8');
    return {
      get: async (key) => text(await client.get(key)),
      put: (key, value) => client.put(key, value),
      cas: async (key, expected, value) => {
        const r = await client.cas(key, expected, value);
        return { applied: r.outcome === 'applied', current: text(r.current) };
      },
      delete: (key) => client.delete(key),
      close: () => client.close(),
    };
  };
}

/**
 * The bank workload's clients on top of `@paxkv/client` (same options and history recording as
 * {@link createWorkloadClient}): `range` is the client's single-tag range (one linearizable read),
 * `txn` its transaction.
 */
export function createBankClient(
  servers: readonly string[],
  operationTimeoutMs: number,
  tls?: TlsOptions,
): BankClientFactory {
  return (_index: number, history: LineSink): BankClient => {
    const client = createClient({
      servers: [...servers],
      ...(tls === undefined ? {} : { tls }),
      history,
      requestTimeoutMs: operationTimeoutMs,
      attemptTimeoutMs: Math.max(100, Math.floor(operationTimeoutMs / 2)),
    });
    return {
      range: async (op) => {
        const page = await client.range(op.start, op.end);
        return { kvs: page.kvs, revision: page.revisions[0]?.revision ?? 0 };
      },
      txn: (op) => client.txn(op),
      close: () => client.close(),
    };
  };
}
