/**
 * Lockers under the nemesis: N clients that loop `lock('{nemesis-lock}')`, then a read-modify-write of a
 * resource key under the lock through the fenced `lock.put` (the value carries the holder's fencing
 * token), then `unlock`. Through the faults a holder may lose its lease while it believes it holds the
 * lock (that is what leases do, and why writes are fenced), so the check is on what the resource applied:
 * the fenced writes, ordered by the revision at which they were applied, must carry tokens that never go
 * backwards (`checkLockHistory`), and every token is a revision that only one holding was granted.
 */

import { createClient, type PaxkvClient } from '@paxkv/client';
import type { TlsOptions } from '@paxkv/common';
import { type CoordinationCheck, checkLockHistory, type FencedWrite } from '@paxkv/linearizability-checker';

/** Name of the lock; its keys and the resource share the hash tag. */
export const NEMESIS_LOCK = '{nemesis-lock}';
/** The resource key written under the lock. */
export const NEMESIS_LOCK_RESOURCE = '{nemesis-lock}:resource';

/** What the lockers did, for the run's summary. */
export interface LockersSummary {
  readonly lockers: number;
  /** Locks taken. */
  readonly acquired: number;
  /** Fenced writes applied, and refused (the lock was lost meanwhile). */
  readonly writes: number;
  readonly refused: number;
  readonly check: CoordinationCheck;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `n` lockers (see the module comment). */
export class LockerPool {
  private stopped = false;
  private acquired = 0;
  private refused = 0;
  /** Applied fenced writes: revision, token, holder. */
  private readonly applied: { revision: number; token: number; client: number }[] = [];
  /** Tokens granted, to check that no two holdings share one. */
  private readonly tokens = new Map<number, number>();
  private readonly duplicateTokens: string[] = [];
  private readonly clients: PaxkvClient[];
  private readonly loops: Promise<void>[];

  /** Starts the lockers' loops (lease TTL `ttlMs`). */
  constructor(
    servers: readonly string[],
    n: number,
    private readonly ttlMs: number,
    operationTimeoutMs: number,
    tls?: TlsOptions,
  ) {
    this.clients = Array.from({ length: n }, () =>
      createClient({
        servers: [...servers],
        requestTimeoutMs: operationTimeoutMs,
        ...(tls === undefined ? {} : { tls }),
      }),
    );
    this.loops = this.clients.map((c, i) => this.loop(c, i));
  }

  private async loop(client: PaxkvClient, i: number): Promise<void> {
    while (!this.stopped) {
      const stop = new AbortController();
      const poll = setInterval(() => {
        if (this.stopped) stop.abort(new Error('run over'));
      }, 100);
      try {
        const lock = await client.lock(NEMESIS_LOCK, { ttlMs: this.ttlMs, signal: stop.signal });
        this.acquired++;
        const other = this.tokens.get(lock.token);
        if (other !== undefined)
          this.duplicateTokens.push(`token ${lock.token} granted to locker ${other} and to locker ${i}`);
        this.tokens.set(lock.token, i);
        try {
          const current = await client.get(NEMESIS_LOCK_RESOURCE);
          const n = current === null ? 0 : Number(String(current).split(':')[1] ?? 0);
          const r = await lock.put(NEMESIS_LOCK_RESOURCE, `${lock.token}:${n + 1}`);
          this.applied.push({ revision: r.revision, token: lock.token, client: i });
        } catch (e) {
          if ((e as { code?: string }).code === 'LOCK_LOST') this.refused++;
        } finally {
          await lock.unlock().catch(() => {});
        }
      } catch {
        await sleep(50); // lost while waiting, or no leader: try again
      } finally {
        clearInterval(poll);
      }
    }
  }

  /** Stops the loops, closes the clients and checks the fenced writes. */
  async finish(): Promise<LockersSummary> {
    this.stopped = true;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((c) => c.close()));
    const writes: FencedWrite[] = [...this.applied]
      .sort((a, b) => a.revision - b.revision)
      .map((w) => ({ client: w.client, token: w.token }));
    const check = checkLockHistory([], writes);
    const violations = [...check.violations, ...this.duplicateTokens];
    return {
      lockers: this.clients.length,
      acquired: this.acquired,
      writes: this.applied.length,
      refused: this.refused,
      check: { ok: violations.length === 0, violations },
    };
  }
}
