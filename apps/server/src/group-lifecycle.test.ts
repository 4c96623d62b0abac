/**
 * `GroupHost` over real kvstore groups (shared WAL in a temp dir; no peers): joiners of dropped moves are
 * closed, groups that run a configuration are not, and a partition closed in this process opens again
 * (as an empty joiner) instead of failing on its already-taken log tags.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LookupTable } from '@paxkv/common';
import { afterEach, describe, expect, it } from 'vitest';
import { parseServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import { GroupHost } from './group-lifecycle.js';
import { kvstoreGroupFactory } from './kvstore-groups.js';
import { silentLogger } from './logger.js';
import { ServerMetrics } from './metrics.js';
import { PeerLinks } from './peers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function host(): GroupHost {
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
  return new GroupHost(ctx, {
    groupFactory,
    peers,
    addressOf: () => undefined,
    persistIdentity: () => {},
    onGroupOpenFailed: (p, e) => {
      throw new Error(`partition ${p} could not be opened: ${e.message}`);
    },
  });
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
});
