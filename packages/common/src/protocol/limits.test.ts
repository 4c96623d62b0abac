import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkKvOpLimits, utf8ByteLength } from './limits.js';

const utf8 = new TextEncoder();

describe('checkKvOpLimits', () => {
  it('decides exactly as the UTF-8 byte count says, around every limit (skipping the count when it surely fits)', () => {
    // Strings of 1-, 2-, 3- and 4-byte characters (and lone surrogates, 3 bytes here) near small limits.
    const char = fc.constantFrom('a', 'é', '€', '😀', '\ud800', '\udc00');
    const text = fc.array(char, { maxLength: 12 }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(
        text,
        text,
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        (key, value, maxKey, maxValue) => {
          const limits = { maxKeyBytes: maxKey, maxValueBytes: maxValue };
          const k = key.length > 0 ? key : 'k';
          const problem = checkKvOpLimits({ op: 'put', key: k, value }, limits);
          const keyBytes = utf8ByteLength(k);
          const valueBytes = utf8ByteLength(value);
          if (keyBytes > maxKey) expect(problem?.code).toBe('KEY_TOO_LARGE');
          else if (valueBytes > maxValue) expect(problem?.code).toBe('VALUE_TOO_LARGE');
          else expect(problem).toBeUndefined();
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it('counts like TextEncoder for well-formed text', () => {
    for (const s of ['', 'abc', 'é€', '😀x', 'a'.repeat(1000)])
      expect(utf8ByteLength(s)).toBe(utf8.encode(s).length);
  });
});
