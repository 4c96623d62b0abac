/**
 * Lessees under the nemesis: N clients that each, in a loop, grant a lease, attach their own key to it,
 * keep it alive (every TTL/4) while reading the key, then stop renewing and read until the key is gone,
 * and start over. Every grant, put, keep-alive and read is recorded with its times, and each lease's
 * history goes through `checkLeaseHistory`: a key never disappears while its lease was kept alive within
 * the TTL, and is never read again once its end was observed. (How soon it goes after the last
 * keep-alive is not checked under faults: elections may postpone an expiry; the real-process lease test
 * and the kvstore simulation check that bound on a healed cluster.)
 */

import { createClient, type PaxkvClient } from '@paxkv/client';
import type { TlsOptions } from '@paxkv/common';
import { type CoordinationCheck, checkLeaseHistory, type LeaseEvent } from '@paxkv/linearizability-checker';
import type { Rng } from './rng.js';

/** What the lessees did, for the run's summary. */
export interface LesseesSummary {
  readonly lessees: number;
  readonly leases: number;
  readonly keepAlives: number;
  /** Leases that ended by expiry (their key was seen gone after keep-alives stopped). */
  readonly expired: number;
  readonly check: CoordinationCheck;
}

interface LeaseRecord {
  readonly id: string;
  readonly ttlMs: number;
  readonly events: LeaseEvent[];
}

const now = () => performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `n` lessees (see the module comment). */
export class LesseePool {
  private stopped = false;
  private readonly leases: LeaseRecord[] = [];
  private keepAlives = 0;
  private expired = 0;
  private readonly loops: Promise<void>[];
  private readonly clients: PaxkvClient[];

  /** Starts the lessees' loops. */
  constructor(
    servers: readonly string[],
    n: number,
    private readonly ttlMs: number,
    rng: Rng,
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
    this.loops = this.clients.map((c, i) => this.loop(c, i, rng.fork()));
  }

  private async loop(client: PaxkvClient, i: number, rng: Rng): Promise<void> {
    const key = `{lessee-${i}}:k`;
    for (let generation = 0; !this.stopped; generation++) {
      let lease: number;
      const events: LeaseEvent[] = [];
      try {
        const invokedAt = now();
        lease = (await client.grant(this.ttlMs, { key })).lease;
        events.push({ kind: 'grant', invokedAt, completedAt: now() });
        const putAt = now();
        await client.put(key, `${i}.${generation}`, { lease });
        events.push({ kind: 'put', invokedAt: putAt, completedAt: now() });
      } catch {
        await sleep(100);
        continue; // a grant or put without an answer: this lease is not checked
      }
      this.leases.push({ id: `${key}#${generation}`, ttlMs: this.ttlMs, events });
      const aliveUntil = now() + this.ttlMs * (2 + rng.int(3));
      let lost = false;
      while (!this.stopped && !lost && now() < aliveUntil) {
        const at = now();
        try {
          await client.keepAlive(lease);
          events.push({ kind: 'keepalive', ok: true, invokedAt: at, completedAt: now() });
        } catch (e) {
          const gone = (e as { code?: string }).code === 'LEASE_NOT_FOUND';
          events.push({ kind: 'keepalive', ok: gone ? false : 'unknown', invokedAt: at, completedAt: now() });
          lost = gone;
        }
        this.keepAlives++;
        await this.read(client, key, events);
        await sleep(this.ttlMs / 4);
      }
      // Keep-alives stop: read until the key is gone (or the run ends).
      while (!this.stopped) {
        if ((await this.read(client, key, events)) === false) {
          this.expired++;
          break;
        }
        await sleep(200);
      }
    }
  }

  private async read(client: PaxkvClient, key: string, events: LeaseEvent[]): Promise<boolean | undefined> {
    const invokedAt = now();
    try {
      const present = (await client.get(key)) !== null;
      events.push({ kind: 'read', present, invokedAt, completedAt: now() });
      return present;
    } catch {
      return undefined;
    }
  }

  /** Stops the loops, closes the clients, and checks every lease's history. */
  async finish(graceMs: number): Promise<LesseesSummary> {
    this.stopped = true;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((c) => c.close()));
    const violations = this.leases.flatMap(
      (l) => checkLeaseHistory(l, { graceMs, slackMs: Number.POSITIVE_INFINITY }).violations,
    );
    return {
      lessees: this.clients.length,
      leases: this.leases.length,
      keepAlives: this.keepAlives,
      expired: this.expired,
      check: { ok: violations.length === 0, violations },
    };
  }
}
