/**
 * The server's configuration: command-line flags (commander), an optional JSON config file (`--config`),
 * and documented defaults. Precedence: flag > config file > default. Everything is validated with zod, and
 * any invalid value is reported as a {@link ConfigError} that names the field and says what to fix.
 */
import { readFileSync } from 'node:fs';
import { isAddress } from '@paxkv/common';
import { z } from 'zod';

/** The fsync modes of the write-ahead log (see DESIGN.md, "Durability"). */
export const FSYNC_MODES = ['always', 'batch', 'never'] as const;
/** Log levels accepted by `--log-level` (pino's levels plus `silent`). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** `host:port` checked by `@paxkv/common`'s `parseAddress`, the one address parser of the project. */
const addressSchema = z.string().refine((s) => isAddress(s), {
  message: 'expected host:port, for example 127.0.0.1:7000 or [::1]:7000',
});

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();

/**
 * The zod schema of a complete server configuration. Every field has a default, so `{}` is valid.
 * The JSON config file uses the same camelCase field names.
 */
export const serverConfigSchema = z
  .object({
    /** TCP port for clients, peers and bootstrap traffic. 0 picks a free port. Default 7000. */
    port: port.default(7000),
    /** Interface to listen on. Default 127.0.0.1 (loopback only). */
    host: z.string().min(1).default('127.0.0.1'),
    /**
     * The address (host:port) a server advertises to its peers and clients. Default: `host:port` (with the
     * real port when `port` is 0). Set it when listening on 0.0.0.0.
     */
    advertise: addressSchema.optional(),
    /** The bootstrap server to check in with (host:port). Absent: this server IS the bootstrap server. */
    join: addressSchema.optional(),
    /** Directory for the write-ahead logs, snapshots and the server's identity file. Default ./paxkv-data. */
    dataDir: z.string().min(1).default('./paxkv-data'),
    /** WAL fsync mode: always (each write), batch (group commit, the default) or never (OS decides). */
    fsync: z.enum(FSYNC_MODES).default('batch'),
    /** Number of servers that must check in before the bootstrap server builds the table. Default 3. */
    bootstrapThreshold: positiveInt.default(3),
    /** Replicas per partition (δ). Default 3. */
    replication: positiveInt.default(3),
    /** Number of partitions of the key space. Default 16. */
    partitions: positiveInt.max(4096).default(16),
    /** Port of the HTTP endpoint serving /health and /metrics. Absent: no HTTP endpoint. 0 picks one. */
    httpPort: port.optional(),
    /**
     * Port of the RESP (Redis protocol) front-end: redis-cli, redis-benchmark and Redis client libraries
     * talk to the cluster through it (see RESP.md). Absent: off (the default). 0 picks a free port.
     */
    respPort: port.optional(),
    /** Log level. Default info. */
    logLevel: z.enum(LOG_LEVELS).default('info'),
    /**
     * Milliseconds per paxos tick: one timer drives every replica group. Paxos counts its heartbeat round
     * (5 ticks) and election timeout (15 ticks) in ticks, so the default 20 ms gives 100 ms / 300 ms.
     */
    tickMs: positiveInt.max(10_000).default(20),
    /** Snapshot and compact a group's log every this many applied entries. Default 10 000. */
    snapshotEveryEntries: positiveInt.default(10_000),
    /** Milliseconds between bootstrap heartbeats and member/table gossip. Default 250 ms. */
    heartbeatMs: positiveInt.default(250),
    /**
     * Seconds a server may be suspected (unreachable from the metadata group's leader) before its
     * replicas are moved, group by group, to other servers (self-healing). 0 turns it off. Default 30.
     */
    replaceAfter: z.number().int().nonnegative().max(86_400).default(30),
    /** Most replica moves (group reconfigurations) in flight at once, cluster-wide. Default 1. */
    maxMovesInFlight: positiveInt.max(64).default(1),
    /**
     * Least milliseconds between the starts of two replica moves, cluster-wide (pacing: each move stalls
     * its partition for a moment, and under a closed-loop load one stalled partition soon parks every
     * client; spread out, the moves of a replaced server cost a share of a second each instead of
     * the whole rate for seconds). 0 = back to back. Default 1000 ms.
     */
    moveIntervalMs: z.number().int().nonnegative().max(3_600_000).default(1000),
    /**
     * Whether the server runs the start-up warm-up (`--warm-up on|off`): once, `warmUpDelayMs` after it
     * is up, a short scripted run of a small in-memory cluster (simulated disks and network; nothing
     * leaves the process) through the paths of a replica move (stop-sign, snapshot transfer and install,
     * a leader leaving its group). Without it the first move under load costs seconds of V8
     * recompilation on the hot put path (see `@paxkv/kvstore`'s `warmUpReplicaGroups`). Costs about
     * 0.3-1 s of CPU once, in slices between real requests. Default on.
     */
    warmUp: z.union([z.boolean(), z.enum(['on', 'off']).transform((v) => v === 'on')]).default(true),
    /** Milliseconds from the server being up to its warm-up (after a restart, the groups elect first). Default 3000. */
    warmUpDelayMs: z.number().int().nonnegative().max(3_600_000).default(3000),
    /** How long a forwarded or locally submitted request may take before TIMEOUT is returned. Default 5000 ms. */
    requestTimeoutMs: positiveInt.default(5000),
    /** Largest accepted frame in bytes; a bigger one closes the connection. Default 16 MiB. */
    maxFrameBytes: positiveInt.default(16 * 1024 * 1024),
    /** Most client connections served at once; more are refused. Default 10 000. */
    maxConnections: positiveInt.default(10_000),
    /**
     * Most connections from other servers (peers and bootstrap members), counted apart from
     * `maxConnections` so clients can never take their places. Default 256.
     */
    maxPeerConnections: positiveInt.default(256),
    /**
     * Most unauthenticated connections from one IP address (authenticated peers and clients that logged
     * in do not count); past it a new one is refused, logged once a minute per host and counted in
     * `paxkv_connections_evicted_total{reason="host-limit"}`. 0 = no limit. Default 1024: one attacking
     * host cannot hold the whole `maxConnections`, nor close thousands of connections at once (a
     * 10 000-socket teardown costs a server 200-300 ms of CPU in which its partitions' heartbeats wait).
     */
    maxConnectionsPerHost: z.number().int().nonnegative().default(1024),
    /**
     * Most bytes of partially received frames held across all connections; past it the connection
     * holding the largest partial frame is closed (clients before peers). Default 256 MiB.
     */
    inboundBudgetBytes: positiveInt.default(256 * 1024 * 1024),
    /**
     * Largest frame accepted from a connection that has not identified itself yet (no valid first
     * message; with `auth`, no login; not an authenticated peer), in bytes. Default 64 KiB. A stranger's
     * larger frame is refused at its 4-byte header and the connection closed, before any of it is read
     * into memory or scanned; once identified, `maxFrameBytes` applies. The client library introduces
     * itself (a `lookup`) before a larger first request.
     */
    unidentifiedMaxFrameBytes: positiveInt.default(64 * 1024),
    /**
     * Most msgpack values (keys, values, array elements) in one frame from a connection not identified
     * yet. Default 4096. Checked while the frame arrives: decoding time grows with values, not bytes.
     */
    unidentifiedMaxItemsPerFrame: positiveInt.default(4096),
    /**
     * Most msgpack values in one frame from a client (members too). Default 262 144: a transaction at the
     * hard limit of 4096 operations per list takes ~100 000. Peers have no such limit.
     */
    clientMaxItemsPerFrame: positiveInt.default(262_144),
    /**
     * A connection that sends nothing for this many ms before its first message (or its handshake) is
     * closed (a stranger holding a slot, a frame never finished). Default 10 000 ms.
     */
    headerTimeoutMs: positiveInt.default(10_000),
    /**
     * A client connection on which nothing was read or written for this many ms is closed (peers are
     * watched by `linkLivenessMs` instead). Default 300 000 ms (5 minutes).
     */
    clientIdleTimeoutMs: positiveInt.default(300_000),
    /** Most requests one connection may have in flight; beyond that it gets UNAVAILABLE. Default 1024. */
    maxInflightPerConnection: positiveInt.default(1024),
    /**
     * A watch stream whose connection has more than this many unsent bytes is ended with `too-slow`
     * (and the revision to resume from) instead of buffering without bound. Default 4 MiB.
     */
    watchMaxBufferedBytes: positiveInt.default(4 * 1024 * 1024),
    /**
     * A link between two servers on which nothing at all arrived for this many ms is torn down and
     * redialled (TCP alone keeps a black-holed connection "up" for tens of seconds). Default 500 ms:
     * five paxos heartbeat rounds at the default tick. Both ends send a keepalive when idle.
     */
    linkLivenessMs: positiveInt.min(20).default(500),
    /**
     * Frames of at most this many bytes from an AUTHENTICATED peer (one that proved the cluster token or
     * presented a server certificate of the cluster CA) are decoded without the msgpack pre-scan, which
     * costs about as much as decoding a small frame; larger frames, clients and unauthenticated peers are
     * always scanned. Bound: such a frame decodes to at most ~192 times its size (12 MiB at the
     * default). 0 scans every frame. Default 65 536.
     */
    trustedPeerFrameBytes: z
      .number()
      .int()
      .nonnegative()
      .max(1024 * 1024)
      .default(64 * 1024),
    /** An idle link between two servers sends a keepalive after this many ms. Default 100 ms. */
    linkKeepaliveMs: positiveInt.default(100),
    /**
     * Largest delay between attempts to redial a peer, in ms (attempts start at 20 ms and double).
     * Default 250 ms, so a healed link is back within a fraction of a second.
     */
    linkReconnectMaxMs: positiveInt.min(20).default(250),
    /**
     * The cluster token (at least 16 characters, the same on every server). With a token, a peer or a
     * bootstrap member must prove it holds it (HMAC challenge-response; the token never travels) before
     * its `peer.hello`, paxos, `checkin`, `heartbeat`, `table.push` or `members` messages are accepted.
     * Absent (and no `clusterTokenFile`, no `PAXKV_CLUSTER_TOKEN`): no authentication. Prefer
     * `clusterTokenFile` or the environment: a flag shows in the process list.
     */
    clusterToken: z.string().min(16).optional(),
    /** A file holding the cluster token (one trailing newline ignored). */
    clusterTokenFile: z.string().min(1).optional(),
    /**
     * PEM file of this server's certificate (with `tlsKey` and `tlsCa`: TLS on the client port, between
     * peers, on the RESP port and on HTTP). It must be signed by `tlsCa`, carry the host (DNS name or
     * IP) of `advertise` as a subject alternative name, and allow both TLS server and client
     * authentication (it also dials peers). Absent: no TLS (the default).
     */
    tlsCert: z.string().min(1).optional(),
    /** PEM file of the private key of `tlsCert`. */
    tlsKey: z.string().min(1).optional(),
    /**
     * PEM file of the cluster CA: peers must present a certificate it signed (for a server: one naming
     * the host it claims), clients' certificates are verified against it.
     */
    tlsCa: z.string().min(1).optional(),
    /**
     * Start without peer authentication (`--insecure`): no cluster token and no TLS. Then anything that
     * reaches the port can pass for a peer or a bootstrap member: one forged `Prepare` at the maximum
     * ballot stalls a partition for good, a forged `checkin` moves a node. `paxkv-server` refuses to start
     * without a token or TLS unless this is set (as CockroachDB without certificates unless
     * `--insecure`), and then logs a warning; with a token or TLS it changes nothing. Default false.
     */
    insecure: z.boolean().default(false),
    /**
     * Client authentication (`--auth`): every client request needs a login (`paxkv login`, the client
     * option `auth`, RESP `AUTH`) and a role that allows it. Needs peer authentication (a cluster token
     * or TLS): otherwise any process could pass for a peer and send requests as forwarded. Default false.
     */
    auth: z.boolean().default(false),
    /** File with the password of `root` (role `admin`), created on its first login if absent. */
    rootPasswordFile: z.string().min(1).optional(),
    /** Lifetime of a session token, ms. Default 3 600 000 (1 hour). */
    authTokenTtlMs: positiveInt.default(3_600_000),
    /**
     * How long a server trusts a user or role it read, ms: a removed user or revoked role stops working
     * on every server within this. Default 1000.
     */
    authCacheMs: positiveInt.default(1000),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.linkKeepaliveMs * 2 > c.linkLivenessMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['linkKeepaliveMs'],
        message: `must be at most half of linkLivenessMs (${c.linkLivenessMs}) or idle links are taken for dead; lower linkKeepaliveMs or raise linkLivenessMs`,
      });
    }
    if (c.clusterToken !== undefined && c.clusterTokenFile !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['clusterToken'],
        message: 'give either --cluster-token or --cluster-token-file, not both',
      });
    }
    const tlsFiles = [c.tlsCert, c.tlsKey, c.tlsCa].filter((f) => f !== undefined).length;
    if (c.auth && tlsFiles === 0 && c.clusterToken === undefined && c.clusterTokenFile === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth'],
        message:
          'client authentication needs peer authentication too (--cluster-token-file or --tls-*): without it any process could pass for a peer and skip the checks',
      });
    }
    if (tlsFiles !== 0 && tlsFiles !== 3) {
      ctx.addIssue({
        code: 'custom',
        path: ['tlsCert'],
        message: 'TLS needs all of --tls-cert, --tls-key and --tls-ca (or none of them)',
      });
    }
    if (c.join === undefined && c.bootstrapThreshold < c.replication) {
      ctx.addIssue({
        code: 'custom',
        path: ['bootstrapThreshold'],
        message: `must be at least the replication (${c.replication}) so every group gets distinct servers; raise --bootstrap-threshold or lower --replication`,
      });
    }
  });

/** A complete, validated server configuration (see {@link serverConfigSchema} for every field's default). */
export type ServerConfig = z.infer<typeof serverConfigSchema>;

/** The input form of a configuration: every field optional. */
export type ServerConfigInput = z.input<typeof serverConfigSchema>;

/**
 * Why `paxkv-server` must not start with `config`, or null: a server with neither a cluster token nor TLS
 * starts only with `insecure` (see {@link serverConfigSchema} `insecure`).
 */
export function insecureStartProblem(config: ServerConfig): string | null {
  const token = config.clusterToken !== undefined || config.clusterTokenFile !== undefined;
  const tls = config.tlsCert !== undefined;
  if (token || tls || config.insecure) return null;
  return (
    'no peer authentication: start every server of the cluster with the same --cluster-token-file ' +
    '(or --cluster-token, PAXKV_CLUSTER_TOKEN), or with --tls-cert/--tls-key/--tls-ca; `paxkv cluster start` ' +
    'makes a token for a local cluster. To run without (any process that reaches this port can act as a ' +
    'peer: one forged message stalls a partition for good), pass --insecure'
  );
}

/**
 * Invalid flags, an unreadable or invalid config file. The message names the field and the fix; the
 * `exitCode` is what `main` exits with (2 for usage errors, 0 for `--help`/`--version`).
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly exitCode: number = 2,
  ) {
    super(message);
  }
}

function formatZodError(error: z.ZodError, source: string): string {
  const lines = error.issues.map((issue) => {
    const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
    return `  ${field}: ${issue.message}`;
  });
  return `invalid configuration (${source}):\n${lines.join('\n')}`;
}

/**
 * Validates a configuration object (as read from a file or built in a test), filling in defaults.
 * @throws {ConfigError} naming every invalid field.
 */
export function parseServerConfig(input: unknown, source = 'config'): ServerConfig {
  const result = serverConfigSchema.safeParse(input);
  if (!result.success) throw new ConfigError(formatZodError(result.error, source));
  return result.data;
}

/**
 * Reads a JSON config file. Unknown fields are rejected so that a typo does not silently fall back to a
 * default.
 * @throws {ConfigError} when the file cannot be read or is not valid JSON.
 */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`config file ${path} must hold a JSON object of settings`);
  }
  return value as Record<string, unknown>;
}
