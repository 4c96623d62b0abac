/**
 * `GroupHost` over real kvstore groups (shared WAL in a temp dir; no peers): joiners of dropped moves are
 * closed, groups that run a configuration are not, and a partition closed in this process opens again
 * (as an empty joiner) instead of failing on its already-taken log tags; a request forwarded here for a
 * partition still being opened waits for the open (a restarted server opens its groups one at a time),
 * and that partition opens next.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LookupTable, partitionOf } from '@paxkv/common';
import { afterEach, describe, expect, it } from 'vitest';
import { parseServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import { GroupHost } from './group-lifecycle.js';
import { kvstoreGroupFactory } from './kvstore-groups.js';
import { silentLogger } from './logger.js';
import { ServerMetrics } from './metrics.js';
import { PeerLinks } from './peers.js';
import { RequestPath } from './request-path.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function host(): GroupHost {
  return hostWithContext().host;
}

function hostWithContext(): { host: GroupHost; ctx: ServerContext; peers: PeerLinks } {
  const dataDir = mkdtempSync(join(tmpdir(), 'paxkv-host-'));
  dirs.push(dataDir);
  const ctx: ServerContext = {
    config: parseServerConfig({ dataDir }),
    log: silentLogger,
    metrics: new ServerMetrics(),
    now: () => performance.now(),
    nodeId: 1,
    table: null,
    stopping: false,
    advertised: '127.0.0.1:1',
    authRequired: false,
    tls: undefined,
  };
  const peers = new PeerLinks(ctx, {
    addressOf: () => undefined,
    onPeerConnected: () => {},
    onPeerDisconnected: () => {},
  });
  const groupFactory = kvstoreGroupFactory({
    tickMs: 20,
    requestTimeoutMs: 1000,
    snapshotEveryEntries: 1000,
    logger: silentLogger,
    onFatal: (p, e) => {
      throw new Error(`partition ${p} failed: ${e.message}`);
    },
  });
  const host = new GroupHost(ctx, {
    groupFactory,
    peers,
    addressOf: () => undefined,
    persistIdentity: () => {},
    onGroupOpenFailed: (p, e) => {
      throw new Error(`partition ${p} could not be opened: ${e.message}`);
    },
  });
  return { host, ctx, peers };
}

/** The first key `k0`, `k1`, ... of `partition` among `partitions`. */
function keyOfPartition(partition: number, partitions: number): string {
  for (let i = 0; ; i++) if (partitionOf(`k${i}`, partitions) === partition) return `k${i}`;
}

describe('GroupHost', () => {
  it('closes the joiner of a dropped move, keeps running groups, and reopens a closed partition', async () => {
    const h = host();
    // A group this server runs alone (configuration 0), and a joiner for a move to it.
    const table: LookupTable = {
      version: 1,
      partitions: 8,
      replication: 1,
      nodes: [{ id: 1, address: '127.0.0.1:1' }],
      groups: [{ partition: 0, replicas: [1] }],
    };
    await h.adoptTable(table);
    await h.openJoiner(5, [2, 3, 1]);
    expect(h.get(0)?.configuration).toMatchObject({ configId: 0 });
    expect(h.get(5)?.configuration).toBeNull();
    // Still a move target: kept.
    h.closeStrayJoiners(new Set([0, 5]));
    expect(h.get(5)).toBeDefined();
    // The move was dropped: the joiner is closed; the group that runs a configuration stays.
    h.closeStrayJoiners(new Set());
    expect(h.get(5)).toBeUndefined();
    expect(h.get(0)).toBeDefined();
    // A move to this server again: the partition opens again in this process (its log tags were taken).
    await h.openJoiner(5, [2, 3, 1]);
    expect(h.get(5)?.configuration).toBeNull();
    await h.close();
  });

  it('holds a request forwarded for a partition it is still opening, then serves it', async () => {
    const { host: h, ctx, peers } = hostWithContext();
    const partitions = 4;
    // Four groups this server runs alone: they open one after another (see kvstore-groups.ts).
    const table: LookupTable = {
      version: 1,
      partitions,
      replication: 1,
      nodes: [{ id: 1, address: '127.0.0.1:1' }],
      groups: Array.from({ length: partitions }, (_, partition) => ({ partition, replicas: [1] })),
    };
    const ticker = setInterval(() => h.tick(), 20);
    try {
      const adopted = h.adoptTable(table);
      const last = partitions - 1;
      expect(h.get(last)).toBeUndefined();
      const opening = h.opening(last);
      expect(opening).toBeDefined();
      const requests = new RequestPath(ctx, {
        groups: h,
        peers,
        statusReport: () => {
          throw new Error('not used');
        },
        memberRequest: () => Promise.reject(new Error('not used')),
      });
      const key = keyOfPartition(last, partitions);
      // The opens are queued (each after one turn of its own), as they are long before a request
      // reaches a restarted server.
      await new Promise((r) => setImmediate(r));
      // Which of the partitions queued before it are open when it is.
      const openBefore = opening!.then(() => [1, 2].filter((p) => h.get(p) !== undefined));
      // A peer forwarded it here: without the hold it is refused ("does not host partition 3").
      const reply = await requests.execute(
        { type: 'kv', id: 7, op: { op: 'put', key, value: 'v' } },
        { forwarded: true },
      );
      expect(reply).toMatchObject({ type: 'kv.ok', id: 7 });
      await opening;
      expect(h.opening(last)).toBeUndefined();
      expect(h.get(last)).toBeDefined();
      // The request moved its partition ahead of those queued before it (table order: 0, 1, 2, 3).
      expect(await openBefore).toEqual([]);
      await adopted;
      // Nothing is being opened any more, and a partition never hosted here has no open to wait for.
      for (let p = 0; p < partitions; p++) expect(h.opening(p)).toBeUndefined();
      expect(h.opening(partitions + 1)).toBeUndefined();
    } finally {
      clearInterval(ticker);
      await h.close();
    }
  });
});
