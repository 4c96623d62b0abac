/**
 * The cluster status as the CLI shows it: the lookup table, every server's reachability and membership
 * state, and per partition its configuration id, replicas (each live or not), current leader and any
 * reconfiguration in progress. Built from the `status` replies of every server (each server only knows
 * the groups it hosts) and, when one server answered it, the cluster metadata (`member.list`: the replica
 * moves in progress).
 */

import { METADATA_PARTITION } from '@paxkv/common';

/** One server's `status.ok` payload (the subset of `@paxkv/common`'s `ClusterStatus` the CLI reads). */
export interface ServerStatusLike {
  readonly node: number;
  readonly table: {
    readonly version: number;
    readonly partitions: number;
    readonly replication: number;
    readonly nodes: ReadonlyArray<{ readonly id: number; readonly address: string }>;
    readonly groups: ReadonlyArray<{
      readonly partition: number;
      readonly replicas: readonly number[];
      readonly config?: number | undefined;
    }>;
  } | null;
  readonly groups: ReadonlyArray<{
    readonly partition: number;
    readonly leader: number | null;
    readonly role: string;
    readonly decidedIndex: number;
    /** Entries applied to the replica's state machine (absent from servers that do not report it). */
    readonly appliedIndex?: number | undefined;
    readonly configId?: number | undefined;
  }>;
  readonly members: ReadonlyArray<{ readonly id: number; readonly address: string; readonly state: string }>;
}

/**
 * The part of the cluster metadata (`member.list.ok`) the status view reads: the replica moves in
 * progress and the members being drained.
 */
export interface MetadataLike {
  readonly table: { readonly version: number };
  /** The metadata group's replicas. */
  readonly metaReplicas: readonly number[];
  /** The metadata group's configuration id (absent: 0). */
  readonly metaConfig?: number | undefined;
  readonly moving: ReadonlyArray<{
    readonly partition: number;
    readonly from: number;
    readonly to: number;
    readonly reason: string;
  }>;
  readonly draining: readonly number[];
}

/** One replica of a group as `status` shows it. */
export interface ReplicaStatus {
  readonly node: number;
  /**
   * True when the replica's server answered this status round and reports hosting the group (a replica
   * still joining by state transfer counts: it is up and catching up).
   */
  readonly live: boolean;
  /** The role it reports (`leader`, `follower`, `stopped`), null when it did not answer or hosts no replica. */
  readonly role: string | null;
  /** The configuration id it runs, null when unknown (not answering, or joining). */
  readonly configId: number | null;
  /** The log index it has applied up to (its decided index when it does not report one), null when it did not answer. */
  readonly appliedIndex: number | null;
}

/**
 * A reconfiguration of a group in progress: the move the metadata records (`from` replaced by `to`,
 * and why), and the configuration ids its replicas run when they are not all the same as the table's.
 */
export interface GroupReconfiguration {
  readonly from: number | null;
  readonly to: number | null;
  /** `replace` (a lost server), `drain` (`member remove`), `rebalance`; null when only `configs` tell. */
  readonly reason: string | null;
  /** Distinct configuration ids of the table and of the replicas that answered, ascending. */
  readonly configs: readonly number[];
}

/** The merged view printed by `status`. */
export interface StatusView {
  readonly tableVersion: number | null;
  readonly partitions: number | null;
  readonly replication: number | null;
  readonly servers: ReadonlyArray<{
    readonly id: number | null;
    readonly address: string;
    readonly reachable: boolean;
    readonly state: string;
    readonly error?: string;
  }>;
  readonly groups: ReadonlyArray<{
    readonly partition: number;
    readonly replicas: readonly number[];
    readonly leader: number | null;
    readonly decidedIndex: number | null;
    /**
     * How many decided entries the slowest live replica of the group's current configuration has yet to
     * apply (the highest decided index its replicas report minus the lowest applied index): 0 when every
     * replica is caught up, large while a new replica catches up; null when no replica of that
     * configuration answered.
     */
    readonly behind: number | null;
    /**
     * The group's configuration id (0: its first replicas; +1 per replica move), the highest of the
     * table's and what its replicas report (a replica ahead of the table: a move is in progress).
     */
    readonly config: number;
    /** Every replica of the table's group, in the table's order, with whether it is live. */
    readonly replicaStatus: readonly ReplicaStatus[];
    /** How many of `replicas` are live. */
    readonly liveReplicas: number;
    /** The reconfiguration in progress, or null when none is seen. */
    readonly reconfiguration: GroupReconfiguration | null;
  }>;
  /**
   * The metadata group (the replicated lookup table and member list), from the metadata: its
   * configuration id, replicas (live = the server answered this status round) and its move in progress;
   * null when the metadata could not be read.
   */
  readonly metadataGroup: {
    readonly config: number;
    readonly replicas: readonly number[];
    readonly replicaStatus: ReadonlyArray<{ readonly node: number; readonly live: boolean }>;
    readonly liveReplicas: number;
    readonly reconfiguration: GroupReconfiguration | null;
  } | null;
  /** Replica moves in progress over the whole cluster (0 when the metadata could not be read). */
  readonly moving: number;
  /** Whether the cluster metadata was read (when false, `reconfiguration` relies on replica reports only). */
  readonly metadataRead: boolean;
}

/** One reply (or failure) per server address asked. */
export type StatusReply =
  | { readonly address: string; readonly status: ServerStatusLike }
  | { readonly address: string; readonly error: string };

/**
 * Merges the replies of several servers: the newest table wins; a partition's leader is the one reported by
 * a replica that believes itself leader (else the one most replicas report); members' states come from the
 * server with the most recent view (the first reachable one that lists members).
 */
export function mergeStatus(
  replies: readonly StatusReply[],
  metadata: MetadataLike | null = null,
): StatusView {
  const ok = replies.filter((r): r is Extract<StatusReply, { status: ServerStatusLike }> => 'status' in r);
  let table: ServerStatusLike['table'] = null;
  for (const r of ok) {
    if (r.status.table && (table === null || r.status.table.version > table.version)) table = r.status.table;
  }
  const membersFrom = ok.find((r) => r.status.members.length > 0)?.status.members ?? [];
  const memberState = new Map(membersFrom.map((m) => [m.id, m.state]));
  for (const id of metadata?.draining ?? []) if (memberState.has(id)) memberState.set(id, 'draining');
  const addressOf = new Map<number, string>();
  for (const n of table?.nodes ?? []) addressOf.set(n.id, n.address);
  for (const m of membersFrom) if (!addressOf.has(m.id)) addressOf.set(m.id, m.address);

  const servers: Array<StatusView['servers'][number]> = [];
  const seen = new Set<string>();
  for (const [id, address] of [...addressOf.entries()].sort((a, b) => a[0] - b[0])) {
    seen.add(address);
    const reply = replies.find((r) => r.address === address);
    const reachable = reply !== undefined && 'status' in reply;
    const entry: StatusView['servers'][number] = {
      id,
      address,
      reachable,
      state: memberState.get(id) ?? (reachable ? 'alive' : 'unknown'),
      ...(reply && 'error' in reply ? { error: reply.error } : {}),
    };
    servers.push(entry);
  }
  for (const r of replies) {
    if (seen.has(r.address)) continue;
    servers.push({
      id: 'status' in r ? r.status.node : null,
      address: r.address,
      reachable: 'status' in r,
      state: 'status' in r ? 'alive' : 'unknown',
      ...('error' in r ? { error: r.error } : {}),
    });
  }

  const groups: Array<StatusView['groups'][number]> = [];
  for (const g of [...(table?.groups ?? [])].sort((a, b) => a.partition - b.partition)) {
    const reports = ok.flatMap((r) =>
      r.status.groups.filter((x) => x.partition === g.partition).map((x) => ({ ...x, node: r.status.node })),
    );
    const self = reports.find((x) => x.role === 'leader' && x.leader === x.node);
    let leader: number | null = self?.node ?? null;
    if (leader === null) {
      const votes = new Map<number, number>();
      for (const x of reports) if (x.leader !== null) votes.set(x.leader, (votes.get(x.leader) ?? 0) + 1);
      let best = 0;
      for (const [id, n] of votes) {
        if (n > best) {
          best = n;
          leader = id;
        }
      }
    }
    const decided = reports.length > 0 ? Math.max(...reports.map((x) => x.decidedIndex)) : null;
    const config = Math.max(g.config ?? 0, ...reports.map((x) => x.configId ?? 0));
    const replicaStatus = g.replicas.map((node): ReplicaStatus => {
      const x = reports.find((r) => r.node === node);
      return {
        node,
        live: x !== undefined,
        role: x?.role ?? null,
        configId: x?.configId ?? null,
        appliedIndex: x === undefined ? null : (x.appliedIndex ?? x.decidedIndex),
      };
    });
    // Indexes are comparable within one configuration only: the replicas running the newest one.
    const current = reports.filter((x) => (x.configId ?? 0) === config);
    const behind =
      current.length === 0
        ? null
        : Math.max(...current.map((x) => x.decidedIndex)) -
          Math.min(...current.map((x) => x.appliedIndex ?? x.decidedIndex));
    const configs = [
      ...new Set([g.config ?? 0, ...reports.flatMap((x) => (x.configId === undefined ? [] : [x.configId]))]),
    ].sort((a, b) => a - b);
    const move = metadata?.moving.find((m) => m.partition === g.partition);
    const reconfiguration: GroupReconfiguration | null =
      move !== undefined || configs.length > 1
        ? { from: move?.from ?? null, to: move?.to ?? null, reason: move?.reason ?? null, configs }
        : null;
    groups.push({
      partition: g.partition,
      replicas: [...g.replicas],
      leader,
      decidedIndex: decided,
      behind,
      config,
      replicaStatus,
      liveReplicas: replicaStatus.filter((r) => r.live).length,
      reconfiguration,
    });
  }
  const answered = new Set(ok.map((r) => r.status.node));
  let metadataGroup: StatusView['metadataGroup'] = null;
  if (metadata) {
    const replicaStatus = metadata.metaReplicas.map((node) => ({ node, live: answered.has(node) }));
    const move = metadata.moving.find((m) => m.partition === METADATA_PARTITION);
    metadataGroup = {
      config: metadata.metaConfig ?? 0,
      replicas: [...metadata.metaReplicas],
      replicaStatus,
      liveReplicas: replicaStatus.filter((r) => r.live).length,
      reconfiguration: move
        ? { from: move.from, to: move.to, reason: move.reason, configs: [metadata.metaConfig ?? 0] }
        : null,
    };
  }
  return {
    tableVersion: table?.version ?? null,
    partitions: table?.partitions ?? null,
    replication: table?.replication ?? null,
    servers,
    groups,
    metadataGroup,
    moving: metadata?.moving.length ?? 0,
    metadataRead: metadata !== null,
  };
}

/**
 * True when every partition is replicated on `replication` live servers (the table's replication
 * unless given) and no reconfiguration is in progress: what a healed cluster looks like.
 */
export function fullyReplicated(view: StatusView, replication = view.replication ?? 0): boolean {
  return (
    view.tableVersion !== null &&
    view.groups.length > 0 &&
    view.moving === 0 &&
    view.groups.every(
      (g) =>
        g.replicas.length === replication && g.liveReplicas === replication && g.reconfiguration === null,
    )
  );
}

/** True when the table exists and every partition has a leader (what `cluster start` waits for). */
export function allPartitionsLed(view: StatusView): boolean {
  return view.tableVersion !== null && view.groups.length > 0 && view.groups.every((g) => g.leader !== null);
}

/** Renders the view as aligned text. */
export function formatStatus(view: StatusView): string {
  const lines: string[] = [];
  if (view.tableVersion === null) {
    lines.push('lookup table: not built yet (waiting for servers to check in)');
  } else {
    lines.push(
      `lookup table v${view.tableVersion}: ${view.partitions} partitions, replication ${view.replication}, ${view.servers.length} servers`,
    );
  }
  lines.push('', 'servers:');
  lines.push(`  ${'id'.padEnd(4)}${'address'.padEnd(24)}${'state'.padEnd(11)}reachable`);
  for (const s of view.servers) {
    const reach = s.reachable ? 'yes' : `no${s.error ? ` (${s.error})` : ''}`;
    lines.push(`  ${String(s.id ?? '?').padEnd(4)}${s.address.padEnd(24)}${s.state.padEnd(11)}${reach}`);
  }
  if (view.groups.length > 0) {
    lines.push('', 'partitions:');
    lines.push(
      `  ${'part'.padEnd(6)}${'replicas'.padEnd(14)}${'live'.padEnd(6)}${'config'.padEnd(8)}${'leader'.padEnd(8)}${'decided'.padEnd(9)}${'behind'.padEnd(8)}reconfiguration`,
    );
    for (const g of view.groups) {
      // A replica that is not live is starred: 1,2*,3 = node 2 does not answer (or hosts no replica).
      const replicas = g.replicaStatus.map((r) => `${r.node}${r.live ? '' : '*'}`).join(',');
      lines.push(
        `  ${String(g.partition).padEnd(6)}${replicas.padEnd(14)}${`${g.liveReplicas}/${g.replicas.length}`.padEnd(6)}${String(g.config).padEnd(8)}${String(g.leader ?? 'none').padEnd(8)}${String(g.decidedIndex ?? '?').padEnd(9)}${String(g.behind ?? '?').padEnd(8)}${formatReconfiguration(g.reconfiguration)}`,
      );
    }
    if (view.groups.some((g) => g.liveReplicas < g.replicas.length)) {
      lines.push('  (* = replica not live: its server does not answer or does not host the group)');
    }
  }
  const mg = view.metadataGroup;
  if (mg) {
    lines.push(
      '',
      `metadata group: replicas ${mg.replicaStatus.map((r) => `${r.node}${r.live ? '' : '*'}`).join(',')}, live ${mg.liveReplicas}/${mg.replicas.length}, config ${mg.config}, reconfiguration ${formatReconfiguration(mg.reconfiguration)}`,
    );
  }
  if (view.metadataRead) {
    lines.push(
      '',
      view.moving === 0 ? 'no replica moves in progress' : `${view.moving} replica move(s) in progress`,
    );
  }
  return lines.join('\n');
}

/** One group's reconfiguration as the text view shows it (`-` for none). */
export function formatReconfiguration(r: GroupReconfiguration | null): string {
  if (r === null) return '-';
  const move = r.from !== null ? `node ${r.from} -> node ${r.to} (${r.reason})` : 'in progress';
  return r.configs.length > 1 ? `${move}, configurations ${r.configs.join(',')}` : move;
}
