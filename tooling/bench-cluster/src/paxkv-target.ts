import { createClient, type PaxkvClient } from '@paxkv/client';
import type { TlsOptions } from '@paxkv/common';
import type { TargetOptions } from './cluster.js';
import { type CasOutcome, type Target, TXN_SENTINEL_VERSION } from './target.js';

function asString(v: string | Uint8Array | null): string | null {
  if (v === null || typeof v === 'string') return v;
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
}

/**
 * {@link Target} over `@paxkv/client`: `put`, linearizable `get` (the client's default consistency)
 * and `cas` map one to one onto the client's calls; the client routes each key to its group's leader.
 */
export class PaxkvTarget implements Target {
  readonly system = 'paxkv';
  constructor(private readonly client: PaxkvClient) {}

  clientStats(): Readonly<Record<string, number>> {
    return { ...this.client.stats };
  }

  async put(key: string, value: string): Promise<void> {
    await this.client.put(key, value);
  }

  async get(key: string): Promise<string | null> {
    return asString(await this.client.get(key));
  }

  async cas(key: string, expected: string | null, value: string): Promise<CasOutcome> {
    const r = await this.client.cas(key, expected, value);
    if (r.outcome === 'applied') return { applied: true };
    return { applied: false, current: asString(r.current) };
  }

  async txn(keyA: string, keyB: string, valueA: string, valueB: string): Promise<void> {
    await this.client.txn({
      compare: [
        { key: keyA, target: 'version', op: '!=', value: TXN_SENTINEL_VERSION },
        { key: keyB, target: 'version', op: '!=', value: TXN_SENTINEL_VERSION },
      ],
      success: [{ put: { key: keyA, value: valueA } }, { put: { key: keyB, value: valueB } }],
    });
  }

  async range(start: string, end: string, limit: number): Promise<number> {
    return (await this.client.range(start, end, { limit })).kvs.length;
  }

  async watchPrefix(
    prefix: string,
    onPut: (key: string, value: string) => void,
  ): Promise<{ cancel(): Promise<void> }> {
    const w = this.client.watch(prefix, { prefix: true, maxBufferedEvents: 1_000_000 });
    const done = (async () => {
      for await (const e of w)
        if (e.type === 'put' && e.value !== undefined) onPut(e.key, asString(e.value) ?? '');
    })().catch(() => {});
    await w.ready;
    return {
      cancel: async () => {
        w.cancel();
        await done;
      },
    };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** A {@link PaxkvTarget} connected to the given servers (`host:port`), over TLS when `tls` is given. */
export async function createPaxkvTarget(
  servers: readonly string[],
  opts: TargetOptions,
  tls?: TlsOptions,
): Promise<Target> {
  const client = createClient({
    servers: [...servers],
    requestTimeoutMs: opts.requestTimeoutMs,
    ...(tls === undefined ? {} : { tls }),
  });
  return new PaxkvTarget(client);
}
