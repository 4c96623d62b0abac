/**
 * The replicated key-value state machine: GET, PUT, CAS, DELETE, client sessions for exactly-once
 * writes, and snapshots. Deterministic: every replica that applies the same log reaches the same state,
 * including which sessions are remembered (expiry is a function of the log index, never of a clock).
 * @module
 */
import {
  BadRequestError,
  DEFAULT_MAX_VALUE_BYTES,
  type KvOp,
  type KvResult,
  type PaxkvError,
  type Value,
  valueByteLength,
} from '@paxkv/common';
import { CorruptDataError, decode, encode } from './codec.js';
import { isKvCommand, type KvCommand } from './command.js';

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
}

/** Defaults of {@link StateMachineConfig}. */
export const DEFAULT_STATE_MACHINE_CONFIG: Readonly<StateMachineConfig> = Object.freeze({
  maxSessions: 10_000,
  sessionTtlEntries: 1_000_000,
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

const SNAPSHOT_VERSION = 1;

/**
 * The key-value state of one partition. Entries are applied in log order through {@link
 * KvStateMachine.apply}; reads of the current state use {@link KvStateMachine.read}.
 */
export class KvStateMachine {
  private readonly config: StateMachineConfig;
  private readonly data = new Map<string, Value>();
  /** Sessions in order of their last write (oldest first): expiry pops from the front. */
  private readonly sessions = new Map<string, SessionEntry>();
  private applied = 0;

  constructor(config: Partial<StateMachineConfig> = {}) {
    this.config = { ...DEFAULT_STATE_MACHINE_CONFIG, ...config };
    for (const k of ['maxSessions', 'sessionTtlEntries'] as const) {
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

  /** Number of keys stored. */
  get size(): number {
    return this.data.size;
  }

  /** Number of sessions remembered. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The current value of `key` as a `get` result. */
  read(key: string): KvResult {
    return { op: 'get', value: this.data.get(key) ?? null };
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
    const { session } = command as KvCommand;
    if (!session || command.op.op === 'get')
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
    this.sessions.set(session.client, { seq: session.seq, result, lastIndex: index });
    while (this.sessions.size > this.config.maxSessions) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
    }
    return { ok: true, result, duplicate: false };
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

  private execute(op: KvOp): KvResult {
    const current = this.data.get(op.key);
    switch (op.op) {
      case 'get':
        return { op: 'get', value: current ?? null };
      case 'put':
        this.data.set(op.key, op.value);
        return { op: 'put', created: current === undefined };
      case 'delete':
        this.data.delete(op.key);
        return { op: 'delete', existed: current !== undefined };
      case 'cas': {
        if (op.expected === null) {
          if (current !== undefined) return { op: 'cas', outcome: 'mismatch', current };
        } else if (current === undefined) {
          return { op: 'cas', outcome: 'not-found', current: null };
        } else if (!valuesEqual(current, op.expected)) {
          return { op: 'cas', outcome: 'mismatch', current };
        }
        this.data.set(op.key, op.value);
        return { op: 'cas', outcome: 'applied', current: op.value };
      }
      case 'incr': {
        const before = current === undefined ? 0n : int64Of(current);
        if (before === null) return { op: 'incr', outcome: 'not-integer', value: null };
        const sum = before + BigInt(op.by);
        if (sum < INT64_MIN || sum > INT64_MAX) {
          return { op: 'incr', outcome: 'overflow', value: before.toString() };
        }
        const text = sum.toString();
        this.data.set(op.key, text);
        return { op: 'incr', outcome: 'applied', value: text };
      }
      case 'append': {
        const length = (current === undefined ? 0 : valueByteLength(current)) + valueByteLength(op.value);
        if (length > DEFAULT_MAX_VALUE_BYTES) {
          return {
            op: 'append',
            outcome: 'too-large',
            length: current === undefined ? 0 : valueByteLength(current),
          };
        }
        this.data.set(
          op.key,
          current === undefined
            ? op.value
            : typeof current === 'string' && typeof op.value === 'string'
              ? current + op.value
              : concatValues(current, op.value),
        );
        return { op: 'append', outcome: 'applied', length };
      }
      case 'getdel':
        if (current !== undefined) this.data.delete(op.key);
        return { op: 'getdel', value: current ?? null };
      case 'set': {
        const applies =
          op.condition === 'always' ||
          (op.condition === 'absent' && current === undefined) ||
          (op.condition === 'present' && current !== undefined) ||
          (op.condition === 'equal' &&
            current !== undefined &&
            op.expected !== undefined &&
            valuesEqual(current, op.expected));
        if (applies) this.data.set(op.key, op.value);
        return op.get
          ? { op: 'set', applied: applies, previous: current ?? null }
          : { op: 'set', applied: applies };
      }
    }
  }

  /**
   * Serializes the whole state (data, sessions in expiry order, applied index). Restoring it with
   * {@link KvStateMachine.fromSnapshot} yields a machine that behaves identically.
   */
  snapshot(): Uint8Array {
    const data: [string, Value][] = [];
    for (const [k, v] of this.data) data.push([k, v]);
    const sessions: [string, number, KvResult, number][] = [];
    for (const [c, s] of this.sessions) sessions.push([c, s.seq, s.result, s.lastIndex]);
    return encode({ v: SNAPSHOT_VERSION, applied: this.applied, data, sessions });
  }

  /** Rebuilds a machine from {@link KvStateMachine.snapshot} bytes; returns an error for corrupt bytes. */
  static fromSnapshot(
    bytes: Uint8Array,
    config: Partial<StateMachineConfig> = {},
  ): KvStateMachine | CorruptDataError {
    const raw = decode(bytes, 'state machine snapshot');
    if (raw instanceof CorruptDataError) return raw;
    const s = raw as { v?: unknown; applied?: unknown; data?: unknown; sessions?: unknown };
    if (
      typeof s !== 'object' ||
      s === null ||
      s.v !== SNAPSHOT_VERSION ||
      !Number.isSafeInteger(s.applied) ||
      !Array.isArray(s.data) ||
      !Array.isArray(s.sessions)
    ) {
      return new CorruptDataError('state machine snapshot');
    }
    const m = new KvStateMachine(config);
    m.applied = s.applied as number;
    for (const e of s.data as unknown[]) {
      if (!Array.isArray(e) || typeof e[0] !== 'string')
        return new CorruptDataError('state machine snapshot entry');
      const v = e[1];
      if (typeof v !== 'string' && !(v instanceof Uint8Array))
        return new CorruptDataError('state machine snapshot value');
      m.data.set(e[0], v);
    }
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
}
