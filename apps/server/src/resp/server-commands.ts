import { type KvOp, partitionOf } from '@paxkv/common';
import type { RespServerFacts } from './backend.js';
import {
  all,
  type CommandContext,
  type CommandSpec,
  REDIS_COMPAT_VERSION,
  RespCommandError,
} from './command-context.js';
import { R, type RespValue } from './encoder.js';

/** The `INFO` text of the requested sections (server, clients, keyspace, replication, ...). */
export function infoText(
  ctx: CommandContext,
  sections: Set<string>,
  keyspace: { keys: number; expires: number } | null,
): string {
  const f: RespServerFacts = ctx.backend.facts();
  const all = sections.has('all') || sections.has('everything');
  const want = (s: string, byDefault = true) =>
    all || sections.has(s) || (byDefault && (sections.size === 0 || sections.has('default')));
  const out: string[] = [];
  if (want('server')) {
    out.push(
      '# Server',
      `redis_version:${REDIS_COMPAT_VERSION}`,
      'redis_mode:standalone',
      `paxkv_node_id:${f.nodeId ?? ''}`,
      `paxkv_address:${f.address}`,
      `process_id:${process.pid}`,
      `tcp_port:${ctx.server.port}`,
      `uptime_in_seconds:${Math.floor((Date.now() - ctx.server.startedAt) / 1000)}`,
      '',
    );
  }
  if (want('clients')) out.push('# Clients', `connected_clients:${ctx.server.connectedClients}`, '');
  if (want('persistence')) {
    out.push(
      '# Persistence',
      'loading:0',
      'paxkv_durability:replicated write-ahead log, a write is acknowledged once a majority has it',
      `paxkv_fsync:${f.fsync}`,
      '',
    );
  }
  if (want('replication')) {
    out.push('# Replication', 'role:master', `paxkv_partitions:${f.partitions ?? ''}`);
    for (const g of f.groups) {
      out.push(
        `paxkv_partition_${g.partition}:role=${g.role},leader=${g.leader ?? 'none'},decided_index=${g.decidedIndex}`,
      );
    }
    out.push('');
  }
  if (keyspace !== null) {
    const { keys, expires } = keyspace;
    out.push('# Keyspace', ...(keys > 0 ? [`db0:keys=${keys},expires=${expires},avg_ttl=0`] : []), '');
  }
  return out.join('\r\n');
}

/** Keys, one per partition, that route `size` operations to each partition (found once per table size). */
const sizeKeysCache = new Map<number, string[]>();
function sizeKeys(partitions: number): string[] {
  let keys = sizeKeysCache.get(partitions);
  if (keys) return keys;
  const found: (string | undefined)[] = new Array(partitions);
  let left = partitions;
  for (let i = 0; left > 0; i++) {
    const k = `\u0000paxkv.dbsize.${i}`;
    const p = partitionOf(k, partitions);
    if (found[p] === undefined) {
      found[p] = k;
      left--;
    }
  }
  keys = found as string[];
  sizeKeysCache.set(partitions, keys);
  return keys;
}

/** `INFO keyspace` `expires`: the keys attached to a lease, summed over every partition's lease list. */
export async function keysWithTtl(ctx: CommandContext): Promise<number> {
  const partitions = ctx.backend.facts().partitions;
  if (partitions === null) throw new RespCommandError('NOT_READY the cluster has not started yet');
  const lists = await all(
    ctx,
    Array.from({ length: partitions }, (_, partition) => ({ op: 'lease-list', partition }) as KvOp),
  );
  let n = 0;
  for (const r of lists) if (r.op === 'lease-list') for (const l of r.leases) n += l.keys;
  return n;
}

/** DBSIZE: the sum of every partition's key count, each a linearizable read through its group's log. */
export async function dbsize(ctx: CommandContext): Promise<number> {
  const partitions = ctx.backend.facts().partitions;
  if (partitions === null) throw new RespCommandError('NOT_READY the cluster has not started yet');
  const results = await all(
    ctx,
    sizeKeys(partitions).map((key) => ({ op: 'size', key }) as KvOp),
  );
  let n = 0;
  for (const r of results) if (r.op === 'size') n += r.keys;
  return n;
}

/** A `CLIENT SETNAME` name: printable ASCII without spaces, as Redis requires. */
export function validClientName(b: Buffer): boolean {
  for (const c of b) if (c < 33 || c > 126) return false;
  return true;
}

/** The map `HELLO` answers: server, version, protocol, id, mode, role, modules. */
export function helloReply(ctx: CommandContext): RespValue {
  return R.map([
    [R.bulk('server'), R.bulk('redis')],
    [R.bulk('version'), R.bulk(REDIS_COMPAT_VERSION)],
    [R.bulk('proto'), R.int(ctx.client.proto)],
    [R.bulk('id'), R.int(ctx.client.id)],
    [R.bulk('mode'), R.bulk('standalone')],
    [R.bulk('role'), R.bulk('master')],
    [R.bulk('modules'), R.array([])],
  ]);
}

/** Redis's answer to `AUTH` on a server that has no users configured. */
export const NO_AUTH =
  'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?';

/** One command's `COMMAND INFO` entry: name, arity, flags, key positions. */
export function commandInfo(spec: CommandSpec): RespValue {
  return R.array([
    R.bulk(spec.name),
    R.int(spec.arity),
    R.set(spec.flags.map((f) => R.simple(f))),
    R.int(spec.keys[0]),
    R.int(spec.keys[1]),
    R.int(spec.keys[2]),
    R.set([]),
    R.set([]),
    R.array([]),
    R.array([]),
  ]);
}

/** One command's `COMMAND DOCS` entry: its name and a summary map. */
export function commandDocs(spec: CommandSpec): readonly [RespValue, RespValue] {
  return [
    R.bulk(spec.name),
    R.map([
      [R.bulk('summary'), R.bulk(`paxkv: ${spec.name.toUpperCase()}`)],
      [R.bulk('since'), R.bulk('1.0.0')],
      [R.bulk('group'), R.bulk(spec.keys[0] > 0 ? 'string' : 'connection')],
    ]),
  ];
}

/** Most operations one transaction may hold (the protocol's default `maxTxnOps`). */
