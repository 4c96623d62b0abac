/**
 * What the RESP front-end needs from the server: the request path (the same one the native port uses:
 * routing, forwarding, sessions) and a few facts for `INFO` and `HELLO`. The RESP layer never holds data.
 * @module
 */
import type { KvOp, KvResult, ProtocolLimits, Session } from '@paxkv/common';

/** One replica group hosted by this server, as `INFO replication` shows it. */
export interface RespGroupInfo {
  readonly partition: number;
  readonly role: string;
  readonly leader: number | null;
  readonly decidedIndex: number;
}

/** Facts about the server for `INFO`. */
export interface RespServerFacts {
  /** Node id, null before the cluster started. */
  readonly nodeId: number | null;
  /** Native address (`host:port`). */
  readonly address: string;
  /** Number of partitions of the key space, null before the cluster started. */
  readonly partitions: number | null;
  /** Groups hosted here. */
  readonly groups: readonly RespGroupInfo[];
  /** WAL fsync mode. */
  readonly fsync: string;
}

/**
 * The port the RESP front-end drives. `execute` runs one KV operation through the server's request
 * path and resolves with its result, or rejects with a typed paxkv error.
 */
export interface RespBackend {
  /**
   * `principal` is what {@link RespBackend.login} returned for this connection (null: not logged in);
   * with `--auth` the operation is checked against its roles (UNAUTHENTICATED / PERMISSION_DENIED).
   */
  execute(op: KvOp, session: Session | undefined, principal?: unknown): Promise<KvResult>;
  /**
   * `AUTH [user] password`: checks the credentials and returns the principal to pass to `execute`.
   * Absent when the server does not require logins (then `AUTH` answers as Redis without a password).
   */
  login?(user: string, password: string): Promise<unknown>;
  /** Facts for `INFO`/`HELLO`; cheap, synchronous. */
  facts(): RespServerFacts;
  /** Key and value size limits, checked before an operation is built. */
  readonly limits: ProtocolLimits;
  /**
   * Prefix of this server's RESP session ids (unique per server process, at most 40 characters), so
   * that retried writes through the request path apply exactly once.
   */
  readonly sessionPrefix: string;
}
