/**
 * Prometheus metrics of one server (prom-client, one private registry per server so that tests can run
 * several servers in one process).
 */
import type { KvResult } from '@paxkv/common';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { OpMetrics } from './op-metrics.js';

/** Latency buckets in seconds for client operations: 100 µs .. 10 s. */
export const OP_LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Latency buckets in seconds for WAL fsyncs: 10 µs .. 1 s. */
export const FSYNC_LATENCY_BUCKETS = [
  0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1,
];

/** The metrics a server records; read them over HTTP with {@link ServerMetrics.render}. */
export class ServerMetrics {
  /** The registry holding every metric below (plus Node's default process metrics). */
  readonly registry = new Registry();
  /**
   * Client operations handled by this server (`paxkv_ops_total{op,result}`, result ok or an error code)
   * and their latency including forwarding (`paxkv_op_duration_seconds{op}`); see `op-metrics.ts`.
   */
  readonly ops = new OpMetrics({ registry: this.registry, buckets: OP_LATENCY_BUCKETS });
  /** Requests this server forwarded to another group leader. */
  readonly forwarded = new Counter({
    name: 'paxkv_forwarded_total',
    help: 'Client requests forwarded to the leader of another server',
    registers: [this.registry],
  });
  /** Change events sent to watchers by this server. */
  readonly watchEvents = new Counter({
    name: 'paxkv_watch_events_total',
    help: 'Change events sent to watch streams by this server',
    registers: [this.registry],
  });
  /** Leader changes observed per partition hosted here. */
  readonly leaderChanges = new Counter({
    name: 'paxkv_leader_changes_total',
    help: 'Leader changes observed by the local replica of each partition',
    labelNames: ['partition'] as const,
    registers: [this.registry],
  });
  /** Local replicas whose stored state could not be read at start (each then rejoins its group). */
  readonly unreadableReplicas = new Counter({
    name: 'paxkv_unreadable_replicas_total',
    help: 'Local replicas whose stored state (log records or snapshot) could not be read at start',
    labelNames: ['partition'] as const,
    registers: [this.registry],
  });
  /** Local replicas that discarded their unreadable state and rejoined their group as new replicas. */
  readonly replicaRejoins = new Counter({
    name: 'paxkv_replica_rejoins_total',
    help: 'Local replicas that discarded unreadable state and rejoined their group as a new replica',
    labelNames: ['partition'] as const,
    registers: [this.registry],
  });
  /** Leadership transfers this server asked for (its replica is the group's preferred leader). */
  readonly leadershipTransfers = new Counter({
    name: 'paxkv_leadership_transfers_total',
    help: 'Leadership transfers to the local replica (the preferred leader) this server started',
    labelNames: ['partition'] as const,
    registers: [this.registry],
  });
  /** Whether the local replica of a partition is its leader (1) or not (0). */
  readonly isLeader = new Gauge({
    name: 'paxkv_is_leader',
    help: '1 when the local replica leads the partition, else 0',
    labelNames: ['partition'] as const,
    registers: [this.registry],
  });
  /** Log length (entries, including compacted ones) per partition hosted here. */
  readonly logSize = new Gauge({
    name: 'paxkv_log_entries',
    help: 'Length of the replicated log of each local replica',
    labelNames: ['partition'] as const,
    registers: [this.registry],
  });
  /** Decided index per partition hosted here. */
  readonly decidedIndex = new Gauge({
    name: 'paxkv_decided_index',
    help: 'Decided index of each local replica',
    labelNames: ['partition'] as const,
    registers: [this.registry],
  });
  /** WAL fsync latency (all groups of this server). */
  readonly fsyncLatency = new Histogram({
    name: 'paxkv_fsync_duration_seconds',
    help: 'Latency of write-ahead-log flushes that fsynced (write + fsync; one observation per sync of the shared log), in seconds',
    buckets: FSYNC_LATENCY_BUCKETS,
    registers: [this.registry],
  });
  /** Open TCP connections (clients, peers, bootstrap). */
  readonly connections = new Gauge({
    name: 'paxkv_connections',
    help: 'Open TCP connections on the server port',
    registers: [this.registry],
  });
  /** Rejected input: undecodable frames, unknown types, invalid fields. */
  readonly badInput = new Counter({
    name: 'paxkv_bad_input_total',
    help: 'Rejected input on the server port, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  /**
   * Paxos messages from peers dropped before reaching a group, by reason: `out-of-bounds` (a round
   * above `MAX_ROUND` or an index above `MAX_LOG_INDEX`), `malformed`, `sender-mismatch` (a ballot in
   * another replica's name), `not-from-this-peer` (an envelope on a connection that is not that peer's).
   */
  readonly peerDropped = new Counter({
    name: 'paxkv_peer_messages_dropped_total',
    help: 'Paxos messages from peers dropped before reaching a replica group, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /**
   * Paxos messages this server could not send to a peer, by reason: `frame-too-large` (one message,
   * typically a group's snapshot in an `AcceptSync`, encodes to more than `maxFrameBytes`: the peer can
   * never receive it, so a follower that needs that snapshot stays behind until the limit is raised on
   * every server or the group's state shrinks). Each drop is also logged as an error.
   */
  readonly paxosSendDropped = new Counter({
    name: 'paxkv_paxos_messages_unsendable_total',
    help: 'Paxos messages this server could not send to a peer, by reason (frame-too-large: raise maxFrameBytes on every server)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /**
   * Paxos messages per frame sent to a peer: every group's messages to one peer in one event-loop turn
   * share a frame (heartbeats of all groups included), so the mean is well above 1 with many groups.
   */
  readonly paxosBatchSize = new Histogram({
    name: 'paxkv_paxos_messages_per_frame',
    help: 'Paxos messages per frame sent to a peer (all groups of one event-loop turn share a frame)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096],
    registers: [this.registry],
  });

  /**
   * BLE heartbeats sent coalesced (one positional tuple each in a `paxos.batch`'s `beats`, instead of
   * one enveloped message per group).
   */
  readonly heartbeatsCoalesced = new Counter({
    name: 'paxkv_heartbeats_coalesced_total',
    help: 'BLE heartbeats of all groups sent coalesced into one message per peer and event-loop turn',
    registers: [this.registry],
  });

  /**
   * Failed peer handshakes, by reason: `bad-proof` (another token, or none), `malformed`, `version`,
   * `refused` (the other side refused ours), `timeout`, `closed`.
   */
  readonly authFailures = new Counter({
    name: 'paxkv_auth_failures_total',
    help: 'Peer handshakes (cluster token) that failed, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  /**
   * Peer and bootstrap messages refused because their connection did not authenticate (or, for
   * `table.push`/`members`, did not come from the metadata owner), by message type.
   */
  readonly accessDenied = new Counter({
    name: 'paxkv_client_access_denied_total',
    help: 'Client requests refused by authentication or authorisation (and failed logins), by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly unauthenticated = new Counter({
    name: 'paxkv_unauthenticated_messages_total',
    help: 'Peer and bootstrap messages refused on connections that did not prove the cluster token, by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  /**
   * Connections the server closed to protect itself, by reason: `connection-limit` (the quietest
   * connection made room for a new one), `peer-limit` (more peer connections than `maxPeerConnections`).
   */
  readonly connectionsEvicted = new Counter({
    name: 'paxkv_connections_evicted_total',
    help: 'Connections closed to protect the server (connection-limit, peer-limit), by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /**
   * Connections whose inbound limits were raised from the `unidentified*` ones, by what they showed they
   * are: `client`, `member`, `peer` (authenticated peers are raised at accept and not counted here).
   */
  readonly connectionsIdentified = new Counter({
    name: 'paxkv_connections_identified_total',
    help: 'Connections raised from the small limits of strangers once identified, by kind (client, member, peer)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  /**
   * Frames refused from connections that had not identified themselves yet (the connection is then
   * closed), by code: `FRAME_TOO_LARGE` (over `unidentifiedMaxFrameBytes`, refused at its header),
   * `DECODE_FAILED` (over `unidentifiedMaxItemsPerFrame` or the expansion limit, refused while it arrives).
   */
  readonly unidentifiedRefused = new Counter({
    name: 'paxkv_unidentified_frames_refused_total',
    help: 'Frames refused from connections not identified yet (then closed), by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  /**
   * Transactions answered to clients that contacted this server (a forwarded request is counted where
   * the client sent it, once), by the branch that ran: `succeeded` (every compare held) or `failed`.
   */
  readonly txns = new Counter({
    name: 'paxkv_txn_total',
    help: 'Transactions answered to clients of this server, by outcome (succeeded: the success branch ran; failed: the failure branch)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  /** Compares plus branch operations of each transaction answered (counted as {@link txns}). */
  readonly txnOps = new Histogram({
    name: 'paxkv_txn_operations',
    help: 'Compares plus operations of the branch that ran, per transaction answered to clients of this server',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  /** Keys returned per range read answered (counted as {@link txns}). */
  readonly rangeKeys = new Histogram({
    name: 'paxkv_range_keys',
    help: 'Keys returned per range read answered to clients of this server',
    buckets: [0, 1, 10, 100, 1000, 10000, 100000],
    registers: [this.registry],
  });
  /** Range reads answered with `more` (the page was cut by the limit or the response size). */
  readonly rangeTruncated = new Counter({
    name: 'paxkv_range_truncated_total',
    help: 'Range reads answered to clients of this server with more keys left (limit or response size reached)',
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true)
      // The standard names (`process_cpu_seconds_total`, `nodejs_heap_size_used_bytes`...) that every
      // Node.js dashboard expects; a prefix would only repeat them (`paxkv_process_process_...`).
      collectDefaultMetrics({ register: this.registry });
    // prom-client exposes three gauges whose names end in `_total`, which Prometheus reserves for counters
    // (`promtool check metrics` flags them); their per-type gauges without the suffix stay (sum over `type`).
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ])
      this.registry.removeSingleMetric(name);
  }

  /** Records one finished client operation. */
  observeOp(op: string, result: string, seconds: number): void {
    this.ops.observe(op, result, seconds);
  }

  /**
   * Records what a transaction or a range answered (other results are counted by {@link observeOp}
   * only): outcome and size of a `txn`, keys of a `range`.
   * @param compares - the transaction's compare count (0 for other operations).
   */
  observeKvResult(result: KvResult, compares: number): void {
    if (result.op === 'txn') {
      this.txns.inc({ outcome: result.succeeded ? 'succeeded' : 'failed' });
      this.txnOps.observe(compares + result.results.length);
    } else if (result.op === 'range') {
      this.rangeKeys.observe(result.kvs.length);
      if (result.more) this.rangeTruncated.inc();
    }
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of {@link ServerMetrics.render}'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
