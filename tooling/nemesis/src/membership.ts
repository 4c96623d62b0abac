/**
 * Membership operations of the nemesis (`member list|add|remove`, as `paxkv member` sends them) and the
 * placement invariant checked at the end of a run with membership faults.
 * @module
 */
import type { ManagedCluster } from './cluster.js';
import { requestOnce } from './rpc.js';

/** The part of the replicated cluster metadata (`member.list.ok`) the nemesis reads. */
export interface MetadataView {
  readonly version: number;
  readonly nodes: ReadonlyArray<{ readonly id: number; readonly address: string }>;
  readonly groups: ReadonlyArray<{ readonly partition: number; readonly replicas: readonly number[] }>;
  readonly metaReplicas: readonly number[];
  readonly moving: ReadonlyArray<{ readonly partition: number; readonly from: number; readonly to: number }>;
  readonly draining: readonly number[];
}

/** A membership change the cluster refused (`BAD_REQUEST`, with what to do): not an error of the run. */
export class MembershipRefused extends Error {
  override readonly name = 'MembershipRefused';
}

/** A server answered a membership request with `INTERNAL` (it says: a bug): a problem of the run. */
export class MembershipServerBug extends Error {
  override readonly name = 'MembershipServerBug';
}

function asNumbers(v: unknown): number[] {
  return Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [];
}

/** Reads the metadata fields the nemesis uses from a `member.list.ok` reply; undefined if absent. */
export function parseMetadata(reply: unknown): MetadataView | undefined {
  const r = reply as { type?: unknown; metadata?: Record<string, unknown> | null } | null;
  if (r?.type !== 'member.list.ok' || typeof r.metadata !== 'object' || r.metadata === null) return undefined;
  const m = r.metadata;
  const table = m.table as { version?: unknown; nodes?: unknown; groups?: unknown } | undefined;
  if (table === undefined || !Array.isArray(table.nodes) || !Array.isArray(table.groups)) return undefined;
  return {
    version: typeof table.version === 'number' ? table.version : 0,
    nodes: (table.nodes as Array<{ id: number; address: string }>).map((n) => ({
      id: n.id,
      address: n.address,
    })),
    groups: (table.groups as Array<{ partition: number; replicas: unknown }>).map((g) => ({
      partition: g.partition,
      replicas: asNumbers(g.replicas),
    })),
    metaReplicas: asNumbers(m.metaReplicas),
    moving: Array.isArray(m.moving) ? (m.moving as MetadataView['moving']) : [],
    draining: asNumbers(m.draining),
  };
}

/** Replicas held by each listed node. */
export function replicaCounts(m: MetadataView): Map<number, number> {
  const out = new Map<number, number>(m.nodes.map((n) => [n.id, 0]));
  for (const g of m.groups) for (const r of g.replicas) out.set(r, (out.get(r) ?? 0) + 1);
  return out;
}

/**
 * The placement invariant after healing: nothing moving or draining, every partition on exactly
 * `replication` distinct replicas, each one a live server, every live server listed and no retired one.
 * @returns the broken parts (empty: the invariant holds).
 */
export function placementProblems(
  m: MetadataView,
  liveNodes: readonly number[],
  replication: number,
  partitions: number,
): string[] {
  const out: string[] = [];
  const live = new Set(liveNodes);
  if (m.moving.length > 0)
    out.push(`moves in progress: ${m.moving.map((x) => `p${x.partition} ${x.from}->${x.to}`).join(', ')}`);
  if (m.draining.length > 0) out.push(`draining: ${m.draining.join(', ')}`);
  if (m.groups.length !== partitions) out.push(`${m.groups.length} groups listed, expected ${partitions}`);
  for (const g of m.groups) {
    const distinct = new Set(g.replicas);
    const dead = g.replicas.filter((r) => !live.has(r));
    if (distinct.size !== replication || g.replicas.length !== replication)
      out.push(`p${g.partition} on [${g.replicas.join(',')}], expected ${replication} distinct replicas`);
    if (dead.length > 0) out.push(`p${g.partition} has replicas on servers gone: ${dead.join(',')}`);
  }
  const listed = new Set(m.nodes.map((n) => n.id));
  const missing = liveNodes.filter((n) => !listed.has(n));
  if (missing.length > 0) out.push(`live servers not members: ${missing.join(', ')}`);
  const stale = [...listed].filter((n) => !live.has(n));
  if (stale.length > 0) out.push(`members that are gone still listed: ${stale.join(', ')}`);
  return out;
}

/** Membership requests sent the way `paxkv member ...` sends them, to any running server (not proxied). */
export class MembershipClient {
  constructor(
    private readonly cluster: ManagedCluster,
    /** Time one request may take. */
    private readonly requestTimeoutMs = 5000,
  ) {}

  private async ask(message: Record<string, unknown>, deadline: number): Promise<Record<string, unknown>> {
    let last = 'no running server';
    let turn = 0;
    for (;;) {
      const running = this.cluster.live().filter((s) => s.state === 'running' && s.node > 0);
      const s = running[turn++ % Math.max(1, running.length)];
      if (s !== undefined) {
        try {
          const r = (await requestOnce(s.realAddress, message, this.requestTimeoutMs)) as Record<
            string,
            unknown
          >;
          if (r.type !== 'error') return r;
          if (r.code === 'BAD_REQUEST') throw new MembershipRefused(String(r.message ?? 'refused'));
          if (r.code === 'INTERNAL')
            throw new MembershipServerBug(
              `${String(message.type)} answered INTERNAL by ${s.realAddress} (node ${s.node}): ${String(r.message ?? '')}`,
            );
          last = `${String(r.code)}: ${String(r.message ?? '')}`;
        } catch (e) {
          if (e instanceof MembershipRefused || e instanceof MembershipServerBug) throw e;
          last = (e as Error).message;
        }
      }
      if (Date.now() > deadline) throw new Error(`${String(message.type)} failed: ${last}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * The current metadata: the newest version any running server answers with (a server answers from its
   * own replica of the metadata group, which may lag behind).
   */
  async metadata(deadline: number): Promise<MetadataView> {
    for (;;) {
      const running = this.cluster.live().filter((s) => s.state === 'running' && s.node > 0);
      const replies = await Promise.all(
        running.map((s) =>
          requestOnce(s.realAddress, { type: 'member.list' }, this.requestTimeoutMs).then(
            parseMetadata,
            () => undefined,
          ),
        ),
      );
      let best: MetadataView | undefined;
      for (const m of replies)
        if (m !== undefined && (best === undefined || m.version > best.version)) best = m;
      if (best !== undefined) return best;
      if (Date.now() > deadline) throw new Error('no running server answered member.list with metadata');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** `member add <address>`: resolves with the node id the address got. */
  async add(address: string, deadline: number): Promise<number> {
    const r = await this.ask({ type: 'member.add', address }, deadline);
    if (typeof r.node !== 'number') throw new Error(`member.add answered ${JSON.stringify(r)}`);
    return r.node;
  }

  /** `member remove <node>`: resolves with the state (`draining` or `removed`). */
  async remove(node: number, deadline: number): Promise<string> {
    const r = await this.ask({ type: 'member.remove', node }, deadline);
    return String(r.state);
  }

  /** Polls the metadata until `done` returns a value, or throws after the deadline with `what`. */
  async until<T>(what: string, done: (m: MetadataView) => T | undefined, deadline: number): Promise<T> {
    for (;;) {
      const m = await this.metadata(deadline);
      const v = done(m);
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}
