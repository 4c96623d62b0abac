/**
 * The one code path both systems are driven through: the load generator only ever calls these
 * methods, so paxkv and etcd see the same keys, values, concurrency and client-side overhead apart
 * from their own client libraries.
 */
export interface Target {
  /** `paxkv` or `etcd`, for the report. */
  readonly system: string;
  /** The client's activity counters (retries, redirects, table fetches...), when it keeps any. */
  clientStats?(): Readonly<Record<string, number>>;
  /** Durable write: resolves once the system acknowledged it. Rejects on failure. */
  put(key: string, value: string): Promise<void>;
  /** Linearizable read: the value, or `null` when the key is absent. Rejects on failure. */
  get(key: string): Promise<string | null>;
  /**
   * Compare-and-set: writes `value` when the current value equals `expected` (`null`: only if the key
   * is absent). Resolves whether it was applied and, on a mismatch, the value found (so the caller
   * can retry with a fresh expectation, as a real CAS loop does); rejects on failure.
   */
  cas(key: string, expected: string | null, value: string): Promise<CasOutcome>;
  /**
   * A transaction of 2 compares and 2 puts: if neither key's version equals {@link TXN_SENTINEL_VERSION}
   * (always true: the compares are evaluated, never fail) write `valueA` to `keyA` and `valueB` to
   * `keyB`, atomically. The keys share a hash tag (one paxkv partition). Rejects on failure.
   */
  txn(keyA: string, keyB: string, valueA: string, valueB: string): Promise<void>;
  /**
   * A linearizable read of the keys `start <= key < end`, at most `limit` of them, with values (in
   * paxkv: one hash tag, so one partition at one revision). Resolves the number of keys read.
   */
  range(start: string, end: string, limit: number): Promise<number>;
  /**
   * Watches every key under `prefix`: `onPut` gets each put (key, value) as delivered. Resolves once the
   * watch is open (writes after it are delivered). Optional: only the watch figure uses it.
   */
  watchPrefix?(
    prefix: string,
    onPut: (key: string, value: string) => void,
  ): Promise<{ cancel(): Promise<void> }>;
  /** Closes the client's connections. */
  close(): Promise<void>;
}

/** What a {@link Target.cas} did. */
export interface CasOutcome {
  /** The write happened. */
  readonly applied: boolean;
  /** On a mismatch, the value found (`null`: absent); on success, `undefined`. */
  readonly current?: string | null;
}

/** The version the `txn` workload's compares test against (`!=`): no key reaches it in a run. */
export const TXN_SENTINEL_VERSION = 999_999_999;
