import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { check, checkSync, closeWorkerPool } from './check.js';
import { InvalidOperationError, ModelError } from './errors.js';
import { buildHistory, type Operation, type OperationSpec } from './history.js';
import { defineModel } from './model.js';
import { createKvModel, getBuiltinModel, type KvInput, type KvOutput, kvModel } from './models.js';
import { searchPartition } from './search.js';

const W = (process: number, call: number, ret: number | undefined, value: number): OperationSpec => ({
  process,
  call,
  ...(ret === undefined ? {} : { ret }),
  input: { f: 'write', value },
  ...(ret === undefined ? {} : { output: {} }),
});
const R = (process: number, call: number, ret: number, value: number | null): OperationSpec => ({
  process,
  call,
  ret,
  input: { f: 'read' },
  output: { value },
});

describe('search on small register histories', () => {
  it('accepts concurrent writes read in either order', () => {
    const h = buildHistory([W(0, 0, 10, 1), W(1, 1, 11, 2), R(2, 12, 13, 1)], 'register');
    expect(checkSync(h).verdict).toBe('linearizable');
    const h2 = buildHistory([W(0, 0, 10, 1), W(1, 1, 11, 2), R(2, 12, 13, 2)], 'register');
    expect(checkSync(h2).verdict).toBe('linearizable');
  });

  it('rejects a stale read after a completed write, with the prefix and the stuck op', () => {
    const h = buildHistory([W(0, 0, 1, 1), W(0, 2, 3, 2), R(1, 4, 5, 1)], 'register');
    const r = checkSync(h);
    expect(r.verdict).toBe('not-linearizable');
    const p = r.partitions[0];
    expect(p?.longestPrefix).toEqual([0, 1]);
    expect(p?.stuck).toEqual([2]);
  });

  it('lets an indeterminate write take effect late, or never', () => {
    const late = buildHistory([W(0, 0, undefined, 7), R(1, 5, 6, null), R(1, 10, 11, 7)], 'register');
    expect(checkSync(late).verdict).toBe('linearizable');
    const never = buildHistory([W(0, 0, undefined, 7), R(1, 5, 6, null), R(1, 10, 11, null)], 'register');
    expect(checkSync(never).verdict).toBe('linearizable');
    const flicker = buildHistory([W(0, 0, undefined, 7), R(1, 5, 6, 7), R(1, 10, 11, null)], 'register');
    expect(checkSync(flicker).verdict).toBe('not-linearizable');
  });

  it('treats touching intervals (return time = call time) as concurrent', () => {
    const h = buildHistory([W(0, 0, 5, 1), R(1, 5, 6, null)], 'register');
    expect(checkSync(h).verdict).toBe('linearizable');
  });

  it('drops failed ops and indeterminate reads before the search', () => {
    const h = buildHistory(
      [
        { process: 0, call: 0, ret: 1, input: { f: 'write', value: 9 }, status: 'fail' },
        { process: 1, call: 0, input: { f: 'read' } },
        R(2, 2, 3, null),
      ],
      'register',
    );
    const r = checkSync(h);
    expect(r.verdict).toBe('linearizable');
    expect(r.dropped).toEqual([0, 1]);
  });

  it('an empty history is linearizable', () => {
    expect(checkSync(buildHistory([], 'etcd')).verdict).toBe('linearizable');
  });

  it('names the line of an operation that does not fit the model', () => {
    const h = buildHistory([{ process: 0, call: 0, ret: 1, input: { f: 'fly' }, output: {} }], 'register');
    h.operations[0] = { ...(h.operations[0] as (typeof h.operations)[0]), line: 7 };
    expect(() => checkSync(h)).toThrow(InvalidOperationError);
    expect(() => checkSync(h)).toThrow(/:7: .*no operation "fly"/);
  });
});

describe('time budget', () => {
  it('returns unknown instead of hanging', () => {
    // 24 concurrent indeterminate writes of distinct values and a final read of a value no write
    // produced: refuting it means exploring every subset, far beyond a 1 ms budget.
    const specs: OperationSpec[] = [];
    for (let i = 0; i < 24; i++) specs.push(W(i, i, undefined, i));
    for (let i = 0; i < 24; i++) specs.push(R(100 + i, 30 + 2 * i, 31 + 2 * i, i % 2 === 0 ? i : 24 - i));
    const r = checkSync(buildHistory(specs, 'register'), {
      timeoutMs: 1,
      limits: { clockCheckInterval: 64 },
      fastPath: false, // the fast path decides this one at once (linearizable)
    });
    expect(r.verdict).toBe('unknown');
    expect(r.partitions[0]?.reason).toMatch(/time budget/);
  });
});

describe('worker threads stop on a violation', () => {
  it('reports the violation and leaves the other partitions unknown or finished', async () => {
    const specs: OperationSpec[] = [];
    for (let k = 0; k < 4; k++) {
      specs.push({
        process: k,
        call: 10 * k,
        ret: 10 * k + 1,
        input: { f: 'put', key: `k${k}`, value: 'a' },
        output: {},
      });
      specs.push({
        process: k,
        call: 10 * k + 2,
        ret: 10 * k + 3,
        input: { f: 'get', key: `k${k}` },
        output: { value: k === 2 ? 'b' : 'a' },
      });
    }
    const r = await check(buildHistory(specs), { model: 'kv', workers: 2 });
    expect(r.verdict).toBe('not-linearizable');
    expect(r.partitions[0]).toMatchObject({ key: 'k2', verdict: 'not-linearizable' });
    for (const p of r.partitions.slice(1)) expect(['linearizable', 'unknown']).toContain(p.verdict);
    await closeWorkerPool();
  }, 60_000);
});

describe('user-defined model', () => {
  // A counter: add(n) → {}, get → {value}.
  type In = { op: 'add'; n: number } | { op: 'get' };
  const counter = defineModel<number, In, { value?: number }>({
    name: 'counter',
    init: () => 0,
    step: (s, i, o) => {
      if (i.op === 'add') return { ok: true, state: s + i.n };
      return o?.value === undefined || o.value === s ? { ok: true, state: s } : { ok: false };
    },
    readOnly: (i) => i.op === 'get',
    describeOperation: (i, o) => (i.op === 'add' ? `add(${i.n})` : `get → ${o?.value ?? '?'}`),
  });
  it('checks with a custom model, sync and async (in-thread)', async () => {
    const ok = buildHistory([
      { process: 0, call: 0, ret: 3, input: { op: 'add', n: 2 }, output: {} },
      { process: 1, call: 1, ret: 2, input: { op: 'get' }, output: { value: 2 } },
    ]);
    expect(checkSync(ok, { model: counter as never }).verdict).toBe('linearizable');
    expect((await check(ok, { model: counter as never, workers: 2 })).verdict).toBe('linearizable');
    const bad = buildHistory([
      { process: 0, call: 0, ret: 1, input: { op: 'add', n: 2 }, output: {} },
      { process: 1, call: 2, ret: 3, input: { op: 'get' }, output: { value: 3 } },
    ]);
    expect(checkSync(bad, { model: counter as never }).verdict).toBe('not-linearizable');
  });
});

// ---- property tests -------------------------------------------------------------------------

const KEYS = ['a', 'b', 'c'];

interface GenOp {
  f: 'get' | 'put' | 'cas' | 'delete' | 'append';
  key: number;
  before: number;
  after: number;
  pick: number;
  indeterminate: boolean;
}

const genOp = fc.record({
  f: fc.constantFrom('get', 'get', 'put', 'cas', 'delete', 'append'),
  key: fc.nat(KEYS.length - 1),
  before: fc.nat(20),
  after: fc.nat(20),
  pick: fc.nat(3),
  indeterminate: fc.boolean(),
}) as fc.Arbitrary<GenOp>;

/**
 * Runs random operations against a sequential KV map at linearization points 100 apart, with call
 * and return times spread around them (so intervals overlap at random but every op contains its
 * point), and assigns each op to a client that is free at its call time.
 */
function simulate(gen: GenOp[]): OperationSpec<KvInput, KvOutput>[] {
  const state = new Map<string, string>();
  const specs: OperationSpec<KvInput, KvOutput>[] = [];
  const busyUntil: number[] = [];
  gen.forEach((g, n) => {
    const lp = (n + 1) * 100;
    const key = KEYS[g.key] as string;
    const cur = state.get(key);
    const value = `v${n}`;
    let input: KvInput;
    let output: KvOutput;
    switch (g.f) {
      case 'get':
        input = { f: 'get', key };
        output = { value: cur ?? null };
        break;
      case 'put':
        input = { f: 'put', key, value };
        output = { created: cur === undefined };
        state.set(key, value);
        break;
      case 'delete':
        input = { f: 'delete', key };
        output = { existed: cur !== undefined };
        state.delete(key);
        break;
      case 'append':
        input = { f: 'append', key, value };
        output = {};
        state.set(key, (cur ?? '') + value);
        break;
      case 'cas': {
        const expected = g.pick === 0 ? null : g.pick === 1 ? (cur ?? null) : `v${Math.max(0, n - g.pick)}`;
        const ok = expected === null ? cur === undefined : cur === expected;
        input = { f: 'cas', key, expected, value };
        output = { ok };
        if (ok) state.set(key, value);
        break;
      }
    }
    const call = lp - 1 - g.before * 9;
    const ret = lp + 1 + g.after * 9;
    let proc = busyUntil.findIndex((t) => t < call);
    if (proc < 0) proc = busyUntil.length;
    const indeterminate = g.indeterminate && g.f !== 'get' && n % 3 === 0;
    busyUntil[proc] = indeterminate ? Number.POSITIVE_INFINITY : ret;
    specs.push(indeterminate ? { process: proc, call, input } : { process: proc, call, ret, input, output });
  });
  return specs;
}

describe('property: histories of a real sequential KV map', () => {
  it('are always linearizable', () => {
    fc.assert(
      fc.property(fc.array(genOp, { minLength: 1, maxLength: 60 }), (gen) => {
        const r = checkSync(buildHistory(simulate(gen)), { model: kvModel as never });
        expect(r.verdict).toBe('linearizable');
      }),
      { numRuns: 300 },
    );
  });

  it('are never linearizable once one read returns a value that no write produced', () => {
    fc.assert(
      fc.property(fc.array(genOp, { minLength: 1, maxLength: 60 }), fc.nat(), (gen, which) => {
        const specs = simulate(gen);
        const reads = specs.filter((s) => s.input.f === 'get' && s.output !== undefined);
        fc.pre(reads.length > 0);
        const victim = reads[which % reads.length] as OperationSpec<KvInput, KvOutput>;
        victim.output = { value: 'never-written' };
        const r = checkSync(buildHistory(specs), { model: kvModel as never });
        expect(r.verdict).toBe('not-linearizable');
        const bad = r.partitions.find((p) => p.verdict === 'not-linearizable');
        expect(bad?.key).toBe(victim.input.key);
      }),
      { numRuns: 300 },
    );
  });

  it('give the same verdict partitioned and unpartitioned, and searchPartition agrees', () => {
    fc.assert(
      fc.property(fc.array(genOp, { minLength: 1, maxLength: 25 }), fc.boolean(), (gen, corrupt) => {
        const specs = simulate(gen);
        const read = specs.find((s) => s.input.f === 'get' && s.output !== undefined);
        if (corrupt && read) read.output = { value: 'x' };
        const h = buildHistory(specs);
        const a = checkSync(h, { model: 'kv' }).verdict;
        const b = checkSync(h, { model: 'kv:unpartitioned' }).verdict;
        expect(a).toBe(b);
        const all = h.operations.filter((o) => !(o.output === undefined && (o.input as KvInput).f === 'get'));
        const direct = searchPartition(all, createKvModel({ partitioned: false }) as never);
        expect(direct.verdict).toBe(a);
      }),
      { numRuns: 150 },
    );
  });
});

describe('worker threads', () => {
  it('checks partitions in workers and gives the same verdicts', async () => {
    const specs = simulate(
      Array.from({ length: 120 }, (_, i) => ({
        f: (['get', 'put', 'append', 'cas', 'delete'] as const)[i % 5] as GenOp['f'],
        key: i % 3,
        before: (i * 7) % 13,
        after: (i * 5) % 11,
        pick: i % 4,
        indeterminate: false,
      })),
    );
    const h = buildHistory(specs);
    const inThread = checkSync(h, { model: 'kv' });
    const threaded = await check(h, { model: 'kv', workers: 2 });
    expect(threaded.verdict).toBe('linearizable');
    expect(threaded.partitions.every((p) => p.thread === 'worker')).toBe(true);
    // A second check reuses the idle threads.
    const again = await check(h, { model: 'kv', workers: 2 });
    expect(again.partitions.every((p) => p.thread === 'worker')).toBe(true);
    await closeWorkerPool();
    expect(threaded.partitions.map((p) => [p.key, p.verdict]).sort()).toEqual(
      inThread.partitions.map((p) => [p.key, p.verdict]).sort(),
    );
  }, 60_000);
});

describe('search reductions', () => {
  it('explores swaps of identical indeterminate writes once, and still finds a violation', () => {
    // Twelve identical indeterminate writes of 1 and a read of 2: not linearizable, and refuted
    // without trying the 12! orders of the writes.
    const specs: OperationSpec[] = [];
    for (let i = 0; i < 12; i++) specs.push(W(i, i, undefined, 1));
    specs.push(W(20, 20, 21, 3));
    specs.push(R(21, 30, 31, 2));
    const r = checkSync(buildHistory(specs, 'register'));
    expect(r.verdict).toBe('not-linearizable');
    expect(r.partitions[0]?.steps).toBeLessThan(2_000);
  });

  it('linearizes state-preserving ops greedily without losing linearizable histories', () => {
    // A failed cas observes "value ≠ 1" and must go before the write of 1.
    const specs: OperationSpec[] = [
      { process: 0, call: 0, ret: 10, input: { f: 'write', value: 1 }, output: {} },
      { process: 1, call: 1, ret: 11, input: { f: 'cas', expected: 1, value: 2 }, output: { ok: false } },
      R(2, 12, 13, 1),
    ];
    expect(checkSync(buildHistory(specs, 'cas-register')).verdict).toBe('linearizable');
  });
});

describe('property: agrees with a brute-force checker on tiny cas-register histories', () => {
  // Values from a tiny domain make identical operations (twins) and state-preserving ones common,
  // which is where the search's reductions act.
  const op = fc.record({
    f: fc.constantFrom('read', 'write', 'cas'),
    a: fc.nat(2),
    b: fc.nat(2),
    ok: fc.boolean(),
    call: fc.nat(20),
    len: fc.nat(12),
    indeterminate: fc.nat(4),
  });
  const casModel = getBuiltinModel('cas-register');

  function brute(ops: Operation[]): boolean {
    const n = ops.length;
    const used = new Array<boolean>(n).fill(false);
    const go = (state: unknown, done: number): boolean => {
      if (done === n) return true;
      let minRet = Number.POSITIVE_INFINITY;
      for (let i = 0; i < n; i++) if (!used[i]) minRet = Math.min(minRet, (ops[i] as Operation).ret);
      for (let i = 0; i < n; i++) {
        const o = ops[i] as Operation;
        if (used[i] || o.call > minRet) continue;
        const r = casModel.step(state as never, o.input as never, o.output as never);
        if (!r.ok) continue;
        used[i] = true;
        if (go(r.state, done + 1)) return true;
        used[i] = false;
      }
      return false;
    };
    return go(casModel.init(), 0);
  }

  it('gives the same verdict', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 7 }), (gen) => {
        const specs: OperationSpec[] = gen.map((g, i) => {
          const input =
            g.f === 'read'
              ? { f: 'read' }
              : g.f === 'write'
                ? { f: 'write', value: g.a }
                : { f: 'cas', expected: g.a, value: g.b };
          const output =
            g.f === 'read' ? { value: g.b === 2 ? null : g.b } : g.f === 'cas' ? { ok: g.ok } : {};
          if (g.indeterminate === 0 && g.f !== 'read') return { process: i, call: g.call, input };
          return { process: i, call: g.call, ret: g.call + g.len, input, output };
        });
        const h = buildHistory(specs, 'cas-register');
        const kept = h.operations.filter(
          (o) => !(o.output === undefined && (o.input as { f: string }).f === 'read'),
        );
        const expected = brute(kept) ? 'linearizable' : 'not-linearizable';
        expect(checkSync(h).verdict).toBe(expected);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('models whose states are not plain JSON', () => {
  // A set of strings kept in a Map-backed state: JSON.stringify would see every state as "{}".
  const setModel = defineModel<ReadonlySet<string>, { add?: string; has?: string }, { yes?: boolean }>({
    name: 'set',
    init: () => new Set<string>(),
    step: (s, i, o) => {
      if (i.add !== undefined) return { ok: true, state: new Set([...s, i.add]) };
      return o?.yes === undefined || o.yes === s.has(i.has as string)
        ? { ok: true, state: s }
        : { ok: false };
    },
  });
  const specs: OperationSpec[] = [
    { process: 0, call: 0, ret: 1, input: { add: 'a' }, output: {} },
    { process: 1, call: 2, ret: 3, input: { has: 'a' }, output: { yes: false } },
  ];
  it('are refused with a clear error when the model has no key()', () => {
    expect(() => checkSync(buildHistory(specs), { model: setModel })).toThrow(ModelError);
    expect(() => checkSync(buildHistory(specs), { model: setModel })).toThrow(
      /give the model a key\(state\)/,
    );
  });
  it('are checked correctly with a key()', () => {
    const keyed = { ...setModel, key: (s: ReadonlySet<string>) => [...s].sort().join('\u0000') };
    expect(checkSync(buildHistory(specs), { model: keyed }).verdict).toBe('not-linearizable');
  });
});
