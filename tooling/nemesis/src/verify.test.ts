import { describe, expect, it } from 'vitest';
import type { PairedOperation } from './history.js';
import { unexplainedReads, verifyKey } from './verify.js';

let nextId = 0;
const op = (
  f: string,
  invokeTime: number,
  returnTime: number | undefined,
  status: PairedOperation['status'],
  extra: { value?: string; expected?: string | null; result?: Record<string, unknown> } = {},
): PairedOperation => ({
  process: 0,
  id: nextId++,
  op: {
    f,
    key: 'k',
    ...(extra.value !== undefined ? { value: extra.value } : {}),
    ...(extra.expected !== undefined ? { expected: extra.expected } : {}),
  },
  invokeTime,
  returnTime,
  status,
  result: extra.result ?? {},
});

describe('verifyKey', () => {
  it('accepts a final value written by the last acknowledged write', () => {
    const ops = [op('put', 0, 1, 'ok', { value: 'a' }), op('put', 2, 3, 'ok', { value: 'b' })];
    expect(verifyKey('k', ops, 'b')).toMatchObject({ acknowledged: 2, verified: 2, lost: [] });
  });

  it('reports an acknowledged write that the final value contradicts', () => {
    const ops = [op('put', 0, 1, 'ok', { value: 'a' }), op('put', 2, 3, 'ok', { value: 'b' })];
    const r = verifyKey('k', ops, 'a');
    expect(r.lost).toHaveLength(1);
    expect(r.verified).toBe(1);
  });

  it('accepts concurrent writes in either order and indeterminate writes anywhere after their call', () => {
    const concurrent = [op('put', 0, 5, 'ok', { value: 'a' }), op('put', 1, 4, 'ok', { value: 'b' })];
    expect(verifyKey('k', concurrent, 'a').lost).toEqual([]);
    expect(verifyKey('k', concurrent, 'b').lost).toEqual([]);
    const late = [op('put', 0, undefined, 'info', { value: 'x' }), op('put', 2, 3, 'ok', { value: 'y' })];
    expect(verifyKey('k', late, 'x').lost).toEqual([]);
  });

  it('never explains a value from a failed write or a cas that did not apply', () => {
    expect(verifyKey('k', [op('put', 0, 1, 'fail', { value: 'a' })], 'a').problem).toMatch(/never written/);
    expect(
      verifyKey('k', [op('cas', 0, 1, 'ok', { value: 'a', expected: null, result: { ok: false } })], 'a')
        .problem,
    ).toMatch(/never written/);
    expect(
      verifyKey('k', [op('cas', 0, 1, 'ok', { value: 'a', expected: null, result: { ok: true } })], 'a').lost,
    ).toEqual([]);
  });

  it('explains absence by a delete or the initial state only if no acknowledged write came later', () => {
    expect(verifyKey('k', [], null).problem).toBeUndefined();
    expect(verifyKey('k', [op('put', 0, 1, 'ok', { value: 'a' })], null).lost).toHaveLength(1);
    expect(
      verifyKey('k', [op('put', 0, 1, 'ok', { value: 'a' }), op('delete', 2, 3, 'ok')], null).lost,
    ).toEqual([]);
  });
});

describe('unexplainedReads', () => {
  it('names a read whose only write was recorded as failed, and a read of a value never written', () => {
    const ops = [
      op('put', 0, 1, 'fail', { value: 'a' }),
      op('get', 2, 3, 'ok', { result: { value: 'a' } }),
      op('get', 4, 5, 'ok', { result: { value: 'zz' } }),
      op('put', 6, undefined, 'info', { value: 'b' }),
      op('get', 7, 8, 'ok', { result: { value: 'b' } }),
      op('get', 9, 10, 'ok', { result: { value: null } }),
    ];
    const lines = unexplainedReads(ops);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/"a".*recorded as failed/);
    expect(lines[1]).toMatch(/"zz".*no operation wrote/);
  });
});
