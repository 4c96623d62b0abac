/**
 * A checked client workload for the real-process membership tests: K `@paxkv/client` clients loop over
 * get/put/cas/delete on a few keys while the cluster changes under them, every call recorded by the
 * client's own history recorder (checker format v1, one shared sink, so processes and ids are unique).
 * At the end a fresh client reads every key (recorded too), and the whole history goes through
 * `@paxkv/linearizability-checker` with the `kv` model (each key on its own). Written values are unique,
 * so with the final reads in the history an acknowledged write that was lost makes the check fail: the
 * final read would return a value that was overwritten by an acknowledged write before it.
 */
import { type PaxkvClient as Client, createClient } from '@paxkv/client';
import type { TlsOptions } from '@paxkv/common';
import { check, readJsonl } from '@paxkv/linearizability-checker';
import { harnessClientTls } from './harness.js';

/** Options of {@link CheckedKvWorkload}; every field but `servers` has a default. */
export interface CheckedKvWorkloadOptions {
  /** Addresses the clients find the cluster through (they learn the rest from the lookup table). */
  readonly servers: readonly string[];
  /** Concurrent clients; the first one only reads. Default 4. */
  readonly clients?: number;
  /** The keys (few: operations conflict). Default `mk-0` .. `mk-5`. */
  readonly keys?: readonly string[];
  /** Deadline of one call, retries included; past it the call is recorded as indeterminate. Default 5 000. */
  readonly operationTimeoutMs?: number;
  /** TLS of the clients. Default: the harness's (its CA when the cluster runs `tls-token`), else none. */
  readonly tls?: TlsOptions;
}

/** What {@link CheckedKvWorkload.finish} found. */
export interface CheckedKvOutcome {
  /** The checker's verdict over the whole history (final reads included). */
  readonly verdict: 'linearizable' | 'not-linearizable' | 'unknown';
  /** Keys whose verdict is not `linearizable`, with the checker's reason. */
  readonly badKeys: ReadonlyArray<{ key: string; verdict: string; reason?: string }>;
  /** Recorded operations: ok, fail (certainly not applied), info (outcome unknown). */
  readonly ok: number;
  readonly failed: number;
  readonly indeterminate: number;
  /** Acknowledged writes (put, delete, cas that applied). */
  readonly acknowledgedWrites: number;
  /** Keys whose final read succeeded, of all keys. */
  readonly finalReads: number;
  /** The history, JSON lines (for a failure message or a file). */
  readonly history: string;
}

const text = (v: string | Uint8Array | null): string | null =>
  v === null || typeof v === 'string' ? v : Buffer.from(v).toString('utf8');

/** The checked workload (see the module comment). */
export class CheckedKvWorkload {
  /** Every history line so far. */
  readonly lines: string[] = [];
  /** Acknowledged writes so far (live counter: wait on it to know writes go on). */
  acknowledgedWrites = 0;
  /** Calls that threw so far. */
  errors = 0;
  readonly keys: readonly string[];
  private readonly sink = { write: (line: string) => void this.lines.push(line) };
  private readonly timeoutMs: number;
  private readonly clients: Client[] = [];
  private loops: Promise<void>[] = [];
  private stopped = false;

  constructor(private readonly options: CheckedKvWorkloadOptions) {
    this.keys = options.keys ?? Array.from({ length: 6 }, (_, i) => `mk-${i}`);
    this.timeoutMs = options.operationTimeoutMs ?? 5000;
  }

  private client(servers: readonly string[]): Client {
    const tls = this.options.tls ?? harnessClientTls();
    return createClient({
      servers: [...servers],
      ...(tls ? { tls } : {}),
      history: this.sink,
      requestTimeoutMs: this.timeoutMs,
      attemptTimeoutMs: Math.max(200, Math.floor(this.timeoutMs / 3)),
    });
  }

  /** Starts the client loops. */
  start(): void {
    const n = this.options.clients ?? 4;
    for (let i = 0; i < n; i++) {
      const c = this.client(this.options.servers);
      this.clients.push(c);
      this.loops.push(this.loop(c, i));
    }
  }

  private async loop(c: Client, index: number): Promise<void> {
    let n = 0;
    let last: string | null = null;
    // A small deterministic generator per client: the mix does not need a seed to be reproducible.
    let s = (index + 1) * 2654435761;
    const next = () => {
      s = (Math.imul(s ^ (s >>> 15), 2246822519) + 0x6d2b79f5) >>> 0;
      return s / 2 ** 32;
    };
    while (!this.stopped) {
      const key = this.keys[Math.floor(next() * this.keys.length)] as string;
      const r = index === 0 ? 0 : next();
      const value = `c${index}-${n++}`;
      try {
        if (r < 0.4) {
          last = text(await c.get(key));
        } else if (r < 0.7) {
          await c.put(key, value);
          this.acknowledgedWrites++;
        } else if (r < 0.9) {
          const res = await c.cas(key, next() < 0.5 ? last : null, value);
          if (res.outcome === 'applied') this.acknowledgedWrites++;
        } else {
          await c.delete(key);
          this.acknowledgedWrites++;
        }
      } catch {
        this.errors++;
      }
      await new Promise((res) => setTimeout(res, Math.floor(next() * 5)));
    }
  }

  /** Waits (polling a counter: an event, with `ms` as a guard) until `more` writes were acknowledged. */
  async waitForWrites(more: number, ms = 60_000): Promise<void> {
    const target = this.acknowledgedWrites + more;
    const deadline = Date.now() + ms;
    while (this.acknowledgedWrites < target) {
      if (Date.now() > deadline) {
        throw new Error(
          `only ${this.acknowledgedWrites - target + more} of ${more} writes acknowledged in ${ms} ms (${this.errors} errors)`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Stops the loops, reads every key through `servers` with a fresh recorded client (retrying until a
   * read succeeds or `readDeadlineMs` passes), and checks the whole history.
   */
  async finish(servers: readonly string[], readDeadlineMs = 60_000): Promise<CheckedKvOutcome> {
    this.stopped = true;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((c) => c.close().catch(() => {})));
    const reader = this.client(servers);
    let finalReads = 0;
    try {
      const deadline = Date.now() + readDeadlineMs;
      for (const key of this.keys) {
        for (;;) {
          const ok = await reader.get(key).then(
            () => true,
            () => false,
          );
          if (ok) {
            finalReads++;
            break;
          }
          if (Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      await reader.close().catch(() => {});
    }
    const history = this.lines.join('');
    const result = await check(readJsonl(history), { model: 'kv' });
    let ok = 0;
    let failed = 0;
    let indeterminate = 0;
    for (const line of this.lines) {
      const t = (JSON.parse(line) as { type: string }).type;
      if (t === 'ok') ok++;
      else if (t === 'fail') failed++;
      else if (t === 'info') indeterminate++;
    }
    const invoked = this.lines.filter((l) => l.includes('"type":"invoke"')).length;
    indeterminate += invoked - ok - failed - indeterminate;
    return {
      verdict: result.verdict,
      badKeys: result.partitions
        .filter((p) => p.verdict !== 'linearizable')
        .map((p) => ({ key: String(p.key), verdict: p.verdict, ...(p.reason ? { reason: p.reason } : {}) })),
      ok,
      failed,
      indeterminate,
      acknowledgedWrites: this.acknowledgedWrites,
      finalReads,
      history,
    };
  }
}

/** One line for a test's output: what the workload did and what the checker said. */
export function describeOutcome(o: CheckedKvOutcome): string {
  return `operations ok ${o.ok}, failed ${o.failed}, indeterminate ${o.indeterminate}; acknowledged writes ${o.acknowledgedWrites}; final reads ${o.finalReads}; checker: ${o.verdict}${o.badKeys.length > 0 ? ` (${o.badKeys.map((k) => `${k.key}: ${k.verdict} ${k.reason ?? ''}`).join('; ')})` : ''}`;
}
