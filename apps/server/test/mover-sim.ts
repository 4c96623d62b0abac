/**
 * A harness for `ReplicaMover` tests (`src/replica-mover*.test.ts`): movers over a real replica group
 * (the kvstore simulation, `GroupCluster`) and a metadata that is one linearizable register (what
 * `casChange` gives: every change applies to the newest version). Each refusal of the group crosses the
 * wire as a forwarded `group.reconfigure` answer does (encoded, decoded with the peer schema, rebuilt
 * with `errorFromWire`).
 */
import {
  type ClusterMetadata,
  errorFromWire,
  errorMessage,
  type NodeId,
  NoLeaderError,
  parsePeerMessage,
} from '@paxkv/common';
import type { ReplicaGroup } from '@paxkv/kvstore';
import { GroupCluster } from '@paxkv/kvstore/testing';
import { expect } from 'vitest';
import { parseServerConfig } from '../src/config.js';
import type { ServerContext } from '../src/context.js';
import type { ReplicaGroupPort } from '../src/group-port.js';
import type { LogFn } from '../src/logger.js';
import type { MemberWatch } from '../src/member-watch.js';
import { ServerMetrics } from '../src/metrics.js';
import type { MetadataChanger } from '../src/move-steps.js';
import { type GroupReconfigurer, ReplicaMover, type ReplicaMoverDeps } from '../src/replica-mover.js';
import type { RequestPath } from '../src/request-path.js';

/** Nodes 1..n at local addresses. */
export const nodes = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: i + 1, address: `127.0.0.1:${7001 + i}` }));

/** `e` as a server on the other end of a forwarded `group.reconfigure` gets it back. */
export function overTheWire(e: unknown, olderSender: boolean): Error {
  const { configuration, ...old } = errorMessage(e, 1);
  const r = parsePeerMessage(olderSender ? old : { ...old, ...(configuration ? { configuration } : {}) });
  if (!r.ok || r.value.type !== 'error') throw new Error('the refusal did not decode');
  return errorFromWire(r.value);
}

/** A cluster of `replicas` (+ `spares`) replicas of partition 0 with an elected leader. */
export async function cluster(options: {
  seed: number;
  spares?: number;
  unsafeGroup?: boolean;
  /** The partition the simulated group plays (default 0; METADATA_PARTITION: the metadata group). */
  partition?: number;
}) {
  const simulated = options.partition ?? 0;
  const c = new GroupCluster({
    seed: options.seed,
    spares: options.spares ?? 0,
    ...(options.unsafeGroup ? { group: { unsafeMutation: 'ignoreExpectedConfiguration' as const } } : {}),
  });
  const leaderOf = (): ReplicaGroup | undefined =>
    c.ids
      .map((p) => c.group(p))
      .find((g) => g?.role === 'leader' && g.phase === 'accept' && !g.removed && g.configuration);
  expect(await c.runUntil(() => leaderOf() !== undefined, 600)).toBeGreaterThanOrEqual(0);
  /** The group's leader runs the change (the server routes `group.reconfigure` there). */
  const reconfigurer = (
    o: { olderSender?: boolean; hold?: () => Promise<void> } = {},
  ): GroupReconfigurer => ({
    reconfigure: async (partition, replicas, expect) => {
      if (partition !== simulated) throw new Error(`no group of partition ${partition} in this simulation`);
      for (let i = 0; i < 100_000 && !leaderOf(); i++) await new Promise((r) => setImmediate(r));
      const leader = leaderOf();
      if (!leader) throw new NoLeaderError({});
      try {
        return await leader.reconfigure(replicas, { configId: expect.configId, members: expect.replicas });
      } catch (e) {
        await o.hold?.();
        throw overTheWire(e, o.olderSender === true);
      }
    },
  });
  /** Runs `replicas` on the leader directly (a change the metadata never hears of). */
  const reconfigureBehindMetadata = async (
    replicas: NodeId[],
    from: { configId: number; members: NodeId[] },
  ) => {
    let done = false;
    void leaderOf()!
      .reconfigure(replicas, from)
      .then(() => {
        done = true;
      });
    const started = () => done && leaderOf()?.configuration?.configId === from.configId + 1;
    expect(await c.runUntil(started, 4000)).toBeGreaterThanOrEqual(0);
  };
  return { c, leaderOf, reconfigurer, reconfigureBehindMetadata };
}

/** A metadata register whose every change is linearizable; `records` keeps `recordOf` of each version. */
export function register(
  first: ClusterMetadata,
  recordOf = (m: ClusterMetadata) => m.table.groups[0]?.config ?? 0,
) {
  const reg = { current: first, records: [recordOf(first)] };
  const change: MetadataChanger = async (_group, fn) => {
    const out = fn(reg.current);
    if (out.changed) {
      reg.current = out.metadata;
      reg.records.push(recordOf(out.metadata));
    }
    return out;
  };
  return { reg, change };
}

/** A `ReplicaMover` as the metadata leader runs it; `lost` nodes are suspected for good. */
export function mover(
  deps: Pick<ReplicaMoverDeps, 'reconfigurer' | 'metadata' | 'change'> & {
    unsafe?: ReplicaMoverDeps['unsafeMoveSteps'];
    lost?: readonly NodeId[];
  },
) {
  const warnings: string[] = [];
  const warn: LogFn = (fields, message) => warnings.push(`${message}: ${String(fields.err ?? '')}`);
  const ctx = {
    config: parseServerConfig({ dataDir: '/nonexistent', replaceAfter: 1, moveIntervalMs: 0 }),
    log: { debug: () => {}, info: () => {}, warn, error: warn },
    metrics: new ServerMetrics(),
    now: () => 0,
    nodeId: null,
    table: null,
    stopping: false,
    advertised: '127.0.0.1:7000',
    authRequired: false,
    tls: undefined,
  } satisfies ServerContext;
  const lost = new Set(deps.lost ?? []);
  const watch = {
    suspectedForMs: (n: NodeId) => (lost.has(n) ? Number.MAX_SAFE_INTEGER : 0),
    upForMs: (n: NodeId) => (lost.has(n) ? 0 : Number.MAX_SAFE_INTEGER),
  } as unknown as MemberWatch;
  const m = new ReplicaMover(ctx, {
    requests: () => ({}) as RequestPath,
    watch,
    reconfigurer: deps.reconfigurer,
    metadata: deps.metadata,
    change: deps.change,
    unsafeMoveSteps: deps.unsafe ?? 'none',
  });
  return { run: () => m.moveReplicas({} as ReplicaGroupPort), warnings };
}
