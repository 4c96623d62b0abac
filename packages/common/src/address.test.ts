import { describe, expect, it } from 'vitest';
import { formatAddress, isAddress, isNodeId, parseAddress } from './address.js';
import { InvalidAddressError } from './errors.js';

describe('parseAddress', () => {
  it.each([
    ['127.0.0.1:7001', '127.0.0.1', 7001],
    ['localhost:1', 'localhost', 1],
    ['node-1.paxkv.internal:65535', 'node-1.paxkv.internal', 65535],
    ['[::1]:7001', '::1', 7001],
    ['[2001:db8::42]:80', '2001:db8::42', 80],
  ])('parses %s', (input, host, port) => {
    expect(parseAddress(input)).toEqual({ host, port });
    expect(formatAddress({ host, port })).toBe(input);
    expect(isAddress(input)).toBe(true);
  });
  it.each([
    '',
    '127.0.0.1',
    ':7001',
    '127.0.0.1:',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    '127.0.0.1:-1',
    '127.0.0.1:7e3',
    '::1:7001',
    '[::1]7001',
    '[::1:7001',
    '[not-ip]:7001',
    'bad_host:7001',
    '-bad:7001',
    'a..b:1',
    `${'a'.repeat(64)}:1`,
    `${'a'.repeat(400)}:1`,
  ])('rejects %j with a typed error', (input) => {
    const r = parseAddress(input);
    expect(r).toBeInstanceOf(InvalidAddressError);
    expect((r as InvalidAddressError).message).toMatch(/use host:port/);
    expect(isAddress(input)).toBe(false);
  });
  it('accepts port 0 only when asked (listening)', () => {
    expect(parseAddress('127.0.0.1:0', { allowPortZero: true })).toEqual({ host: '127.0.0.1', port: 0 });
  });
  it('never throws on non-strings', () => {
    expect(parseAddress(42 as unknown as string)).toBeInstanceOf(InvalidAddressError);
    expect(isAddress(null)).toBe(false);
  });
});

describe('isNodeId', () => {
  it('accepts positive safe integers only', () => {
    expect(isNodeId(1)).toBe(true);
    expect(isNodeId(Number.MAX_SAFE_INTEGER)).toBe(true);
    for (const x of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', null])
      expect(isNodeId(x)).toBe(false);
  });
});
