import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkSync } from './check.js';
import { ValueTable } from './compact.js';
import { fastCheck, verifyLinearization } from './fast.js';
import { buildHistory, type OperationSpec } from './history.js';
import { casRegisterModel, kvModel, registerModelInstance } from './models.js';
import { type PartitionOps, searchPartition } from './search.js';

/**
 * Random histories checked by the fast path against the general search. The default run is
 * 5,000 histories (fast on a busy machine); `PAXKV_CHECKER_FULL=1` runs the 100,000 of the issue.
 */
const RUNS = process.env.PAXKV_CHECKER_FULL === '1' ? 100_000 : 5_000;
/** Room for the full run on a loaded machine. */
const TIMEOUT = RUNS > 5_000 ? 1_800_000 : 60_000;

/** One random operation: [kind, value, call, duration (-1 = indeterminate)]. */
type RawOp = [number, number, number, number];

const rawOp = fc.tuple(fc.nat(9), fc.nat(6), fc.nat(24), fc.integer({ min: -1, max: 10 }));

/** A register history where writes are unique (write k writes value k) and reads return 0..6 or null. */
function registerOps(raw: readonly RawOp[]): PartitionOps {
  const t = new ValueTable();
  const n = raw.length;
  const call = new Float64Array(n);
  const ret = new Float64Array(n);
  const input = new Int32Array(n);
  const output = new Int32Array(n);
  const sorted = [...raw].sort((a, b) => a[2] - b[2]);
  let nextValue = 0;
  sorted.forEach(([kind, v, c, d], i) => {
    call[i] = c;
    const write = kind < 4;
    const indeterminate = d < 0;
    ret[i] = indeterminate ? Number.POSITIVE_INFINITY : c + d;
    if (write) {
      input[i] = t.intern({ f: 'write', value: nextValue++ });
      output[i] = indeterminate ? -1 : t.intern({});
    } else {
      input[i] = t.intern({ f: 'read' });
      // reads mostly of values written so far (0..nextValue), sometimes null or a value never written
      output[i] = indeterminate ? -1 : t.intern({ value: v === 6 ? null : v });
    }
  });
  return { call, ret, input, output, values: t.values };
}

describe('fast path (unique writes) against the general search', () => {
  it(`agrees on ${RUNS.toLocaleString('en')} random register histories, and its linearizations replay`, {
    timeout: TIMEOUT,
  }, () => {
    let decided = 0;
    let violations = 0;
    fc.assert(
      fc.property(fc.array(rawOp, { minLength: 1, maxLength: 8 }), (raw) => {
        const ops = registerOps(raw);
        // indeterminate reads constrain nothing: the checker drops them before either path
        const keep: number[] = [];
        for (let i = 0; i < ops.call.length; i++) {
          const read = (ops.values[ops.input[i] as number] as { f: string }).f === 'read';
          if (!(read && ops.output[i] === -1)) keep.push(i);
        }
        const sub: PartitionOps = {
          call: Float64Array.from(keep, (i) => ops.call[i] as number),
          ret: Float64Array.from(keep, (i) => ops.ret[i] as number),
          input: Int32Array.from(keep, (i) => ops.input[i] as number),
          output: Int32Array.from(keep, (i) => ops.output[i] as number),
          values: ops.values,
        };
        const fast = fastCheck(sub, registerModelInstance);
        const slow = searchPartition(sub, registerModelInstance);
        expect(fast).toBeDefined();
        if (fast === undefined) return;
        decided++;
        expect(fast.verdict).toBe(slow.verdict);
        if (fast.verdict === 'linearizable') {
          expect(verifyLinearization(sub, registerModelInstance, fast.linearization)).toBe(true);
        } else {
          violations++;
          // the core alone is already not linearizable
          const core = fast.core;
          const coreOps: PartitionOps = {
            call: Float64Array.from(core, (i) => sub.call[i] as number),
            ret: Float64Array.from(core, (i) => sub.ret[i] as number),
            input: Int32Array.from(core, (i) => sub.input[i] as number),
            output: Int32Array.from(core, (i) => sub.output[i] as number),
            values: sub.values,
          };
          expect(core.length).toBeLessThanOrEqual(6);
          expect(searchPartition(coreOps, registerModelInstance).verdict).toBe('not-linearizable');
        }
      }),
      { numRuns: RUNS, seed: 19 },
    );
    expect(decided).toBe(RUNS);
    // both verdicts are well represented
    expect(violations).toBeGreaterThan(RUNS / 10);
    expect(RUNS - violations).toBeGreaterThan(RUNS / 10);
  });

  it('does not apply when writes repeat a value, or to cas, and the check still decides', () => {
    const W = (p: number, c: number, r: number, v: number): OperationSpec => ({
      process: p,
      call: c,
      ret: r,
      input: { f: 'write', value: v },
      output: {},
    });
    const R = (p: number, c: number, r: number, v: number | null): OperationSpec => ({
      process: p,
      call: c,
      ret: r,
      input: { f: 'read' },
      output: { value: v },
    });
    const dup = buildHistory([W(0, 0, 1, 1), W(1, 2, 3, 1), R(2, 4, 5, 1)], 'register');
    const r1 = checkSync(dup);
    expect(r1.verdict).toBe('linearizable');
    expect(r1.partitions[0]?.method).toBe('search');
    const cas = buildHistory(
      [
        W(0, 0, 1, 1),
        { process: 1, call: 2, ret: 3, input: { f: 'cas', expected: 1, value: 2 }, output: { ok: true } },
      ],
      'cas-register',
    );
    expect(checkSync(cas, { model: casRegisterModel }).partitions[0]?.method).toBe('search');
    const unique = buildHistory([W(0, 0, 1, 1), W(1, 2, 3, 2), R(2, 4, 5, 1)], 'register');
    const r3 = checkSync(unique);
    expect(r3.verdict).toBe('not-linearizable');
    expect(r3.partitions[0]?.method).toBe('fast');
    expect(r3.partitions[0]?.minimal?.length).toBeLessThanOrEqual(6);
  });

  it('agrees through checkSync on random kv histories over a few keys (fast path on and off)', {
    timeout: TIMEOUT,
  }, () => {
    let fastDecided = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(2), rawOp), { minLength: 1, maxLength: 12 }), (raw) => {
        let next = 0;
        const specs: OperationSpec[] = raw.map(([k, [kind, v, c, d]], i) => {
          const key = `k${k}`;
          const ret = d < 0 ? undefined : c + d;
          if (kind < 4) {
            // sometimes with a `created` answer (true or false), which the fast path must respect
            const output = v < 2 ? { created: v === 0 } : {};
            return {
              process: i,
              call: c,
              ...(ret === undefined ? {} : { ret, output }),
              input: { f: 'put', key, value: `v${next++}` },
            };
          }
          const out = v === 6 ? null : `v${v}`;
          return {
            process: i,
            call: c,
            ...(ret === undefined ? {} : { ret, output: { value: out } }),
            input: { f: 'get', key },
          };
        });
        const h = buildHistory(specs, 'kv');
        const a = checkSync(h, { model: kvModel, checkAllPartitions: true });
        const b = checkSync(h, { model: kvModel, checkAllPartitions: true, fastPath: false });
        expect(a.verdict).toBe(b.verdict);
        const byKey = new Map(b.partitions.map((p) => [p.key, p.verdict]));
        for (const p of a.partitions) {
          expect(p.verdict).toBe(byKey.get(p.key));
          if (p.method === 'fast') fastDecided++;
        }
      }),
      { numRuns: Math.round(RUNS / 5), seed: 7 },
    );
    expect(fastDecided).toBeGreaterThan(RUNS / 10);
  });
});
