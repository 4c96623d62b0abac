/**
 * The history form of KV operations and results: what the client records in the linearizability
 * checker's JSON-lines format (`op` and `result` fields), and what the simulations record, so that one
 * definition serves every recorder. The `kv` model checks get/put/cas/delete/append; the `kv-txn`
 * model also transactions, ranges and revisions (`version`, `modRevision`, and `revision`: the
 * partition's revision after the operation).
 * @module
 */
import type { KvOp, KvResult } from './kv.js';
import type { Value } from './primitives.js';
import type { TxnRequest } from './txn.js';

/** The history form of a value. */
export function historyValue(v: Value | null): string | null {
  if (v === null) return null;
  return typeof v === 'string' ? v : `base64:${Buffer.from(v).toString('base64')}`;
}

/** The history form (`op` field) of a KV operation. */
export function historyOp(op: KvOp): Record<string, unknown> {
  switch (op.op) {
    case 'get':
      return { f: 'get', key: op.key };
    case 'put':
      return { f: 'put', key: op.key, value: historyValue(op.value) };
    case 'cas':
      if (op.expected === undefined) {
        // A compare on revisions: only models that track revisions (`kv-txn`) can check it.
        return {
          f: 'cas',
          key: op.key,
          ...(op.expectedModRevision !== undefined ? { expectedModRevision: op.expectedModRevision } : {}),
          ...(op.expectedVersion !== undefined ? { expectedVersion: op.expectedVersion } : {}),
          value: historyValue(op.value),
        };
      }
      return { f: 'cas', key: op.key, expected: historyValue(op.expected), value: historyValue(op.value) };
    case 'delete':
      return { f: 'delete', key: op.key };
    case 'append':
      return { f: 'append', key: op.key, value: historyValue(op.value) };
    case 'incr':
      return { f: 'incr', key: op.key, by: op.by };
    case 'getdel':
      return { f: 'getdel', key: op.key };
    case 'size':
      return { f: 'size', key: op.key };
    case 'set':
      return {
        f: 'set',
        key: op.key,
        value: historyValue(op.value),
        condition: op.condition,
        ...(op.expected !== undefined ? { expected: historyValue(op.expected) } : {}),
      };
    case 'txn':
      return {
        f: 'txn',
        compare: op.compare.map((c) =>
          c.target === 'value' ? { ...c, value: historyValue(c.value) } : { ...c },
        ),
        success: op.success.map(historyTxnRequest),
        failure: op.failure.map(historyTxnRequest),
      };
    case 'range':
      return {
        f: 'range',
        start: op.start,
        ...(op.end !== undefined ? { end: op.end } : {}),
        ...(op.limit !== undefined ? { limit: op.limit } : {}),
        ...(op.reverse ? { reverse: true } : {}),
        ...(op.keysOnly ? { keysOnly: true } : {}),
      };
    // Lease operations are recorded as they are; the kv models do not model leases (a key attached to
    // a lease can disappear without a delete in the history), so do not check such keys with them.
    case 'lease-grant':
    case 'lease-revoke':
    case 'lease-expire':
    case 'lease-keepalive':
    case 'lease-list':
    case 'lease-timetolive':
      return { f: op.op, ...op };
    // Backups are recorded by partition only (a state is megabytes of bytes, not a history value).
    case 'snapshot':
    case 'restore':
      return { f: op.op, partition: op.partition };
  }
}

/** The history form of one transaction operation: `{ f, key, value? }`. */
function historyTxnRequest(o: TxnRequest): Record<string, unknown> {
  if ('get' in o) return { f: 'get', key: o.get.key };
  if ('put' in o) return { f: 'put', key: o.put.key, value: historyValue(o.put.value) };
  return { f: 'delete', key: o.delete.key };
}

/**
 * The history form (`result` field) of a KV result. Reads and writes of the `kv-txn` model's
 * operations carry the key's `version` and `modRevision` and the partition's `revision` after the
 * operation (the `kv` model ignores them).
 */
export function historyResult(result: KvResult): Record<string, unknown> {
  switch (result.op) {
    case 'get':
      return {
        value: historyValue(result.value),
        version: result.version,
        modRevision: result.modRevision,
        revision: result.revision,
      };
    case 'put':
      return {
        created: result.created,
        version: result.version,
        modRevision: result.modRevision,
        revision: result.revision,
      };
    case 'cas':
      return {
        ok: result.outcome === 'applied',
        version: result.version,
        modRevision: result.modRevision,
        revision: result.revision,
      };
    case 'delete':
      return { existed: result.existed, revision: result.revision };
    case 'incr':
      return { outcome: result.outcome, value: result.value };
    case 'append':
      return { ok: result.outcome === 'applied', length: result.length };
    case 'getdel':
      return { value: historyValue(result.value) };
    case 'size':
      return { keys: result.keys };
    case 'set':
      return {
        ok: result.applied,
        ...(result.previous !== undefined ? { previous: historyValue(result.previous) } : {}),
      };
    case 'txn':
      return {
        succeeded: result.succeeded,
        results: result.results.map((r) =>
          r.op === 'get'
            ? { value: historyValue(r.value), version: r.version, modRevision: r.modRevision }
            : r.op === 'put'
              ? { created: r.created, version: r.version, modRevision: r.modRevision }
              : { existed: r.existed },
        ),
        revision: result.revision,
      };
    case 'range':
      return {
        kvs: result.kvs.map((kv) => ({
          key: kv.key,
          ...(kv.value !== undefined ? { value: historyValue(kv.value) } : {}),
          version: kv.version,
          modRevision: kv.modRevision,
        })),
        more: result.more,
        revision: result.revision,
      };
    case 'lease-grant':
    case 'lease-revoke':
    case 'lease-expire':
    case 'lease-keepalive':
    case 'lease-list':
    case 'lease-timetolive': {
      const { op: _op, revision: _r, partition: _p, ...rest } = result;
      return rest;
    }
    case 'snapshot':
    case 'restore':
      return { outcome: result.outcome, keys: result.keys, leases: result.leases, revision: result.revision };
  }
}
