/**
 * Property test of the client's retry logic against the in-process fake cluster under random
 * faults (lost replies, broken connections, servers down, elections, delays, server errors):
 * - exactly-once: no write is applied twice, and every write that returned ok was applied once;
 * - honesty: a write the client reports as certainly not applied (a history `fail`) was not applied;
 * - liveness: once the faults stop, every call completes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FakeCluster, localAddresses } from '../test/fake-cluster.js';
import { createClient } from './client.js';

type Fault =
  | { kind: 'drop'; node: number; n: number }
  | { kind: 'break'; node: number }
  | { kind: 'down'; node: number; ms: number }
  | { kind: 'election'; partition: number; ms: number; next: number }
  | { kind: 'delay'; node: number; ms: number }
  | { kind: 'error'; node: number; code: 'NOT_READY' | 'UNAVAILABLE' | 'TIMEOUT'; ms: number };

const fault: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({
    kind: fc.constant('drop' as const),
    node: fc.integer({ min: 1, max: 3 }),
    n: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({ kind: fc.constant('break' as const), node: fc.integer({ min: 1, max: 3 }) }),
  fc.record({
    kind: fc.constant('down' as const),
    node: fc.integer({ min: 1, max: 3 }),
    ms: fc.integer({ min: 5, max: 250 }),
  }),
  fc.record({
    kind: fc.constant('election' as const),
    partition: fc.integer({ min: 0, max: 3 }),
    ms: fc.integer({ min: 5, max: 250 }),
    next: fc.integer({ min: 0, max: 2 }),
  }),
  fc.record({
    kind: fc.constant('delay' as const),
    node: fc.integer({ min: 1, max: 3 }),
    ms: fc.integer({ min: 0, max: 30 }),
  }),
  fc.record({
    kind: fc.constant('error' as const),
    node: fc.integer({ min: 1, max: 3 }),
    code: fc.constantFrom('NOT_READY' as const, 'UNAVAILABLE' as const, 'TIMEOUT' as const),
    ms: fc.integer({ min: 5, max: 60 }),
  }),
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('client retry logic under random faults (property)', () => {
  it('is exactly-once, honest about failures, and live once faults stop', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fault, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer(),
        async (faults, callers, seed) => {
          const cluster = new FakeCluster({ partitions: 4 });
          cluster.setAddresses(localAddresses(cluster));
          const events: Array<{
            type: string;
            id: number;
            op?: { f: string; value?: string };
            result?: { ok?: boolean };
          }> = [];
          const client = createClient({
            servers: [cluster.addresses.get(1)!],
            connectionFactory: cluster.connectionFactory(),
            attemptTimeoutMs: 30,
            requestTimeoutMs: 150,
            backoff: { initialDelayMs: 2, maxDelayMs: 20 },
            tableRefreshIntervalMs: 10,
            leaderDiscoveryIntervalMs: 50,
            history: { write: (line) => events.push(JSON.parse(line)) },
            random: mulberry32(seed),
          });
          let stop = false;
          for (const id of cluster.ids) cluster.fault(id).delayMs = 1;
          const chaos = (async () => {
            for (const f of faults) {
              await sleep(10);
              switch (f.kind) {
                case 'drop':
                  cluster.fault(f.node).dropReplies += f.n;
                  break;
                case 'break':
                  cluster.breakConnections(f.node);
                  break;
                case 'down':
                  cluster.fault(f.node).down = true;
                  cluster.breakConnections(f.node);
                  setTimeout(() => {
                    cluster.fault(f.node).down = false;
                  }, f.ms);
                  break;
                case 'election': {
                  cluster.leaders.set(f.partition, null);
                  const next = cluster.replicasOf(f.partition)[f.next]!;
                  setTimeout(() => cluster.leaders.set(f.partition, next), f.ms);
                  break;
                }
                case 'delay':
                  cluster.fault(f.node).delayMs = f.ms;
                  break;
                case 'error':
                  cluster.fault(f.node).failWith = f.code;
                  setTimeout(() => {
                    cluster.fault(f.node).failWith = null;
                  }, f.ms);
                  break;
              }
            }
          })();
          let unique = 0;
          const run = async (c: number) => {
            for (let i = 0; !stop || i < 6; i++) {
              const key = `k${(c + i) % 5}`;
              const value = `v${c}-${i}-${unique++}`;
              try {
                if (i % 3 === 2) await client.cas(key, await client.get(key), value);
                else await client.put(key, value);
              } catch {
                // Failures are checked through the history below.
              }
            }
          };
          const work = Promise.all(Array.from({ length: callers }, (_, c) => run(c)));
          await chaos;
          stop = true;
          await work;
          await sleep(100);
          for (const id of cluster.ids)
            Object.assign(cluster.fault(id), { dropReplies: 0, delayMs: 0, down: false, failWith: null });
          // Liveness once healthy.
          expect(await client.put('final', 'ok')).toBeDefined();
          await client.close();

          for (const n of cluster.applied.values()) expect(n).toBe(1);
          const invokes = new Map(events.filter((e) => e.type === 'invoke').map((e) => [e.id, e]));
          for (const e of events) {
            const op = invokes.get(e.id)?.op;
            if (op?.value === undefined) continue;
            const applied = cluster.appliedValues.get(op.value) ?? 0;
            if (e.type === 'fail') expect(applied).toBe(0);
            if (e.type === 'ok') expect(applied).toBe(op.f === 'put' || e.result?.ok ? 1 : 0);
            if (e.type === 'info') expect(applied).toBeLessThanOrEqual(1);
          }
          for (const v of cluster.appliedValues.values()) expect(v).toBe(1);
        },
      ),
      { numRuns: 20 },
    );
  }, 120_000);
});

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
