import { describe, expect, it } from 'vitest';
import { parseDuration } from './args.js';

describe('parseDuration', () => {
  it.each([
    ['60s', 60_000],
    ['2m', 120_000],
    ['500ms', 500],
    ['1.5s', 1500],
    ['20', 20_000],
    ['1h', 3_600_000],
  ])('%s = %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it('rejects garbage with a hint', () => {
    expect(() => parseDuration('soon')).toThrow(/e.g. 60s/);
    expect(() => parseDuration('-1s')).toThrow(/bad duration/);
  });
});
