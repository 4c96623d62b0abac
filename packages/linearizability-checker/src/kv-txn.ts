/**
 * The `kv-txn` model: a key-value map with etcd-style revisions, multi-key transactions and ordered
 * range reads, checked per hash tag.
 *
 * Keys that share a hash tag (the text between the first `{` and the next `}`, non-empty, as in Redis
 * Cluster) are one partition of the check: a transaction or a range reads and writes keys of one tag
 * only, so operations of different tags never interact (P-compositionality). A key without a tag is a
 * partition of its own.
 *
 * Revisions: a store numbers its changes per shard (several tags may share one shard), so the model
 * cannot predict a key's `modRevision`; it learns it from the answers of the writes (`revision` /
 * `modRevision` of a put, a successful cas or a transaction that changed something), and checks:
 * - reads (`get`, transaction `get`, `range`) return the value, `version` and `modRevision` of the
 *   state they are linearized in;
 * - compares on `modRevision` / `createRevision` / `version` / `value` / existence decide the branch
 *   exactly as they would on that state;
 * - within one tag, the revisions of writes grow strictly in linearization order, and a read's
 *   `revision` is at least the last write's.
 * A write whose answer is unknown (`info`) leaves the revision it got unknown: compares and reads of
 * that key's `modRevision` are then not checked until a later answered write sets it. A transaction
 * with an unknown answer whose compares depend on such an unknown makes the keys it may write unknown
 * (any value, or absent) until they are written again: the model over-approximates, so it never rejects
 * a linearizable history; it checks less in that window.
 * @module
 */
import type { Model, StepResult } from './model.js';
import { show } from './model.js';

/** A transaction compare, in the history form (the client's `txn` compare). */
export interface KvTxnCompare {
  readonly key: string;
  readonly target: 'value' | 'version' | 'modRevision' | 'createRevision' | 'exists';
  readonly op: '=' | '!=' | '<' | '>';
  readonly value: string | number | boolean;
}

/** One operation of a transaction branch, in the history form: `{f:'get'|'put'|'delete', key, value?}`. */
export interface KvTxnRequest {
  readonly f: 'get' | 'put' | 'delete';
  readonly key: string;
  readonly value?: string;
}

/** Input of the `kv-txn` model: the history form of the client's get/put/delete/cas/txn/range. */
export type KvTxnInput =
  | { readonly f: 'get'; readonly key: string }
  | { readonly f: 'put'; readonly key: string; readonly value: string }
  | { readonly f: 'delete'; readonly key: string }
  | {
      readonly f: 'cas';
      readonly key: string;
      /** Expected value; `null` = the key must be absent. */
      readonly expected?: string | null;
      /** Expected `modRevision` (0 = absent). */
      readonly expectedModRevision?: number;
      /** Expected `version` (0 = absent). */
      readonly expectedVersion?: number;
      readonly value: string;
    }
  | {
      readonly f: 'txn';
      readonly compare: readonly KvTxnCompare[];
      readonly success: readonly KvTxnRequest[];
      readonly failure: readonly KvTxnRequest[];
    }
  | {
      readonly f: 'range';
      readonly start: string;
      readonly end?: string;
      readonly limit?: number;
      readonly reverse?: boolean;
      readonly keysOnly?: boolean;
    };

/** What a read observed of one key. Missing fields constrain nothing. */
export interface KvTxnKeyOutput {
  readonly key?: string;
  /** The value; `null` = absent. */
  readonly value?: string | null;
  readonly version?: number;
  readonly modRevision?: number;
  readonly created?: boolean;
  readonly existed?: boolean;
}

/**
 * Output of the `kv-txn` model (the client's history results): get `{value, version, modRevision}`,
 * put `{created, version, modRevision}`, cas `{ok, version, modRevision}`, delete `{existed}`, txn
 * `{succeeded, results}`, range `{kvs, more}`; each may carry the shard's `revision` after it. Missing
 * fields constrain nothing.
 */
export interface KvTxnOutput extends KvTxnKeyOutput {
  readonly ok?: boolean;
  readonly succeeded?: boolean;
  readonly results?: readonly KvTxnKeyOutput[];
  readonly kvs?: readonly KvTxnKeyOutput[];
  readonly more?: boolean;
  readonly revision?: number;
}

/** A number the model does not know (a revision or version given by a write whose answer is unknown). */
const UNKNOWN = -1;

/**
 * One present (or possibly present) key. `value === undefined` means unknown: any value, or absent
 * (then every number is {@link UNKNOWN} too).
 */
export interface KvTxnCell {
  readonly value: string | undefined;
  readonly version: number;
  readonly modRevision: number;
  readonly createRevision: number;
}

/**
 * State of one tag: its present keys in key order (UTF-8 byte order) with their cells, and the
 * highest revision of a write linearized so far (0 before any). Known-absent keys are not stored.
 */
export interface KvTxnState {
  readonly keys: readonly string[];
  readonly cells: readonly KvTxnCell[];
  readonly rev: number;
  /** Hash of the above (the interning key). */
  readonly hash: number;
}

const UNKNOWN_CELL: KvTxnCell = Object.freeze({
  value: undefined,
  version: UNKNOWN,
  modRevision: UNKNOWN,
  createRevision: UNKNOWN,
});

const ILLEGAL: StepResult<never> = { ok: false };

/** Order of keys by code point (= UTF-8 byte order), as the store orders them. */
export function compareKeysUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) return fixup(x) - fixup(y);
    return x - y;
  }
  return a.length - b.length;
}

function fixup(c: number): number {
  return c >= 0xe000 ? c - 0x800 : c + 0x2000;
}

/**
 * The hash tag of `key` (between the first `{` and the next `}`, non-empty), or undefined. The same
 * rule as `@paxkv/common`'s `hashTagOf` (Redis Cluster's).
 */
export function hashTagOfKey(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open < 0) return undefined;
  const close = key.indexOf('}', open + 1);
  if (close <= open + 1) return undefined;
  return key.slice(open + 1, close);
}

/** The partition of the check a key belongs to: its tag, or the key itself when it has none. */
function partitionOfKey(key: string): string {
  const tag = hashTagOfKey(key);
  return tag === undefined ? `k:${key}` : `{${tag}}`;
}

/** The tag partition of a range, or undefined when its keys may span tags (see `rangeTagPartition`). */
function partitionOfRange(start: string, end: string | undefined): string | undefined {
  const open = start.indexOf('{');
  if (open < 0 || end === undefined) return undefined;
  const close = start.indexOf('}', open + 1);
  if (close <= open + 1) return undefined;
  // Every key that begins with start[0..close] has the same tag; the keys below `${head}~` begin so.
  const limit = `${start.slice(0, close)}~`;
  return compareKeysUtf8(end, limit) <= 0 && compareKeysUtf8(start, end) <= 0
    ? `{${start.slice(open + 1, close)}}`
    : undefined;
}

/** The history form of a binary value is `base64:` + base64; strings are their UTF-8 bytes. */
function bytesOfValue(v: string): Uint8Array {
  return v.startsWith('base64:') ? Buffer.from(v.slice(7), 'base64') : Buffer.from(v, 'utf8');
}

/** Value order (bytes), as the store compares values in `<` `>` compares. */
function compareValues(a: string, b: string): number {
  const binary = a.startsWith('base64:') || b.startsWith('base64:');
  if (!binary) return compareKeysUtf8(a, b);
  return Buffer.compare(bytesOfValue(a), bytesOfValue(b));
}

function valuesEqual(a: string, b: string): boolean {
  return a === b || ((a.startsWith('base64:') || b.startsWith('base64:')) && compareValues(a, b) === 0);
}

function mix(h: number, x: number): number {
  return Math.imul(h ^ x, 0x01000193) | 0;
}

function hashString(h: number, s: string): number {
  let x = h;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 0x01000193) | 0;
  return mix(x, s.length);
}

function makeState(keys: readonly string[], cells: readonly KvTxnCell[], rev: number): KvTxnState {
  let h = mix(0x811c9dc5 | 0, rev);
  for (let i = 0; i < keys.length; i++) {
    const c = cells[i] as KvTxnCell;
    h = hashString(h, keys[i] as string);
    h = c.value === undefined ? mix(h, -7) : hashString(h, c.value);
    h = mix(mix(mix(h, c.version), c.modRevision), c.createRevision);
  }
  return { keys, cells, rev, hash: h };
}

const EMPTY_STATE: KvTxnState = Object.freeze(makeState([], [], 0));

/** Index of `key` in sorted `keys`, or `-(insertion point) - 1`. */
function find(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareKeysUtf8(keys[mid] as string, key);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

/** A mutable copy of a state's keys, for one step. */
class Work {
  keys: string[];
  cells: KvTxnCell[];
  rev: number;
  constructor(s: KvTxnState) {
    this.keys = s.keys.slice();
    this.cells = s.cells.slice();
    this.rev = s.rev;
  }
  /** The cell of `key`, undefined when the key is known to be absent. */
  get(key: string): KvTxnCell | undefined {
    const i = find(this.keys, key);
    return i >= 0 ? this.cells[i] : undefined;
  }
  set(key: string, cell: KvTxnCell | undefined): void {
    const i = find(this.keys, key);
    if (i >= 0) {
      if (cell === undefined) {
        this.keys.splice(i, 1);
        this.cells.splice(i, 1);
      } else this.cells[i] = cell;
    } else if (cell !== undefined) {
      this.keys.splice(-i - 1, 0, key);
      this.cells.splice(-i - 1, 0, cell);
    }
  }
  state(): KvTxnState {
    return makeState(this.keys, this.cells, this.rev);
  }
}

/** True/false when the state decides it, undefined when it depends on an unknown. */
type Maybe = boolean | undefined;

/** Whether the key is present: known from the cell, undefined when unknown. */
function presence(cell: KvTxnCell | undefined): Maybe {
  if (cell === undefined) return false;
  return cell.value === undefined ? undefined : true;
}

function numberOf(cell: KvTxnCell | undefined, target: 'version' | 'modRevision' | 'createRevision'): number {
  if (cell === undefined) return 0;
  return cell[target];
}

function holds(order: number, op: KvTxnCompare['op']): boolean {
  switch (op) {
    case '=':
      return order === 0;
    case '!=':
      return order !== 0;
    case '<':
      return order < 0;
    case '>':
      return order > 0;
  }
}

/** A compare against a cell: etcd's semantics (a value compare on an absent key is false). */
function compareHolds(cell: KvTxnCell | undefined, c: KvTxnCompare): Maybe {
  switch (c.target) {
    case 'exists': {
      const p = presence(cell);
      return p === undefined ? undefined : p === (c.op === '=' ? c.value === true : c.value !== true);
    }
    case 'value':
      if (cell === undefined) return false;
      if (cell.value === undefined) return undefined;
      return holds(compareValues(cell.value, String(c.value)), c.op);
    default: {
      const n = numberOf(cell, c.target);
      return n === UNKNOWN ? undefined : holds(n - (c.value as number), c.op);
    }
  }
}

/** Whether what a read observed of `key` fits its cell. */
function observedFits(cell: KvTxnCell | undefined, o: KvTxnKeyOutput, withValue: boolean): boolean {
  if (cell === undefined) {
    return (
      (!withValue || o.value === undefined || o.value === null) &&
      (o.version === undefined || o.version === 0) &&
      (o.modRevision === undefined || o.modRevision === 0)
    );
  }
  if (cell.value === undefined) return true;
  if (withValue && o.value !== undefined && (o.value === null || !valuesEqual(o.value, cell.value))) {
    return false;
  }
  if (o.version !== undefined && cell.version !== UNKNOWN && o.version !== cell.version) return false;
  if (o.modRevision !== undefined && cell.modRevision !== UNKNOWN && o.modRevision !== cell.modRevision) {
    return false;
  }
  return true;
}

/**
 * Applies a put of `value` to `key` at revision `rev` (UNKNOWN when the answer is unknown), checking
 * the answer `o` (undefined when unknown). Returns false when the answer does not fit.
 */
function applyPut(w: Work, key: string, value: string, rev: number, o: KvTxnKeyOutput | undefined): boolean {
  const cell = w.get(key);
  const was = presence(cell);
  if (o?.created !== undefined && was !== undefined && o.created === was) return false;
  const created = o?.created ?? (was === undefined ? undefined : !was);
  let version = UNKNOWN;
  if (created === true) version = 1;
  else if (created === false && cell !== undefined && cell.version !== UNKNOWN) version = cell.version + 1;
  if (o?.version !== undefined) {
    if (version !== UNKNOWN && o.version !== version) return false;
    version = o.version;
  }
  let mod = rev;
  if (o?.modRevision !== undefined) {
    if (mod !== UNKNOWN && o.modRevision !== mod) return false;
    mod = o.modRevision;
  }
  const create =
    created === true ? mod : created === false && cell !== undefined ? cell.createRevision : UNKNOWN;
  w.set(key, { value, version, modRevision: mod, createRevision: create });
  return true;
}

/** Applies a delete, checking its answer. Returns whether it changed something (undefined: unknown), or null when illegal. */
function applyDelete(w: Work, key: string, o: KvTxnKeyOutput | undefined): Maybe | null {
  const was = presence(w.get(key));
  if (o?.existed !== undefined && was !== undefined && o.existed !== was) return null;
  w.set(key, undefined);
  return o?.existed ?? was;
}

/**
 * Accounts for a write answered with revision `r`: it must exceed every earlier write's revision in
 * the tag (revisions grow in log order). Returns false when it does not.
 */
function raiseRevision(w: Work, r: number | undefined): boolean {
  if (r === undefined) return true;
  if (r <= w.rev) return false;
  w.rev = r;
  return true;
}

/** A read's revision is at least the last write's. */
function readRevisionFits(s: KvTxnState, o: KvTxnOutput | undefined): boolean {
  return o?.revision === undefined || o.revision >= s.rev;
}

function txnWrites(input: Extract<KvTxnInput, { f: 'txn' }>): boolean {
  return input.success.some((r) => r.f !== 'get') || input.failure.some((r) => r.f !== 'get');
}

function stepTxn(
  s: KvTxnState,
  input: Extract<KvTxnInput, { f: 'txn' }>,
  o: KvTxnOutput | undefined,
): StepResult<KvTxnState> {
  const w = new Work(s);
  let decided: Maybe = true;
  for (const c of input.compare) {
    const h = compareHolds(w.get(c.key), c);
    if (h === false) {
      decided = false;
      break;
    }
    if (h === undefined) decided = undefined;
  }
  if (o === undefined || o.succeeded === undefined) {
    if (decided === undefined) {
      // Which branch ran depends on a revision the model does not know: every key either branch
      // writes may now hold anything.
      for (const r of [...input.success, ...input.failure]) if (r.f !== 'get') w.set(r.key, UNKNOWN_CELL);
      return { ok: true, state: w.state() };
    }
    for (const r of decided ? input.success : input.failure) {
      if (r.f === 'put') applyPut(w, r.key, r.value as string, UNKNOWN, undefined);
      else if (r.f === 'delete') applyDelete(w, r.key, undefined);
    }
    return { ok: true, state: w.state() };
  }
  if (decided !== undefined && decided !== o.succeeded) return ILLEGAL;
  const branch = o.succeeded ? input.success : input.failure;
  const results = o.results;
  if (results !== undefined && results.length !== branch.length) return ILLEGAL;
  let changed: Maybe = false;
  const rev = o.revision ?? UNKNOWN;
  for (let i = 0; i < branch.length; i++) {
    const r = branch[i] as KvTxnRequest;
    const ro = results?.[i];
    if (r.f === 'get') {
      if (ro !== undefined && !observedFits(w.get(r.key), ro, true)) return ILLEGAL;
    } else if (r.f === 'put') {
      if (!applyPut(w, r.key, r.value as string, rev, ro)) return ILLEGAL;
      changed = true;
    } else {
      const d = applyDelete(w, r.key, ro);
      if (d === null) return ILLEGAL;
      if (changed === false) changed = d;
      else if (changed === undefined && d === true) changed = true;
    }
  }
  if (changed === true) {
    if (!raiseRevision(w, o.revision)) return ILLEGAL;
  } else if (changed === false && !readRevisionFits(s, o)) return ILLEGAL;
  return { ok: true, state: w.state() };
}

function stepRange(
  s: KvTxnState,
  input: Extract<KvTxnInput, { f: 'range' }>,
  o: KvTxnOutput | undefined,
): StepResult<KvTxnState> {
  if (o === undefined || o.kvs === undefined) return { ok: true, state: s };
  if (!readRevisionFits(s, o)) return ILLEGAL;
  const kvs = o.kvs;
  if (input.limit !== undefined && kvs.length > input.limit) return ILLEGAL;
  if (o.more === true && kvs.length === 0) return ILLEGAL;
  // The keys of the range, in the order asked.
  let lo = find(s.keys, input.start);
  if (lo < 0) lo = -lo - 1;
  let hi = input.end === undefined ? s.keys.length : find(s.keys, input.end);
  if (hi < 0) hi = -hi - 1;
  const order: number[] = [];
  for (let i = lo; i < hi; i++) order.push(i);
  if (input.reverse) order.reverse();
  let j = 0;
  let k = 0;
  for (; k < order.length && j < kvs.length; k++) {
    const i = order[k] as number;
    const key = s.keys[i] as string;
    const cell = s.cells[i] as KvTxnCell;
    const kv = kvs[j] as KvTxnKeyOutput;
    if (kv.key === key) {
      if (!observedFits(cell, kv, !input.keysOnly)) return ILLEGAL;
      j++;
    } else if (cell.value !== undefined) {
      return ILLEGAL; // a present key the answer skipped
    }
  }
  if (j < kvs.length) return ILLEGAL; // a key that is not there, or out of order
  let remainingKnown = 0;
  let remainingAny = 0;
  for (; k < order.length; k++) {
    remainingAny++;
    if ((s.cells[order[k] as number] as KvTxnCell).value !== undefined) remainingKnown++;
  }
  if (o.more === false && remainingKnown > 0) return ILLEGAL;
  if (o.more === true && remainingAny === 0) return ILLEGAL;
  return { ok: true, state: s };
}

function step(s: KvTxnState, input: KvTxnInput, o: KvTxnOutput | undefined): StepResult<KvTxnState> {
  switch (input.f) {
    case 'get': {
      if (o === undefined) return { ok: true, state: s };
      const i = find(s.keys, input.key);
      const cell = i >= 0 ? s.cells[i] : undefined;
      return observedFits(cell, o, true) && readRevisionFits(s, o) ? { ok: true, state: s } : ILLEGAL;
    }
    case 'put': {
      const w = new Work(s);
      const rev = o?.modRevision ?? o?.revision ?? UNKNOWN;
      if (o?.modRevision !== undefined && o.revision !== undefined && o.modRevision !== o.revision)
        return ILLEGAL;
      if (!applyPut(w, input.key, input.value, rev, o)) return ILLEGAL;
      if (!raiseRevision(w, rev === UNKNOWN ? undefined : rev)) return ILLEGAL;
      return { ok: true, state: w.state() };
    }
    case 'delete': {
      const w = new Work(s);
      const changed = applyDelete(w, input.key, o);
      if (changed === null) return ILLEGAL;
      if (changed === true && !raiseRevision(w, o?.revision)) return ILLEGAL;
      if (changed === false && !readRevisionFits(s, o)) return ILLEGAL;
      return { ok: true, state: w.state() };
    }
    case 'cas': {
      const w = new Work(s);
      const cell = w.get(input.key);
      let matches: Maybe;
      if (input.expectedModRevision !== undefined) {
        const n = numberOf(cell, 'modRevision');
        matches = n === UNKNOWN ? undefined : n === input.expectedModRevision;
      } else if (input.expectedVersion !== undefined) {
        const n = numberOf(cell, 'version');
        matches = n === UNKNOWN ? undefined : n === input.expectedVersion;
      } else if (input.expected === null || input.expected === undefined) {
        const p = presence(cell);
        matches = p === undefined ? undefined : !p;
      } else {
        matches =
          cell === undefined
            ? false
            : cell.value === undefined
              ? undefined
              : valuesEqual(cell.value, input.expected);
      }
      const ok = o?.ok;
      if (ok === undefined) {
        if (matches === undefined) w.set(input.key, UNKNOWN_CELL);
        else if (matches) applyPut(w, input.key, input.value, UNKNOWN, undefined);
        return { ok: true, state: w.state() };
      }
      if (matches !== undefined && matches !== ok) return ILLEGAL;
      if (!ok) {
        // The answer carries the key's current revisions.
        const seen = { version: o?.version, modRevision: o?.modRevision } as KvTxnKeyOutput;
        return observedFits(cell, seen, false) && readRevisionFits(s, o) ? { ok: true, state: s } : ILLEGAL;
      }
      const rev = o?.modRevision ?? o?.revision ?? UNKNOWN;
      if (
        !applyPut(w, input.key, input.value, rev, {
          ...(o?.version !== undefined ? { version: o.version } : {}),
        })
      ) {
        return ILLEGAL;
      }
      if (!raiseRevision(w, rev === UNKNOWN ? undefined : rev)) return ILLEGAL;
      return { ok: true, state: w.state() };
    }
    case 'txn':
      return stepTxn(s, input, o);
    case 'range':
      return stepRange(s, input, o);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isRevision(v: unknown): boolean {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

const TARGETS = new Set(['value', 'version', 'modRevision', 'createRevision', 'exists']);
const OPERATORS = new Set(['=', '!=', '<', '>']);

/** The check partition of an input, or a message saying why it has none. */
function partitionOrProblem(input: KvTxnInput): string {
  switch (input.f) {
    case 'txn': {
      const keys = [
        ...input.compare.map((c) => c.key),
        ...input.success.map((r) => r.key),
        ...input.failure.map((r) => r.key),
      ];
      return partitionOfKey(keys[0] as string);
    }
    case 'range':
      return partitionOfRange(input.start, input.end) as string;
    default:
      return partitionOfKey(input.key);
  }
}

function validateKeyOutput(o: unknown, what: string): string | undefined {
  if (!isObject(o)) return `${what} must be an object`;
  if (o.value !== undefined && o.value !== null && typeof o.value !== 'string') {
    return `${what}: "value" must be a string or null`;
  }
  for (const f of ['version', 'modRevision'] as const) {
    if (o[f] !== undefined && !isRevision(o[f])) return `${what}: "${f}" must be a non-negative integer`;
  }
  for (const f of ['created', 'existed'] as const) {
    if (o[f] !== undefined && typeof o[f] !== 'boolean') return `${what}: "${f}" must be a boolean`;
  }
  return undefined;
}

function validateRequest(r: unknown, where: string): string | undefined {
  if (!isObject(r) || (r.f !== 'get' && r.f !== 'put' && r.f !== 'delete')) {
    return `${where} must be {"f":"get"|"put"|"delete","key":...}`;
  }
  if (typeof r.key !== 'string') return `${where} needs a string "key"`;
  if (r.f === 'put' && typeof r.value !== 'string') return `${where}: put needs a string "value"`;
  return undefined;
}

function validate(input: unknown, output: unknown): string | undefined {
  if (!isObject(input)) return 'op must be an object like {"f":"get","key":"k"}';
  const f = input.f;
  switch (f) {
    case 'get':
    case 'put':
    case 'delete':
    case 'cas': {
      if (typeof input.key !== 'string') return `${f} needs a string "key"`;
      if ((f === 'put' || f === 'cas') && typeof input.value !== 'string')
        return `${f} needs a string "value"`;
      if (f === 'cas') {
        const n =
          (input.expected !== undefined ? 1 : 0) +
          (input.expectedModRevision !== undefined ? 1 : 0) +
          (input.expectedVersion !== undefined ? 1 : 0);
        if (n > 1) return 'cas compares on one of "expected", "expectedModRevision", "expectedVersion"';
        if (input.expected !== undefined && input.expected !== null && typeof input.expected !== 'string') {
          return 'cas "expected" must be a string, or null for "must be absent"';
        }
        for (const k of ['expectedModRevision', 'expectedVersion'] as const) {
          if (input[k] !== undefined && !isRevision(input[k]))
            return `cas "${k}" must be a non-negative integer`;
        }
      }
      break;
    }
    case 'txn': {
      if (!Array.isArray(input.compare) || !Array.isArray(input.success) || !Array.isArray(input.failure)) {
        return 'txn needs arrays "compare", "success" and "failure"';
      }
      for (const [i, c] of input.compare.entries()) {
        if (!isObject(c) || typeof c.key !== 'string') return `txn compare ${i} needs a string "key"`;
        if (typeof c.target !== 'string' || !TARGETS.has(c.target)) {
          return `txn compare ${i}: "target" must be value, version, modRevision, createRevision or exists`;
        }
        if (typeof c.op !== 'string' || !OPERATORS.has(c.op))
          return `txn compare ${i}: "op" must be =, !=, < or >`;
        if (
          c.target === 'value'
            ? typeof c.value !== 'string'
            : c.target === 'exists'
              ? typeof c.value !== 'boolean'
              : !isRevision(c.value)
        ) {
          return `txn compare ${i}: "value" does not fit target ${c.target}`;
        }
      }
      for (const branch of ['success', 'failure'] as const) {
        const written = new Set<string>();
        for (const [i, r] of (input[branch] as unknown[]).entries()) {
          const problem = validateRequest(r, `txn ${branch} ${i}`);
          if (problem) return problem;
          const req = r as KvTxnRequest;
          if (req.f !== 'get') {
            if (written.has(req.key)) return `txn ${branch} writes key ${show(req.key)} twice`;
            written.add(req.key);
          }
        }
      }
      const keys = [
        ...(input.compare as KvTxnCompare[]).map((c) => c.key),
        ...(input.success as KvTxnRequest[]).map((r) => r.key),
        ...(input.failure as KvTxnRequest[]).map((r) => r.key),
      ];
      if (keys.length === 0)
        return 'txn names no key: the kv-txn model checks transactions on the keys of one hash tag';
      const p = partitionOfKey(keys[0] as string);
      for (const k of keys) {
        if (partitionOfKey(k) !== p) {
          return `txn keys ${show(keys[0])} and ${show(k)} do not share a hash tag: the kv-txn model checks transactions within one tag ({tag} in every key)`;
        }
      }
      break;
    }
    case 'range': {
      if (typeof input.start !== 'string' || (input.end !== undefined && typeof input.end !== 'string')) {
        return 'range needs a string "start" and an optional string "end"';
      }
      if (partitionOfRange(input.start, input.end as string | undefined) === undefined) {
        return 'range must stay within one hash tag (start has a {tag} and end is at most the keys that begin like start up to its "}"): a range across tags is not one linearizable read';
      }
      if (input.limit !== undefined && !(Number.isSafeInteger(input.limit) && (input.limit as number) > 0)) {
        return 'range "limit" must be a positive integer';
      }
      for (const k of ['reverse', 'keysOnly'] as const) {
        if (input[k] !== undefined && typeof input[k] !== 'boolean') return `range "${k}" must be a boolean`;
      }
      break;
    }
    default:
      return `kv-txn model has no operation ${show(f)}: use get, put, delete, cas, txn or range`;
  }
  if (output === undefined) return undefined;
  const problem = validateKeyOutput(output, `${f} result`);
  if (problem) return problem;
  const o = output as Record<string, unknown>;
  for (const k of ['ok', 'succeeded', 'more'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') return `${f} result: "${k}" must be a boolean`;
  }
  if (o.revision !== undefined && !isRevision(o.revision))
    return `${f} result: "revision" must be a non-negative integer`;
  for (const k of ['results', 'kvs'] as const) {
    if (o[k] === undefined) continue;
    if (!Array.isArray(o[k])) return `${f} result: "${k}" must be an array`;
    for (const [i, r] of (o[k] as unknown[]).entries()) {
      const p = validateKeyOutput(r, `${f} result ${k}[${i}]`);
      if (p) return p;
      if (k === 'kvs' && typeof (r as Record<string, unknown>).key !== 'string') {
        return `${f} result kvs[${i}] needs a string "key"`;
      }
    }
  }
  return undefined;
}

function describeCompare(c: KvTxnCompare): string {
  return `${c.target}(${show(c.key)}) ${c.op} ${show(c.value)}`;
}

function describeRequest(r: KvTxnRequest): string {
  return r.f === 'put' ? `put(${show(r.key)}, ${show(r.value)})` : `${r.f}(${show(r.key)})`;
}

function describeKey(o: KvTxnKeyOutput | undefined): string {
  if (o === undefined) return '?';
  const parts: string[] = [];
  if (o.value !== undefined) parts.push(show(o.value));
  if (o.created !== undefined) parts.push(o.created ? 'created' : 'replaced');
  if (o.existed !== undefined) parts.push(o.existed ? 'existed' : 'absent');
  if (o.version !== undefined) parts.push(`v${o.version}`);
  if (o.modRevision !== undefined) parts.push(`mod ${o.modRevision}`);
  return parts.join(' ');
}

function describeOperation(input: KvTxnInput, o: KvTxnOutput | undefined): string {
  const at = o?.revision === undefined ? '' : ` @${o.revision}`;
  switch (input.f) {
    case 'get':
      return `get(${show(input.key)}) → ${describeKey(o)}${at}`;
    case 'put':
      return `put(${show(input.key)}, ${show(input.value)}) → ${describeKey(o)}${at}`;
    case 'delete':
      return `delete(${show(input.key)}) → ${describeKey(o)}${at}`;
    case 'cas': {
      const on =
        input.expectedModRevision !== undefined
          ? `mod ${input.expectedModRevision}`
          : input.expectedVersion !== undefined
            ? `v${input.expectedVersion}`
            : show(input.expected ?? null);
      return `cas(${show(input.key)}, ${on}, ${show(input.value)}) → ${o?.ok === undefined ? '?' : o.ok ? 'ok' : 'fail'}${at}`;
    }
    case 'txn': {
      const head = `txn(if ${input.compare.map(describeCompare).join(' && ') || 'true'} then ${input.success.map(describeRequest).join('; ')} else ${input.failure.map(describeRequest).join('; ')})`;
      if (o?.succeeded === undefined) return `${head} → ?`;
      return `${head} → ${o.succeeded ? 'then' : 'else'} [${(o.results ?? []).map(describeKey).join(', ')}]${at}`;
    }
    case 'range': {
      const head = `range(${show(input.start)}, ${show(input.end)}${input.limit !== undefined ? `, limit ${input.limit}` : ''}${input.reverse ? ', reverse' : ''}${input.keysOnly ? ', keys only' : ''})`;
      if (o?.kvs === undefined) return `${head} → ?`;
      return `${head} → [${o.kvs.map((kv) => `${show(kv.key)}: ${describeKey(kv)}`).join(', ')}]${o.more ? ' more' : ''}${at}`;
    }
  }
}

function describeState(s: KvTxnState): string {
  const parts = s.keys.map((k, i) => {
    const c = s.cells[i] as KvTxnCell;
    if (c.value === undefined) return `${show(k)}: ?`;
    const n = (x: number) => (x === UNKNOWN ? '?' : String(x));
    return `${show(k)}: ${show(c.value)} (v${n(c.version)} mod ${n(c.modRevision)})`;
  });
  return `{${parts.join(', ')}} @${s.rev}`;
}

function sameState(a: KvTxnState, b: KvTxnState): boolean {
  if (a.rev !== b.rev || a.keys.length !== b.keys.length) return false;
  for (let i = 0; i < a.keys.length; i++) {
    const x = a.cells[i] as KvTxnCell;
    const y = b.cells[i] as KvTxnCell;
    if (
      a.keys[i] !== b.keys[i] ||
      x.value !== y.value ||
      x.version !== y.version ||
      x.modRevision !== y.modRevision ||
      x.createRevision !== y.createRevision
    ) {
      return false;
    }
  }
  return true;
}

/**
 * The `kv-txn` model (see the module notes): get/put/delete/cas (on value, `modRevision` or
 * `version`), etcd-shaped `txn` and ordered `range` reads, with revisions, checked per hash tag.
 */
export const kvTxnModel: Model<KvTxnState, KvTxnInput, KvTxnOutput> = {
  name: 'kv-txn',
  init: () => EMPTY_STATE,
  step,
  key: (s) => s.hash,
  equal: sameState,
  partition: partitionOrProblem,
  readOnly: (input, output) =>
    input.f === 'get' ||
    input.f === 'range' ||
    (input.f === 'txn' && !txnWrites(input)) ||
    (input.f === 'txn' &&
      output?.succeeded !== undefined &&
      (output.succeeded ? input.success : input.failure).every((r) => r.f === 'get')) ||
    (input.f === 'cas' && output?.ok === false),
  validate,
  describeOperation,
  describeState,
};
