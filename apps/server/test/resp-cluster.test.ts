/**
 * The RESP front-end of a real 3-server cluster (`--resp-port` on each): ioredis against every server
 * (any server answers any key, and sees what the native port wrote), the commands and their errors,
 * pipelining, binary values, a concurrent ioredis workload whose history is checked linearizable, redis-cli
 * when it is installed, and hostile input while a well-behaved client keeps working.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { createClient } from '@paxkv/client';
import { buildHistory, checkSync } from '@paxkv/linearizability-checker';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { RawClient, type TestServer } from './harness.js';
import { RawResp, respCommand } from './resp-helpers.js';
import {
  type LinInput,
  type LinOutput,
  RETRYABLE_REPLY,
  redisModel,
  redisWorkload,
  respClusterFixture,
  retrying,
  testRedis,
} from './resp-workload.js';

const run = promisify(execFile);

const fixture = respClusterFixture();

function respPort(i: number): number {
  return (fixture.cluster().servers[i] as TestServer).respPort as number;
}

function client(i: number): Redis {
  const r = testRedis(respPort(i));
  return fixture.track(r);
}

async function connected(i: number): Promise<Redis> {
  const r = client(i);
  await r.connect();
  return r;
}

describe('RESP on a real cluster', () => {
  it('any server answers any key, and RESP and native clients share one store', async () => {
    const [a, b, c] = [await connected(0), await connected(1), await connected(2)];
    for (let i = 0; i < 12; i++) {
      const key = `shared:${i}`;
      const [w, r] = [[a, b, c][i % 3] as Redis, [a, b, c][(i + 1) % 3] as Redis];
      expect(await retrying(() => w.set(key, `v${i}`))).toBe('OK');
      expect(await retrying(() => r.get(key))).toBe(`v${i}`);
    }
    const native = await RawClient.connect((fixture.cluster().servers[1] as TestServer).address);
    try {
      const reply = (await native.callRetrying({ type: 'kv', op: { op: 'get', key: 'shared:3' } })) as {
        result: { value: Uint8Array };
      };
      expect(Buffer.from(reply.result.value).toString()).toBe('v3');
      await native.callRetrying({ type: 'kv', op: { op: 'put', key: 'from-native', value: 'hello' } });
      expect(await retrying(() => c.get('from-native'))).toBe('hello');
    } finally {
      native.close();
    }
  });

  it('runs every command against the cluster', async () => {
    const r = await connected(1);
    expect(await r.ping()).toBe('PONG');
    expect(await r.echo('e')).toBe('e');
    expect(await r.select(0)).toBe('OK');
    expect(await r.client('SETNAME', 'cluster-test')).toBe('OK');
    expect(await r.client('GETNAME')).toBe('cluster-test');
    expect(await r.set('c:k', '1', 'NX')).toBe('OK');
    expect(await r.set('c:k', '2', 'NX')).toBeNull();
    expect(await r.set('c:k', '2', 'XX', 'GET')).toBe('1');
    expect(await r.call('SET', 'c:k', '3', 'IFEQ', '2')).toBe('OK');
    expect(await r.call('CAS', 'c:k', '3', '4')).toBe(1);
    expect(await r.get('c:k')).toBe('4');
    expect(await r.mset('c:1', 'a', 'c:2', 'b', 'c:3', 'c')).toBe('OK');
    expect(await r.mget('c:1', 'c:2', 'c:3', 'c:none')).toEqual(['a', 'b', 'c', null]);
    expect(await r.exists('c:1', 'c:2', 'c:none')).toBe(2);
    expect(await r.del('c:1', 'c:2', 'c:none')).toBe(2);
    expect(await r.incr('c:n')).toBe(1);
    expect(await r.incrby('c:n', 10)).toBe(11);
    expect(await r.decr('c:n')).toBe(10);
    expect(await r.decrby('c:n', 3)).toBe(7);
    expect(await r.append('c:s', 'ab')).toBe(2);
    expect(await r.append('c:s', 'c')).toBe(3);
    expect(await r.getdel('c:s')).toBe('abc');
    expect(await r.exists('c:s')).toBe(0);
    const before = await r.dbsize();
    await r.set(`c:fresh:${randomBytes(4).toString('hex')}`, 'x');
    expect(await r.dbsize()).toBe(before + 1);
    const info = await r.info('replication');
    expect(info).toMatch(/paxkv_partition_\d+:role=(leader|follower)/);
    expect(await r.info('keyspace')).toContain(`db0:keys=${before + 1}`);
    await expect(r.call('NOPE')).rejects.toThrow("ERR unknown command 'NOPE'");
    await expect(r.call('GET')).rejects.toThrow("ERR wrong number of arguments for 'get' command");
    await r.set('c:text', 'abc');
    await expect(r.incr('c:text')).rejects.toThrow('ERR value is not an integer or out of range');
  });

  it('maps EXPIRE/PEXPIRE/TTL/PTTL/PERSIST and SET EX/PX/KEEPTTL/NX/XX/GET, SETEX onto leases', async () => {
    // A cluster that refuses for a moment (UNAVAILABLE while a loaded server misses heartbeats: suite run
    // A4) makes the whole sequence run again on fresh keys, as for the pipeline test below.
    await retrying(async (a) => {
      const r = await connected(0);
      const other = await connected(2);
      // No TTL: -1; absent: -2.
      await r.set(`t${a}:plain`, 'v');
      expect(await r.ttl(`t${a}:plain`)).toBe(-1);
      expect(await r.pttl(`t${a}:none`)).toBe(-2);
      expect(await r.expire(`t${a}:none`, 100)).toBe(0);
      // SET EX: a TTL another server reports too, within what was asked.
      expect(await r.set(`t${a}:ex`, 'v', 'EX', 100)).toBe('OK');
      const ttl = await other.ttl(`t${a}:ex`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(100 + 15); // a new leader adds a grace period of at most ~15 s
      expect(await other.pttl(`t${a}:ex`)).toBeGreaterThan(1000);
      // A plain SET clears the TTL; KEEPTTL keeps it; INCR and APPEND keep it.
      await r.set(`t${a}:ex`, 'w');
      expect(await r.ttl(`t${a}:ex`)).toBe(-1);
      await r.set(`t${a}:ex`, 'x', 'PX', 100_000);
      expect(await r.set(`t${a}:ex`, 'y', 'KEEPTTL')).toBe('OK');
      expect(await r.get(`t${a}:ex`)).toBe('y');
      expect(await r.ttl(`t${a}:ex`)).toBeGreaterThan(0);
      expect(await r.append(`t${a}:ex`, 'z')).toBe(2);
      expect(await r.ttl(`t${a}:ex`)).toBeGreaterThan(0);
      // NX / XX / GET together with EX.
      expect(await r.set(`t${a}:nx`, '1', 'EX', 100, 'NX')).toBe('OK');
      expect(await r.set(`t${a}:nx`, '2', 'EX', 100, 'NX')).toBeNull();
      expect(await r.set(`t${a}:nx`, '3', 'EX', 100, 'XX', 'GET')).toBe('1');
      expect(await r.set(`t${a}:absent`, '3', 'EX', 100, 'XX')).toBeNull();
      expect(await r.exists(`t${a}:absent`)).toBe(0);
      expect(await r.get(`t${a}:nx`)).toBe('3');
      expect(await r.ttl(`t${a}:nx`)).toBeGreaterThan(0);
      expect(await r.info('keyspace')).toMatch(/db0:keys=\d+,expires=[1-9]\d*,/);
      // EXPIRE with NX/XX/GT/LT, then PERSIST.
      expect(await r.expire(`t${a}:plain`, 100, 'XX')).toBe(0);
      expect(await r.expire(`t${a}:plain`, 100, 'NX')).toBe(1);
      expect(await r.get(`t${a}:plain`)).toBe('v');
      expect(await r.expire(`t${a}:plain`, 50, 'GT')).toBe(0);
      expect(await r.expire(`t${a}:plain`, 50, 'LT')).toBe(1);
      expect(await r.ttl(`t${a}:plain`)).toBeLessThanOrEqual(50 + 15);
      expect(await r.persist(`t${a}:plain`)).toBe(1);
      expect(await r.persist(`t${a}:plain`)).toBe(0);
      expect(await r.ttl(`t${a}:plain`)).toBe(-1);
      expect(await r.get(`t${a}:plain`)).toBe('v');
      // EXPIRE with a TTL <= 0 deletes the key.
      expect(await r.expire(`t${a}:plain`, 0)).toBe(1);
      expect(await r.exists(`t${a}:plain`)).toBe(0);
      // Errors in Redis's shape; the shortest TTL a lease has is 1 s.
      await expect(r.set(`t${a}:bad`, 'v', 'EX', 0)).rejects.toThrow(
        "ERR invalid expire time in 'set' command",
      );
      await expect(r.call('SET', `t${a}:bad`, 'v', 'PX', '500')).rejects.toThrow('ERR invalid expire time');
      await expect(r.call('SET', `t${a}:bad`, 'v', 'EX', '10', 'KEEPTTL')).rejects.toThrow(
        'ERR syntax error',
      );
      await expect(r.call('EXPIRE', `t${a}:nx`, '10', 'NX', 'XX')).rejects.toThrow('not compatible');
      // A key with a TTL disappears once it runs out (the leader expires its lease through the log):
      // a native watch sees its delete, and TTL says -2 afterwards.
      const native = createClient({
        servers: fixture.cluster().servers.map((x) => x.address),
        requestTimeoutMs: 15_000,
      });
      try {
        const w = native.watch(`t${a}:short`);
        await w.ready;
        expect(await r.setex(`t${a}:short`, 1, 'gone soon')).toBe('OK');
        const seen: string[] = [];
        for await (const e of w) {
          seen.push(e.type);
          if (e.type === 'delete') break;
        }
        expect(seen).toEqual(['put', 'delete']);
        expect(await r.ttl(`t${a}:short`)).toBe(-2);
        expect(await other.get(`t${a}:short`)).toBeNull();
      } finally {
        await native.close();
      }
    });
  });

  it('pipelines across partitions with replies in order, and keeps binary values intact', async () => {
    const r = await connected(2);
    // One pipeline of 600 commands; if the cluster refused one of them for now (a retryable reply on a
    // loaded machine), the whole pipeline runs again on fresh keys, so every check below is on one run.
    const { out, values } = await retrying(async (attempt) => {
      const p = r.pipeline();
      const values: Buffer[] = [];
      for (let i = 0; i < 200; i++) {
        const v = randomBytes(1 + (i % 50));
        values.push(v);
        p.set(`bin:${attempt}:${i}`, v);
        p.getBuffer(`bin:${attempt}:${i}`);
        p.incr(`pc:${attempt}:${i % 4}`);
      }
      const out = await p.exec();
      const refused = out?.find(([e]) => e !== null && RETRYABLE_REPLY.test(e.message));
      if (refused) throw refused[0];
      return { out, values };
    });
    for (let i = 0; i < 200; i++) {
      expect(out?.[i * 3]).toEqual([null, 'OK']);
      expect(out?.[i * 3 + 1]).toEqual([null, values[i]]);
      expect(out?.[i * 3 + 2]).toEqual([null, Math.floor(i / 4) + 1]);
    }
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await retrying(() => r.set('bin:all', all));
    const reader = await connected(0);
    expect(await retrying(() => reader.getBuffer('bin:all'))).toEqual(all);
  });

  it('MULTI/EXEC, WATCH, MSET and MGET are atomic within one hash tag; SCAN walks every partition', async () => {
    const r = await connected(0);
    const other = await connected(2);
    // Every step is retried on a retryable refusal (a loaded machine can leave a partition without a
    // majority for a moment); the transaction is one log entry, so a retried block first re-reads whether
    // the previous EXEC applied.
    expect(await retrying(() => r.mset('{acct}:a', '100', '{acct}:b', '0'))).toBe('OK');
    const done = await retrying(async () => {
      await r.watch('{acct}:a', '{acct}:b');
      const [a, b] = (await r.mget('{acct}:a', '{acct}:b')) as [string, string];
      if (a === '70' && b === '30') {
        await r.unwatch();
        return ['OK', 'OK'];
      }
      const out = await r
        .multi()
        .set('{acct}:a', String(Number(a) - 30))
        .set('{acct}:b', String(Number(b) + 30))
        .exec();
      const refused = out?.find(([e]) => e !== null)?.[0];
      if (refused) throw refused;
      return out?.map(([, v]) => v);
    });
    expect(done).toEqual(['OK', 'OK']);
    expect(await retrying(() => other.mget('{acct}:a', '{acct}:b'))).toEqual(['70', '30']);
    const aborted = await retrying(async () => {
      await r.watch('{acct}:a');
      await other.set('{acct}:a', '0');
      return r.multi().set('{acct}:b', '999').exec();
    });
    expect(aborted).toBeNull();
    expect(await retrying(() => other.get('{acct}:b'))).toBe('30');
    // Keys of different partitions in one transaction: Redis Cluster's CROSSSLOT error.
    const raw = await RawResp.open(respPort(1));
    const cross = Array.from({ length: 8 }, (_, i) => respCommand('SET', `cross:${i}`, 'v'));
    raw.write(Buffer.concat([respCommand('MULTI'), ...cross, respCommand('EXEC')]));
    await raw.until((t) => t.includes('CROSSSLOT'));
    raw.close();
    for (let i = 0; i < 40; i++) await retrying(() => r.set(`scanc:${i}`, 'v'));
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const at = cursor;
      const [next, keys] = await retrying(() => r.scan(at, 'MATCH', 'scanc:*', 'COUNT', 7));
      cursor = next;
      for (const k of keys) seen.add(k);
    } while (cursor !== '0');
    expect([...seen].sort()).toEqual(Array.from({ length: 40 }, (_, i) => `scanc:${i}`).sort());
  });

  it('a concurrent ioredis workload on every server is linearizable', async () => {
    const conns = await Promise.all([0, 1, 2, 0, 1, 2].map((i) => connected(i)));
    const ops = await redisWorkload(conns, { keys: ['lin:a', 'lin:b', 'lin:c'], opsPerClient: 60 });
    const result = checkSync(buildHistory(ops), { model: redisModel, timeoutMs: 60_000 });
    expect(result.verdict).toBe('linearizable');
    // The model can fail: two sequential INCRBY 1 that both answer 1 are not linearizable.
    const bad = buildHistory<LinInput, LinOutput>([
      { process: 0, call: 0, ret: 1, input: { f: 'incr', key: 'n', by: 1 }, output: { value: 1 } },
      { process: 1, call: 2, ret: 3, input: { f: 'incr', key: 'n', by: 1 }, output: { value: 1 } },
    ]);
    expect(checkSync(bad, { model: redisModel }).verdict).not.toBe('linearizable');
    expect(ops.filter((o) => o.ret !== undefined).length).toBeGreaterThan(300);
  });

  it('works with redis-cli when it is installed', async (ctx) => {
    const found = await run('redis-cli', ['--version']).catch(() => null);
    if (!found) {
      ctx.skip('redis-cli is not installed (Debian redis-tools; .ci/run installs it): skipped');
      return;
    }
    const port = String(respPort(0));
    const cli = async (...args: string[]) =>
      (await run('redis-cli', ['-h', '127.0.0.1', '-p', port, ...args])).stdout.trim();
    expect(await cli('PING')).toBe('PONG');
    expect(await cli('SET', 'cli:k', 'hello world')).toBe('OK');
    expect(await cli('GET', 'cli:k')).toBe('hello world');
    expect(await cli('INCRBY', 'cli:n', '5')).toBe('5');
    expect(await cli('SET', 'cli:ttl', 'v', 'EX', '100')).toBe('OK');
    expect(Number(await cli('TTL', 'cli:ttl'))).toBeGreaterThan(0);
    expect(await cli('PERSIST', 'cli:ttl')).toBe('1');
    expect(await cli('TTL', 'cli:ttl')).toBe('-1');
    expect(await cli('EXPIRE', 'cli:ttl', '100')).toBe('1');
    expect(Number(await cli('PTTL', 'cli:ttl'))).toBeGreaterThan(1000);
    expect(await cli('DBSIZE')).toMatch(/^\d+$/);
    expect(await cli('NOSUCH')).toContain("ERR unknown command 'NOSUCH'");
    expect(await cli('INFO', 'replication')).toContain('role:master');
    expect(await cli('COMMAND', 'COUNT')).toMatch(/^\d+$/);
    // Pipe mode: many commands on one connection, replies counted by redis-cli itself.
    const pipe = Array.from({ length: 500 }, (_, i) => `SET cli:p:${i} ${i}\r\n`).join('');
    const { stdout } = await promisify((cb: (e: Error | null, r: { stdout: string }) => void) => {
      const child = execFile('redis-cli', ['-h', '127.0.0.1', '-p', port, '--pipe'], (e, out) =>
        cb(e, { stdout: out }),
      );
      child.stdin?.end(pipe);
    })();
    expect(stdout).toContain('errors: 0, replies: 500');
    expect(await cli('GET', 'cli:p:499')).toBe('499');
  });
});

describe('hostile input on the RESP port of a real cluster', () => {
  it('random bytes, a 1 GB bulk length, deep arrays and half-sent commands hurt no one', async () => {
    const good = await connected(0);
    let n = 0;
    const goodWorks = async () => {
      n += 1;
      expect(await good.set('hostile:good', String(n))).toBe('OK');
      expect(await good.get('hostile:good')).toBe(String(n));
    };
    const halfSent: RawResp[] = [];
    for (const i of [0, 1, 2]) {
      // A command cut in the middle of a bulk, left open (closed later by the server's idle timeout).
      const half = await RawResp.open(respPort(i));
      half.write('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc');
      halfSent.push(half);
      for (const bytes of [
        '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\n',
        '*1\r\n'.repeat(50_000),
        '*1073741824\r\n',
        randomBytes(5000),
        Buffer.concat([Buffer.from('*2\r\n'), randomBytes(3000)]),
      ]) {
        const raw = await RawResp.open(respPort(i));
        raw.write(bytes);
        raw.socket.end();
        await raw.done;
        if (typeof bytes === 'string') expect(raw.text).toMatch(/^-ERR Protocol error/);
        await goodWorks();
      }
      const raw = await RawResp.open(respPort(i));
      raw.write(respCommand('PING'));
      await raw.until((t) => t === '+PONG\r\n');
      raw.close();
    }
    for (const h of halfSent) {
      expect(h.closed).toBe(false);
      h.close();
    }
    for (const s of fixture.cluster().servers) expect(s.child?.exitCode).toBeNull();
  });
});
