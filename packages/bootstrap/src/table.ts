/**
 * Building and validating the partition lookup table.
 *
 * Placement rule (deterministic, balanced): nodes are sorted by id, and the `partitions × replication`
 * replica slots are dealt round-robin over that ring: partition `p` gets the `δ` consecutive ring
 * positions starting at `p·δ mod n`. Consecutive slots are distinct nodes as long as `δ ≤ n`, and
 * every node receives `⌊P·δ/n⌋` or `⌈P·δ/n⌉` replicas, so no node holds more than one replica more
 * than any other. Within a group the replicas are then rotated so that the first one (the group's
 * preferred leader) is the member that has been first least often so far (ties: ring order), which
 * spreads the preferred leaders as evenly as the groups allow.
 * @module
 */
import {
  ConfigError,
  type GroupEntry,
  type LookupTable,
  LookupTableSchema,
  type NodeEntry,
  type NodeId,
} from '@paxkv/common';
import { InvalidLookupTableError, ReplicationTooLargeError } from './errors.js';

/** Largest partition count a table may have (the wire schema's limit). */
export const MAX_PARTITIONS = 1 << 20;

/** Input of {@link buildLookupTable}. */
export interface BuildLookupTableInput {
  /** The servers to place replicas on. Order does not matter: they are sorted by id. */
  readonly nodes: readonly NodeEntry[];
  /** Number of partitions P (positive integer, at most {@link MAX_PARTITIONS}). */
  readonly partitions: number;
  /** Replication factor δ: replicas per partition (positive integer, at most `nodes.length`). */
  readonly replication: number;
  /** Version stamped on the table (non-negative integer). */
  readonly version: number;
}

function checkPositiveInt(
  issues: { path: string; problem: string }[],
  path: string,
  v: number,
  max: number,
): void {
  if (!Number.isSafeInteger(v) || v < 1 || v > max) {
    issues.push({ path, problem: `must be an integer in 1..${max}, got ${v}` });
  }
}

/**
 * Builds a lookup table that places `partitions` groups of `replication` distinct replicas on `nodes`
 * with the balanced round-robin rule described in this module's documentation. Pure and
 * deterministic: the same input always yields the same table.
 *
 * @throws {@link ReplicationTooLargeError} if `replication` exceeds the number of nodes.
 * @throws {@link ConfigError} if a count is not a positive integer or node ids/addresses repeat.
 */
export function buildLookupTable(input: BuildLookupTableInput): LookupTable {
  const issues: { path: string; problem: string }[] = [];
  checkPositiveInt(issues, 'partitions', input.partitions, MAX_PARTITIONS);
  checkPositiveInt(issues, 'replication', input.replication, Number.MAX_SAFE_INTEGER);
  if (!Number.isSafeInteger(input.version) || input.version < 0) {
    issues.push({ path: 'version', problem: `must be a non-negative integer, got ${input.version}` });
  }
  const ids = new Set<NodeId>();
  const addresses = new Set<string>();
  for (const n of input.nodes) {
    if (ids.has(n.id)) issues.push({ path: 'nodes', problem: `node id ${n.id} listed twice` });
    if (addresses.has(n.address))
      issues.push({ path: 'nodes', problem: `address ${n.address} listed twice` });
    ids.add(n.id);
    addresses.add(n.address);
  }
  if (issues.length > 0) throw new ConfigError({ source: 'lookup table', issues });
  const ring = [...input.nodes].sort((a, b) => a.id - b.id).map((n) => ({ id: n.id, address: n.address }));
  const n = ring.length;
  const delta = input.replication;
  if (delta > n) throw new ReplicationTooLargeError({ replication: delta, nodes: n });

  const firstCount = new Map<NodeId, number>(ring.map((node) => [node.id, 0]));
  const groups: GroupEntry[] = [];
  for (let p = 0; p < input.partitions; p++) {
    const start = (p * delta) % n;
    const members: NodeId[] = [];
    for (let j = 0; j < delta; j++) members.push(ring[(start + j) % n]!.id);
    let best = 0;
    for (let j = 1; j < delta; j++) {
      if (firstCount.get(members[j]!)! < firstCount.get(members[best]!)!) best = j;
    }
    const replicas = [...members.slice(best), ...members.slice(0, best)];
    firstCount.set(replicas[0]!, firstCount.get(replicas[0]!)! + 1);
    groups.push({ partition: p, replicas });
  }
  return { version: input.version, partitions: input.partitions, replication: delta, nodes: ring, groups };
}

/** Extra expectations for {@link validateLookupTable}. */
export interface ValidateLookupTableOptions {
  /** If given, every replica must be one of these nodes (for example the nodes alive right now). */
  readonly liveNodes?: ReadonlySet<NodeId>;
  /** If given, the table must have exactly this many partitions. */
  readonly partitions?: number;
  /** If given, the table must have exactly this replication factor. */
  readonly replication?: number;
}

/**
 * Checks that `table` is a complete, well-formed lookup table: it passes the wire schema, node ids
 * and addresses are unique, every partition `0..P-1` has exactly one group, and every group has
 * exactly `replication` distinct replicas that are listed in `nodes` (and in `liveNodes` if given).
 * Returns the list of problems found; an empty list means valid. Never throws.
 */
export function validateLookupTable(table: unknown, options: ValidateLookupTableOptions = {}): string[] {
  const parsed = LookupTableSchema.safeParse(table);
  if (!parsed.success) {
    return parsed.error.issues.map((i) => `${i.path.map(String).join('.') || 'table'}: ${i.message}`);
  }
  const t = parsed.data;
  const problems: string[] = [];
  if (options.partitions !== undefined && t.partitions !== options.partitions) {
    problems.push(`expected ${options.partitions} partitions, table has ${t.partitions}`);
  }
  if (options.replication !== undefined && t.replication !== options.replication) {
    problems.push(`expected replication ${options.replication}, table has ${t.replication}`);
  }
  const addresses = new Set<string>();
  for (const node of t.nodes) {
    if (addresses.has(node.address)) problems.push(`address ${node.address} is listed for two nodes`);
    addresses.add(node.address);
  }
  const covered = new Set<number>();
  for (const g of t.groups) {
    covered.add(g.partition);
    const distinct = new Set(g.replicas);
    if (distinct.size !== t.replication || g.replicas.length !== t.replication) {
      problems.push(
        `partition ${g.partition} has ${distinct.size} distinct of ${g.replicas.length} replicas, expected exactly ${t.replication}`,
      );
    }
    if (options.liveNodes) {
      for (const r of g.replicas) {
        if (!options.liveNodes.has(r))
          problems.push(`partition ${g.partition} is placed on node ${r}, which is not live`);
      }
    }
  }
  if (covered.size !== t.partitions) {
    const missing: number[] = [];
    for (let p = 0; p < t.partitions && missing.length < 5; p++) if (!covered.has(p)) missing.push(p);
    problems.push(
      `${t.partitions - covered.size} partition(s) have no group (first missing: ${missing.join(', ')})`,
    );
  }
  return problems;
}

/**
 * Like {@link validateLookupTable} but returns the typed table or throws.
 * @throws {@link InvalidLookupTableError} listing every problem.
 */
export function assertValidLookupTable(
  table: unknown,
  options: ValidateLookupTableOptions = {},
): LookupTable {
  const problems = validateLookupTable(table, options);
  if (problems.length > 0) throw new InvalidLookupTableError({ problems });
  return table as LookupTable;
}

/** Number of replicas each node of `table` holds (nodes without replicas count 0). */
export function replicaLoad(table: LookupTable): Map<NodeId, number> {
  const load = new Map<NodeId, number>(table.nodes.map((n) => [n.id, 0]));
  for (const g of table.groups) for (const r of g.replicas) load.set(r, (load.get(r) ?? 0) + 1);
  return load;
}

/** Number of groups whose first replica (preferred leader) is each node of `table`. */
export function preferredLeaderLoad(table: LookupTable): Map<NodeId, number> {
  const load = new Map<NodeId, number>(table.nodes.map((n) => [n.id, 0]));
  for (const g of table.groups) {
    const first = g.replicas[0];
    if (first !== undefined) load.set(first, (load.get(first) ?? 0) + 1);
  }
  return load;
}

/** True if two tables have the same content (version included). */
export function sameTable(a: LookupTable, b: LookupTable): boolean {
  if (a.version !== b.version || a.partitions !== b.partitions || a.replication !== b.replication)
    return false;
  if (a.nodes.length !== b.nodes.length || a.groups.length !== b.groups.length) return false;
  for (let i = 0; i < a.nodes.length; i++) {
    const x = a.nodes[i]!;
    const y = b.nodes[i]!;
    if (x.id !== y.id || x.address !== y.address) return false;
  }
  for (let i = 0; i < a.groups.length; i++) {
    const x = a.groups[i]!;
    const y = b.groups[i]!;
    if (x.partition !== y.partition || x.replicas.length !== y.replicas.length) return false;
    for (let j = 0; j < x.replicas.length; j++) if (x.replicas[j] !== y.replicas[j]) return false;
  }
  return true;
}
