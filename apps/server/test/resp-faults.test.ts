/**
 * RESP under faults, with real processes: an ioredis workload on every server of a 3-server cluster while
 * the leader of a partition is SIGKILLed and later restarted on its data. The whole history (with the
 * final value of every key read afterwards) must be linearizable, so no acknowledged write is lost or
 * applied twice, and the survivors must keep answering while the server is down.
 */
import { buildHistory, checkSync, type OperationSpec } from '@paxkv/linearizability-checker';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { TestServer } from './harness.js';
import {
  type LinInput,
  type LinOutput,
  redisModel,
  redisWorkload,
  respClusterFixture,
  testRedis,
} from './resp-workload.js';

const fixture = respClusterFixture();

async function connect(s: TestServer): Promise<Redis> {
  // A connection to a killed server stays down (its client stops).
  const r = testRedis(s.respPort as number, true);
  fixture.track(r);
  await r.connect();
  return r;
}

/** Resolves once `count()` reaches `n` (checked after every operation of the workload). */
function counter() {
  let n = 0;
  const waiters: Array<{ at: number; resolve: () => void }> = [];
  return {
    hit() {
      n++;
      for (const w of waiters.filter((x) => n >= x.at)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
    get value() {
      return n;
    },
    reach(more: number): Promise<void> {
      const at = n + more;
      return new Promise((resolve) => (n >= at ? resolve() : waiters.push({ at, resolve })));
    },
  };
}

describe('RESP under faults', () => {
  it('a leader SIGKILLed and restarted during an ioredis workload: linearizable, no acknowledged write lost', async () => {
    const cluster = fixture.cluster();
    const keys = ['f:a', 'f:b', 'f:c', 'f:d'];
    // The victim: the server leading partition 0 (a leader kill forces an election under load).
    const leaders = await cluster.leaders();
    const victim = await cluster.serverOfNode(leaders.get(0) as number);
    const survivors = cluster.servers.filter((s) => s !== victim);
    const conns = await Promise.all([...survivors, ...survivors, victim].map((s) => connect(s)));
    const answered = counter();
    let stop = false;
    const t0 = performance.now();
    const running = redisWorkload(conns, {
      keys,
      t0,
      until: () => stop,
      onOp: (ok) => {
        if (ok) answered.hit();
      },
    });
    try {
      await answered.reach(100);
      expect(await cluster.kill(victim, 'SIGKILL')).toBe('SIGKILL');
      // The survivors keep answering while the victim is down (partition 0 elects a new leader).
      await answered.reach(150);
      cluster.start(victim);
      await cluster.waitReady(60_000);
      await answered.reach(100);
      stop = true;
      const ops = await running;
      // The final value of every key, read after everything else returned, is part of the history.
      const reader = await connect(survivors[0] as TestServer);
      const final: OperationSpec<LinInput, LinOutput>[] = [];
      for (const key of [...keys, `${keys[0]}:n0`, `${keys[0]}:n1`]) {
        const call = performance.now() - t0;
        const value = await reader.get(key);
        final.push({
          process: 1000,
          call,
          ret: performance.now() - t0,
          input: { f: 'get', key },
          output: { value },
        });
      }
      const history = [...ops, ...final];
      const result = checkSync(buildHistory(history), { model: redisModel, timeoutMs: 120_000 });
      expect(result.verdict).toBe('linearizable');
      const unknown = ops.filter((o) => o.ret === undefined).length;
      expect(ops.length - unknown).toBeGreaterThan(350);
      // The check can fail: the same history whose final read of a written key answers a value nobody
      // wrote (as if the write were lost) is not linearizable.
      const lastPut = [...ops].reverse().find((o) => o.ret !== undefined && o.input.f === 'put');
      if (lastPut) {
        const lost = history.map((o) =>
          o.process === 1000 && o.input.key === lastPut.input.key
            ? { ...o, output: { value: `lost-${o.input.key}` } }
            : o,
        );
        expect(checkSync(buildHistory(lost), { model: redisModel, timeoutMs: 120_000 }).verdict).not.toBe(
          'linearizable',
        );
      }
    } finally {
      stop = true;
      await running.catch(() => []);
    }
  }, 300_000);
});
