/**
 * The member side of a rejoin over the real metadata changes of `@paxkv/bootstrap`: a member that pulls
 * the metadata now and then can miss every version in which its rejoin's move was fenced (the metadata
 * leader removes it, records the fence, re-adds it and finishes the move within ~0.2 s). It must still
 * rejoin above the fence, from the finished rejoin's record, and never from a fence of another request.
 */
import {
  buildLookupTable,
  fenceRejoin,
  finishRejoin,
  seedMetadata,
  startRejoin,
  unsafeMembershipMutations,
} from '@paxkv/bootstrap';
import {
  type ClusterMetadata,
  ClusterMetadataSchema,
  type MemberRejoinRequest,
  type NodeId,
} from '@paxkv/common';
import { afterEach, describe, expect, it } from 'vitest';
import { parseServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import type { GroupHost } from './group-lifecycle.js';
import { silentLogger } from './logger.js';
import { ServerMetrics } from './metrics.js';
import { fenceFor, RejoinRequester } from './replica-rejoin.js';

const ME = 3;
const PARTITION = 1;

function metadata(): ClusterMetadata {
  const nodes = [1, 2, 3].map((id) => ({ id, address: `127.0.0.1:${7000 + id}` }));
  return seedMetadata(buildLookupTable({ nodes, partitions: 2, replication: 3, version: 1 }));
}

/** A member whose replica of PARTITION is unreadable; records its requests and rejoins. */
function member() {
  let clock = 0;
  const requests: MemberRejoinRequest[] = [];
  const rejoins: Array<{ partition: number; replicas: readonly NodeId[]; minConfigId: number }> = [];
  const unreadable = new Set([PARTITION]);
  const ctx = {
    config: parseServerConfig({ dataDir: '/nonexistent' }),
    log: silentLogger,
    metrics: new ServerMetrics(),
    now: () => clock,
    nodeId: ME,
    table: null,
    stopping: false,
    advertised: '127.0.0.1:7003',
    authRequired: false,
    tls: undefined,
  } satisfies ServerContext;
  const groups = {
    unreadablePartitions: () => [...unreadable],
    rejoin: async (partition: number, replicas: readonly NodeId[], minConfigId: number) => {
      rejoins.push({ partition, replicas, minConfigId });
      unreadable.delete(partition);
    },
  } as unknown as GroupHost;
  const requester = new RejoinRequester(ctx, {
    groups,
    route: async (r) => {
      requests.push(r);
      return {
        type: 'member.ok',
        id: r.id,
        node: ME,
        address: ctx.advertised,
        version: 1,
        state: 'member',
      };
    },
  });
  return {
    requests,
    rejoins,
    /** One heartbeat of the member, 2.5 s after the previous one, seeing metadata `m`. */
    beat(m: ClusterMetadata) {
      clock += 2500;
      requester.heartbeat(m);
    },
  };
}

/** The metadata leader's side: the rejoin of the member's request, removed at `fence`, re-added above. */
function runRejoin(
  m: ClusterMetadata,
  token: string | undefined,
  fence: number,
): [ClusterMetadata, ClusterMetadata, ClusterMetadata] {
  const recorded = startRejoin(m, PARTITION, ME, token);
  const fenced = fenceRejoin(recorded, PARTITION, fence);
  const done = finishRejoin(fenced, PARTITION, fence + 1);
  for (const v of [recorded, fenced, done]) expect(ClusterMetadataSchema.safeParse(v).success).toBe(true);
  return [recorded, fenced, done];
}

afterEach(() => {
  unsafeMembershipMutations.forgetRejoinFence = false;
});

describe('RejoinRequester', () => {
  it('rejoins above the fence although it never saw the fenced move (the record of the finished rejoin)', async () => {
    const m = member();
    const m0 = metadata();
    m.beat(m0);
    expect(m.requests).toHaveLength(1);
    const token = m.requests[0]?.token as string;
    expect(token).toMatch(/^[0-9a-f]{24}$/);
    const [, , done] = runRejoin(m0, token, 4);
    // The member pulls only the version after the move finished.
    m.beat(done);
    await Promise.resolve();
    expect(m.rejoins).toHaveLength(1);
    expect(m.rejoins[0]).toMatchObject({ partition: PARTITION, minConfigId: 5 });
    expect([...(m.rejoins[0]?.replicas ?? [])].sort()).toEqual([1, 2, 3]);
    expect(m.requests).toHaveLength(1);
  });

  it('mutation check: without the record it misses the fence and asks again (removed and re-added over and over)', () => {
    unsafeMembershipMutations.forgetRejoinFence = true;
    const m = member();
    const m0 = metadata();
    m.beat(m0);
    const token = m.requests[0]?.token as string;
    const [, , done] = runRejoin(m0, token, 4);
    m.beat(done);
    expect(m.rejoins).toEqual([]);
    expect(m.requests).toHaveLength(2);
  });

  it('never uses the fence of another request (an earlier rejoin of the same replica)', () => {
    const m = member();
    const m0 = metadata();
    // A finished rejoin of an earlier process of this member, fenced at 2 (it joined 3 and later since).
    const [, , earlier] = runRejoin(m0, 'earlier-process-token', 2);
    m.beat(earlier);
    expect(m.rejoins).toEqual([]);
    expect(m.requests).toHaveLength(1);
    const token = m.requests[0]?.token as string;
    expect(token).not.toBe('earlier-process-token');
    // The new request replaces the record and is fenced afresh.
    const recorded = startRejoin(earlier, PARTITION, ME, token);
    expect(recorded.rejoined ?? []).toEqual([]);
    expect(fenceFor(recorded, PARTITION, ME, token)).toBeUndefined();
    const fenced = fenceRejoin(recorded, PARTITION, 6);
    expect(fenceFor(fenced, PARTITION, ME, token)).toBe(6);
  });

  it('a new request drops a fence already taken for an older one', () => {
    const m0 = metadata();
    const fenced = fenceRejoin(startRejoin(m0, PARTITION, ME, 'first-token-aaaa'), PARTITION, 4);
    expect(fenceFor(fenced, PARTITION, ME, 'first-token-aaaa')).toBe(4);
    // The member restarted (or its replica became unreadable again): the fence of 4 is not its own.
    const renewed = startRejoin(fenced, PARTITION, ME, 'second-token-bbbb');
    expect(renewed.moving).toEqual([
      { partition: PARTITION, from: ME, to: ME, reason: 'rejoin', token: 'second-token-bbbb' },
    ]);
    expect(fenceFor(renewed, PARTITION, ME, 'second-token-bbbb')).toBeUndefined();
    expect(() => finishRejoin(renewed, PARTITION, 5)).toThrow(/no rejoin past/);
    // The same request again changes nothing.
    expect(startRejoin(renewed, PARTITION, ME, 'second-token-bbbb')).toBe(renewed);
  });
});
