/**
 * The RESP front-end over a real state machine in this process (no cluster): every command through
 * ioredis, Redis's error shapes, pipelining and per-key order, binary values, RESP3, and hostile input.
 * The cluster test (`resp-cluster.test.ts`) runs the same front-end inside real servers.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RespServer } from '../src/resp/resp-server.js';
import { RawResp, respCommand, StateMachineBackend } from './resp-helpers.js';

let server: RespServer;
let backend: StateMachineBackend;
let redis: Redis;

beforeAll(async () => {
  backend = new StateMachineBackend(3);
  server = await RespServer.start({
    host: '127.0.0.1',
    port: 0,
    backend,
    limits: { partialCommandTimeoutMs: 300, maxPipeline: 64 },
  });
  redis = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  await redis.connect();
});

afterAll(async () => {
  redis.disconnect();
  await server.close();
});

/** A pipeline of SET k / GET k / INCR c / ECHO on a few keys, with the replies sequential order gives. */
async function orderedPipeline(r: Redis): Promise<{ replies: unknown[]; expected: unknown[] }> {
  const run = Math.random().toString(36).slice(2);
  const p = r.pipeline();
  const expected: unknown[] = [];
  for (let i = 0; i < 300; i++) {
    const k = `p:${run}:${i % 7}`;
    p.set(k, String(i));
    expected.push('OK');
    p.get(k);
    expected.push(String(i));
    p.incr(`c:${run}:${i % 3}`);
    expected.push(Math.floor(i / 3) + 1);
    p.echo(`e${i}`);
    expected.push(`e${i}`);
  }
  const out = await p.exec();
  return { replies: out?.map(([err, v]) => err ?? v) ?? [], expected };
}

describe('RESP commands (in-process state machine)', () => {
  it('answers the connection commands', async () => {
    expect(await redis.ping()).toBe('PONG');
    expect(await redis.ping('hi')).toBe('hi');
    expect(await redis.echo('x y')).toBe('x y');
    expect(await redis.select(0)).toBe('OK');
    await expect(redis.select(1)).rejects.toThrow('ERR DB index is out of range');
    expect(await redis.client('SETNAME', 'worker-1')).toBe('OK');
    expect(await redis.client('GETNAME')).toBe('worker-1');
    expect(typeof (await redis.client('ID'))).toBe('number');
    await expect(redis.client('SETNAME', 'a b')).rejects.toThrow('cannot contain spaces');
    await expect(redis.call('CLIENT', 'NOPE')).rejects.toThrow(
      "ERR unknown subcommand 'NOPE'. Try CLIENT HELP.",
    );
    const info = await redis.info();
    expect(info).toContain('redis_version:7.0.0');
    expect(info).toContain('loading:0');
    expect(await redis.info('keyspace')).toContain('# Keyspace');
    const count = (await redis.call('COMMAND', 'COUNT')) as number;
    const all = (await redis.call('COMMAND')) as unknown[][];
    expect(all.length).toBe(count);
    const get = all.find((c) => c[0] === 'get');
    expect(get?.slice(0, 6)).toEqual(['get', 2, ['readonly', 'fast'], 1, 1, 1]);
    expect(await redis.call('COMMAND', 'INFO', 'set', 'nosuch')).toEqual([
      expect.arrayContaining(['set', -3]),
      null,
    ]);
    expect(await redis.call('CONFIG', 'GET', 'save')).toEqual([]);
    expect(((await redis.call('TIME')) as string[]).length).toBe(2);
  });

  it('runs the string commands with Redis semantics', async () => {
    expect(await redis.get('s:missing')).toBeNull();
    expect(await redis.set('s:a', '1')).toBe('OK');
    expect(await redis.get('s:a')).toBe('1');
    expect(await redis.set('s:a', '2', 'NX')).toBeNull();
    expect(await redis.set('s:b', '2', 'NX')).toBe('OK');
    expect(await redis.set('s:c', '3', 'XX')).toBeNull();
    expect(await redis.set('s:b', '3', 'XX')).toBe('OK');
    expect(await redis.set('s:b', '4', 'GET')).toBe('3');
    expect(await redis.set('s:new', '4', 'NX', 'GET')).toBeNull();
    expect(await redis.call('SET', 's:b', '5', 'IFEQ', 'nope')).toBeNull();
    expect(await redis.call('SET', 's:b', '5', 'IFEQ', '4')).toBe('OK');
    expect(await redis.call('CAS', 's:b', '5', '6')).toBe(1);
    expect(await redis.call('CAS', 's:b', '5', '7')).toBe(0);
    expect(await redis.call('CAS', 's:none', '5', '7')).toBe(0);
    expect(await redis.get('s:b')).toBe('6');
    expect(await redis.setnx('s:b', 'x')).toBe(0);
    expect(await redis.getset('s:b', '8')).toBe('6');
    expect(await redis.strlen('s:b')).toBe(1);
    expect(await redis.exists('s:a', 's:b', 's:a', 's:nope')).toBe(3);
    expect(await redis.del('s:a', 's:nope')).toBe(1);
    expect(await redis.mset('m:1', 'a', 'm:2', 'b')).toBe('OK');
    expect(await redis.mget('m:1', 'm:x', 'm:2')).toEqual(['a', null, 'b']);
    expect(await redis.incr('n')).toBe(1);
    expect(await redis.incrby('n', 41)).toBe(42);
    expect(await redis.decr('n')).toBe(41);
    expect(await redis.decrby('n', 50)).toBe(-9);
    expect(await redis.append('ap', 'ab')).toBe(2);
    expect(await redis.append('ap', 'cd')).toBe(4);
    expect(await redis.getdel('ap')).toBe('abcd');
    expect(await redis.getdel('ap')).toBeNull();
    expect(await redis.dbsize()).toBe(backend.sm.size);
  });

  it('answers errors in Redis shapes', async () => {
    await expect(redis.call('NOSUCH', 'a', 'b')).rejects.toThrow(
      "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ",
    );
    await expect(redis.call('GET')).rejects.toThrow("ERR wrong number of arguments for 'get' command");
    await expect(redis.call('GET', 'a', 'b')).rejects.toThrow("wrong number of arguments for 'get'");
    await expect(redis.call('MSET', 'a', 'b', 'c')).rejects.toThrow("wrong number of arguments for 'mset'");
    await expect(redis.call('SET', 'k', 'v', 'NX', 'XX')).rejects.toThrow('ERR syntax error');
    await expect(redis.call('SET', 'k', 'v', 'EX', '0')).rejects.toThrow(
      "ERR invalid expire time in 'set' command",
    );
    await expect(redis.call('SET', 'k', 'v', 'PX', '10')).rejects.toThrow('leases of 1 s to one year');
    await expect(redis.call('SET', 'k', 'v', 'EX', 'x')).rejects.toThrow('ERR value is not an integer');
    await expect(redis.call('SET', 'k', 'v', 'EX', '10', 'PX', '10')).rejects.toThrow('ERR syntax error');
    await expect(redis.call('SET', 'k', 'v', 'EX')).rejects.toThrow('ERR syntax error');
    await expect(redis.call('EXPIRE', 'k', '10', 'NX', 'GT')).rejects.toThrow('not compatible');
    await expect(redis.call('EXPIRE', 'k', '10', 'GT', 'LT')).rejects.toThrow('not compatible');
    await expect(redis.call('EXPIRE', 'k', '10', 'FOO')).rejects.toThrow('ERR Unsupported option FOO');
    await expect(redis.incrby('n2', 'x' as unknown as number)).rejects.toThrow(
      'ERR value is not an integer or out of range',
    );
    await redis.set('notnum', 'abc');
    await expect(redis.incr('notnum')).rejects.toThrow('ERR value is not an integer or out of range');
    await redis.set('big', '9223372036854775807');
    await expect(redis.incr('big')).rejects.toThrow('ERR increment or decrement would overflow');
    await expect(redis.decrby('big', '-9223372036854775808')).rejects.toThrow('decrement would overflow');
    await expect(redis.call('INCRBY', 'n', '9223372036854775808')).rejects.toThrow('not an integer');
    await expect(redis.call('AUTH', 'secret')).rejects.toThrow('without any password configured');
    await expect(redis.set('', 'v')).rejects.toThrow('keys must not be empty');
    await expect(redis.set(Buffer.from([0xff, 0xfe]), 'v')).rejects.toThrow('valid UTF-8');
    await expect(redis.set('k'.repeat(4097), 'v')).rejects.toThrow('key is larger than 4096 bytes');
    await expect(redis.set('k', Buffer.alloc(1024 * 1024 + 1))).rejects.toThrow('value is larger than');
    // The connection is still fine after every error.
    expect(await redis.ping()).toBe('PONG');
  });

  it('keeps values binary-safe', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await redis.set('bin', all);
    expect(await redis.getBuffer('bin')).toEqual(all);
    await redis.append('bin', Buffer.from('\r\n\0'));
    expect(await redis.getBuffer('bin')).toEqual(Buffer.concat([all, Buffer.from('\r\n\0')]));
    await redis.set('ключ', 'значение');
    expect(await redis.get('ключ')).toBe('значение');
  });

  it('pipelines: replies in request order, and one key changes in the order it was sent', async () => {
    const { replies, expected } = await orderedPipeline(redis);
    expect(replies).toEqual(expected);
  });

  it('mutation check: without the per-key order rule the same pipeline goes wrong', async () => {
    const broken = await RespServer.start({
      host: '127.0.0.1',
      port: 0,
      backend: new StateMachineBackend(3),
      unsafeMutation: 'noKeyOrdering',
    });
    const r = new Redis({ port: broken.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await r.connect();
      const { replies, expected } = await orderedPipeline(r);
      expect(replies).not.toEqual(expected);
    } finally {
      r.disconnect();
      await broken.close();
    }
  });

  it('MULTI/EXEC runs queued commands as one transaction; WATCH aborts it when a key changed', async () => {
    const other = new Redis({
      port: server.port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    await other.connect();
    try {
      await redis.set('tx:a', '1');
      await redis.set('tx:d', 'gone');
      const ok = await redis
        .multi()
        .set('tx:a', '2')
        .get('tx:a')
        .mset('tx:b', 'x', 'tx:c', 'y')
        .del('tx:d')
        .exec();
      expect(ok?.map(([e, v]) => e ?? v)).toEqual(['OK', '2', 'OK', 1]);
      expect(await redis.mget('tx:a', 'tx:b', 'tx:c', 'tx:d')).toEqual(['2', 'x', 'y', null]);
      const raw = await RawResp.open(server.port);
      raw.write(
        Buffer.concat([respCommand('MULTI'), respCommand('SET', 'tx:c', '1'), respCommand('DEL', 'tx:c')]),
      );
      raw.write(respCommand('EXEC'));
      await raw.until((t) => t.includes('more than once'));
      expect(raw.text).toMatch(
        /^\+OK\r\n\+QUEUED\r\n\+QUEUED\r\n-ERR key 'tx:c' is written more than once in one branch/,
      );
      raw.close();
      // WATCH: untouched -> applied; changed by another client -> EXEC answers null and applies nothing.
      await redis.watch('tx:a');
      expect((await redis.multi().set('tx:b', 'w1').exec())?.map(([e, v]) => e ?? v)).toEqual(['OK']);
      await redis.watch('tx:a');
      await other.set('tx:a', 'changed');
      expect(await redis.multi().set('tx:b', 'w2').exec()).toBeNull();
      expect(await redis.get('tx:b')).toBe('w1');
      // A command with no transaction form aborts the whole transaction at EXEC.
      const raw2 = await RawResp.open(server.port);
      raw2.write(
        Buffer.concat([respCommand('MULTI'), respCommand('SET', 'tx:b', 'no'), respCommand('INCR', 'tx:n')]),
      );
      raw2.write(respCommand('EXEC'));
      await raw2.until((t) => t.includes('EXECABORT'));
      expect(raw2.text).toContain('cannot be part of a paxkv transaction');
      raw2.close();
      expect(await redis.get('tx:b')).toBe('w1');
      expect(await redis.call('DISCARD').catch((e: Error) => e.message)).toContain('DISCARD without MULTI');
      expect(await redis.call('EXEC').catch((e: Error) => e.message)).toContain('EXEC without MULTI');
    } finally {
      other.disconnect();
    }
  });

  it('SCAN walks every key once, with MATCH and COUNT', async () => {
    for (let i = 0; i < 57; i++) await redis.set(`scan:${i}`, 'v');
    await redis.set('other:1', 'v');
    const seen: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', 'scan:*', 'COUNT', 10);
      cursor = next;
      seen.push(...keys);
    } while (cursor !== '0');
    expect(seen.sort()).toEqual(Array.from({ length: 57 }, (_, i) => `scan:${i}`).sort());
    const [, some] = await redis.scan('0', 'MATCH', 'scan:1?', 'COUNT', 1000);
    expect(some.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `scan:1${i}`).sort());
    await expect(redis.scan('12345678')).rejects.toThrow('invalid cursor');
  });

  it('speaks RESP3 after HELLO 3, and inline commands', async () => {
    const raw = await RawResp.open(server.port);
    raw.write(respCommand('HELLO', '3'));
    await raw.until((t) => t.includes('modules'));
    expect(raw.text.startsWith('%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n')).toBe(true);
    raw.write(respCommand('GET', 'no-such-key'));
    await raw.until((t) => t.endsWith('_\r\n'));
    raw.write('PING\r\nECHO "a\\tb"\r\n');
    await raw.until((t) => t.endsWith('+PONG\r\n$3\r\na\tb\r\n'));
    raw.write(respCommand('HELLO', '4'));
    await raw.until((t) => t.endsWith('-NOPROTO unsupported protocol version\r\n'));
    raw.write(respCommand('QUIT'));
    await raw.done;
    expect(raw.text.endsWith('+OK\r\n')).toBe(true);
  });
});

describe('RESP hostile input (in-process state machine)', () => {
  /** Sends `bytes`, expects an error reply and a closed connection, and a healthy other client. */
  async function refuses(bytes: Buffer | string, error: string): Promise<void> {
    const raw = await RawResp.open(server.port);
    raw.write(bytes);
    await raw.done;
    expect(raw.text).toContain(error);
    expect(await redis.set('still', 'fine')).toBe('OK');
    expect(await redis.get('still')).toBe('fine');
  }

  it('refuses a 1 GB bulk length from its header', () =>
    refuses('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\n', '-ERR Protocol error: invalid bulk length'));
  it('refuses deep arrays', () =>
    refuses('*1\r\n'.repeat(100_000), "-ERR Protocol error: expected '$', got '*'"));
  it('refuses a huge argument count', () => refuses('*2147483648\r\n', 'invalid multibulk length'));
  it('refuses an endless inline line', () => refuses(Buffer.alloc(70_000, 0x61), 'too big inline request'));
  it('closes a half-sent command after the idle timeout', () =>
    refuses('*2\r\n$3\r\nGET\r\n$10\r\nabc', 'a command stayed incomplete for 300 ms'));

  it('does not cut off a half-sent command whose rest arrived while the event loop was blocked', async () => {
    const raw = await RawResp.open(server.port);
    // A whole PING and the first half of a GET: once PONG is back, the half-sent timer (300 ms) runs.
    raw.write('*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$7\r\nnoth');
    await raw.until((t) => t.includes('+PONG'));
    raw.write('ing\r\n');
    // The loop is blocked past the timeout (a GC pause, a loaded machine): the rest waits unread in
    // the kernel, and the overdue timer runs before the read.
    const until = Date.now() + 600;
    while (Date.now() < until) {
      // blocked on purpose
    }
    await raw.until((t) => t.includes('$-1') || t.includes('-ERR'));
    expect(raw.text).toBe('+PONG\r\n$-1\r\n');
    expect(raw.closed).toBe(false);
    raw.close();
  });

  it('survives random bytes, with the other clients unaffected', async () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let round = 0; round < 20; round++) {
      const raw = await RawResp.open(server.port);
      const bytes = Buffer.alloc(2000 + (rand() % 5000));
      for (let i = 0; i < bytes.length; i++) bytes[i] = rand() & 0xff;
      if (round % 2 === 0) bytes[0] = 0x2a; // start like a multibulk half the time
      raw.write(bytes);
      raw.socket.end();
      await raw.done;
      expect(await redis.incr('hostile:counter')).toBe(round + 1);
    }
  });

  it('applies backpressure to a client that pipelines without reading (bounded memory)', async () => {
    const raw = await RawResp.open(server.port);
    raw.socket.pause(); // never read replies
    const cmd = respCommand('SET', 'bp', 'x'.repeat(1000));
    const chunk = Buffer.concat(Array.from({ length: 1000 }, () => cmd));
    for (let i = 0; i < 20; i++) raw.write(chunk); // 20k commands, ~20 MB
    await new Promise((r) => setTimeout(r, 300));
    expect(await redis.get('still')).toBe('fine');
    raw.close();
  });
});
