import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeReply, NULL, NULL_ARRAY, R, type RespValue } from '../src/resp/encoder.js';
import { DEFAULT_RESP_LIMITS, resolveRespLimits } from '../src/resp/limits.js';
import { RespProtocolError, RespRequestParser, splitInlineArgs } from '../src/resp/parser.js';

const enc = (args: (string | Buffer)[]): Buffer =>
  Buffer.concat([
    Buffer.from(`*${args.length}\r\n`),
    ...args.flatMap((a) => {
      const b = Buffer.from(a);
      return [Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')];
    }),
  ]);

/** Feeds `bytes` in the given chunk sizes and collects every command (as strings) or the error. */
function parseAll(bytes: Buffer, cuts: number[] = [], limits = DEFAULT_RESP_LIMITS) {
  const p = new RespRequestParser(limits);
  const out: (string[] | string)[] = [];
  let at = 0;
  const pieces: Buffer[] = [];
  for (const c of [...cuts].sort((a, b) => a - b)) {
    if (c > at && c < bytes.length) {
      pieces.push(bytes.subarray(at, c));
      at = c;
    }
  }
  pieces.push(bytes.subarray(at));
  for (const piece of pieces) {
    p.push(piece);
    for (;;) {
      const r = p.next();
      if (r === null) break;
      if (r instanceof RespProtocolError) {
        out.push(r.message);
        return { out, parser: p };
      }
      out.push(r.map((b) => b.toString('latin1')));
    }
  }
  return { out, parser: p };
}

describe('RESP request parser', () => {
  it('parses multibulk commands, inline commands and empty commands, in order', () => {
    const bytes = Buffer.concat([
      enc(['SET', 'k', 'v']),
      Buffer.from('*0\r\n*-1\r\n'),
      Buffer.from('PING\r\n'),
      Buffer.from('\r\n'),
      Buffer.from('  GET   "a b"  \'c\\\'d\' "\\x41\\n"\n'),
      enc(['GET', '']),
    ]);
    expect(parseAll(bytes).out).toEqual([
      ['SET', 'k', 'v'],
      ['PING'],
      ['GET', 'a b', "c'd", 'A\n'],
      ['GET', ''],
    ]);
  });

  it('is binary-safe: a bulk may hold CR, LF, NUL and any byte', () => {
    const value = Buffer.from([0, 13, 10, 255, 36, 42, 13, 10]);
    const p = new RespRequestParser(DEFAULT_RESP_LIMITS);
    p.push(enc(['SET', 'k', value]));
    const cmd = p.next();
    expect(Array.isArray(cmd) && cmd[2]).toEqual(value);
  });

  it('gives the same commands however the bytes are split (property)', () => {
    const arg = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(
        fc.array(fc.array(arg, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(2000), { maxLength: 30 }),
        (commands, cuts) => {
          const bytes = Buffer.concat(commands.map((c) => enc(c)));
          const { out } = parseAll(bytes, cuts);
          expect(out).toEqual(commands.map((c) => c.map((b) => b.toString('latin1'))));
        },
      ),
      { numRuns: 300 },
    );
  });

  it.each([
    [
      'a nested array (deep arrays are refused at the first level)',
      '*1\r\n*1\r\n*1\r\n',
      "Protocol error: expected '$', got '*'",
    ],
    [
      'a 1 GB bulk length, from its header alone',
      '*2\r\n$3\r\nSET\r\n$1073741824\r\n',
      'Protocol error: invalid bulk length',
    ],
    ['a negative bulk length', '*1\r\n$-5\r\n', 'Protocol error: invalid bulk length'],
    ['a huge argument count', '*99999999\r\n', 'Protocol error: invalid multibulk length'],
    ['a non-numeric count', '*x\r\n', 'Protocol error: invalid multibulk length'],
    [
      'a bulk without its CRLF',
      '*1\r\n$1\r\nab\r\n',
      "Protocol error: expected '\\r\\n' after a bulk string",
    ],
    ['unbalanced quotes', 'SET "a\r\n', 'Protocol error: unbalanced quotes in request'],
    ['a closing quote glued to a word', 'SET "a"b\r\n', 'Protocol error: unbalanced quotes in request'],
  ])('refuses %s', (_name, input, message) => {
    const { out } = parseAll(Buffer.from(input));
    expect(out.at(-1)).toBe(message);
  });

  it('refuses a too long inline line or header without waiting for its end', () => {
    const limits = resolveRespLimits({ maxInlineBytes: 100 });
    expect(parseAll(Buffer.alloc(101, 0x41), [], limits).out).toEqual([
      'Protocol error: too big inline request',
    ]);
    expect(parseAll(Buffer.from(`*${'1'.repeat(120)}`), [], limits).out).toEqual([
      'Protocol error: too big mbulk count string',
    ]);
  });

  it('bounds a whole command: argument count, bulk size and total bytes', () => {
    const limits = resolveRespLimits({ maxArgs: 3, maxBulkBytes: 10, maxCommandBytes: 40 });
    expect(parseAll(enc(['a', 'b', 'c', 'd']), [], limits).out).toEqual([
      'Protocol error: invalid multibulk length',
    ]);
    expect(parseAll(enc(['SET', 'k', 'x'.repeat(11)]), [], limits).out).toEqual([
      'Protocol error: invalid bulk length',
    ]);
    expect(parseAll(enc(['SET', 'k1234567', '0123456789']), [], limits).out).toEqual([
      'Protocol error: command larger than 40 bytes',
    ]);
    expect(parseAll(Buffer.from('a b c d\r\n'), [], limits).out).toEqual([
      'Protocol error: invalid multibulk length',
    ]);
  });

  it('holds no more than what it was given, and says when a command is half-sent', () => {
    const p = new RespRequestParser(DEFAULT_RESP_LIMITS);
    p.push(Buffer.from('*2\r\n$3\r\nGET\r\n$5\r\nab'));
    expect(p.next()).toBeNull();
    expect(p.partial).toBe(true);
    p.push(Buffer.from('cde\r\n'));
    expect(p.next()).toEqual([Buffer.from('GET'), Buffer.from('abcde')]);
    expect(p.partial).toBe(false);
    expect(p.buffered).toBe(0);
  });

  it('never throws on random bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(300), { maxLength: 5 }),
        (bytes, cuts) => {
          parseAll(Buffer.from(bytes), cuts, resolveRespLimits({ maxInlineBytes: 64, maxBulkBytes: 64 }));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('splits inline arguments as sdssplitargs does', () => {
    expect(splitInlineArgs(Buffer.from('set "\\t\\r" \'x y\''))?.map(String)).toEqual(['set', '\t\r', 'x y']);
    expect(splitInlineArgs(Buffer.from('"abc'))).toBeNull();
    expect(splitInlineArgs(Buffer.from('   '))).toEqual([]);
  });
});

describe('RESP encoder', () => {
  const text = (v: RespValue, proto: 2 | 3) => Buffer.concat(encodeReply(v, proto)).toString('latin1');
  it.each<[string, RespValue, string, string]>([
    ['simple', R.simple('OK'), '+OK\r\n', '+OK\r\n'],
    ['error (one line)', R.error('ERR a\r\nb'), '-ERR a b\r\n', '-ERR a b\r\n'],
    ['int', R.int(-(2n ** 63n)), ':-9223372036854775808\r\n', ':-9223372036854775808\r\n'],
    ['bulk', R.bulk(Buffer.from([0, 13, 10])), '$3\r\n\0\r\n\r\n', '$3\r\n\0\r\n\r\n'],
    ['utf-8 bulk', R.bulk('é'), '$2\r\né\r\n'.replace('é', 'Ã©'), '$2\r\nÃ©\r\n'],
    ['null', NULL, '$-1\r\n', '_\r\n'],
    ['null array', NULL_ARRAY, '*-1\r\n', '_\r\n'],
    ['array', R.array([R.int(1), R.bulk('a')]), '*2\r\n:1\r\n$1\r\na\r\n', '*2\r\n:1\r\n$1\r\na\r\n'],
    ['map', R.map([[R.bulk('k'), R.int(1)]]), '*2\r\n$1\r\nk\r\n:1\r\n', '%1\r\n$1\r\nk\r\n:1\r\n'],
    ['set', R.set([R.simple('a')]), '*1\r\n+a\r\n', '~1\r\n+a\r\n'],
    ['bool', R.bool(true), ':1\r\n', '#t\r\n'],
    ['double', R.double(1.5), '$3\r\n1.5\r\n', ',1.5\r\n'],
    ['infinite double', R.double(Number.NEGATIVE_INFINITY), '$4\r\n-inf\r\n', ',-inf\r\n'],
  ])('%s', (_n, v, resp2, resp3) => {
    expect(text(v, 2)).toBe(resp2);
    expect(text(v, 3)).toBe(resp3);
  });
});
