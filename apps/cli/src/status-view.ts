/**
 * The cluster status as the CLI shows it: the lookup table, every server's reachability and membership
 * state, and per partition its replicas and current leader. Built from the `status` replies of every server
 * (each server only knows the groups it hosts).
 */

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
    readonly configId?: number | undefined;
  }>;
  readonly members: ReadonlyArray<{ readonly id: number; readonly address: string; readonly state: string }>;
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
     * The group's configuration id (0: its first replicas; +1 per replica move), the highest of the
     * table's and what its replicas report (a replica ahead of the table: a move is in progress).
     */
    readonly config: number;
  }>;
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
export function mergeStatus(replies: readonly StatusReply[]): StatusView {
  const ok = replies.filter((r): r is Extract<StatusReply, { status: ServerStatusLike }> => 'status' in r);
  let table: ServerStatusLike['table'] = null;
  for (const r of ok) {
    if (r.status.table && (table === null || r.status.table.version > table.version)) table = r.status.table;
  }
  const membersFrom = ok.find((r) => r.status.members.length > 0)?.status.members ?? [];
  const memberState = new Map(membersFrom.map((m) => [m.id, m.state]));
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
    groups.push({ partition: g.partition, replicas: [...g.replicas], leader, decidedIndex: decided, config });
  }
  return {
    tableVersion: table?.version ?? null,
    partitions: table?.partitions ?? null,
    replication: table?.replication ?? null,
    servers,
    groups,
  };
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
      `  ${'part'.padEnd(6)}${'replicas'.padEnd(14)}${'config'.padEnd(8)}${'leader'.padEnd(8)}decided`,
    );
    for (const g of view.groups) {
      lines.push(
        `  ${String(g.partition).padEnd(6)}${g.replicas.join(',').padEnd(14)}${String(g.config).padEnd(8)}${String(g.leader ?? 'none').padEnd(8)}${g.decidedIndex ?? '?'}`,
      );
    }
  }
  return lines.join('\n');
}
