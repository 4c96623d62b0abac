import {
  type Compare,
  isReadOnlyOp,
  type KeyValue,
  type KvOp,
  type KvResult,
  type RangeOp,
  type SingleKeyOp,
  type TxnOp,
  type TxnRequest,
  type TxnResponse,
} from '@paxkv/common';
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

  private write(key: string, value: string, at = this.revision + 1) {
    this.revision = at;
    const e = this.data.get(key);
    this.data.set(
      key,
      e
        ? { value, createRevision: e.createRevision, modRevision: at, version: e.version + 1 }
        : { value, createRevision: at, modRevision: at, version: 1 },
    );
  }

  apply(op: KvOp, session: { client: string; seq: number } | undefined): KvResult {
    const id = session ? `${session.client}#${session.seq}` : undefined;
    if (id && !isReadOnlyOp(op) && this.done.has(id)) return this.done.get(id)!;
    const r =
      op.op === 'txn' ? this.txn(op) : op.op === 'range' ? this.range(op) : this.single(op as SingleKeyOp);
    if (id && !isReadOnlyOp(op)) this.done.set(id, r);
    return r;
  }

  private holds(c: Compare): boolean {
    const e = this.data.get(c.key);
    if (c.target === 'exists') return (e !== undefined) === (c.op === '=' ? c.value : !c.value);
    if (c.target === 'value' && e === undefined) return false;
    const [a, b] =
      c.target === 'value' ? [e!.value, c.value as string] : [e?.[c.target] ?? 0, c.value as number];
    return c.op === '=' ? a === b : c.op === '!=' ? a !== b : c.op === '<' ? a < b : a > b;
  }

  private txn(op: TxnOp): KvResult {
    const succeeded = op.compare.every((c) => this.holds(c));
    const at = this.revision + 1;
    const before = this.revision;
    let changed = false;
    const results: TxnResponse[] = (succeeded ? op.success : op.failure).map((o: TxnRequest) => {
      if ('get' in o) {
        const e = this.data.get(o.get.key);
        return { op: 'get', key: o.get.key, value: e?.value ?? null, ...this.meta(o.get.key) };
      }
      if ('put' in o) {
        const created = !this.data.has(o.put.key);
        this.write(o.put.key, o.put.value as string, at);
        changed = true;
        return { op: 'put', key: o.put.key, created, ...this.meta(o.put.key) };
      }
      const existed = this.data.delete(o.delete.key);
      changed ||= existed;
      return { op: 'delete', key: o.delete.key, existed };
    });
    this.revision = changed ? at : before;
    return { op: 'txn', succeeded, results, ...this.header() };
  }

  private range(op: RangeOp): KvResult {
    let keys = [...this.data.keys()]
      .filter((k) => k >= op.start && (op.end === undefined || k < op.end))
      .sort();
    if (op.reverse) keys.reverse();
    const limit = Math.min(op.limit ?? MAX_RANGE_KEYS, MAX_RANGE_KEYS);
    const kvs: KeyValue[] = [];
    let bytes = 0;
    let more = false;
    for (const k of keys) {
      if (kvs.length >= limit || (kvs.length > 0 && bytes >= MAX_RANGE_BYTES)) {
        more = true;
        break;
      }
      const e = this.data.get(k)!;
      bytes += k.length + (op.keysOnly ? 0 : e.value.length);
      kvs.push(op.keysOnly ? { key: k, ...this.meta(k) } : { key: k, value: e.value, ...this.meta(k) });
    }
    keys = [];
    return { op: 'range', kvs, more, ...this.header() };
  }

  private single(op: SingleKeyOp): KvResult {
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
    return r;
  }
}

const MAX_RANGE_KEYS = 3;
const MAX_RANGE_BYTES = 7;
const CONFIG = { maxRangeKeys: MAX_RANGE_KEYS, maxRangeBytes: MAX_RANGE_BYTES };

const key = fc.constantFrom('a', 'b', 'c', '{t}a', '{t}b');
const bound = fc.constantFrom('', 'a', 'b', 'bb', 'c', '{t}', '{t}b', '{u');
const compare: fc.Arbitrary<Compare> = fc.oneof(
  fc
    .tuple(key, fc.constantFrom('=', '!=', '<', '>'), fc.constantFrom('x', 'y', '1'))
    .map(([k, o, v]) => ({ key: k, target: 'value', op: o, value: v }) as const),
  fc
    .tuple(
      key,
      fc.constantFrom('version', 'modRevision', 'createRevision'),
      fc.constantFrom('=', '!=', '<', '>'),
      fc.integer({ min: 0, max: 8 }),
    )
    .map(([k, t, o, v]) => ({ key: k, target: t, op: o, value: v }) as Compare),
  fc
    .tuple(key, fc.constantFrom('=', '!='), fc.boolean())
    .map(([k, o, v]) => ({ key: k, target: 'exists', op: o, value: v }) as const),
);
const txnRequest: fc.Arbitrary<TxnRequest> = fc.oneof(
  key.map((k) => ({ get: { key: k } })),
  fc.tuple(key, fc.constantFrom('x', 'y', '1')).map(([k, v]) => ({ put: { key: k, value: v } })),
  key.map((k) => ({ delete: { key: k } })),
);
/** A branch writes each key at most once (the protocol rejects anything else). */
const branch = fc.array(txnRequest, { maxLength: 5 }).map((ops) => {
  const written = new Set<string>();
  return ops.filter((o) => {
    if ('get' in o) return true;
    const k = 'put' in o ? o.put.key : o.delete.key;
    if (written.has(k)) return false;
    written.add(k);
    return true;
  });
});
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
  fc
    .tuple(fc.array(compare, { maxLength: 3 }), branch, branch)
    .map(([c, sOps, fOps]) => ({ op: 'txn', compare: c, success: sOps, failure: fOps }) as const),
  fc
    .record({
      start: bound,
      end: fc.option(bound, { nil: undefined }),
      limit: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
      reverse: fc.boolean(),
      keysOnly: fc.boolean(),
    })
    .map(
      (r) =>
        ({
          op: 'range',
          start: r.start,
          ...(r.end !== undefined ? { end: r.end } : {}),
          ...(r.limit !== undefined ? { limit: r.limit } : {}),
          reverse: r.reverse,
          keysOnly: r.keysOnly,
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
          let m = new KvStateMachine(CONFIG);
          const model = new Model();
          const seqs = new Map<string, number>();
          const last = new Map<string, { op: KvOp; seq: number }>();
          for (const s of steps) {
            // A retry repeats the client's latest write with the same sequence number.
            const prev = last.get(s.client);
            const useRetry = s.retry && prev !== undefined;
            const theOp = useRetry ? prev.op : s.op;
            const seq = useRetry ? prev.seq : (seqs.get(s.client) ?? 0) + 1;
            const session = isReadOnlyOp(theOp) ? undefined : { client: s.client, seq };
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
            // A read served by a read index answers the same as the read through the log.
            if (isReadOnlyOp(theOp)) expect(m.query(theOp)).toEqual(expected);
            if (s.snap) {
              const copy = KvStateMachine.fromSnapshot(m.snapshot(), CONFIG);
              if (copy instanceof Error) throw copy;
              m = copy;
            }
          }
          expect(m.query({ op: 'range', start: '', limit: 3 })).toEqual(
            model.apply({ op: 'range', start: '', limit: 3 }, undefined),
          );
          for (const k of ['a', 'b', 'c', '{t}a', '{t}b'])
            expect(m.read(k)).toEqual(model.apply({ op: 'get', key: k }, undefined));
          expect(m.revision).toBe(model.revision);
        },
      ),
      { numRuns: 300 },
    );
  });
});
