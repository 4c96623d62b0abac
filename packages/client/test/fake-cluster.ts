/**
 * A single-copy model of a paxkv cluster for the client's tests: N "servers", a lookup table, a
 * leader per partition (or none), exactly-once sessions with the same rules as the kvstore state
 * machine (latest seq per session; an older seq is refused), and fault knobs: servers down,
 * per-server delays, replies dropped after the operation was applied, NOT_READY before start.
 *
 * Two ways to reach it: {@link FakeCluster.connectionFactory} (in process, no sockets) and
 * {@link TcpFakeCluster} (real TCP servers of `@paxkv/common`'s transport on loopback).
 */
import {
  type ClientRequest,
  type ErrorMessage,
  type KvResult,
  type LookupTable,
  type NodeId,
  parseClientRequest,
  partitionOf,
  type ServerResponse,
  type SingleKeyOp,
  TransportServer,
  type Value,
} from '@paxkv/common';
import type { ClientConnection, ConnectionEvents, ConnectionFactory } from '../src/connection.js';

function eq(a: Value, b: Value): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Per-server fault knobs. */
export interface ServerFaults {
  /** Refuse connections and drop open ones. */
  down: boolean;
  /** Delay before answering, ms. */
  delayMs: number;
  /** Apply the next N kv requests but never answer them (a lost reply). */
  dropReplies: number;
  /** Answer every kv request with this error code instead (e.g. NOT_READY), if set. */
  failWith: ErrorMessage['code'] | null;
}

/** Options of {@link FakeCluster}. */
export interface FakeClusterOptions {
  /** Number of servers. Default 3. */
  readonly servers?: number;
  /** Partitions. Default 4. */
  readonly partitions?: number;
  /** Replication. Default 3. */
  readonly replication?: number;
}

/** The cluster model. Addresses must be set (by {@link FakeCluster.setAddresses}) before use. */
export class FakeCluster {
  readonly partitions: number;
  readonly replication: number;
  readonly ids: NodeId[];
  addresses = new Map<NodeId, string>();
  readonly faults = new Map<NodeId, ServerFaults>();
  /** Leader of each partition (null: election in progress). Default: the group's first replica. */
  readonly leaders = new Map<number, NodeId | null>();
  /** Until true, `lookup` answers NOT_READY. */
  ready = true;
  /**
   * Like the real server: a replica that does not lead forwards the request to the leader and
   * relays its answer, instead of answering NOT_LEADER.
   */
  forwarding = false;
  /**
   * With {@link FakeCluster.forwarding}: a forwarded success names the leader that served it (`leader`
   * of `kv.ok`), as servers do since they report it; false: as older servers, it does not.
   */
  forwardNamesLeader = true;
  tableVersion = 1;
  readonly data = new Map<string, Value>();
  /** Revisions of each present key (one partition: the fake cluster keeps one revision counter). */
  readonly meta = new Map<string, { createRevision: number; modRevision: number; version: number }>();
  revision = 0;
  readonly sessions = new Map<string, { seq: number; result: KvResult }>();
  /** How many times each (session, seq) write was applied: exactly-once means never more than 1. */
  readonly applied = new Map<string, number>();
  /** Requests received per server, by type. */
  readonly received = new Map<NodeId, { kv: number; lookup: number; status: number }>();
  /** Requests forwarded between servers (with {@link FakeCluster.forwarding}). */
  forwardedCount = 0;
  /** Most kv requests seen in flight at once on a single connection. */
  maxInFlightPerConnection = 0;
  /** The next N sends on open in-process connections are refused (a full outgoing buffer). */
  refuseSends = 0;
  /** Keep {@link FakeCluster.log} and {@link FakeCluster.applied} (turn off for benchmarks). */
  record = true;
  /** How many times each written value (put value, applied cas value) was written. */
  readonly appliedValues = new Map<string, number>();
  /** Every kv request seen, in arrival order. */
  readonly log: Array<{ node: NodeId; request: Extract<ClientRequest, { type: 'kv' }> }> = [];

  constructor(options: FakeClusterOptions = {}) {
    const n = options.servers ?? 3;
    this.partitions = options.partitions ?? 4;
    this.replication = options.replication ?? 3;
    this.ids = Array.from({ length: n }, (_, i) => i + 1);
    for (const id of this.ids) {
      this.faults.set(id, { down: false, delayMs: 0, dropReplies: 0, failWith: null });
      this.received.set(id, { kv: 0, lookup: 0, status: 0 });
    }
  }

  setAddresses(addresses: Map<NodeId, string>): void {
    this.addresses = addresses;
    for (let p = 0; p < this.partitions; p++)
      if (!this.leaders.has(p)) this.leaders.set(p, this.replicasOf(p)[0]!);
  }

  fault(node: NodeId): ServerFaults {
    return this.faults.get(node)!;
  }

  replicasOf(p: number): NodeId[] {
    const n = this.ids.length;
    return Array.from({ length: this.replication }, (_, j) => this.ids[(p * this.replication + j) % n]!);
  }

  table(): LookupTable {
    return {
      version: this.tableVersion,
      partitions: this.partitions,
      replication: this.replication,
      nodes: this.ids.map((id) => ({ id, address: this.addresses.get(id)! })),
      groups: Array.from({ length: this.partitions }, (_, p) => ({
        partition: p,
        replicas: this.replicasOf(p),
      })),
    };
  }

  partitionOf(key: string): number {
    return partitionOf(key, this.partitions);
  }

  /** Handles one decoded message at `node`; resolves with the reply, or null for no reply. */
  async handle(node: NodeId, raw: unknown): Promise<ServerResponse | null> {
    const f = this.fault(node);
    if (f.delayMs > 0) await new Promise((r) => setTimeout(r, f.delayMs));
    const parsed = parseClientRequest(raw);
    if (!parsed.ok)
      return {
        type: 'error',
        id: parsed.id,
        code: parsed.error.code as 'BAD_REQUEST',
        message: parsed.error.message,
      };
    const req = parsed.value;
    if (req.type === 'watch' || req.type === 'watch.cancel')
      return {
        type: 'error',
        id: req.id,
        code: 'BAD_REQUEST',
        message: 'the fake cluster serves no watch streams',
      };
    if (
      req.type === 'member.list' ||
      req.type === 'member.add' ||
      req.type === 'member.remove' ||
      req.type === 'member.seed' ||
      req.type === 'member.rejoin' ||
      req.type === 'group.reconfigure'
    )
      return {
        type: 'error',
        id: req.id,
        code: 'BAD_REQUEST',
        message: 'the fake cluster has no membership (real servers in apps/server tests)',
      };
    if (req.type === 'login' || req.type === 'user' || req.type === 'role')
      return {
        type: 'error',
        id: req.id,
        code: 'BAD_REQUEST',
        message: 'the fake cluster has no users (authentication is tested on real servers)',
      };
    const counts = this.received.get(node)!;
    counts[req.type]++;
    if (req.type === 'lookup') {
      if (!this.ready)
        return { type: 'error', id: req.id, code: 'NOT_READY', message: 'cluster not started' };
      return { type: 'lookup.ok', id: req.id, table: this.table() };
    }
    if (req.type === 'status') {
      return {
        type: 'status.ok',
        id: req.id,
        status: {
          node,
          table: this.ready ? this.table() : null,
          groups: this.ready
            ? Array.from({ length: this.partitions }, (_, p) => p)
                .filter((p) => this.replicasOf(p).includes(node))
                .map((p) => {
                  const leader = this.leaders.get(p) ?? null;
                  return {
                    partition: p,
                    leader,
                    role: leader === node ? 'leader' : 'follower',
                    decidedIndex: 0,
                  } as const;
                })
            : [],
          members: this.ids.map((id) => ({ id, address: this.addresses.get(id)!, state: 'alive' as const })),
        },
      };
    }
    if (this.record) this.log.push({ node, request: req });
    if (f.failWith) return { type: 'error', id: req.id, code: f.failWith, message: `injected ${f.failWith}` };
    if (!('key' in req.op) || req.op.op === 'lease-timetolive') {
      // Transactions and ranges are checked against real servers (apps/server and the e2e tests).
      return {
        type: 'error',
        id: req.id,
        code: 'BAD_REQUEST',
        message: 'the fake cluster serves single-key operations only',
      };
    }
    const p = this.partitionOf(req.op.key);
    const leader = this.leaders.get(p) ?? null;
    const stale = req.consistency === 'stale';
    if (!stale && leader !== node && this.forwarding && leader !== null) {
      this.forwardedCount++;
      const reply = await this.handle(leader, raw);
      if (reply?.type !== 'kv.ok' || !this.forwardNamesLeader) return reply;
      return { ...reply, leader: { node: leader, address: this.addresses.get(leader)! } };
    }
    if (!stale && leader !== node) {
      if (leader === null) return { type: 'error', id: req.id, code: 'NO_LEADER', message: 'no leader' };
      return {
        type: 'error',
        id: req.id,
        code: 'NOT_LEADER',
        message: `not the leader; retry against node ${leader}`,
        leaderHint: { node: leader, address: this.addresses.get(leader)! },
      };
    }
    const result = this.apply(req.op, req.session);
    if (typeof result === 'string')
      return { type: 'error', id: req.id, code: 'BAD_REQUEST', message: result };
    if (f.dropReplies > 0) {
      f.dropReplies--;
      return null;
    }
    return { type: 'kv.ok', id: req.id, result, ...(stale ? { stale: true } : {}) };
  }

  apply(op: SingleKeyOp, session: { client: string; seq: number } | undefined): KvResult | string {
    if (op.op !== 'get' && session) {
      const known = this.sessions.get(session.client);
      if (known && known.seq === session.seq) return known.result;
      if (known && session.seq < known.seq)
        return `sequence number ${session.seq} is older than ${known.seq}`;
    }
    let result: KvResult;
    const current = this.data.get(op.key) ?? null;
    const meta = this.meta.get(op.key) ?? { createRevision: 0, modRevision: 0, version: 0 };
    const header = () => ({ revision: this.revision, partition: 0 });
    const write = (value: Value) => {
      this.data.set(op.key, value);
      this.#countValue(value);
      this.revision++;
      const m =
        meta.version === 0
          ? { createRevision: this.revision, modRevision: this.revision, version: 1 }
          : { ...meta, modRevision: this.revision, version: meta.version + 1 };
      this.meta.set(op.key, m);
      return m;
    };
    switch (op.op) {
      case 'get':
        return { op: 'get', value: current, ...meta, ...header() };
      case 'put': {
        const m = write(op.value);
        result = { op: 'put', created: current === null, ...m, ...header() };
        break;
      }
      case 'cas': {
        const expected = op.expected ?? null;
        const matches =
          op.expectedModRevision !== undefined
            ? meta.modRevision === op.expectedModRevision
            : op.expectedVersion !== undefined
              ? meta.version === op.expectedVersion
              : expected === null
                ? current === null
                : current !== null && eq(current, expected);
        if (matches) {
          const m = write(op.value);
          result = { op: 'cas', outcome: 'applied', current: op.value, ...m, ...header() };
        } else {
          const outcome = current === null ? 'not-found' : 'mismatch';
          result = { op: 'cas', outcome, current, ...meta, ...header() };
        }
        break;
      }
      case 'delete':
        if (current !== null) this.revision++;
        this.data.delete(op.key);
        this.meta.delete(op.key);
        result = { op: 'delete', existed: current !== null, ...header() };
        break;
      default:
        return `the fake cluster does not implement ${op.op}`;
    }
    if (session) {
      this.sessions.set(session.client, { seq: session.seq, result });
      if (this.record) {
        const k = `${session.client}#${session.seq}`;
        this.applied.set(k, (this.applied.get(k) ?? 0) + 1);
      }
    }
    return result;
  }

  #countValue(v: Value): void {
    if (this.record && typeof v === 'string') this.appliedValues.set(v, (this.appliedValues.get(v) ?? 0) + 1);
  }

  /** Connections of the in-process transport, by node, so tests can break them. */
  readonly #local = new Map<NodeId, Set<LocalConnection>>();

  /** An in-process {@link ConnectionFactory}: messages are delivered in a later event-loop turn, no sockets. */
  connectionFactory(): ConnectionFactory {
    return (address, events) => {
      const node = [...this.addresses].find(([, a]) => a === address)?.[0];
      const conn = new LocalConnection(this, node, events);
      if (node !== undefined) {
        const set = this.#local.get(node) ?? new Set<LocalConnection>();
        this.#local.set(node, set);
        set.add(conn);
      }
      return conn;
    };
  }

  /** Breaks every in-process connection to `node` (they reconnect after `reconnectMs` unless down). */
  breakConnections(node: NodeId): void {
    for (const c of this.#local.get(node) ?? []) c.break();
  }

  /** Called by connections to learn whether they may (re)open. */
  isUp(node: NodeId | undefined): boolean {
    return node !== undefined && !this.fault(node).down;
  }
}

/**
 * One in-process connection: opens on the next tick if the node is up, retries every 20 ms otherwise.
 * Messages in both directions are delivered in a later event-loop turn (like socket I/O), never in
 * the sender's turn.
 */
class LocalConnection implements ClientConnection {
  #open = false;
  #closed = false;
  #inFlight = 0;
  #epoch = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly cluster: FakeCluster,
    private readonly node: NodeId | undefined,
    private readonly events: ConnectionEvents,
  ) {
    this.#schedule(0);
  }

  get isOpen(): boolean {
    return this.#open;
  }

  send(message: ClientRequest): boolean {
    if (!this.#open) return false;
    if (this.cluster.refuseSends > 0) {
      this.cluster.refuseSends--;
      return false;
    }
    if (!this.cluster.isUp(this.node)) {
      this.break();
      return true;
    }
    const epoch = this.#epoch;
    const counted = message.type === 'kv';
    if (counted) this.#inFlight++;
    this.cluster.maxInFlightPerConnection = Math.max(this.cluster.maxInFlightPerConnection, this.#inFlight);
    // A structured clone stands in for encoding: the server never shares objects with the client.
    const copy = structuredClone(message);
    // Both directions hop through a macrotask (`setImmediate`), as socket I/O does: a reply never
    // arrives in the same event-loop turn as its request. Delivering through microtasks instead (as
    // this class once did) lets a caller that loops over calls to a server with no delay run forever
    // without ever yielding to timers, so nothing else (the test's fault schedule, its stop flag)
    // runs again while memory grows: the out-of-memory of the property test in a loaded CI run.
    setImmediate(() => {
      void this.cluster.handle(this.node!, copy).then((reply) => {
        if (counted) this.#inFlight--;
        if (!reply) return;
        const answer = structuredClone(reply);
        setImmediate(() => {
          if (this.#open && this.#epoch === epoch) this.events.onMessage(answer);
        });
      });
    });
    return true;
  }

  break(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#epoch++;
    this.events.onClose(new Error('connection broken by the test'));
    this.#schedule(20);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#open) {
      this.#open = false;
      this.#epoch++;
      this.events.onClose();
    }
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      if (this.cluster.isUp(this.node)) {
        this.#open = true;
        this.events.onOpen();
      } else {
        this.events.onClose(new Error('connection refused'));
        this.#schedule(20);
      }
    }, ms);
  }
}

/**
 * The same model behind real TCP servers (one `TransportServer` per node on 127.0.0.1, random
 * ports). `down` servers drop every connection as soon as it opens.
 */
export class TcpFakeCluster {
  readonly cluster: FakeCluster;
  readonly servers = new Map<NodeId, TransportServer>();

  private constructor(cluster: FakeCluster) {
    this.cluster = cluster;
  }

  static async start(options: FakeClusterOptions = {}): Promise<TcpFakeCluster> {
    const c = new TcpFakeCluster(new FakeCluster(options));
    const addresses = new Map<NodeId, string>();
    for (const id of c.cluster.ids) {
      const server = new TransportServer();
      server.on('connection', (conn) => {
        if (c.cluster.fault(id).down) {
          conn.destroy();
          return;
        }
        // kv requests received on this connection and not yet answered (or dropped).
        let inFlight = 0;
        conn.on('message', (m) => {
          const counted = (m as { type?: unknown } | null)?.type === 'kv';
          if (counted) {
            inFlight++;
            c.cluster.maxInFlightPerConnection = Math.max(c.cluster.maxInFlightPerConnection, inFlight);
          }
          void c.cluster.handle(id, m).then((reply) => {
            if (counted) inFlight--;
            if (reply && conn.isOpen) conn.send(reply);
          });
        });
      });
      const bound = await server.listen('127.0.0.1:0');
      addresses.set(id, `127.0.0.1:${bound.port}`);
      c.servers.set(id, server);
    }
    c.cluster.setAddresses(addresses);
    return c;
  }

  /** Drops every open connection of `node` (clients reconnect). */
  dropConnections(node: NodeId): void {
    for (const conn of this.servers.get(node)?.connections ?? []) conn.destroy();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.servers.values()].map((s) => s.close()));
  }
}

/** Addresses for an in-process cluster (never dialled). */
export function localAddresses(cluster: FakeCluster): Map<NodeId, string> {
  return new Map(cluster.ids.map((id) => [id, `10.0.0.${id}:7000`]));
}
