/**
 * The RESP front-end of a real 3-server cluster (`--resp-port` on each): ioredis against every server
 * (any server answers any key, and sees what the native port wrote), the commands and their errors,
 * pipelining, binary values, a concurrent ioredis workload whose history is checked linearizable, redis-cli
 * when it is installed, and hostile input while a well-behaved client keeps working.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { buildHistory, checkSync, defineModel, type OperationSpec } from '@paxkv/linearizability-checker';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, TestCluster, type TestServer } from './harness.js';
import { RawResp, respCommand } from './resp-helpers.js';

const run = promisify(execFile);

let cluster: TestCluster;
const clients: Redis[] = [];

type LinInput = { f: string; key: string; value?: string; expected?: string | null; by?: number };
type LinOutput = { value?: string | null | number; existed?: boolean; ok?: boolean };

/**
 * A per-key string register with the operations the workload sends through Redis: get, put (SET),
 * append (APPEND), delete (DEL), cas (SET IFEQ / SET NX) and incr (INCRBY: the stored text read as an
 * integer, absent = 0). Output undefined = unknown outcome: the effect may apply.
 */
const redisModel = defineModel<string | null, LinInput, LinOutput>({
  name: 'redis-strings',
  init: () => null,
  partition: (i) => i.key,
  readOnly: (i) => i.f === 'get',
  step(s, i, o) {
    switch (i.f) {
      case 'get':
        return o === undefined || o.value === s ? { ok: true, state: s } : { ok: false };
      case 'put':
        return { ok: true, state: i.value as string };
      case 'append':
        return { ok: true, state: (s ?? '') + (i.value as string) };
      case 'delete':
        return o?.existed !== undefined && o.existed !== (s !== null)
          ? { ok: false }
          : { ok: true, state: null };
      case 'cas': {
        const matches = i.expected === null ? s === null : s === i.expected;
        if (o?.ok !== undefined && o.ok !== matches) return { ok: false };
        return { ok: true, state: matches ? (i.value as string) : s };
      }
      case 'incr': {
        const next = Number(s ?? '0') + (i.by as number);
        if (o !== undefined && o.value !== next) return { ok: false };
        return { ok: true, state: String(next) };
      }
      default:
        return { ok: false };
    }
  },
});

function respPort(i: number): number {
  return (cluster.servers[i] as TestServer).respPort as number;
}

function client(i: number): Redis {
  const r = new Redis({
    port: respPort(i),
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  clients.push(r);
  return r;
}

async function connected(i: number): Promise<Redis> {
  const r = client(i);
  await r.connect();
  return r;
}

beforeAll(async () => {
  cluster = await TestCluster.create({ nodes: 3, partitions: 4, resp: true });
  cluster.startAll();
  await cluster.waitReady(60_000);
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await cluster?.destroy();
});

describe('RESP on a real cluster', () => {
  it('any server answers any key, and RESP and native clients share one store', async () => {
    const [a, b, c] = [await connected(0), await connected(1), await connected(2)];
    for (let i = 0; i < 12; i++) {
      const key = `shared:${i}`;
      expect(await [a, b, c][i % 3]?.set(key, `v${i}`)).toBe('OK');
      expect(await [a, b, c][(i + 1) % 3]?.get(key)).toBe(`v${i}`);
    }
    const native = await RawClient.connect((cluster.servers[1] as TestServer).address);
    try {
      const reply = (await native.call({ type: 'kv', op: { op: 'get', key: 'shared:3' } })) as {
        result: { value: Uint8Array };
      };
      expect(Buffer.from(reply.result.value).toString()).toBe('v3');
      await native.call({ type: 'kv', op: { op: 'put', key: 'from-native', value: 'hello' } });
      expect(await c.get('from-native')).toBe('hello');
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

  it('pipelines across partitions with replies in order, and keeps binary values intact', async () => {
    const r = await connected(2);
    const p = r.pipeline();
    const values: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const v = randomBytes(1 + (i % 50));
      values.push(v);
      p.set(`bin:${i}`, v);
      p.getBuffer(`bin:${i}`);
      p.incr(`pc:${i % 4}`);
    }
    const out = await p.exec();
    for (let i = 0; i < 200; i++) {
      expect(out?.[i * 3]).toEqual([null, 'OK']);
      expect(out?.[i * 3 + 1]).toEqual([null, values[i]]);
      expect(out?.[i * 3 + 2]).toEqual([null, Math.floor(i / 4) + 1]);
    }
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await r.set('bin:all', all);
    expect(await (await connected(0)).getBuffer('bin:all')).toEqual(all);
  });

  it('MULTI/EXEC, WATCH, MSET and MGET are atomic within one hash tag; SCAN walks every partition', async () => {
    const r = await connected(0);
    const other = await connected(2);
    expect(await r.mset('{acct}:a', '100', '{acct}:b', '0')).toBe('OK');
    await r.watch('{acct}:a', '{acct}:b');
    const [a, b] = (await r.mget('{acct}:a', '{acct}:b')) as [string, string];
    const done = await r
      .multi()
      .set('{acct}:a', String(Number(a) - 30))
      .set('{acct}:b', String(Number(b) + 30))
      .exec();
    expect(done?.map(([e, v]) => e ?? v)).toEqual(['OK', 'OK']);
    expect(await other.mget('{acct}:a', '{acct}:b')).toEqual(['70', '30']);
    await r.watch('{acct}:a');
    await other.set('{acct}:a', '0');
    expect(await r.multi().set('{acct}:b', '999').exec()).toBeNull();
    expect(await other.get('{acct}:b')).toBe('30');
    // Keys of different partitions in one transaction: Redis Cluster's CROSSSLOT error.
    const raw = await RawResp.open(respPort(1));
    const cross = Array.from({ length: 8 }, (_, i) => respCommand('SET', `cross:${i}`, 'v'));
    raw.write(Buffer.concat([respCommand('MULTI'), ...cross, respCommand('EXEC')]));
    await raw.until((t) => t.includes('CROSSSLOT'));
    raw.close();
    for (let i = 0; i < 40; i++) await r.set(`scanc:${i}`, 'v');
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', 'scanc:*', 'COUNT', 7);
      cursor = next;
      for (const k of keys) seen.add(k);
    } while (cursor !== '0');
    expect([...seen].sort()).toEqual(Array.from({ length: 40 }, (_, i) => `scanc:${i}`).sort());
  });

  it('a concurrent ioredis workload on every server is linearizable', async () => {
    const keys = ['lin:a', 'lin:b', 'lin:c'];
    const conns = await Promise.all([0, 1, 2, 0, 1, 2].map((i) => connected(i)));
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    const ops: OperationSpec<LinInput, LinOutput>[] = [];
    let counter = 0;
    await Promise.all(
      conns.map(async (r, process) => {
        for (let n = 0; n < 60; n++) {
          const key = keys[(process + n * 7) % keys.length] as string;
          const pick = (process * 31 + n * 17) % 10;
          const value = `p${process}.${n}.${counter++}`;
          const call = now();
          let input: LinInput = { f: 'get', key };
          let output: LinOutput | undefined;
          try {
            if (n % 5 === 4) {
              // Counters get INCRBY and GET only (an INCR of a text value is an error, not an operation).
              const counter = `lin:n${process % 2}`;
              if (pick < 3) {
                input = { f: 'get', key: counter };
                output = { value: await r.get(counter) };
              } else {
                const by = 1 + (n % 3);
                input = { f: 'incr', key: counter, by };
                output = { value: await r.incrby(counter, by) };
              }
            } else if (pick < 4) {
              input = { f: 'get', key };
              output = { value: await r.get(key) };
            } else if (pick < 7) {
              input = { f: 'put', key, value };
              await r.set(key, value);
              output = {};
            } else if (pick < 8) {
              input = { f: 'append', key, value };
              await r.append(key, value);
              output = {};
            } else if (pick < 9) {
              input = { f: 'delete', key };
              output = { existed: (await r.del(key)) === 1 };
            } else {
              // CAS against a value read just before: succeeds unless another client got in between.
              const seen = await r.get(key);
              input = { f: 'cas', key, expected: seen, value };
              const res =
                seen === null ? await r.set(key, value, 'NX') : await r.call('SET', key, value, 'IFEQ', seen);
              output = { ok: res === 'OK' };
            }
            ops.push({ process, call, ret: now(), input, output });
          } catch {
            // Unknown outcome: recorded without a return, the checker lets it take effect or not.
            ops.push({ process, call, input });
          }
        }
      }),
    );
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
    for (const s of cluster.servers) expect(s.child?.exitCode).toBeNull();
  });
});
