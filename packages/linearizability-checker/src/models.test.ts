import { describe, expect, it } from 'vitest';
import { UnknownModelError } from './errors.js';
import type { Model } from './model.js';
import {
  casRegisterModel,
  createKvModel,
  etcdModel,
  getBuiltinModel,
  type KvCell,
  type KvInput,
  type KvOutput,
  type KvState,
  kvModel,
  porcupineKvModel,
  registerModelInstance,
} from './models.js';

type Row = [name: string, state: unknown, input: unknown, output: unknown, legal: boolean, next?: unknown];

function table(model: Model, rows: Row[]): void {
  it.each(rows)('%s', (_name, state, input, output, legal, next) => {
    const r = model.step(state as never, input as never, output as never);
    expect(r.ok).toBe(legal);
    if (r.ok && next !== undefined) expect(r.state).toEqual(next);
  });
}

describe('register', () => {
  table(registerModelInstance as Model, [
    ['read of the initial state is null', null, { f: 'read' }, { value: null }, true, null],
    ['read of a wrong value is illegal', 1, { f: 'read' }, { value: 2 }, false],
    ['read with unknown output accepts', 1, { f: 'read' }, undefined, true, 1],
    ['write sets the value', 1, { f: 'write', value: 5 }, {}, true, 5],
    ['indeterminate write still applies', 1, { f: 'write', value: 5 }, undefined, true, 5],
  ]);
  it('rejects cas in validation', () => {
    expect(registerModelInstance.validate?.({ f: 'cas', expected: 1, value: 2 }, { ok: true })).toMatch(
      /no operation/,
    );
  });
});

describe('cas-register and etcd', () => {
  for (const m of [casRegisterModel, etcdModel]) {
    describe(m.name, () => {
      table(m as Model, [
        ['cas ok when equal', 3, { f: 'cas', expected: 3, value: 4 }, { ok: true }, true, 4],
        ['cas ok when different is illegal', 3, { f: 'cas', expected: 2, value: 4 }, { ok: true }, false],
        [
          'cas fail when different keeps state',
          3,
          { f: 'cas', expected: 2, value: 4 },
          { ok: false },
          true,
          3,
        ],
        ['cas fail when equal is illegal', 3, { f: 'cas', expected: 3, value: 4 }, { ok: false }, false],
        [
          'cas against absent never matches an int',
          null,
          { f: 'cas', expected: 0, value: 1 },
          { ok: false },
          true,
          null,
        ],
        [
          'indeterminate cas applies when it matches',
          3,
          { f: 'cas', expected: 3, value: 4 },
          undefined,
          true,
          4,
        ],
        [
          'indeterminate cas is a no-op otherwise',
          3,
          { f: 'cas', expected: 1, value: 4 },
          undefined,
          true,
          3,
        ],
      ]);
    });
  }
  it('reads are read-only, writes are not', () => {
    expect(etcdModel.readOnly?.({ f: 'read' }, undefined)).toBe(true);
    expect(etcdModel.readOnly?.({ f: 'write', value: 1 }, {})).toBe(false);
    expect(etcdModel.readOnly?.({ f: 'cas', expected: 1, value: 2 }, { ok: false })).toBe(true);
    expect(etcdModel.readOnly?.({ f: 'cas', expected: 1, value: 2 }, undefined)).toBe(false);
    expect(kvModel.readOnly?.({ f: 'delete', key: 'a' }, { existed: false })).toBe(true);
    expect(kvModel.readOnly?.({ f: 'delete', key: 'a' }, {})).toBe(false);
  });
  it('validates shapes', () => {
    expect(etcdModel.validate?.({ f: 'write' }, {})).toMatch(/scalar/);
    expect(etcdModel.validate?.({ f: 'cas', expected: 1, value: 2 }, { ok: 'yes' })).toMatch(/ok/);
    expect(etcdModel.validate?.({ f: 'read' }, { value: 1 })).toBeUndefined();
    expect(etcdModel.validate?.('read', undefined)).toMatch(/object/);
  });
});

/** Table test of a partitioned kv model, with states written as the key's value (null = absent). */
function kvTable(model: Model<KvState, KvInput, KvOutput>, rows: Row[]): void {
  const cell = (v: unknown): KvState => {
    const init = model.init();
    if (v === null) return init;
    const r = model.step(init, { f: 'put', key: 'a', value: v as string }, {});
    if (!r.ok) throw new Error('put must be legal');
    return r.state;
  };
  it.each(rows)('%s', (_name, state, input, output, legal, next) => {
    const r = model.step(cell(state), input as KvInput, output as KvOutput);
    expect(r.ok).toBe(legal);
    if (r.ok && next !== undefined) {
      expect((r.state as KvCell).value).toEqual(next);
      expect(model.key?.(r.state)).toBe(model.key?.(cell(next)));
    }
  });
}

describe('kv (partitioned: the state is one key value)', () => {
  kvTable(kvModel, [
    ['get of absent is null', null, { f: 'get', key: 'a' }, { value: null }, true, null],
    ['get of absent as "" is illegal', null, { f: 'get', key: 'a' }, { value: '' }, false],
    ['get of present value', 'v', { f: 'get', key: 'a' }, { value: 'v' }, true, 'v'],
    ['put created on absent', null, { f: 'put', key: 'a', value: 'x' }, { created: true }, true, 'x'],
    ['put created on present is illegal', 'v', { f: 'put', key: 'a', value: 'x' }, { created: true }, false],
    ['put without created constrains nothing', 'v', { f: 'put', key: 'a', value: 'x' }, {}, true, 'x'],
    [
      'cas absent-expected on absent',
      null,
      { f: 'cas', key: 'a', expected: null, value: 'x' },
      { ok: true },
      true,
      'x',
    ],
    [
      'cas absent-expected on present fails',
      'v',
      { f: 'cas', key: 'a', expected: null, value: 'x' },
      { ok: false },
      true,
      'v',
    ],
    ['cas matching value', 'v', { f: 'cas', key: 'a', expected: 'v', value: 'x' }, { ok: true }, true, 'x'],
    [
      'cas claimed ok on mismatch is illegal',
      'w',
      { f: 'cas', key: 'a', expected: 'v', value: 'x' },
      { ok: true },
      false,
    ],
    ['delete existed', 'v', { f: 'delete', key: 'a' }, { existed: true }, true, null],
    ['delete existed on absent is illegal', null, { f: 'delete', key: 'a' }, { existed: true }, false],
    ['delete absent', null, { f: 'delete', key: 'a' }, { existed: false }, true, null],
    ['append to absent', null, { f: 'append', key: 'a', value: 'x' }, {}, true, 'x'],
    ['append concatenates', 'x', { f: 'append', key: 'a', value: 'y' }, {}, true, 'xy'],
  ]);
  it('partitions by key and keys states by value', () => {
    expect(kvModel.partition?.({ f: 'get', key: 'k' })).toBe('k');
    const init = kvModel.init();
    const empty = kvModel.step(init, { f: 'put', key: 'k', value: '' }, {});
    expect(empty.ok && kvModel.key?.(empty.state)).not.toBe(kvModel.key?.(init));
    expect(empty.ok && kvModel.equal?.(empty.state, init)).toBe(false);
  });
  it('validates shapes', () => {
    expect(kvModel.validate?.({ f: 'frob', key: 'a' }, {})).toMatch(/no operation "frob"/);
    expect(kvModel.validate?.({ f: 'put', key: 'a' }, {})).toMatch(/value/);
    expect(kvModel.validate?.({ f: 'get', key: 1 }, {})).toMatch(/key/);
    expect(kvModel.validate?.({ f: 'get', key: 'a' }, { value: 3 })).toMatch(/string\|null/);
    expect(kvModel.validate?.({ f: 'cas', key: 'a', expected: 1, value: 'x' }, {})).toMatch(/expected/);
    expect(kvModel.validate?.({ f: 'put', key: 'a', value: 'x' }, { created: 'yes' })).toMatch(/boolean/);
  });
});

describe('kv, unpartitioned (the state is a map)', () => {
  const m = createKvModel({ partitioned: false });
  table(m as Model, [
    ['put into the map', {}, { f: 'put', key: 'a', value: 'x' }, {}, true, { a: 'x' }],
    ['other keys are kept', { b: 'y' }, { f: 'put', key: 'a', value: 'x' }, {}, true, { a: 'x', b: 'y' }],
    ['delete removes', { a: 'x' }, { f: 'delete', key: 'a' }, { existed: true }, true, {}],
    ['get sees only its key', { b: 'y' }, { f: 'get', key: 'a' }, { value: null }, true],
  ]);
  it('has no partition function and keys maps in key order', () => {
    expect(m.partition).toBeUndefined();
    expect(m.key?.({ a: '1', b: '2' })).toBe(m.key?.({ b: '2', a: '1' }));
  });
});

describe('porcupine-kv', () => {
  kvTable(porcupineKvModel, [
    ['a missing key reads as ""', null, { f: 'get', key: 'a' }, { value: '' }, true],
    ['and not as null', null, { f: 'get', key: 'a' }, { value: null }, false],
  ]);
});

describe('getBuiltinModel', () => {
  it('knows the built-in names', () => {
    for (const n of ['register', 'cas-register', 'etcd', 'kv', 'porcupine-kv', 'kv:unpartitioned']) {
      expect(getBuiltinModel(n)).toBeDefined();
    }
  });
  it('names the choices for an unknown model', () => {
    expect(() => getBuiltinModel('bank')).toThrow(UnknownModelError);
    expect(() => getBuiltinModel('bank')).toThrow(/use one of register/);
  });
});
