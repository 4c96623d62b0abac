import { describe, expect, it } from 'vitest';
import { check, checkSync } from './check.js';
import { buildHistory, type OperationSpec } from './history.js';
import {
  compareKeysUtf8,
  type KvTxnCompare,
  type KvTxnInput,
  type KvTxnOutput,
  type KvTxnRequest,
  type KvTxnState,
  kvTxnModel,
} from './kv-txn.js';
import type { Model } from './model.js';
import { getBuiltinModel } from './models.js';

type Spec = OperationSpec<KvTxnInput, KvTxnOutput>;

const verdict = (ops: Spec[], model: Model = kvTxnModel as Model) =>
  checkSync(buildHistory(ops), { model, timeoutMs: 20_000 }).verdict;

const A = '{acct}:a';
const B = '{acct}:b';

const modEq = (key: string, value: number): KvTxnCompare => ({ key, target: 'modRevision', op: '=', value });
const put = (key: string, value: string): KvTxnRequest => ({ f: 'put', key, value });
const get = (key: string): KvTxnRequest => ({ f: 'get', key });

/** Accounts a=100 (mod 1) and b=100 (mod 1), created by one transaction at revision 1, on process 0. */
const SETUP: Spec = {
  process: 0,
  call: 0,
  ret: 1,
  input: { f: 'txn', compare: [], success: [put(A, '100'), put(B, '100')], failure: [] },
  output: {
    succeeded: true,
    revision: 1,
    results: [
      { created: true, version: 1, modRevision: 1 },
      { created: true, version: 1, modRevision: 1 },
    ],
  },
};

/** A transfer of `amount` from a (balance `a`, mod `ma`) to b (balance `b`, mod `mb`) answered at `rev`. */
function transfer(
  process: number,
  call: number,
  ret: number | undefined,
  from: { a: number; ma: number; b: number; mb: number },
  amount: number,
  answer: { succeeded: boolean; rev: number; version?: number } | undefined,
): Spec {
  const input: KvTxnInput = {
    f: 'txn',
    compare: [modEq(A, from.ma), modEq(B, from.mb)],
    success: [put(A, String(from.a - amount)), put(B, String(from.b + amount))],
    failure: [get(A), get(B)],
  };
  if (answer === undefined || ret === undefined) return { process, call, input };
  const output: KvTxnOutput = answer.succeeded
    ? {
        succeeded: true,
        revision: answer.rev,
        results: [
          { created: false, version: answer.version ?? 2, modRevision: answer.rev },
          { created: false, version: answer.version ?? 2, modRevision: answer.rev },
        ],
      }
    : { succeeded: false, revision: answer.rev, results: [] };
  return { process, call, ret, input, output };
}

const rangeAll = (
  process: number,
  call: number,
  ret: number,
  kvs: NonNullable<KvTxnOutput['kvs']>,
  rev: number,
): Spec => ({
  process,
  call,
  ret,
  input: { f: 'range', start: '{acct}:', end: '{acct};' },
  output: { kvs, more: false, revision: rev },
});

/** The accounts before any transfer (balances 100, modRevision 1). */
const FRESH = { a: 100, ma: 1, b: 100, mb: 1 };

/** What a range read of both accounts returns: balances `a`, `b`, both at `version` and `mod`. */
const both = (a: string, b: string, version: number, mod: number) => [
  { key: A, value: a, version, modRevision: mod },
  { key: B, value: b, version, modRevision: mod },
];

/** Sequential operations of process 0: each one returns before the next is called. */
let clock = 0;
const op = (input: KvTxnInput, output: KvTxnOutput): Spec => {
  clock += 2;
  return { process: 0, call: clock, ret: clock + 1, input, output };
};

describe('kv-txn model: linearizable histories pass', () => {
  it('a transfer, then a read of both accounts at the new revision', () => {
    expect(
      verdict([
        SETUP,
        transfer(1, 2, 3, FRESH, 30, { succeeded: true, rev: 2 }),
        rangeAll(2, 4, 5, both('70', '130', 2, 2), 2),
      ]),
    ).toBe('linearizable');
  });

  it('two concurrent transfers from the same read: one succeeds, the other fails its compare', () => {
    expect(
      verdict([
        SETUP,
        transfer(1, 2, 6, FRESH, 30, { succeeded: true, rev: 7 }),
        // The failure branch reads what the first transfer wrote.
        {
          ...transfer(2, 3, 8, FRESH, 10, { succeeded: false, rev: 7 }),
          output: {
            succeeded: false,
            revision: 7,
            results: [
              { value: '70', version: 2, modRevision: 7 },
              { value: '130', version: 2, modRevision: 7 },
            ],
          },
        },
      ]),
    ).toBe('linearizable');
  });

  it('a transfer whose answer was lost may or may not have happened', () => {
    const lost = transfer(1, 2, undefined, FRESH, 30, undefined);
    const happened = rangeAll(2, 5, 6, both('70', '130', 2, 4), 4);
    const notYet = rangeAll(2, 5, 6, both('100', '100', 1, 1), 3);
    expect(verdict([SETUP, lost, happened])).toBe('linearizable');
    expect(verdict([SETUP, lost, notYet])).toBe('linearizable');
  });

  it('compares on a revision the model does not know (after a lost answer) are accepted either way', () => {
    const lost = transfer(1, 2, undefined, FRESH, 30, undefined);
    // The client read mod 4 for both (a read the model cannot pin, as the lost transfer's revision is unknown).
    const next = transfer(2, 5, 6, { a: 70, ma: 4, b: 130, mb: 4 }, 20, {
      succeeded: true,
      rev: 9,
      version: 3,
    });
    const after = rangeAll(3, 7, 8, both('50', '150', 3, 9), 9);
    expect(verdict([SETUP, lost, next, after])).toBe('linearizable');
  });

  it('plain get/put/cas/delete with revisions, and cas on modRevision and version', () => {
    const k = '{t}:k';
    expect(
      verdict([
        op({ f: 'put', key: k, value: 'x' }, { created: true, version: 1, modRevision: 5, revision: 5 }),
        op(
          { f: 'cas', key: k, expectedModRevision: 5, value: 'y' },
          { ok: true, version: 2, modRevision: 6, revision: 6 },
        ),
        op(
          { f: 'cas', key: k, expectedVersion: 1, value: 'z' },
          { ok: false, version: 2, modRevision: 6, revision: 8 },
        ),
        op({ f: 'get', key: k }, { value: 'y', version: 2, modRevision: 6, revision: 8 }),
        op({ f: 'delete', key: k }, { existed: true, revision: 9 }),
        op(
          { f: 'cas', key: k, expected: null, value: 'w' },
          { ok: true, version: 1, modRevision: 10, revision: 10 },
        ),
      ]),
    ).toBe('linearizable');
  });

  it('ranges with limit, reverse, keysOnly and more', () => {
    const keys = ['{p}:1', '{p}:2', '{p}:3'];
    const writes: Spec[] = keys.map((key, i) => ({
      process: 0,
      call: i * 2,
      ret: i * 2 + 1,
      input: { f: 'put', key, value: `v${i}` },
      output: { created: true, version: 1, modRevision: i + 1, revision: i + 1 },
    }));
    const range = (input: Partial<Extract<KvTxnInput, { f: 'range' }>>, output: KvTxnOutput): Spec => ({
      process: 1,
      call: 10,
      ret: 11,
      input: { f: 'range', start: '{p}:', end: '{p}~', ...input },
      output: { revision: 3, ...output },
    });
    expect(
      verdict([
        ...writes,
        range(
          { limit: 2 },
          {
            kvs: [
              { key: '{p}:1', value: 'v0', version: 1 },
              { key: '{p}:2', value: 'v1', version: 1 },
            ],
            more: true,
          },
        ),
      ]),
    ).toBe('linearizable');
    expect(
      verdict([
        ...writes,
        range(
          { reverse: true, keysOnly: true, limit: 1 },
          { kvs: [{ key: '{p}:3', modRevision: 3 }], more: true },
        ),
      ]),
    ).toBe('linearizable');
    // A size-limited page (fewer than the limit, with more) is legal.
    expect(
      verdict([...writes, range({ limit: 3 }, { kvs: [{ key: '{p}:1', value: 'v0' }], more: true })]),
    ).toBe('linearizable');
  });
});

describe('kv-txn model: histories that must fail', () => {
  it('lost update: two sequential transfers both pass a compare on the same modRevision', () => {
    expect(
      verdict([
        SETUP,
        transfer(1, 2, 3, FRESH, 30, { succeeded: true, rev: 2 }),
        transfer(2, 4, 5, FRESH, 10, { succeeded: true, rev: 3 }),
      ]),
    ).toBe('not-linearizable');
  });

  it('lost update: two concurrent transfers from the same read both succeed', () => {
    expect(
      verdict([
        SETUP,
        transfer(1, 2, 6, FRESH, 30, { succeeded: true, rev: 2 }),
        transfer(2, 3, 7, FRESH, 10, { succeeded: true, rev: 3 }),
      ]),
    ).toBe('not-linearizable');
  });

  it('write skew: two transactions each check both accounts and each debit a different one', () => {
    // Invariant a + b >= 100: each checks a = 100 and b = 100, then takes 100 from its own account.
    const debit = (process: number, from: string, rev: number): Spec => ({
      process,
      call: 2 + process,
      ret: 10 + process,
      input: {
        f: 'txn',
        compare: [
          { key: A, target: 'value', op: '=', value: '100' },
          { key: B, target: 'value', op: '=', value: '100' },
        ],
        success: [put(from, '0')],
        failure: [],
      },
      output: { succeeded: true, revision: rev, results: [{ created: false, version: 2, modRevision: rev }] },
    });
    expect(verdict([SETUP, debit(1, A, 2), debit(2, B, 3)])).toBe('not-linearizable');
    // Serialised, the second one fails its compare: linearizable.
    expect(
      verdict([
        SETUP,
        debit(1, A, 2),
        { ...debit(2, B, 3), output: { succeeded: false, revision: 2, results: [] } },
      ]),
    ).toBe('linearizable');
  });

  it('stale range: a read after a completed transfer shows the balances before it', () => {
    expect(
      verdict([
        SETUP,
        transfer(1, 2, 3, FRESH, 30, { succeeded: true, rev: 2 }),
        rangeAll(2, 4, 5, both('100', '100', 1, 1), 1),
      ]),
    ).toBe('not-linearizable');
  });

  it('torn range: a read sees one side of a transfer only', () => {
    expect(
      verdict([
        SETUP,
        transfer(1, 2, 6, FRESH, 30, { succeeded: true, rev: 2 }),
        rangeAll(
          2,
          3,
          5,
          [
            { key: A, value: '70', version: 2, modRevision: 2 },
            { key: B, value: '100', version: 1, modRevision: 1 },
          ],
          2,
        ),
      ]),
    ).toBe('not-linearizable');
  });

  it('a range that skips a present key, or says no more while keys remain', () => {
    const base = [SETUP];
    expect(
      verdict([...base, rangeAll(1, 2, 3, [{ key: B, value: '100', version: 1, modRevision: 1 }], 1)]),
    ).toBe('not-linearizable');
    expect(
      verdict([
        ...base,
        {
          process: 1,
          call: 2,
          ret: 3,
          input: { f: 'range', start: '{acct}:', end: '{acct};', limit: 1 },
          output: { kvs: [{ key: A, value: '100' }], more: false, revision: 1 },
        },
      ]),
    ).toBe('not-linearizable');
  });

  it('revisions that go backwards between two sequential writes', () => {
    const k = '{t}:k';
    expect(
      verdict([
        op({ f: 'put', key: k, value: 'x' }, { created: true, version: 1, modRevision: 5, revision: 5 }),
        op(
          { f: 'put', key: '{t}:j', value: 'y' },
          { created: true, version: 1, modRevision: 4, revision: 4 },
        ),
      ]),
    ).toBe('not-linearizable');
  });

  it('a cas on modRevision that succeeds against a newer revision', () => {
    const k = '{t}:k';
    expect(
      verdict([
        op({ f: 'put', key: k, value: 'x' }, { created: true, version: 1, modRevision: 5, revision: 5 }),
        op({ f: 'put', key: k, value: 'y' }, { created: false, version: 2, modRevision: 6, revision: 6 }),
        op(
          { f: 'cas', key: k, expectedModRevision: 5, value: 'z' },
          { ok: true, version: 3, modRevision: 7, revision: 7 },
        ),
      ]),
    ).toBe('not-linearizable');
  });

  it('mutation check: a model that ignores compares accepts the lost update and the write skew', () => {
    const ignoringCompares: Model<KvTxnState, KvTxnInput, KvTxnOutput> = {
      ...kvTxnModel,
      name: 'kv-txn-without-compares',
      step: (s, input, output) =>
        kvTxnModel.step(s, input.f === 'txn' ? { ...input, compare: [] } : input, output),
    };
    const lostUpdate = [
      SETUP,
      transfer(1, 2, 3, FRESH, 30, { succeeded: true, rev: 2 }),
      transfer(2, 4, 5, { a: 70, ma: 1, b: 130, mb: 1 }, 10, { succeeded: true, rev: 3, version: 3 }),
    ];
    expect(verdict(lostUpdate, ignoringCompares as Model)).toBe('linearizable');
    expect(verdict(lostUpdate)).toBe('not-linearizable');
  });
});

describe('kv-txn model: validation and naming', () => {
  const v = kvTxnModel.validate!;
  it('is a built-in model', () => {
    expect(getBuiltinModel('kv-txn')).toBe(kvTxnModel);
  });
  it('rejects transactions across tags and ranges that may span tags', () => {
    expect(
      v({ f: 'txn', compare: [], success: [put('{a}x', '1'), put('{b}y', '1')], failure: [] }, undefined),
    ).toMatch(/do not share a hash tag/);
    expect(v({ f: 'range', start: 'a', end: 'z' }, undefined)).toMatch(/within one hash tag/);
    expect(v({ f: 'range', start: '{a}', end: '{b}' }, undefined)).toMatch(/within one hash tag/);
    expect(v({ f: 'range', start: '{a}:', end: '{a}~' }, undefined)).toBeUndefined();
  });
  it('rejects operations it does not model and malformed fields', () => {
    expect(v({ f: 'incr', key: 'k' }, undefined)).toMatch(/no operation "incr"/);
    expect(
      v(
        {
          f: 'txn',
          compare: [{ key: 'k', target: 'modRevision', op: '=', value: 'x' }],
          success: [],
          failure: [],
        },
        undefined,
      ),
    ).toMatch(/does not fit/);
    expect(
      v({ f: 'txn', compare: [], success: [put('k', '1'), put('k', '2')], failure: [] }, undefined),
    ).toMatch(/twice/);
    expect(v({ f: 'get', key: 'k' }, { value: 1 })).toMatch(/string or null/);
    expect(v({ f: 'range', start: '{a}', end: '{a}~' }, { kvs: [{ value: 'x' }] })).toMatch(
      /needs a string "key"/,
    );
  });
  it('orders keys by code point (UTF-8 byte order), not UTF-16 code units', () => {
    expect(compareKeysUtf8('\uffff', '\u{10000}')).toBeLessThan(0);
    expect('\uffff' < '\u{10000}').toBe(false);
  });
});

/** A reference store (one tag) with revisions, transactions and ranges, applying ops atomically. */
class RefStore {
  rev = 0;
  readonly data = new Map<string, { value: string; version: number; mod: number; create: number }>();
  apply(input: KvTxnInput): KvTxnOutput {
    const meta = (k: string) => {
      const e = this.data.get(k);
      return e
        ? { value: e.value, version: e.version, modRevision: e.mod }
        : { value: null, version: 0, modRevision: 0 };
    };
    switch (input.f) {
      case 'get':
        return { ...meta(input.key), revision: this.rev };
      case 'put': {
        const r = ++this.rev;
        return { ...this.write(input.key, input.value, r), revision: r };
      }
      case 'delete': {
        const existed = this.data.delete(input.key);
        if (existed) this.rev++;
        return { existed, revision: this.rev };
      }
      case 'cas': {
        const m = meta(input.key);
        const ok =
          input.expectedModRevision !== undefined
            ? m.modRevision === input.expectedModRevision
            : input.expectedVersion !== undefined
              ? m.version === input.expectedVersion
              : (input.expected ?? null) === m.value;
        if (!ok) return { ok, version: m.version, modRevision: m.modRevision, revision: this.rev };
        const r = ++this.rev;
        const w = this.write(input.key, input.value, r);
        return { ok, version: w.version, modRevision: w.modRevision, revision: r };
      }
      case 'txn': {
        const succeeded = input.compare.every((c) => {
          const e = this.data.get(c.key);
          if (c.target === 'exists') return (e !== undefined) === (c.op === '=' ? c.value : !c.value);
          if (c.target === 'value' && e === undefined) return false;
          const order =
            c.target === 'value'
              ? compareKeysUtf8(e!.value, c.value as string)
              : (c.target === 'version'
                  ? (e?.version ?? 0)
                  : c.target === 'modRevision'
                    ? (e?.mod ?? 0)
                    : (e?.create ?? 0)) - (c.value as number);
          return c.op === '='
            ? order === 0
            : c.op === '!='
              ? order !== 0
              : c.op === '<'
                ? order < 0
                : order > 0;
        });
        const next = this.rev + 1;
        let changed = false;
        const results: KvTxnOutput[] = [];
        for (const r of succeeded ? input.success : input.failure) {
          if (r.f === 'get') results.push(meta(r.key));
          else if (r.f === 'put') {
            results.push(this.write(r.key, r.value as string, next));
            changed = true;
          } else {
            const existed = this.data.delete(r.key);
            changed ||= existed;
            results.push({ existed });
          }
        }
        if (changed) this.rev = next;
        return { succeeded, results, revision: this.rev };
      }
      case 'range': {
        const keys = [...this.data.keys()]
          .filter(
            (k) =>
              compareKeysUtf8(k, input.start) >= 0 &&
              (input.end === undefined || compareKeysUtf8(k, input.end) < 0),
          )
          .sort(compareKeysUtf8);
        if (input.reverse) keys.reverse();
        const limit = input.limit ?? keys.length;
        const kvs = keys.slice(0, limit).map((key) => {
          const m = meta(key);
          return input.keysOnly ? { key, version: m.version, modRevision: m.modRevision } : { key, ...m };
        });
        return { kvs, more: keys.length > limit, revision: this.rev };
      }
    }
  }
  private write(key: string, value: string, r: number) {
    const e = this.data.get(key);
    if (e === undefined) {
      this.data.set(key, { value, version: 1, mod: r, create: r });
      return { created: true, version: 1, modRevision: r };
    }
    e.value = value;
    e.version++;
    e.mod = r;
    return { created: false, version: e.version, modRevision: r };
  }
}

/** A small seeded generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A concurrent history of `n` operations on one tag: each op is applied atomically to the reference
 * store at a random point between its call and its return (so the history is linearizable by
 * construction); some answers are dropped (indeterminate).
 */
function generate(seed: number, n: number, lostAnswers = 0.1, tag = 'g'): Spec[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const keys = [`{${tag}}:a`, `{${tag}}:b`, `{${tag}}:c`];
  const store = new RefStore();
  const specs: Spec[] = [];
  const randomOp = (): KvTxnInput => {
    const k = pick(keys);
    const x = r();
    const value = `v${Math.floor(r() * 4)}`;
    if (x < 0.15) return { f: 'get', key: k };
    if (x < 0.3) return { f: 'put', key: k, value };
    if (x < 0.35) return { f: 'delete', key: k };
    if (x < 0.45) return { f: 'cas', key: k, expectedModRevision: Math.floor(r() * (store.rev + 1)), value };
    if (x < 0.55)
      return {
        f: 'range',
        start: `{${tag}}:`,
        end: `{${tag}};`,
        ...(r() < 0.3 ? { limit: 2 } : {}),
        ...(r() < 0.3 ? { reverse: true } : {}),
      };
    const other = pick(keys.filter((y) => y !== k));
    const target = pick(['value', 'version', 'modRevision', 'exists'] as const);
    const compare: KvTxnCompare[] = [
      target === 'value'
        ? { key: k, target, op: pick(['=', '!=', '<', '>'] as const), value }
        : target === 'exists'
          ? { key: k, target, op: '=', value: r() < 0.5 }
          : { key: k, target, op: pick(['=', '<', '>'] as const), value: Math.floor(r() * (store.rev + 2)) },
    ];
    return {
      f: 'txn',
      compare,
      success: [put(k, value), r() < 0.5 ? put(other, `w${Math.floor(r() * 3)}`) : get(other)],
      failure: r() < 0.5 ? [get(k)] : [{ f: 'delete', key: other }],
    };
  };
  // Events on a timeline: at each step either start an op on an idle process, apply a started op, or
  // return an applied op.
  interface Open {
    process: number;
    call: number;
    input: KvTxnInput;
    output?: KvTxnOutput;
  }
  const open: Open[] = [];
  let t = 0;
  let started = 0;
  const processes = 4;
  const idle = Array.from({ length: processes }, (_, i) => i);
  let nextProcess = processes;
  while (started < n || open.length > 0) {
    t++;
    const choice = r();
    if (choice < 0.4 && started < n && idle.length > 0) {
      const process = idle.splice(Math.floor(r() * idle.length), 1)[0] as number;
      open.push({ process, call: t, input: randomOp() });
      started++;
    } else if (choice < 0.7) {
      const pending = open.filter((o) => o.output === undefined);
      if (pending.length > 0) {
        const o = pick(pending);
        o.output = store.apply(o.input);
      }
    } else {
      const done = open.filter((o) => o.output !== undefined);
      if (done.length > 0) {
        const o = pick(done);
        open.splice(open.indexOf(o), 1);
        if (r() < lostAnswers) {
          specs.push({ process: o.process, call: o.call, input: o.input }); // answer lost
          idle.push(nextProcess++);
        } else {
          specs.push({
            process: o.process,
            call: o.call,
            ret: t,
            input: o.input,
            output: o.output as KvTxnOutput,
          });
          idle.push(o.process);
        }
      } else if (started >= n && open.length > 0) {
        const o = open[0] as Open;
        o.output = store.apply(o.input);
      }
    }
  }
  return specs;
}

describe('kv-txn model: generated concurrent histories from a reference store', () => {
  it('300 seeds of 60 operations, linearizable by construction, all pass', () => {
    const bad: number[] = [];
    for (let seed = 1; seed <= 300; seed++) {
      if (verdict(generate(seed, 60)) !== 'linearizable') bad.push(seed);
    }
    expect(bad).toEqual([]);
  });

  it('changing one answered read value makes them fail (the checks bite)', () => {
    const mutate = (specs: Spec[]): Spec[] | undefined => {
      const i = specs.findIndex(
        (s) =>
          s.input.f === 'range' &&
          (s.output?.kvs?.length ?? 0) > 0 &&
          s.output?.kvs?.[0]?.value !== undefined,
      );
      if (i < 0) return undefined;
      const s = specs[i] as Spec;
      const kvs = s.output!.kvs!.map((kv, j) => (j === 0 ? { ...kv, value: 'never-written' } : kv));
      return specs.map((x, j) => (j === i ? { ...s, output: { ...s.output, kvs } } : x));
    };
    // Every answer known: every mutant is caught.
    let tried = 0;
    let caught = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const m = mutate(generate(seed, 40, 0));
      if (m === undefined) continue;
      tried++;
      if (verdict(m) === 'not-linearizable') caught++;
    }
    expect(tried).toBeGreaterThan(50);
    expect(caught).toBe(tried);
    // With lost answers the model may know less after them (see the module notes): still nearly all.
    tried = 0;
    caught = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const m = mutate(generate(seed, 40, 0.1));
      if (m === undefined) continue;
      tried++;
      if (verdict(m) === 'not-linearizable') caught++;
    }
    expect(caught / tried).toBeGreaterThan(0.9);
  });

  it('worker threads give the same verdicts (a 6,000-operation history over 4 tags, one of them broken)', async () => {
    const specs: Spec[] = [];
    for (const [i, tag] of ['w0', 'w1', 'w2', 'w3'].entries()) {
      // Tag w0 (where the broken read goes) has every answer; the others lose some.
      const part = generate(1000 + i, 1500, i === 0 ? 0 : 0.02, tag).map((s) => ({
        ...s,
        process: `${tag}-${s.process}`,
      }));
      specs.push(...part);
    }
    expect(specs.length).toBeGreaterThanOrEqual(6000);
    const good = buildHistory(specs);
    const threaded = await check(good, { model: 'kv-txn', workers: 2, parallelMinOperations: 1000 });
    expect(threaded.verdict).toBe('linearizable');
    expect(threaded.partitions.map((p) => p.thread)).toContain('worker');
    const i = specs.findIndex(
      (s) => s.input.f === 'range' && (s.output?.kvs?.[0]?.value ?? undefined) !== undefined,
    );
    expect(i).toBeGreaterThanOrEqual(0);
    const s = specs[i] as Spec;
    const broken = specs.map((x, j) =>
      j === i
        ? { ...s, output: { ...s.output, kvs: [{ ...s.output!.kvs![0]!, value: 'never-written' }] } }
        : x,
    );
    const r = await check(buildHistory(broken), { model: 'kv-txn', workers: 2, parallelMinOperations: 1000 });
    const sync = checkSync(buildHistory(broken), { model: 'kv-txn' });
    expect(r.verdict).toBe('not-linearizable');
    expect(sync.verdict).toBe('not-linearizable');
  }, 120_000);
});
