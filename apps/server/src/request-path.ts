import {
  BadRequestError,
  type ClientRequest,
  type Consistency,
  errorFromWire,
  errorMessage,
  isReadOnlyOp,
  type KvRequest,
  type KvResult,
  type NodeId,
  NoLeaderError,
  NotReadyError,
  PaxkvError,
  partitionOfOp,
  type ServerResponse,
  TimeoutError,
  UnavailableError,
} from '@paxkv/common';
import { type ServerContext, settledWithin, sleep } from './context.js';
import {
  codeOf,
  type KvOutcome,
  leaderHintOf,
  type PartitionOperation,
  type RequestOrigin,
  type RequestPathDeps,
} from './request-path-types.js';

export {
  codeOf,
  type KvOutcome,
  type PartitionOperation,
  type RequestOrigin,
  type RequestPathDeps,
} from './request-path-types.js';

/**
 * How long a request waits for an isolated local replica (one that cannot reach a majority of its
 * group) to reconnect before it is refused, in ticks: one election timeout at the default paxos
 * config (15 ticks). Covers a server whose links are still coming up after a restart; a cut-off
 * server refuses within this bound instead of letting its clients wait for the request timeout.
 */
export const ISOLATION_GRACE_TICKS = 15;

/** Delay between attempts while a group has no leader or a forward target is unreachable, in ms. */
const RETRY_BACKOFF_MIN_MS = 10;
const RETRY_BACKOFF_MAX_MS = 200;

const staleResult = (result: KvResult): KvOutcome => ({ result, stale: true });
const linearizableResult = (result: KvResult): KvOutcome => ({ result, stale: false });

/** {@link RequestPath}'s marker for "no local attempt failed yet". */
const NO_FAILURE: unique symbol = Symbol('no failure');
/** A failed local attempt that is retried after a wait. */
const RETRY: unique symbol = Symbol('retry');

/** See the module comment. */
export class RequestPath {
  private readonly remoteLeader = new Map<number, NodeId>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly deps: RequestPathDeps,
  ) {}

  /**
   * Runs one validated client request and returns its reply (never rejects: failures become `error`
   * replies carrying the request's id). Records the operation's latency and result in the metrics.
   * This is the entry point for every front-end.
   */
  execute(request: ClientRequest, origin: RequestOrigin): Promise<ServerResponse> {
    // The hot case without an async frame: the group's answer becomes the reply in one `.then`.
    if (request.type === 'kv') return this.executeKvRequest(request, origin.forwarded);
    return this.executeOther(request, origin);
  }

  private executeKvRequest(request: KvRequest, forwarded: boolean): Promise<ServerResponse> {
    const metrics = this.ctx.metrics;
    const started = this.ctx.now();
    const op = request.op.op;
    return this.executeKv(request, forwarded).then(
      (r): ServerResponse => {
        if (!forwarded)
          metrics.observeKvResult(r.result, request.op.op === 'txn' ? request.op.compare.length : 0);
        metrics.observeOp(op, 'ok', (this.ctx.now() - started) / 1000);
        if (r.stale) return { type: 'kv.ok', id: request.id, result: r.result, stale: true };
        // Forwarded to the leader: tell the client where it is (its cache named this server).
        const leader = r.leader === undefined || forwarded ? undefined : this.addressOf(r.leader);
        return leader
          ? { type: 'kv.ok', id: request.id, result: r.result, leader }
          : { type: 'kv.ok', id: request.id, result: r.result };
      },
      (e: unknown): ServerResponse => {
        metrics.observeOp(op, codeOf(e), (this.ctx.now() - started) / 1000);
        return errorMessage(e, request.id);
      },
    );
  }

  private async executeOther(request: ClientRequest, origin: RequestOrigin): Promise<ServerResponse> {
    const ctx = this.ctx;
    const started = ctx.now();
    const op = request.type === 'kv' ? request.op.op : request.type;
    let reply: ServerResponse;
    try {
      switch (request.type) {
        case 'lookup': {
          if (!ctx.table)
            throw new NotReadyError({ reason: 'the cluster has not started yet: no lookup table' });
          reply = { type: 'lookup.ok', id: request.id, table: ctx.table };
          break;
        }
        case 'status':
          reply = { type: 'status.ok', id: request.id, status: this.deps.statusReport() };
          break;
        case 'watch':
        case 'watch.cancel':
        case 'login':
        case 'user':
        case 'role':
          // Streams are not request/reply: the native port hands them to `WatchStreams`.
          throw new BadRequestError({
            field: 'type',
            problem: `${request.type} is served by the server's native port (a stream, or the connection's authentication); it cannot be forwarded`,
          });
        case 'member.list':
        case 'member.add':
        case 'member.remove':
        case 'member.seed':
        case 'member.rejoin':
        case 'group.reconfigure':
          reply = await this.deps.memberRequest(request, origin);
          if (reply.type === 'error') {
            ctx.metrics.observeOp(op, reply.code, (ctx.now() - started) / 1000);
            return reply;
          }
          break;
        case 'kv':
          return this.executeKvRequest(request, origin.forwarded);
      }
      ctx.metrics.observeOp(op, 'ok', (ctx.now() - started) / 1000);
    } catch (e) {
      ctx.metrics.observeOp(op, codeOf(e), (ctx.now() - started) / 1000);
      reply = errorMessage(e, request.id);
    }
    return reply;
  }

  /** `{node, address}` of the member `node` in this server's lookup table, if it is listed there. */
  private addressOf(node: NodeId): { node: NodeId; address: string } | undefined {
    const address = this.ctx.table?.nodes.find((n) => n.id === node)?.address;
    return address === undefined ? undefined : { node, address };
  }

  /** Runs a KV request on its partition (see {@link RequestPath.routeToPartition}). */
  executeKv(request: KvRequest, forwarded: boolean): Promise<KvOutcome> {
    const table = this.ctx.table;
    if (!table)
      return Promise.reject(
        new NotReadyError({ reason: 'the cluster has not started yet: no lookup table' }),
      );
    const consistency: Consistency = request.consistency ?? 'linearizable';
    const options = request.session ? { session: request.session, consistency } : { consistency };
    let partition: number;
    try {
      // A txn or range whose keys span partitions is refused here (CrossPartitionError).
      partition = partitionOfOp(request.op, table.partitions);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.routeToPartition({
      partition,
      name: request.op.op,
      // A read, or a write with a session (exactly-once), may be retried after an unknown outcome; a
      // sessionless write may not: it could be applied twice, so its unknown outcome goes to the client.
      retrySafe: isReadOnlyOp(request.op) || request.session !== undefined,
      forwarded,
      leaderOnly: !(consistency === 'stale' && isReadOnlyOp(request.op)),
      wire: request,
      runLocal: (group) =>
        group.submit(request.op, options).then(consistency === 'stale' ? staleResult : linearizableResult),
      // A linearizable answer came from the partition's leader: the client is told where it is.
      fromReply: (reply, from) =>
        reply.type !== 'kv.ok'
          ? undefined
          : reply.stale === true
            ? { result: reply.result, stale: true }
            : { result: reply.result, stale: false, leader: from },
    });
  }

  /**
   * Runs `op` on the local replica of its partition's group, or forwards it to the group's leader, with
   * the retry policy of the module comment, until the request timeout. Throws the typed error the client
   * should see.
   */
  routeToPartition<T>(op: PartitionOperation<T>): Promise<T> {
    const ctx = this.ctx;
    if (!ctx.table)
      return Promise.reject(
        new NotReadyError({ reason: 'the cluster has not started yet: no lookup table' }),
      );
    const started = ctx.now();
    // The common case on a leader: its local replica leads and reaches its majority. One attempt,
    // without the retry loop's state; a failure continues in the loop as a failed local attempt.
    const local = this.deps.groups.get(op.partition);
    if (local !== undefined && local.configuration !== null && local.role === 'leader' && !local.isolated)
      return op.runLocal(local).catch((e: unknown) => this.route(op, started, e));
    return this.route(op, started, NO_FAILURE);
  }

  /**
   * The retry loop of {@link RequestPath.routeToPartition}, entered at `started` with the failure of a
   * first local attempt (or {@link NO_FAILURE}).
   */
  private async route<T>(op: PartitionOperation<T>, started: number, localFailure: unknown): Promise<T> {
    const ctx = this.ctx;
    const { partition, forwarded, retrySafe } = op;
    const table = ctx.table;
    if (!table) throw new NotReadyError({ reason: 'the cluster has not started yet: no lookup table' });
    let replicasOf: readonly NodeId[] | undefined = op.replicas;
    // Only a forward needs them (looked up once, not on the local leader's path).
    const replicas = (): readonly NodeId[] =>
      (replicasOf ??= table.groups.find((g) => g.partition === partition)?.replicas ?? []);
    const unknownOutcome = (why: string) =>
      new TimeoutError({
        operation: `${op.name} on partition ${partition} (${why}; it may or may not have been applied)`,
      });
    const deadline = started + ctx.config.requestTimeoutMs;
    const isolationGraceMs = ISOLATION_GRACE_TICKS * ctx.config.tickMs;
    const isolationDeadline = started + isolationGraceMs;
    let backoff = RETRY_BACKOFF_MIN_MS;
    let rotate = 0;
    let lastError: unknown = null;
    const wait = async () => {
      // Cut short when the local replica's leader or role changes (an election ended meanwhile).
      await this.deps.groups.changeOrTimeout(partition, Math.min(backoff, Math.max(0, deadline - ctx.now())));
      backoff = Math.min(RETRY_BACKOFF_MAX_MS, backoff * 2);
    };
    // What a failed local attempt leads to: the hinted leader to forward to, or RETRY (after a wait).
    // Throws what the client should see when retrying cannot help.
    const afterLocalFailure = (e: unknown): NodeId | typeof RETRY => {
      lastError = e;
      const code = codeOf(e);
      const hint = leaderHintOf(e);
      if (code === 'NOT_LEADER' && hint !== null && hint !== ctx.nodeId) {
        if (forwarded) throw e;
        return hint;
      }
      if (code === 'NOT_LEADER' || code === 'NO_LEADER') return RETRY;
      if ((code === 'TIMEOUT' || code === 'UNAVAILABLE') && retrySafe) return RETRY;
      throw e;
    };
    while (ctx.now() < deadline && !ctx.stopping) {
      // A joining replica (a move to this server, not started yet) serves nothing: forward instead.
      const hosted = this.deps.groups.get(partition);
      const local = hosted?.configuration === null ? undefined : hosted;
      let target: NodeId | null = null;
      if (localFailure !== NO_FAILURE) {
        // The fast path's local attempt failed (see routeToPartition).
        const next = afterLocalFailure(localFailure);
        localFailure = NO_FAILURE;
        if (next === RETRY) {
          await wait();
          continue;
        }
        target = next;
      } else if (local?.isolated) {
        // This server cannot reach the group's majority: neither the local replica nor a forward can
        // serve. Give it one election timeout to reconnect (counted from when it became isolated, or
        // from the request's arrival), then refuse so the client goes elsewhere.
        const since = this.deps.groups.isolatedSince(partition) ?? started;
        if (ctx.now() >= Math.min(isolationDeadline, since + isolationGraceMs)) {
          throw new UnavailableError({
            reason: `node ${ctx.nodeId} cannot reach a majority of partition ${partition}'s replicas; try another server`,
          });
        }
        await sleep(Math.min(backoff, Math.max(1, isolationDeadline - ctx.now())));
        continue;
      }
      const knownLeader = local?.leader ?? null;
      if (
        local &&
        op.leaderOnly === true &&
        !forwarded &&
        local.role !== 'leader' &&
        knownLeader !== null &&
        knownLeader !== ctx.nodeId
      ) {
        // A follower that knows the leader: forward without asking the local replica.
        target = knownLeader;
      } else if (local) {
        try {
          return await op.runLocal(local);
        } catch (e) {
          const next = afterLocalFailure(e);
          if (next === RETRY) {
            await wait();
            continue;
          }
          target = next;
        }
      } else {
        // Route around links that went silent (keepalives make a healthy one speak every
        // `linkKeepaliveMs`) before their liveness check tears them down. This server is not a target:
        // its replica is not open (a restart still opening it, a joiner, an unreadable one).
        const silentMs = ctx.config.linkLivenessMs / 2;
        const silent = (n: NodeId) => (this.deps.peers.silentForMs(n) ?? 0) > silentMs;
        const live = forwarded ? [] : replicas().filter((n) => n !== ctx.nodeId && !silent(n));
        const opening = this.deps.groups.opening(partition);
        // A client waits for it (held here or forwarded to a peer that may be opening it too): open it next.
        if (opening !== undefined) this.deps.groups.prioritize(partition);
        if (opening !== undefined && live.length === 0) {
          // This server still opens the group (a restart replays them one at a time) and no other
          // replica can take the request (it was forwarded here, or they are silent): held until the
          // group is open instead of refused: a refusal sends the origin (or, for a write without a
          // session, the client) into its retry backoff, past the moment the group is open.
          await settledWithin(opening, deadline - ctx.now());
          continue;
        }
        if (forwarded) {
          throw new UnavailableError({
            reason: `node ${ctx.nodeId} does not host partition ${partition}; refresh the lookup table`,
          });
        }
        if (replicas().length === 0)
          throw new UnavailableError({ reason: `no group serves partition ${partition}` });
        // Every other replica silent: this server is cut off from the group; refuse at once so the
        // client goes elsewhere.
        if (live.length === 0) {
          throw new UnavailableError({
            reason: `node ${ctx.nodeId} has heard none of partition ${partition}'s replicas for ${silentMs} ms; try another server`,
          });
        }
        // A cached leader that is no longer a replica (the group moved) is forgotten.
        const cached = this.remoteLeader.get(partition);
        target =
          cached !== undefined && replicas().includes(cached) && !silent(cached)
            ? cached
            : (live[rotate++ % live.length] as NodeId);
      }
      // Forward to `target` and relay its answer.
      const remaining = deadline - ctx.now();
      if (remaining <= 0) break;
      ctx.metrics.forwarded.inc();
      const outcome = await this.deps.peers.forward(target, op.wire, remaining);
      if (outcome.kind !== 'reply') {
        if (outcome.kind === 'lost' && !retrySafe) throw unknownOutcome(`no answer from node ${target}`);
        lastError = new UnavailableError({ reason: `node ${target} is unreachable` });
        this.remoteLeader.delete(partition);
        await wait();
        continue;
      }
      const reply = outcome.reply;
      const result = op.fromReply(reply, target);
      if (result !== undefined) {
        this.remoteLeader.set(partition, target);
        return result;
      }
      if (reply.type === 'error') {
        const error = errorFromWire(reply);
        lastError = error;
        if (reply.code === 'NOT_LEADER') {
          const next = reply.leaderHint?.node;
          if (next !== undefined && next !== target) {
            this.remoteLeader.set(partition, next);
            continue;
          }
          this.remoteLeader.delete(partition);
          await wait();
          continue;
        }
        if ((reply.code === 'TIMEOUT' || reply.code === 'UNAVAILABLE') && !retrySafe) throw error;
        if (
          reply.code === 'NO_LEADER' ||
          reply.code === 'UNAVAILABLE' ||
          reply.code === 'NOT_READY' ||
          reply.code === 'TIMEOUT'
        ) {
          this.remoteLeader.delete(partition);
          await wait();
          continue;
        }
        throw error;
      }
      lastError = new UnavailableError({ reason: `unexpected reply ${reply.type} from node ${target}` });
      await wait();
    }
    if (
      lastError instanceof PaxkvError &&
      (lastError.code === 'NO_LEADER' || lastError.code === 'NOT_LEADER')
    ) {
      throw new NoLeaderError({ partition });
    }
    throw new TimeoutError({
      timeoutMs: ctx.config.requestTimeoutMs,
      operation: `${op.name} on partition ${partition}`,
    });
  }
}
