import type { PairedOperation } from './history.js';

/** The verdict of the lost-write check of one key. */
export interface KeyDurability {
  readonly key: string;
  /** The value read after healing (`null`: absent), or `undefined` if no final read succeeded. */
  readonly finalValue: string | null | undefined;
  /** Acknowledged writes (put, cas that applied, delete) of the key. */
  readonly acknowledged: number;
  /** Acknowledged writes consistent with the final value. */
  readonly verified: number;
  /** Acknowledged writes that the final value contradicts (lost), as `process/id`. */
  readonly lost: readonly string[];
  /** Why the final value cannot be explained, when it cannot. */
  readonly problem?: string;
}

const isWrite = (o: PairedOperation): boolean => o.op.f === 'put' || o.op.f === 'cas' || o.op.f === 'delete';

/** An acknowledged write: it returned ok and changed the state. */
function acknowledged(o: PairedOperation): boolean {
  if (o.status !== 'ok' || !isWrite(o)) return false;
  if (o.op.f === 'cas') return o.result?.ok === true;
  return true;
}

/** A write that may have taken effect: acknowledged, or indeterminate. */
function mayHaveApplied(o: PairedOperation): boolean {
  if (!isWrite(o)) return false;
  if (o.status === 'info') return true;
  return acknowledged(o);
}

/**
 * Checks that the value read after healing is explainable and that no acknowledged write was lost.
 *
 * Values written by the workload are unique, so a final value names the one write that produced it (or a
 * delete / the initial state for "absent"). That write X explains the final state only if no acknowledged
 * write W began after X had returned: such a W took effect after X, so the final state must reflect W or a
 * later write. Indeterminate writes may have taken effect at any time after their invocation. Every
 * acknowledged write is verified when an explanation exists; otherwise the writes that prove X stale are
 * reported as lost.
 *
 * @param key - the key.
 * @param ops - every operation of the key, final reads included.
 * @param finalValue - the value read after healing, `undefined` if none succeeded.
 */
export function verifyKey(
  key: string,
  ops: readonly PairedOperation[],
  finalValue: string | null | undefined,
): KeyDurability {
  const acked = ops.filter(acknowledged);
  if (finalValue === undefined) {
    return {
      key,
      finalValue,
      acknowledged: acked.length,
      verified: 0,
      lost: [],
      problem: 'no final read succeeded',
    };
  }
  const end = (o: PairedOperation): number =>
    o.returnTime === undefined ? Number.POSITIVE_INFINITY : o.returnTime;
  // Candidate explanations: their return time (+∞ for indeterminate writes).
  const candidates: number[] = [];
  for (const o of ops) {
    if (!mayHaveApplied(o)) continue;
    const value = o.op.f === 'delete' ? null : (o.op.value ?? null);
    if (value === finalValue) candidates.push(end(o));
  }
  if (finalValue === null) candidates.push(Number.NEGATIVE_INFINITY); // the initial state
  if (candidates.length === 0) {
    return {
      key,
      finalValue,
      acknowledged: acked.length,
      verified: 0,
      lost: [],
      problem: `final value ${JSON.stringify(finalValue)} was never written by an operation that may have applied`,
    };
  }
  const latest = Math.max(...candidates);
  const lost = acked.filter((w) => w.invokeTime > latest).map((w) => `${w.process}/${w.id}`);
  return {
    key,
    finalValue,
    acknowledged: acked.length,
    verified: acked.length - lost.length,
    lost,
    ...(lost.length > 0
      ? {
          problem: `${lost.length} acknowledged write(s) began after the write that produced the final value returned`,
        }
      : {}),
  };
}

/**
 * Reads that returned a value no write that may have applied ever wrote (values are unique). When such a
 * value was written by an operation recorded as `fail` ("definitely did not happen"), the history itself
 * is wrong: the client reported a failure for a write that took effect. Returns one line per such value.
 */
export function unexplainedReads(ops: readonly PairedOperation[]): string[] {
  const writers = new Map<string, PairedOperation[]>();
  for (const o of ops) {
    if ((o.op.f === 'put' || o.op.f === 'cas') && typeof o.op.value === 'string') {
      const list = writers.get(o.op.value) ?? [];
      list.push(o);
      writers.set(o.op.value, list);
    }
  }
  const out: string[] = [];
  const seen = new Set<string>();
  for (const o of ops) {
    if (o.op.f !== 'get' || o.status !== 'ok') continue;
    const v = o.result?.value;
    if (typeof v !== 'string' || seen.has(v)) continue;
    const ws = writers.get(v) ?? [];
    if (ws.some(mayHaveApplied)) continue;
    seen.add(v);
    const failed = ws.filter((w) => w.status === 'fail');
    out.push(
      failed.length > 0
        ? `read ${JSON.stringify(v)} (op ${o.process}/${o.id}) but its write ${failed.map((w) => `${w.process}/${w.id}`).join(',')} was recorded as failed: the client reported a definite failure for a write that took effect`
        : `read ${JSON.stringify(v)} (op ${o.process}/${o.id}) that no operation wrote`,
    );
  }
  return out;
}
