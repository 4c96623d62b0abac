import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkSync } from './check.js';
import { buildHistory, type OperationSpec } from './history.js';
import { casRegisterModel } from './models.js';
import { partitionOpsOf, searchPartition } from './search.js';
import { shrinkPartition } from './shrink.js';

describe('shrinking a violation found by the general search', () => {
  it('keeps a sub-history that is not linearizable on its own and names it in the result', () => {
    // cas-register (no fast path): a long linearizable run, then a stale read
    const specs: OperationSpec[] = [];
    let t = 0;
    for (let i = 0; i < 200; i++) {
      specs.push({
        process: 1,
        call: t,
        ret: t + 1,
        input: { f: 'cas', expected: i, value: i + 1 },
        output: { ok: i > 0 },
      });
      specs.push({
        process: 2,
        call: t + 2,
        ret: t + 3,
        input: { f: 'read' },
        output: { value: i === 150 ? 0 : i === 0 ? null : i + 1 },
      });
      t += 4;
    }
    specs.unshift({ process: 0, call: -2, ret: -1, input: { f: 'write', value: 0 }, output: {} });
    const h = buildHistory(specs, 'cas-register');
    const r = checkSync(h, { model: casRegisterModel });
    expect(r.verdict).toBe('not-linearizable');
    const p = r.partitions[0];
    expect(p?.method).toBe('search');
    const minimal = p?.minimal ?? [];
    expect(minimal.length).toBeGreaterThan(0);
    expect(minimal.length).toBeLessThan(20);
    const sub = buildHistory(
      minimal.map((i) => {
        const o = h.operations[i];
        return {
          process: o?.process ?? 0,
          call: o?.call ?? 0,
          ret: o?.ret ?? 0,
          input: o?.input,
          output: o?.output,
        };
      }),
      'cas-register',
    );
    expect(checkSync(sub, { model: casRegisterModel }).verdict).toBe('not-linearizable');
  });

  it('property: the shrunk sub-history is never linearizable, on random small cas-register histories', () => {
    const op = fc.tuple(fc.nat(2), fc.nat(3), fc.nat(3), fc.nat(20), fc.integer({ min: -1, max: 6 }));
    let shrunk = 0;
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 7 }), (raw) => {
        const specs: OperationSpec[] = raw.map(([kind, a, b, c, d], i) => {
          const ret = d < 0 ? undefined : c + d;
          const input =
            kind === 0
              ? { f: 'write', value: a }
              : kind === 1
                ? { f: 'read' }
                : { f: 'cas', expected: a, value: b };
          const output = kind === 0 ? {} : kind === 1 ? { value: b === 3 ? null : b } : { ok: b % 2 === 0 };
          return { process: i, call: c, ...(ret === undefined ? {} : { ret, output }), input };
        });
        const { part } = partitionOpsOf(
          buildHistory(specs, 'cas-register').operations.filter(
            (o) => !(o.output === undefined && (o.input as { f: string }).f === 'read'),
          ),
        );
        if (searchPartition(part, casRegisterModel).verdict !== 'not-linearizable') return;
        const s = shrinkPartition(part, casRegisterModel);
        expect(s).toBeDefined();
        if (s === undefined) return;
        shrunk++;
        const relaxed = new Set(s.relaxed);
        const sub = {
          call: Float64Array.from(s.ops, (i) => part.call[i] as number),
          ret: Float64Array.from(s.ops, (i) =>
            relaxed.has(i) ? Number.POSITIVE_INFINITY : (part.ret[i] as number),
          ),
          input: Int32Array.from(s.ops, (i) => part.input[i] as number),
          output: Int32Array.from(s.ops, (i) => (relaxed.has(i) ? -1 : (part.output[i] as number))),
          values: part.values,
        };
        expect(searchPartition(sub, casRegisterModel).verdict).toBe('not-linearizable');
      }),
      { numRuns: 1_000, seed: 3 },
    );
    expect(shrunk).toBeGreaterThan(50);
  });
});
