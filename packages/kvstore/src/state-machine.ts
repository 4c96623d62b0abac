/**
 * The replicated key-value state machine: GET, PUT, CAS, DELETE, client sessions for exactly-once
 * writes, revisions, and snapshots. Deterministic: every replica that applies the same log reaches the
 * same state, including which sessions are remembered (expiry is a function of the log index, never of
 * a clock).
 *
 * Revisions follow etcd: the partition's revision is raised by one by each applied entry that changes
 * the state; each key keeps the revision that created it, the revision of its last change and its
 * version (writes since creation). See `@paxkv/common`'s `kv` protocol module.
 * @module
 */
import {
  BadRequestError,
  type Compare,
  compareKeys,
  DEFAULT_MAX_VALUE_BYTES,
  isReadOnlyOp,
  type KeyValue,
  type KvOp,
  type KvResult,
  leasePartition,
  MAX_LEASE_KEYS_LISTED,
  MAX_LEASES_LISTED,
  MAX_PARTITION_STATE_BYTES,
  type PaxkvError,
  type RangeOp,
  type RangeResult,
  type RestoreOp,
  resolveDecodeLimits,
  scanMsgpack,
  type TxnOp,
  type TxnResponse,
  type TxnResult,
  utf8ByteLength,
  type Value,
  valueByteLength,
} from '@paxkv/common';
import { CorruptDataError, decode, encode } from './codec.js';
import { isKvCommand, type KvCommand } from './command.js';
import { type LeaseInfo, LeaseTable } from './leases.js';
import { OrderedMap } from './ordered-map.js';
import { ownString, ownValue } from './own.js';
import type { ChangeEvent } from './watch-hub.js';

/** Tunables of the state machine. */
export interface StateMachineConfig {
  /**
   * Most client sessions remembered. When a new session would exceed it, the session whose last write
   * is oldest in the log is forgotten. Default 10 000.
   */
  readonly maxSessions: number;
  /**
   * A session whose last write is more than this many log entries old is forgotten. Default 1 000 000.
   * A client that retries a write after its session was forgotten may see it applied twice: keep this
   * far above the number of entries a group can decide during a client's retry budget.
   */
  readonly sessionTtlEntries: number;
  /**
   * Most keys one range read returns, whatever its `limit` (a range without a limit stops here too);
   * the result then says `more`, and the client continues after the last key. Default 10 000.
   */
  readonly maxRangeKeys: number;
  /**
   * A range read stops adding keys once the keys and values it holds reach this many bytes (it always
   * returns at least one key), and says `more`. Keeps replies well under the frame limit (16 MiB by
   * default). Default 4 MiB.
   */
  readonly maxRangeBytes: number;
  /** Most leases alive at once in the partition; more grants answer `granted: false`. Default 100 000. */
  readonly maxLeases: number;
  /**
   * TESTING ONLY: breaks a rule on purpose, so that a test can show it catches the break.
   * `restoreIntoNonEmpty`: a `restore` loads its state over a partition that already holds keys (mixing
   * two histories). Default `none`.
   */
  readonly unsafeMutation?: 'none' | 'restoreIntoNonEmpty';
}

/** Defaults of {@link StateMachineConfig}. */
export const DEFAULT_STATE_MACHINE_CONFIG: Readonly<StateMachineConfig> = Object.freeze({
  maxSessions: 10_000,
  sessionTtlEntries: 1_000_000,
  maxRangeKeys: 10_000,
  maxRangeBytes: 4 * 1024 * 1024,
  maxLeases: 100_000,
});

/** What applying one log entry produced. */
export type ApplyOutcome =
  | {
      readonly ok: true;
      readonly result: KvResult;
      /** True if this was a retry of a write already applied: the remembered result is returned. */
      readonly duplicate: boolean;
    }
  | { readonly ok: false; readonly error: PaxkvError };

/**
 * One stored key: its value and revisions. A class (fixed shape, four in-object fields: 56 bytes on a
 * 64-bit V8) so that V8 keeps every entry as compact as it can. The lease a key is attached to is not
 * here (few keys have one): the lease table maps keys to leases.
 */
class Entry {
  constructor(
    public value: Value,
    public createRevision: number,
    public modRevision: number,
    public version: number,
  ) {}
}

interface SessionEntry {
  seq: number;
  result: KvResult;
  /** Log index of the session's last write. */
  lastIndex: number;
}

const utf8 = new TextEncoder();

function bytesOf(v: Value): Uint8Array {
  return typeof v === 'string' ? utf8.encode(v) : v;
}

/**
 * Value equality used by CAS: two values are equal when their bytes are equal (a string compares as its
 * UTF-8 encoding, so `"a"` equals the bytes `[0x61]`).
 */
export function valuesEqual(a: Value, b: Value): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a === b;
  const x = bytesOf(a);
  const y = bytesOf(b);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INT64_TEXT = /^-?(0|[1-9][0-9]{0,18})$/;
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** The value as a 64-bit integer if it is one in canonical decimal (as Redis requires for INCR), else null. */
function int64Of(v: Value): bigint | null {
  let text: string;
  if (typeof v === 'string') text = v;
  else {
    if (v.length > 20) return null;
    try {
      text = utf8Decoder.decode(v);
    } catch {
      return null;
    }
  }
  if (!INT64_TEXT.test(text)) return null;
  const n = BigInt(text);
  return n < INT64_MIN || n > INT64_MAX ? null : n;
}

function concatValues(a: Value, b: Value): Uint8Array {
  const x = bytesOf(a);
  const y = bytesOf(b);
  const out = new Uint8Array(x.length + y.length);
  out.set(x, 0);
  out.set(y, x.length);
  return out;
}

/**
 * Bounds for decoding a `restore`'s state (bytes from a client): as for snapshots from peers, a binary
 * field may expand at most 32 times its bytes when decoded.
 */
const RESTORE_DECODE_LIMITS = resolveDecodeLimits({ maxExpansion: 32 });

/** Snapshot format: 1 = values only (read for upgrades), 2 = values with revisions. */
const SNAPSHOT_VERSION = 2;
const SNAPSHOT_VERSION_V1 = 1;

/**
 * The key-value state of one partition. Entries are applied in log order through {@link
 * KvStateMachine.apply}; reads of the current state use {@link KvStateMachine.read}.
 */
export class KvStateMachine {
  /** The partition this state belongs to (stamped on every result). */
  readonly partition: number;
  private readonly config: StateMachineConfig;
  /** The keys in key order (`compareKeys`: UTF-8 byte order), each with its value and revisions. */
  private readonly data = new OrderedMap<Entry>();
  /** Sessions in order of their last write (oldest first): expiry pops from the front. */
  private readonly sessions = new Map<string, SessionEntry>();
  private applied = 0;
  private rev = 0;
  /**
   * Called with every change of a key as it is applied (a put, or a delete of a present key), with the
   * partition's revision after the entry: the feed of watches. Must not throw.
   */
  onChange: ((event: ChangeEvent) => void) | undefined;
  /** The partition's leases (replicated state: changed only by applied entries). */
  private readonly leaseTable: LeaseTable;
  /** The decoded state of the `restore` being applied (set by its check, used and cleared right after). */
  private staged: KvStateMachine | undefined;

  /**
   * @param config tunables (see {@link DEFAULT_STATE_MACHINE_CONFIG})
   * @param partition the partition this state belongs to, stamped on every result (default 0)
   */
  constructor(config: Partial<StateMachineConfig> = {}, partition = 0) {
    this.partition = partition;
    this.config = { ...DEFAULT_STATE_MACHINE_CONFIG, ...config };
    this.leaseTable = new LeaseTable(partition, this.config.maxLeases);
    for (const k of [
      'maxSessions',
      'sessionTtlEntries',
      'maxRangeKeys',
      'maxRangeBytes',
      'maxLeases',
    ] as const) {
      const v = this.config[k];
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new RangeError(`state machine config.${k} must be a positive integer, got ${String(v)}`);
      }
    }
  }

  /** Number of log entries applied (entries `[0, appliedIndex)`). */
  get appliedIndex(): number {
    return this.applied;
  }

  /** The partition's revision: the number of applied entries that changed the state. */
  get revision(): number {
    return this.rev;
  }

  /** Number of keys stored. */
  get size(): number {
    return this.data.size;
  }

  /** Number of sessions remembered. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Id and TTL (ms) of every live lease, for the leader's lease clock. */
  leaseTtls(): Iterable<[number, number]> {
    return this.leaseTable.ttls();
  }

  /** The lease, if it is alive. */
  lease(id: number): LeaseInfo | undefined {
    return this.leaseTable.get(id);
  }

  /** The current value and revisions of `key` as a `get` result, at the current revision. */
  read(key: string): Extract<KvResult, { op: 'get' }> {
    const e = this.data.get(key);
    return e === undefined
      ? { op: 'get', value: null, ...ABSENT, ...this.header() }
      : { op: 'get', value: e.value, ...metaOf(e), ...this.header() };
  }

  private header(): { revision: number; partition: number } {
    return { revision: this.rev, partition: this.partition };
  }

  /**
   * Applies the entry at log index `index`, which must be {@link KvStateMachine.appliedIndex}. A malformed
   * entry is skipped (the index still advances) and reported as an error outcome, never thrown.
   * @throws RangeError if `index` is not the next index (a caller bug: entries must be applied in order).
   */
  apply(index: number, command: unknown): ApplyOutcome {
    if (index !== this.applied) {
      throw new RangeError(`apply(${index}) out of order: the next entry to apply is ${this.applied}`);
    }
    this.applied = index + 1;
    this.expire(index);
    if (!isKvCommand(command)) {
      return { ok: false, error: new BadRequestError({ problem: `log entry ${index} is not a KV command` }) };
    }
    const refused = this.refusal(command.op);
    if (refused) return { ok: false, error: refused };
    const { session } = command as KvCommand;
    if (!session || isReadOnlyOp(command.op))
      return { ok: true, result: this.execute(command.op), duplicate: false };
    const known = this.sessions.get(session.client);
    if (known && session.seq === known.seq) return { ok: true, result: known.result, duplicate: true };
    if (known && session.seq < known.seq) {
      return {
        ok: false,
        error: new BadRequestError({
          field: 'session.seq',
          problem: `sequence number ${session.seq} is older than the session's latest ${known.seq}; its result is no longer kept, use a new sequence number for new writes`,
        }),
      };
    }
    const result = this.execute(command.op);
    this.sessions.delete(session.client);
    this.sessions.set(ownString(session.client), { seq: session.seq, result, lastIndex: index });
    while (this.sessions.size > this.config.maxSessions) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
    }
    return { ok: true, result, duplicate: false };
  }

  /**
   * Why `op` cannot be applied here (nothing changes), or undefined. A `put` may attach a key only to a
   * live lease of this partition.
   */
  private refusal(op: KvOp): PaxkvError | undefined {
    if (op.op === 'restore') return this.stageRestore(op);
    if (op.op === 'put') return op.lease === undefined ? undefined : this.leaseRefusal(op.key, op.lease);
    if (op.op !== 'txn') return undefined;
    // Only the branch that runs matters (its compares see the same state as the apply that follows).
    const branch = op.compare.every((c) => this.compareHolds(c)) ? op.success : op.failure;
    for (const o of branch) {
      if (!('put' in o) || o.put.lease === undefined) continue;
      const refused = this.leaseRefusal(o.put.key, o.put.lease);
      if (refused) return refused;
    }
    return undefined;
  }

  /** Why `key` cannot be attached to `lease`: another partition's lease, or one that is gone. */
  private leaseRefusal(key: string, lease: number): PaxkvError | undefined {
    if (leasePartition(lease) !== this.partition)
      return new BadRequestError({
        field: 'op.lease',
        problem: `lease ${lease} belongs to partition ${leasePartition(lease)}, key '${key}' to partition ${this.partition}: grant the lease for a key of the same hash tag`,
      });
    if (!this.leaseTable.has(lease))
      return new BadRequestError({
        field: 'op.lease',
        problem: `lease ${lease} does not exist (it expired or was revoked): grant a new lease`,
      });
    return undefined;
  }

  /** The entry of session `client`, for tests and diagnostics. */
  session(client: string): { readonly seq: number; readonly lastIndex: number } | undefined {
    const s = this.sessions.get(client);
    return s ? { seq: s.seq, lastIndex: s.lastIndex } : undefined;
  }

  private expire(index: number): void {
    const horizon = index - this.config.sessionTtlEntries;
    for (const [client, s] of this.sessions) {
      if (s.lastIndex >= horizon) break;
      this.sessions.delete(client);
    }
  }

  /**
   * Answers a read-only operation (`get`, `range`, or a `txn` without writes) from the current state,
   * at the current revision, without changing anything. Used for reads served by a read-index round.
   * @throws RangeError if `op` writes (a caller bug: writes go through {@link KvStateMachine.apply}).
   */
  query(op: KvOp): KvResult {
    if (!isReadOnlyOp(op)) throw new RangeError(`query(${op.op}) would write: writes go through the log`);
    return this.execute(op);
  }

  private execute(op: KvOp): KvResult {
    switch (op.op) {
      case 'get':
        return this.read(op.key);
      case 'txn':
        return this.txn(op);
      case 'range':
        return this.range(op);
      case 'lease-grant': {
        const id = this.leaseTable.grant(op.ttlMs);
        return typeof id === 'number'
          ? { op: 'lease-grant', granted: true, lease: id, ttlMs: op.ttlMs, ...this.header() }
          : { op: 'lease-grant', granted: false, lease: 0, ttlMs: op.ttlMs, ...this.header() };
      }
      case 'lease-revoke':
      case 'lease-expire': {
        const keys = this.leaseTable.remove(op.lease);
        let deleted = 0;
        if (keys !== null && keys.length > 0) {
          const next = this.rev + 1;
          for (const k of keys) if (this.remove(k, next)) deleted++;
          if (deleted > 0) this.rev = next;
        }
        return { op: op.op, found: keys !== null, deleted, ...this.header() };
      }
      case 'lease-keepalive': {
        const l = this.leaseTable.get(op.lease);
        return { op: 'lease-keepalive', found: l !== undefined, ttlMs: l?.ttlMs ?? 0, ...this.header() };
      }
      case 'lease-timetolive': {
        // By key: the lease the key is attached to (none: not found). The time left is the leader's
        // (the replica group fills it in); the state machine only knows the TTL.
        const id = op.lease ?? (op.key === undefined ? 0 : this.leaseTable.leaseOf(op.key));
        const l = id === 0 ? undefined : this.leaseTable.get(id);
        if (!l)
          return {
            op: 'lease-timetolive',
            found: false,
            lease: 0,
            ttlMs: 0,
            remainingMs: 0,
            ...this.header(),
          };
        return {
          op: 'lease-timetolive',
          found: true,
          lease: l.lease,
          ttlMs: l.ttlMs,
          remainingMs: l.ttlMs,
          ...(op.keys
            ? { keys: l.keys.slice(0, MAX_LEASE_KEYS_LISTED), more: l.keys.length > MAX_LEASE_KEYS_LISTED }
            : {}),
          ...this.header(),
        };
      }
      case 'lease-list': {
        const all = this.leaseTable.list();
        return {
          op: 'lease-list',
          leases: all
            .slice(0, MAX_LEASES_LISTED)
            .map((l) => ({ lease: l.lease, ttlMs: l.ttlMs, keys: l.keys.length })),
          more: all.length > MAX_LEASES_LISTED,
          ...this.header(),
        };
      }
      case 'put': {
        const e = this.write(op.key, op.value, ++this.rev, op.lease ?? 0);
        return { op: 'put', created: e.version === 1, ...metaOf(e), ...this.header() };
      }
      case 'delete': {
        const existed = this.data.has(op.key);
        if (existed) {
          this.rev++;
          this.remove(op.key);
        }
        return { op: 'delete', existed, ...this.header() };
      }
      case 'cas': {
        const current = this.data.get(op.key);
        const outcome = casOutcome(op, current);
        if (outcome !== 'applied') {
          return current === undefined
            ? { op: 'cas', outcome, current: null, ...ABSENT, ...this.header() }
            : { op: 'cas', outcome, current: current.value, ...metaOf(current), ...this.header() };
        }
        const e = this.write(op.key, op.value, ++this.rev);
        return { op: 'cas', outcome, current: e.value, ...metaOf(e), ...this.header() };
      }
      case 'incr': {
        const current = this.data.get(op.key);
        const before = current === undefined ? 0n : int64Of(current.value);
        const meta = current === undefined ? ABSENT : metaOf(current);
        if (before === null)
          return { op: 'incr', outcome: 'not-integer', value: null, ...meta, ...this.header() };
        const sum = before + BigInt(op.by);
        if (sum < INT64_MIN || sum > INT64_MAX) {
          return { op: 'incr', outcome: 'overflow', value: before.toString(), ...meta, ...this.header() };
        }
        const text = sum.toString();
        const e = this.write(op.key, text, ++this.rev, 'keep');
        return { op: 'incr', outcome: 'applied', value: text, ...metaOf(e), ...this.header() };
      }
      case 'append': {
        const current = this.data.get(op.key);
        const had = current === undefined ? 0 : valueByteLength(current.value);
        const length = had + valueByteLength(op.value);
        if (length > DEFAULT_MAX_VALUE_BYTES) {
          const meta = current === undefined ? ABSENT : metaOf(current);
          return { op: 'append', outcome: 'too-large', length: had, ...meta, ...this.header() };
        }
        const value =
          current === undefined
            ? op.value
            : typeof current.value === 'string' && typeof op.value === 'string'
              ? current.value + op.value
              : concatValues(current.value, op.value);
        const e = this.write(op.key, value, ++this.rev, 'keep');
        return { op: 'append', outcome: 'applied', length, ...metaOf(e), ...this.header() };
      }
      case 'size':
        return { op: 'size', keys: this.data.size, ...this.header() };
      case 'snapshot': {
        const state = this.exportState();
        const fits = state.byteLength <= MAX_PARTITION_STATE_BYTES;
        return {
          op: 'snapshot',
          outcome: fits ? 'ok' : 'too-large',
          bytes: state.byteLength,
          state: fits ? state : new Uint8Array(0),
          keys: this.data.size,
          leases: this.leaseTable.size,
          ...this.header(),
        };
      }
      case 'restore':
        return this.restore();
      case 'getdel': {
        const current = this.data.get(op.key);
        if (current !== undefined) {
          this.rev++;
          this.remove(op.key);
        }
        return { op: 'getdel', value: current?.value ?? null, ...this.header() };
      }
      case 'set': {
        const current = this.data.get(op.key);
        const applies =
          op.condition === 'always' ||
          (op.condition === 'absent' && current === undefined) ||
          (op.condition === 'present' && current !== undefined) ||
          (op.condition === 'equal' &&
            current !== undefined &&
            op.expected !== undefined &&
            valuesEqual(current.value, op.expected));
        const previous = current?.value ?? null;
        const e = applies ? this.write(op.key, op.value, ++this.rev) : current;
        const meta = e === undefined ? ABSENT : metaOf(e);
        return op.get
          ? { op: 'set', applied: applies, previous, ...meta, ...this.header() }
          : { op: 'set', applied: applies, ...meta, ...this.header() };
      }
    }
  }

  /**
   * A transaction: every compare against the current state, then the chosen branch in order. Every key
   * it writes gets the same revision, the partition's next one; the revision is raised once, and only
   * if the branch changed something.
   */
  private txn(op: TxnOp): TxnResult {
    const succeeded = op.compare.every((c) => this.compareHolds(c));
    const next = this.rev + 1;
    let changed = false;
    const results: TxnResponse[] = [];
    for (const o of succeeded ? op.success : op.failure) {
      if ('get' in o) {
        const e = this.data.get(o.get.key);
        results.push(
          e === undefined
            ? { op: 'get', key: o.get.key, value: null, ...ABSENT }
            : { op: 'get', key: o.get.key, value: e.value, ...metaOf(e) },
        );
      } else if ('put' in o) {
        const created = !this.data.has(o.put.key);
        const e = this.write(o.put.key, o.put.value, next, o.put.lease ?? 0);
        changed = true;
        results.push({ op: 'put', key: o.put.key, created, ...metaOf(e) });
      } else {
        const existed = this.remove(o.delete.key, next);
        changed ||= existed;
        results.push({ op: 'delete', key: o.delete.key, existed });
      }
    }
    if (changed) this.rev = next;
    return { op: 'txn', succeeded, results, ...this.header() };
  }

  private compareHolds(c: Compare): boolean {
    const e = this.data.get(c.key);
    let order: number;
    switch (c.target) {
      case 'exists':
        return (e !== undefined) === (c.op === '=' ? c.value : !c.value);
      case 'value':
        // As etcd: a value compare on an absent key is false whatever the operator.
        if (e === undefined) return false;
        order = compareValues(e.value, c.value);
        break;
      case 'version':
        order = (e?.version ?? 0) - c.value;
        break;
      case 'modRevision':
        order = (e?.modRevision ?? 0) - c.value;
        break;
      case 'createRevision':
        order = (e?.createRevision ?? 0) - c.value;
        break;
    }
    switch (c.op) {
      case '=':
        return order === 0;
      case '!=':
        return order !== 0;
      case '<':
        return order < 0;
      case '>':
        return order > 0;
    }
  }

  /**
   * The keys `start <= key < end` in key order (or descending), at most `limit`, `maxRangeKeys` and
   * about `maxRangeBytes` of them; `more` when keys of the range remain after the last one returned.
   */
  private range(op: RangeOp): RangeResult {
    const limit = Math.min(op.limit ?? this.config.maxRangeKeys, this.config.maxRangeKeys);
    const kvs: KeyValue[] = [];
    let bytes = 0;
    let more = false;
    const end = op.end;
    const inRange = op.reverse
      ? (k: string) => compareKeys(k, op.start) >= 0
      : (k: string) => end === undefined || compareKeys(k, end) < 0;
    const entries = op.reverse
      ? end === undefined
        ? this.data.entriesReversed()
        : this.data.entriesReversed(end, undefined, true)
      : this.data.entries(op.start);
    for (const [key, e] of entries) {
      if (!inRange(key)) break;
      if (kvs.length >= limit || (kvs.length > 0 && bytes >= this.config.maxRangeBytes)) {
        more = true;
        break;
      }
      bytes += utf8ByteLength(key) + (op.keysOnly ? 0 : valueByteLength(e.value));
      kvs.push(op.keysOnly ? { key, ...metaOf(e) } : { key, value: e.value, ...metaOf(e) });
    }
    return { op: 'range', kvs, more, ...this.header() };
  }

  /** Writes `key` at revision `revision` (creating it or raising its version). */
  private write(key: string, value: Value, revision: number, lease: number | 'keep' = 0): Entry {
    // The state, the lease table and the watch history keep their own copies (never slices of the
    // decoded log entry).
    key = ownString(key);
    const own = ownValue(value);
    let e = this.data.get(key);
    if (e === undefined) {
      e = new Entry(own, revision, revision, 1);
      this.data.set(key, e);
    } else {
      e.value = own;
      e.modRevision = revision;
      e.version++;
    }
    this.onChange?.({ type: 'put', key, value: own, revision });
    // As etcd: a write without a lease detaches the key from its lease; incr and append keep it (as
    // Redis keeps a key's TTL through INCR and APPEND).
    if (lease !== 'keep') {
      const old = this.leaseTable.leaseOf(key);
      if (lease !== old) {
        if (old !== 0) this.leaseTable.detach(key, old);
        if (lease !== 0) this.leaseTable.attach(key, lease);
      }
    }
    return e;
  }

  /**
   * Deletes `key` at `revision` (default: the partition's current revision, which the caller already
   * raised); returns whether it existed.
   */
  private remove(key: string, revision = this.rev): boolean {
    const lease = this.leaseTable.leaseOf(key);
    if (lease !== 0) this.leaseTable.detach(key, lease);
    const existed = this.data.delete(key);
    if (existed) this.onChange?.({ type: 'delete', key: ownString(key), revision });
    return existed;
  }

  /**
   * Serializes the whole state (data, sessions in expiry order, applied index). Restoring it with
   * {@link KvStateMachine.fromSnapshot} yields a machine that behaves identically.
   */
  snapshot(): Uint8Array {
    const sessions: [string, number, KvResult, number][] = [];
    for (const [c, s] of this.sessions) sessions.push([c, s.seq, s.result, s.lastIndex]);
    return this.encodeState(this.applied, sessions);
  }

  /** The snapshot format of the current data and leases with the given applied index and sessions. */
  private encodeState(applied: number, sessions: [string, number, KvResult, number][]): Uint8Array {
    // Flat [key, value, createRevision, modRevision, version, key, ...]: one array, no per-key tuple.
    const data: (string | Value | number)[] = [];
    this.data.forEachPair((k, e) => {
      data.push(k, e.value, e.createRevision, e.modRevision, e.version);
    });
    // Leases: the table, and [key, lease, ...] for the keys attached to one (absent in older snapshots).
    const attached: (string | number)[] = [];
    for (const l of this.leaseTable.list()) for (const k of l.keys) attached.push(k, l.lease);
    return encode({
      v: SNAPSHOT_VERSION,
      applied,
      revision: this.rev,
      data,
      sessions,
      leases: this.leaseTable.toSnapshot(),
      attached,
    });
  }

  /**
   * The partition's state for a backup (the `snapshot` operation): the {@link KvStateMachine.snapshot}
   * format without client sessions and with applied index 0, so that it can seed another cluster's
   * partition (`restore`) without that cluster's clients ever matching a session of this one.
   */
  exportState(): Uint8Array {
    return this.encodeState(0, []);
  }

  /**
   * Checks a `restore` before it is applied: the state must decode within bounds (its bytes come from a
   * client) into a valid partition state of this partition. A valid state is kept for {@link
   * KvStateMachine.restore}, which runs right after in the same `apply`.
   */
  private stageRestore(op: RestoreOp): PaxkvError | undefined {
    this.staged = undefined;
    const problem = scanMsgpack(op.state, RESTORE_DECODE_LIMITS);
    const m =
      problem === null ? KvStateMachine.fromSnapshot(op.state, this.config, this.partition) : undefined;
    if (m === undefined || m instanceof CorruptDataError || m.sessions.size > 0) {
      return new BadRequestError({
        field: 'op.state',
        problem: `the state is not a valid partition state of partition ${this.partition}${problem ? ` (${problem})` : ''}: restore the bytes a 'snapshot' of the same partition returned`,
      });
    }
    this.staged = m;
    return undefined;
  }

  /**
   * Loads the staged state into this partition if it is empty (no key, no lease, revision 0); the
   * revision becomes the snapshot's. Watches do not see the loaded keys as changes.
   */
  private restore(): KvResult {
    const m = this.staged;
    this.staged = undefined;
    if (m === undefined) throw new RangeError('restore applied without a staged state (a caller bug)');
    const empty =
      (this.data.size === 0 && this.leaseTable.size === 0 && this.rev === 0) ||
      this.config.unsafeMutation === 'restoreIntoNonEmpty';
    if (empty) {
      this.rev = m.rev;
      m.data.forEachPair((k, e) => {
        this.data.set(k, e);
      });
      this.leaseTable.restore(m.leaseTable.toSnapshot());
      for (const [k, lease] of m.leaseTable.attachments()) this.leaseTable.attach(k, lease);
    }
    return {
      op: 'restore',
      outcome: empty ? 'restored' : 'not-empty',
      keys: this.data.size,
      leases: this.leaseTable.size,
      ...this.header(),
    };
  }

  /** Rebuilds a machine from {@link KvStateMachine.snapshot} bytes; returns an error for corrupt bytes. */
  static fromSnapshot(
    bytes: Uint8Array,
    config: Partial<StateMachineConfig> = {},
    partition = 0,
  ): KvStateMachine | CorruptDataError {
    const raw = decode(bytes, 'state machine snapshot');
    if (raw instanceof CorruptDataError) return raw;
    const s = raw as {
      v?: unknown;
      applied?: unknown;
      revision?: unknown;
      data?: unknown;
      sessions?: unknown;
      leases?: unknown;
      attached?: unknown;
    };
    if (
      typeof s !== 'object' ||
      s === null ||
      (s.v !== SNAPSHOT_VERSION && s.v !== SNAPSHOT_VERSION_V1) ||
      !Number.isSafeInteger(s.applied) ||
      !Array.isArray(s.data) ||
      !Array.isArray(s.sessions)
    ) {
      return new CorruptDataError('state machine snapshot');
    }
    const m = new KvStateMachine(config, partition);
    m.applied = s.applied as number;
    const bad = s.v === SNAPSHOT_VERSION ? m.restoreData(s.revision, s.data) : m.restoreV1Data(s.data);
    if (bad) return bad;
    const badLeases = m.restoreLeases(s.leases, s.attached);
    if (badLeases) return badLeases;
    for (const e of s.sessions as unknown[]) {
      if (
        !Array.isArray(e) ||
        typeof e[0] !== 'string' ||
        !Number.isSafeInteger(e[1]) ||
        !Number.isSafeInteger(e[3])
      ) {
        return new CorruptDataError('state machine snapshot session');
      }
      m.sessions.set(e[0], { seq: e[1], result: e[2] as KvResult, lastIndex: e[3] });
    }
    return m;
  }

  private restoreLeases(leases: unknown, attached: unknown): CorruptDataError | undefined {
    if (leases === undefined && attached === undefined) return undefined; // a snapshot from before leases
    if (!this.leaseTable.restore(leases) || !Array.isArray(attached) || attached.length % 2 !== 0)
      return new CorruptDataError('state machine snapshot leases');
    for (let i = 0; i < attached.length; i += 2) {
      const key = attached[i];
      const lease = attached[i + 1];
      const e = typeof key === 'string' ? this.data.get(key) : undefined;
      if (e === undefined || typeof lease !== 'number' || !this.leaseTable.has(lease))
        return new CorruptDataError('state machine snapshot lease attachment');
      this.leaseTable.attach(ownString(key as string), lease);
    }
    return undefined;
  }

  private restoreData(revision: unknown, data: unknown[]): CorruptDataError | undefined {
    if (!isRevision(revision) || data.length % 5 !== 0) return new CorruptDataError('state machine snapshot');
    this.rev = revision;
    const keys: string[] = [];
    const entries: Entry[] = [];
    for (let i = 0; i < data.length; i += 5) {
      const [k, v, c, m, ver] = [data[i], data[i + 1], data[i + 2], data[i + 3], data[i + 4]];
      if (typeof k !== 'string' || (typeof v !== 'string' && !(v instanceof Uint8Array)))
        return new CorruptDataError('state machine snapshot entry');
      if (!isRevision(c) || !isRevision(m) || !isRevision(ver) || c < 1 || m < c || m > revision || ver < 1)
        return new CorruptDataError('state machine snapshot revisions');
      keys.push(ownString(k));
      entries.push(new Entry(ownValue(v), c, m, ver));
    }
    // A snapshot lists its keys in order: one bulk load (a restart restores every group this way).
    // Keys out of order (not what this version writes) are set one by one, as before.
    if (!this.data.loadSorted(keys, entries)) {
      for (let i = 0; i < keys.length; i++) this.data.set(keys[i]!, entries[i]!);
    }
    return undefined;
  }

  /** A version-1 snapshot kept no revisions: its keys are taken as written once, at revision 1. */
  private restoreV1Data(data: unknown[]): CorruptDataError | undefined {
    for (const e of data) {
      if (!Array.isArray(e) || typeof e[0] !== 'string')
        return new CorruptDataError('state machine snapshot entry');
      const v = e[1];
      if (typeof v !== 'string' && !(v instanceof Uint8Array))
        return new CorruptDataError('state machine snapshot value');
      this.data.set(ownString(e[0]), new Entry(ownValue(v), 1, 1, 1));
    }
    this.rev = this.data.size > 0 ? 1 : 0;
    return undefined;
  }
}

/** The revisions of an absent key. */
const ABSENT = Object.freeze({ createRevision: 0, modRevision: 0, version: 0 });

function metaOf(e: Entry): { createRevision: number; modRevision: number; version: number } {
  return { createRevision: e.createRevision, modRevision: e.modRevision, version: e.version };
}

/** Bytewise order of two values (a string as its UTF-8 bytes), for `<` and `>` compares. */
function compareValues(a: Value, b: Value): number {
  if (typeof a === 'string' && typeof b === 'string') return compareKeys(a, b);
  const x = bytesOf(a);
  const y = bytesOf(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

function isRevision(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}

/** Whether a CAS applies to the key's current entry, and if not why (see `CasOpSchema`). */
function casOutcome(
  op: Extract<KvOp, { op: 'cas' }>,
  current: Entry | undefined,
): 'applied' | 'mismatch' | 'not-found' {
  let want: number | undefined;
  let have = 0;
  if (op.expectedModRevision !== undefined) {
    want = op.expectedModRevision;
    have = current?.modRevision ?? 0;
  } else if (op.expectedVersion !== undefined) {
    want = op.expectedVersion;
    have = current?.version ?? 0;
  }
  if (want !== undefined) {
    if (want === have) return 'applied';
    return current === undefined ? 'not-found' : 'mismatch';
  }
  const expected = op.expected ?? null;
  if (expected === null) return current === undefined ? 'applied' : 'mismatch';
  if (current === undefined) return 'not-found';
  return valuesEqual(current.value, expected) ? 'applied' : 'mismatch';
}
