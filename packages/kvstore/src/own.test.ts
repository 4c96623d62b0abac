import { describe, expect, it } from 'vitest';
import { ownStrings, ownValue } from './own.js';

/** A byte array that is a view into a larger buffer (as msgpackr decodes binary values). */
function view(bytes: number[]): Uint8Array {
  const whole = new Uint8Array(bytes.length + 8);
  whole.set(bytes, 4);
  return whole.subarray(4, 4 + bytes.length);
}

function ownsItsBuffer(v: Uint8Array): boolean {
  return v.byteOffset === 0 && v.byteLength === v.buffer.byteLength;
}

describe('ownStrings', () => {
  it('replaces byte-array views by their own copies in objects and arrays, at every level', () => {
    const long = `${'k'.repeat(40)}-${Math.random()}`;
    const entry = {
      id: '1.abc.7',
      op: { op: 'put', key: long, value: view([1, 2, 3]) },
      batch: [view([4, 5]), { nested: [view([6])] }],
    };
    ownStrings(entry);
    expect(ownsItsBuffer(entry.op.value)).toBe(true);
    expect([...entry.op.value]).toEqual([1, 2, 3]);
    expect(ownsItsBuffer(entry.batch[0] as Uint8Array)).toBe(true);
    const nested = (entry.batch[1] as { nested: Uint8Array[] }).nested[0] as Uint8Array;
    expect(ownsItsBuffer(nested)).toBe(true);
    expect([...nested]).toEqual([6]);
    expect(entry.op.key).toBe(long);
    expect(entry.id).toBe('1.abc.7');
  });

  it('leaves frozen objects, inherited properties and what lies past the depth limit as they are', () => {
    const frozen = Object.freeze({ value: view([1]) });
    ownStrings(frozen);
    expect(ownsItsBuffer(frozen.value)).toBe(false);

    const proto = { inherited: view([2]) };
    const child = Object.create(proto) as { inherited: Uint8Array; own: Uint8Array };
    child.own = view([3]);
    ownStrings(child);
    expect(ownsItsBuffer(child.own)).toBe(true);
    expect(Object.hasOwn(child, 'inherited')).toBe(false);
    expect(ownsItsBuffer(proto.inherited)).toBe(false);

    // 8 levels are walked (MAX_OWN_DEPTH), the 10th is not.
    let deep: Record<string, unknown> = { value: view([9]) };
    const innermost = deep;
    for (let i = 0; i < 9; i++) deep = { next: deep };
    ownStrings(deep);
    expect(ownsItsBuffer(innermost.value as Uint8Array)).toBe(false);
    let shallow: Record<string, unknown> = { value: view([9]) };
    const inner = shallow;
    for (let i = 0; i < 8; i++) shallow = { next: shallow };
    ownStrings(shallow);
    expect(ownsItsBuffer(inner.value as Uint8Array)).toBe(true);
  });

  it('ignores what is not an object', () => {
    expect(() => ownStrings(undefined)).not.toThrow();
    expect(() => ownStrings('a string')).not.toThrow();
    expect(() => ownStrings(view([1]))).not.toThrow();
  });
});

describe('ownValue', () => {
  it('copies a view and keeps an array that already owns its buffer', () => {
    const owned = new Uint8Array([1, 2]);
    expect(ownValue(owned)).toBe(owned);
    const v = view([7, 8]);
    const copy = ownValue(v) as Uint8Array;
    expect(copy).not.toBe(v);
    expect(ownsItsBuffer(copy)).toBe(true);
    expect([...copy]).toEqual([7, 8]);
  });
});
