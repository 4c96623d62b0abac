/**
 * The one code path both systems are driven through: the load generator only ever calls these
 * methods, so paxkv and etcd see the same keys, values, concurrency and client-side overhead apart
 * from their own client libraries.
 */
export interface Target {
  /** `paxkv` or `etcd`, for the report. */
  readonly system: string;
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
