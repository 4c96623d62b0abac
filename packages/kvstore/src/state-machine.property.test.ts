import type { KvOp, KvResult } from '@paxkv/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KvStateMachine } from './state-machine.js';

/** The obvious model: a Map, and a set of (client, seq) already applied with their results. */
function modelApply(
  data: Map<string, string>,
  done: Map<string, KvResult>,
  op: KvOp,
  session: { client: string; seq: number } | undefined,
): KvResult {
  const id = session ? `${session.client}#${session.seq}` : undefined;
  if (id && op.op !== 'get' && done.has(id)) return done.get(id)!;
  const cur = data.get(op.key);
  let r: KvResult;
  switch (op.op) {
    case 'get':
      r = { op: 'get', value: cur ?? null };
      break;
    case 'put':
      data.set(op.key, op.value as string);
      r = { op: 'put', created: cur === undefined };
      break;
    case 'delete':
      data.delete(op.key);
      r = { op: 'delete', existed: cur !== undefined };
      break;
    case 'cas':
      if (op.expected === null ? cur !== undefined : cur !== op.expected) {
        r =
          cur === undefined
            ? { op: 'cas', outcome: 'not-found', current: null }
            : { op: 'cas', outcome: 'mismatch', current: cur };
      } else {
        data.set(op.key, op.value as string);
        r = { op: 'cas', outcome: 'applied', current: op.value };
      }
      break;
    case 'incr': {
      const before = cur === undefined ? 0n : /^-?(0|[1-9]\d{0,18})$/.test(cur) ? BigInt(cur) : null;
      if (before === null || before >= 2n ** 63n || before < -(2n ** 63n)) {
        r = { op: 'incr', outcome: 'not-integer', value: null };
      } else if (before + BigInt(op.by) >= 2n ** 63n || before + BigInt(op.by) < -(2n ** 63n)) {
        r = { op: 'incr', outcome: 'overflow', value: before.toString() };
      } else {
        const v = (before + BigInt(op.by)).toString();
        data.set(op.key, v);
        r = { op: 'incr', outcome: 'applied', value: v };
      }
      break;
    }
    case 'append': {
      const v = (cur ?? '') + (op.value as string);
      data.set(op.key, v);
      r = { op: 'append', outcome: 'applied', length: Buffer.byteLength(v) };
      break;
    }
    case 'getdel':
      data.delete(op.key);
      r = { op: 'getdel', value: cur ?? null };
      break;
    case 'set': {
      const applies =
        op.condition === 'always' ||
        (op.condition === 'absent' && cur === undefined) ||
        (op.condition === 'present' && cur !== undefined) ||
        (op.condition === 'equal' && cur !== undefined && cur === op.expected);
      if (applies) data.set(op.key, op.value as string);
      r = op.get ? { op: 'set', applied: applies, previous: cur ?? null } : { op: 'set', applied: applies };
      break;
    }
  }
  if (id && op.op !== 'get') done.set(id, r);
  return r;
}

const key = fc.constantFrom('a', 'b', 'c');
const value = fc.constantFrom('x', 'y', 'z', '1', '-3', '9223372036854775807', '007');
const by = fc.constantFrom('1', '-1', '5', '9223372036854775807', '-9223372036854775808');
const op: fc.Arbitrary<KvOp> = fc.oneof(
  key.map((k) => ({ op: 'get', key: k }) as const),
  fc.tuple(key, value).map(([k, v]) => ({ op: 'put', key: k, value: v }) as const),
  key.map((k) => ({ op: 'delete', key: k }) as const),
  fc
    .tuple(key, fc.option(value, { nil: null }), value)
    .map(([k, e, v]) => ({ op: 'cas', key: k, expected: e, value: v }) as const),
  fc.tuple(key, by).map(([k, b]) => ({ op: 'incr', key: k, by: b }) as const),
  fc.tuple(key, value).map(([k, v]) => ({ op: 'append', key: k, value: v }) as const),
  key.map((k) => ({ op: 'getdel', key: k }) as const),
  fc.tuple(key, value, fc.constantFrom('always', 'absent', 'present', 'equal'), value, fc.boolean()).map(
    ([k, v, c, e, g]) =>
      ({
        op: 'set',
        key: k,
        value: v,
        condition: c,
        ...(c === 'equal' ? { expected: e } : {}),
        get: g,
      }) as const,
  ),
);

describe('KvStateMachine against a model (property)', () => {
  it('retried session writes apply once; results and state match the model, also through snapshots', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op,
            client: fc.constantFrom('c1', 'c2', 'c3'),
            retry: fc.boolean(),
            snap: fc.boolean(),
          }),
          {
            maxLength: 80,
          },
        ),
        (steps) => {
          let m = new KvStateMachine();
          const data = new Map<string, string>();
          const done = new Map<string, KvResult>();
          const seqs = new Map<string, number>();
          const last = new Map<string, { op: KvOp; seq: number }>();
          for (const s of steps) {
            // A retry repeats the client's latest write with the same sequence number.
            const prev = last.get(s.client);
            const useRetry = s.retry && prev !== undefined;
            const theOp = useRetry ? prev.op : s.op;
            const seq = useRetry ? prev.seq : (seqs.get(s.client) ?? 0) + 1;
            const session = theOp.op === 'get' ? undefined : { client: s.client, seq };
            if (session && !useRetry) {
              seqs.set(s.client, seq);
              last.set(s.client, { op: theOp, seq });
            }
            const expected = modelApply(data, done, theOp, session);
            const got = m.apply(m.appliedIndex, {
              id: `i${m.appliedIndex}`,
              op: theOp,
              ...(session ? { session } : {}),
            });
            expect(got.ok && got.result).toEqual(expected);
            if (s.snap) {
              const copy = KvStateMachine.fromSnapshot(m.snapshot());
              if (copy instanceof Error) throw copy;
              m = copy;
            }
          }
          for (const k of ['a', 'b', 'c'])
            expect(m.read(k)).toEqual({ op: 'get', value: data.get(k) ?? null });
        },
      ),
      { numRuns: 300 },
    );
  });
});
