import type { KvOp, KvResult } from '@paxkv/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KvStateMachine } from './state-machine.js';

interface ModelEntry {
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
}

/** The obvious model: a Map of entries with revisions, a revision counter, and the results of applied session writes. */
class Model {
  readonly data = new Map<string, ModelEntry>();
  readonly done = new Map<string, KvResult>();
  revision = 0;

  meta(key: string) {
    const e = this.data.get(key);
    return e
      ? { createRevision: e.createRevision, modRevision: e.modRevision, version: e.version }
      : { createRevision: 0, modRevision: 0, version: 0 };
  }

  private header() {
    return { revision: this.revision, partition: 0 };
  }

  private write(key: string, value: string) {
    this.revision++;
    const e = this.data.get(key);
    this.data.set(
      key,
      e
        ? { value, createRevision: e.createRevision, modRevision: this.revision, version: e.version + 1 }
        : { value, createRevision: this.revision, modRevision: this.revision, version: 1 },
    );
  }

  apply(op: KvOp, session: { client: string; seq: number } | undefined): KvResult {
    const id = session ? `${session.client}#${session.seq}` : undefined;
    if (id && op.op !== 'get' && this.done.has(id)) return this.done.get(id)!;
    const cur = this.data.get(op.key)?.value;
    let r: KvResult;
    switch (op.op) {
      case 'get':
        r = { op: 'get', value: cur ?? null, ...this.meta(op.key), ...this.header() };
        break;
      case 'put':
        this.write(op.key, op.value as string);
        r = { op: 'put', created: cur === undefined, ...this.meta(op.key), ...this.header() };
        break;
      case 'delete':
        if (cur !== undefined) this.revision++;
        this.data.delete(op.key);
        r = { op: 'delete', existed: cur !== undefined, ...this.header() };
        break;
      case 'cas': {
        const m = this.meta(op.key);
        const ok =
          op.expectedModRevision !== undefined
            ? m.modRevision === op.expectedModRevision
            : op.expectedVersion !== undefined
              ? m.version === op.expectedVersion
              : op.expected === null
                ? cur === undefined
                : cur === op.expected;
        if (!ok) {
          r =
            cur === undefined
              ? { op: 'cas', outcome: 'not-found', current: null, ...m, ...this.header() }
              : { op: 'cas', outcome: 'mismatch', current: cur, ...m, ...this.header() };
        } else {
          this.write(op.key, op.value as string);
          r = { op: 'cas', outcome: 'applied', current: op.value, ...this.meta(op.key), ...this.header() };
        }
        break;
      }
      case 'incr': {
        const before = cur === undefined ? 0n : /^-?(0|[1-9]\d{0,18})$/.test(cur) ? BigInt(cur) : null;
        const m = this.meta(op.key);
        if (before === null || before >= 2n ** 63n || before < -(2n ** 63n)) {
          r = { op: 'incr', outcome: 'not-integer', value: null, ...m, ...this.header() };
        } else if (before + BigInt(op.by) >= 2n ** 63n || before + BigInt(op.by) < -(2n ** 63n)) {
          r = { op: 'incr', outcome: 'overflow', value: before.toString(), ...m, ...this.header() };
        } else {
          const v = (before + BigInt(op.by)).toString();
          this.write(op.key, v);
          r = { op: 'incr', outcome: 'applied', value: v, ...this.meta(op.key), ...this.header() };
        }
        break;
      }
      case 'append': {
        const v = (cur ?? '') + (op.value as string);
        this.write(op.key, v);
        r = {
          op: 'append',
          outcome: 'applied',
          length: Buffer.byteLength(v),
          ...this.meta(op.key),
          ...this.header(),
        };
        break;
      }
      case 'size':
        r = { op: 'size', keys: this.data.size, ...this.header() };
        break;
      case 'getdel':
        if (cur !== undefined) this.revision++;
        this.data.delete(op.key);
        r = { op: 'getdel', value: cur ?? null, ...this.header() };
        break;
      case 'set': {
        const applies =
          op.condition === 'always' ||
          (op.condition === 'absent' && cur === undefined) ||
          (op.condition === 'present' && cur !== undefined) ||
          (op.condition === 'equal' && cur !== undefined && cur === op.expected);
        if (applies) this.write(op.key, op.value as string);
        const m = { ...this.meta(op.key), ...this.header() };
        r = op.get
          ? { op: 'set', applied: applies, previous: cur ?? null, ...m }
          : { op: 'set', applied: applies, ...m };
        break;
      }
    }
    if (id && op.op !== 'get') this.done.set(id, r);
    return r;
  }
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
  key.map((k) => ({ op: 'size', key: k }) as const),
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
  fc
    .tuple(key, fc.integer({ min: 0, max: 12 }), value)
    .map(([k, r, v]) => ({ op: 'cas', key: k, expectedModRevision: r, value: v }) as const),
  fc
    .tuple(key, fc.integer({ min: 0, max: 4 }), value)
    .map(([k, r, v]) => ({ op: 'cas', key: k, expectedVersion: r, value: v }) as const),
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
          const model = new Model();
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
            const expected = model.apply(theOp, session);
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
            expect(m.read(k)).toEqual(model.apply({ op: 'get', key: k }, undefined));
          expect(m.revision).toBe(model.revision);
        },
      ),
      { numRuns: 300 },
    );
  });
});
