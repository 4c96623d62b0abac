import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { utf8ByteLength } from './limits.js';
import { fnv1a32, hashTagOf, partitionOf } from './partition.js';

function referenceFnv(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

describe('fnv1a32', () => {
  it.each([
    ['', 0x811c9dc5],
    ['a', 0xe40c292c],
    ['foobar', 0xbf9cf968],
  ])('matches the published test vector for %j', (s, h) => {
    expect(fnv1a32(s)).toBe(h);
  });
  it('hashes the UTF-8 bytes of any string, lone surrogates as U+FFFD', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(fnv1a32(s)).toBe(referenceFnv(s));
        expect(utf8ByteLength(s)).toBe(new TextEncoder().encode(s).length);
      }),
    );
    fc.assert(
      fc.property(
        fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
        (s) => {
          expect(fnv1a32(s)).toBe(referenceFnv(s));
          expect(utf8ByteLength(s)).toBe(new TextEncoder().encode(s).length);
        },
      ),
    );
  });
});

describe('partitionOf', () => {
  it('is FNV-1a mod partitions (test vector)', () => {
    expect(partitionOf('foobar', 16)).toBe(8);
    expect(partitionOf('a', 1)).toBe(0);
    expect(partitionOf('héllo', 7)).toBe(referenceFnv('héllo') % 7);
  });
  it('is always in range', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 1 << 20 }), (k, p) => {
        const x = partitionOf(k, p);
        return Number.isInteger(x) && x >= 0 && x < p;
      }),
    );
  });
  it('rejects a bad partition count with a typed error', () => {
    expect(() => partitionOf('a', 0)).toThrow(/positive integer/);
    expect(() => partitionOf('a', 1.5)).toThrow(/positive integer/);
  });
});

describe('hash tags', () => {
  it.each([
    ['{user1}:name', 'user1'],
    ['a{b}c{d}', 'b'],
    ['{}x{y}', undefined],
    ['x{y', undefined],
    ['x}y{z}', 'z'],
    ['{{a}}', '{a'],
    ['plain', undefined],
  ])('the tag of %j is %j (Redis Cluster rule)', (key, tag) => {
    expect(hashTagOf(key)).toBe(tag);
  });
  it('hashes only the tag when there is one', () => {
    expect(partitionOf('{foobar}:x', 16)).toBe(8);
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.string(),
        fc.string(),
        fc.integer({ min: 1, max: 4096 }),
        (t, a, b, p) => {
          fc.pre(!t.includes('}') && !a.includes('{'));
          expect(partitionOf(`${a}{${t}}${b}`, p)).toBe(partitionOf(t, p));
          expect(fnv1a32(`${a}{${t}}${b}`, a.length + 1, a.length + 1 + t.length)).toBe(referenceFnv(t));
        },
      ),
    );
  });
});
