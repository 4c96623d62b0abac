/**
 * The CLI's two ways to reach a cluster: a `@paxkv/client` client for key-value commands, and a status
 * probe per server for `status` and readiness.
 */
import { createClient } from '@paxkv/client';
import type { BenchClient } from './bench.js';
import { probe } from './probe.js';
import { clientSecurity } from './security-commands.js';
import type { MetadataLike, ServerStatusLike, StatusReply } from './status-view.js';

/** Options of {@link openClient}. */
export interface OpenClientOptions {
  /** Per-request deadline in ms (retries included). */
  readonly timeoutMs: number;
}

let nextProbeId = 1;

/**
 * Creates a client of the cluster reachable through `servers` (any of them will do: the client fetches the
 * lookup table and routes each key to its group leader).
 */
export async function openClient(
  servers: readonly string[],
  options: OpenClientOptions,
): Promise<BenchClient> {
  const client = createClient({
    servers: [...servers],
    requestTimeoutMs: options.timeoutMs,
    ...clientSecurity(),
  });
  return {
    get: (key, o) => client.get(key, o?.stale ? { stale: true } : {}),
    put: (key, value) => client.put(key, value),
    cas: (key, expected, value) => client.cas(key, expected, value),
    delete: (key) => client.delete(key),
    close: () => client.close(),
  };
}

/** Asks one server for its status; failures become an `error` reply (never rejects). */
export async function statusOf(address: string, timeoutMs: number): Promise<StatusReply> {
  try {
    const id = nextProbeId++;
    const reply = await probe(address, { type: 'status', id }, timeoutMs);
    if (reply.type === 'status.ok') return { address, status: reply.status as ServerStatusLike };
    if (reply.type === 'error') return { address, error: `${reply.code}: ${reply.message}` };
    return { address, error: `unexpected reply ${reply.type}` };
  } catch (e) {
    return { address, error: (e as Error).message };
  }
}

/**
 * Reads the cluster metadata (`member.list`) from every one of `servers` at once and keeps the newest
 * version (each server answers from its own copy, which can lag by a refresh), for the replica moves in
 * progress; null when none answers with metadata (a server of a build without the metadata group, a
 * cluster still forming). Never rejects.
 */
export async function metadataOf(
  servers: readonly string[],
  timeoutMs: number,
): Promise<MetadataLike | null> {
  const copies = await Promise.all(
    servers.map(async (address): Promise<MetadataLike | null> => {
      try {
        const reply = await probe(address, { type: 'member.list', id: nextProbeId++ }, timeoutMs);
        return reply.type === 'member.list.ok' && reply.metadata ? reply.metadata : null;
      } catch {
        return null; // unreachable: the others answer
      }
    }),
  );
  let newest: MetadataLike | null = null;
  for (const m of copies) if (m && (newest === null || m.table.version > newest.table.version)) newest = m;
  return newest;
}
