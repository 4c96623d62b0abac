/**
 * Built-in models: register, cas-register, etcd, and a key-value map partitioned per key.
 * @module
 */
import { UnknownModelError } from './errors.js';
import { kvTxnModel } from './kv-txn.js';
import type { Model, StepResult } from './model.js';
import { show } from './model.js';

/** A register value: any JSON scalar, `null` meaning absent. */
export type RegisterValue = string | number | boolean | null;

/** Input of the register models. */
export type RegisterInput =
  | { readonly f: 'read' }
  | { readonly f: 'write'; readonly value: RegisterValue }
  | { readonly f: 'cas'; readonly expected: RegisterValue; readonly value: RegisterValue };

/** Output of the register models: `read` → `{ value }`, `write` → `{}`, `cas` → `{ ok }`. */
export interface RegisterOutput {
  readonly value?: RegisterValue;
  readonly ok?: boolean;
}

const ILLEGAL: StepResult<never> = { ok: false };

function isScalar(v: unknown): v is RegisterValue {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function registerModel(name: string, allowCas: boolean): Model<RegisterValue, RegisterInput, RegisterOutput> {
  return {
    name,
    init: () => null,
    step(state, input, output): StepResult<RegisterValue> {
      switch (input.f) {
        case 'read':
          if (output === undefined || output.value === undefined || output.value === state) {
            return { ok: true, state };
          }
          return ILLEGAL;
        case 'write':
          return { ok: true, state: input.value };
        case 'cas': {
          const matches = state === input.expected;
          if (output === undefined || output.ok === undefined) {
            return { ok: true, state: matches ? input.value : state };
          }
          if (output.ok !== matches) return ILLEGAL;
          return { ok: true, state: matches ? input.value : state };
        }
      }
    },
    key: (s) => (typeof s === 'number' ? s : JSON.stringify(s)),
    readOnly: (input, output) => input.f === 'read' || (input.f === 'cas' && output?.ok === false),
    registerOp(input, output) {
      if (input.f === 'write') return { kind: 'write', value: JSON.stringify(input.value) };
      if (input.f === 'read' && output !== undefined && output.value !== undefined) {
        return { kind: 'read', value: JSON.stringify(output.value) };
      }
      return undefined;
    },
    initialRegisterValue: 'null',
    validate(input, output) {
      if (!isObject(input)) return 'op must be an object like {"f":"read"}';
      const f = input.f;
      if (f === 'read') {
        if (
          output !== undefined &&
          (!isObject(output) || (output.value !== undefined && !isScalar(output.value)))
        ) {
          return 'read result must be {"value": <string|number|boolean|null>}';
        }
        return undefined;
      }
      if (f === 'write') return isScalar(input.value) ? undefined : 'write needs a scalar "value"';
      if (f === 'cas' && allowCas) {
        if (!isScalar(input.expected) || !isScalar(input.value))
          return 'cas needs scalar "expected" and "value"';
        if (
          output !== undefined &&
          (!isObject(output) || (output.ok !== undefined && typeof output.ok !== 'boolean'))
        ) {
          return 'cas result must be {"ok": boolean}';
        }
        return undefined;
      }
      return `model ${name} has no operation ${show(f)}: use ${allowCas ? 'read, write or cas' : 'read or write'}`;
    },
    describeOperation(input, output) {
      switch (input.f) {
        case 'read':
          return `read() → ${output === undefined ? '?' : show(output.value)}`;
        case 'write':
          return `write(${show(input.value)})`;
        case 'cas':
          return `cas(${show(input.expected)}, ${show(input.value)}) → ${output?.ok === undefined ? '?' : output.ok ? 'ok' : 'fail'}`;
      }
    },
    describeState: (s) => show(s),
  };
}

/** A read/write register, initially `null` (absent). Operations: `read`, `write`. */
export const registerModelInstance: Model<RegisterValue, RegisterInput, RegisterOutput> = registerModel(
  'register',
  false,
);

/**
 * A compare-and-set register, initially `null` (absent). Operations: `read`, `write`,
 * `cas {expected, value} → {ok}`. A `cas` answered `ok: false` is kept as the observation
 * "the value was not `expected`" (as Porcupine does for etcd).
 */
export const casRegisterModel: Model<RegisterValue, RegisterInput, RegisterOutput> = registerModel(
  'cas-register',
  true,
);

/**
 * The etcd register of Porcupine's tests: a cas-register whose initial state is absent (`null`),
 * where a read of `nil` means absent and a failed cas means "value ≠ expected".
 */
export const etcdModel: Model<RegisterValue, RegisterInput, RegisterOutput> = registerModel('etcd', true);

/** Input of the KV model. `expected: null` in `cas` means "the key must be absent". */
export type KvInput =
  | { readonly f: 'get'; readonly key: string }
  | { readonly f: 'put'; readonly key: string; readonly value: string }
  | { readonly f: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string }
  | { readonly f: 'delete'; readonly key: string }
  | { readonly f: 'append'; readonly key: string; readonly value: string };

/**
 * Output of the KV model: `get` → `{value}`, `put` → `{created?}`, `cas` → `{ok}`,
 * `delete` → `{existed?}`, `append` → `{}`. Absent optional fields constrain nothing.
 */
export interface KvOutput {
  readonly value?: string | null;
  readonly created?: boolean;
  readonly ok?: boolean;
  readonly existed?: boolean;
}

/**
 * The state of one partition of the partitioned KV model: the key's value (`null` = absent) and a
 * running polynomial hash of it, extended in O(length of the appended text) by `append`, so that
 * states are interned and compared by a number, and strings are compared only when hashes match.
 */
export interface KvCell {
  /** The value, `null` when the key is absent. */
  readonly value: string | null;
  /** `hashText(value)` (any number for an absent key: `value` decides). */
  readonly hash: number;
}

/**
 * State of the KV model. Partitioned (the default), each partition holds one key: a
 * {@link KvCell}. Unpartitioned, a frozen map from key to value (absent keys are missing).
 */
export type KvState = KvCell | Readonly<Record<string, string>>;

const HASH_SEED = 0x2f6b1d3;

/** Continues a 31-multiplier polynomial hash `h` over `text`. */
function hashText(text: string, h: number = HASH_SEED): number {
  let x = h;
  for (let i = 0; i < text.length; i++) x = (Math.imul(x, 31) + text.charCodeAt(i)) | 0;
  return x;
}

const ABSENT_CELL: KvCell = Object.freeze({ value: null, hash: 0 });

/** Options of {@link createKvModel}. */
export interface KvModelOptions {
  /** Model name shown in reports. Default `kv`. */
  name?: string;
  /**
   * What a `get` of an absent key returns. Default `null` (our JSON-lines format). Porcupine's kv
   * histories use `''`: a missing key reads as the empty string.
   */
  absentValue?: string | null;
  /** Check each key on its own (P-compositionality). Default `true`. */
  partitioned?: boolean;
}

const KV_FS = new Set(['get', 'put', 'cas', 'delete', 'append']);

/**
 * Creates the key-value model: `get`, `put`, `cas`, `delete`, `append` (concatenation, an absent
 * key appends to `''`), partitioned per key by default.
 */
export function createKvModel(options: KvModelOptions = {}): Model<KvState, KvInput, KvOutput> {
  const absent = options.absentValue === undefined ? null : options.absentValue;
  const partitioned = options.partitioned ?? true;
  // Hashes of the strings that outputs and cas arguments compare against, computed once each.
  const hashes = new Map<string, number>();
  const hashOf = (text: string): number => {
    let h = hashes.get(text);
    if (h === undefined) {
      h = hashText(text);
      hashes.set(text, h);
    }
    return h;
  };
  const get = (s: KvState, k: string): string | undefined => {
    if (partitioned) return (s as KvCell).value ?? undefined;
    const m = s as Readonly<Record<string, string>>;
    return Object.hasOwn(m, k) ? m[k] : undefined;
  };
  /** Whether the current value `cur` of `s` equals `text`, comparing hashes first when partitioned. */
  const same = (s: KvState, cur: string | undefined, text: string): boolean => {
    if (cur === undefined) return false;
    if (partitioned && (s as KvCell).hash !== hashOf(text)) return false;
    return cur === text;
  };
  const set = (s: KvState, k: string, v: string | undefined, appended?: string): KvState => {
    if (partitioned) {
      if (v === undefined) return ABSENT_CELL;
      const cell = s as KvCell;
      const hash =
        appended !== undefined && cell.value !== null ? hashText(appended, cell.hash) : hashText(v);
      return { value: v, hash };
    }
    const next: Record<string, string> = { ...(s as Record<string, string>) };
    if (v === undefined) delete next[k];
    else next[k] = v;
    return Object.freeze(next);
  };
  const model: Model<KvState, KvInput, KvOutput> = {
    name: options.name ?? 'kv',
    init: () => (partitioned ? ABSENT_CELL : Object.freeze({})),
    step(state, input, output): StepResult<KvState> {
      const cur = get(state, input.key);
      switch (input.f) {
        case 'get': {
          if (output === undefined || output.value === undefined) return { ok: true, state };
          const legal =
            cur === undefined
              ? output.value === absent
              : output.value !== null && same(state, cur, output.value);
          return legal ? { ok: true, state } : ILLEGAL;
        }
        case 'put':
          if (output?.created !== undefined && output.created !== (cur === undefined)) return ILLEGAL;
          return { ok: true, state: set(state, input.key, input.value) };
        case 'append':
          return { ok: true, state: set(state, input.key, (cur ?? '') + input.value, input.value) };
        case 'delete':
          if (output?.existed !== undefined && output.existed !== (cur !== undefined)) {
            return ILLEGAL;
          }
          return { ok: true, state: cur === undefined ? state : set(state, input.key, undefined) };
        case 'cas': {
          const matches = input.expected === null ? cur === undefined : same(state, cur, input.expected);
          if (output !== undefined && output.ok !== undefined && output.ok !== matches) return ILLEGAL;
          return { ok: true, state: matches ? set(state, input.key, input.value) : state };
        }
      }
    },
    key: (s) => {
      if (partitioned) {
        const c = s as KvCell;
        return c.value === null ? -1 : c.hash & 0x3fffffff;
      }
      const m = s as Readonly<Record<string, string>>;
      const keys = Object.keys(m);
      if (keys.length === 0) return '';
      if (keys.length === 1) return JSON.stringify([keys[0], m[keys[0] as string]]);
      keys.sort();
      return JSON.stringify(keys.map((k) => [k, m[k]]));
    },
    readOnly: (input, output) =>
      input.f === 'get' ||
      (input.f === 'cas' && output?.ok === false) ||
      (input.f === 'delete' && output?.existed === false),
    validate(input, output) {
      if (!isObject(input)) return 'op must be an object like {"f":"get","key":"k"}';
      if (typeof input.f !== 'string' || !KV_FS.has(input.f)) {
        return `kv model has no operation ${show(input.f)}: use get, put, cas, delete or append`;
      }
      if (typeof input.key !== 'string') return `${input.f} needs a string "key"`;
      if (input.f !== 'get' && input.f !== 'delete' && typeof input.value !== 'string') {
        return `${input.f} needs a string "value"`;
      }
      if (input.f === 'cas' && input.expected !== null && typeof input.expected !== 'string') {
        return 'cas needs "expected": a string, or null for "must be absent"';
      }
      if (output === undefined) return undefined;
      if (!isObject(output)) return `${input.f} result must be an object`;
      if (
        input.f === 'get' &&
        output.value !== undefined &&
        output.value !== null &&
        typeof output.value !== 'string'
      ) {
        return 'get result must be {"value": string|null}';
      }
      for (const field of ['created', 'ok', 'existed'] as const) {
        if (output[field] !== undefined && typeof output[field] !== 'boolean')
          return `"${field}" must be a boolean`;
      }
      return undefined;
    },
    describeOperation(input, output) {
      const k = show(input.key);
      switch (input.f) {
        case 'get':
          return `get(${k}) → ${output === undefined || output.value === undefined ? '?' : show(output.value)}`;
        case 'put':
          return `put(${k}, ${show(input.value)})${output?.created === undefined ? '' : output.created ? ' → created' : ' → replaced'}`;
        case 'append':
          return `append(${k}, ${show(input.value)})`;
        case 'delete':
          return `delete(${k})${output?.existed === undefined ? '' : output.existed ? ' → existed' : ' → absent'}`;
        case 'cas':
          return `cas(${k}, ${show(input.expected)}, ${show(input.value)}) → ${output?.ok === undefined ? '?' : output.ok ? 'ok' : 'fail'}`;
      }
    },
    describeState(s) {
      if (partitioned) {
        const c = s as KvCell;
        return c.value === null ? 'absent' : show(c.value);
      }
      const m = s as Readonly<Record<string, string>>;
      const keys = Object.keys(m).sort();
      if (keys.length === 0) return '{}';
      return `{${keys.map((k) => `${show(k)}: ${show(m[k])}`).join(', ')}}`;
    },
  };
  if (partitioned) {
    // The fast path: a get observes the value, a put sets it; absent is the initial value. A
    // `created` answer (which depends on the state) only restricts: the zones ignore it, and the
    // linearization the fast path builds is replayed through `step`, which checks it (when that
    // replay fails, the general search decides).
    model.registerOp = (input, output) => {
      if (input.f === 'put') return { kind: 'write', value: JSON.stringify(input.value) };
      if (input.f === 'get' && output !== undefined && output.value !== undefined) {
        return { kind: 'read', value: JSON.stringify(output.value) };
      }
      return undefined;
    };
    (model as { initialRegisterValue?: string }).initialRegisterValue = JSON.stringify(absent);
    model.partition = (input) => input.key;
    // keys are hashes: confirm with the values
    model.equal = (a, b) => (a as KvCell).value === (b as KvCell).value;
  }
  return model;
}

/** The KV model of our JSON-lines histories (absent reads as `null`), partitioned per key. */
export const kvModel: Model<KvState, KvInput, KvOutput> = createKvModel();

/** The KV model of Porcupine's `kv/*.txt` histories: a missing key reads as `''`. */
export const porcupineKvModel: Model<KvState, KvInput, KvOutput> = createKvModel({
  name: 'porcupine-kv',
  absentValue: '',
});

/** Built-in models by name. */
export const builtinModels: Readonly<Record<string, Model<never, never, never>>> = {
  register: registerModelInstance as unknown as Model<never, never, never>,
  'cas-register': casRegisterModel as unknown as Model<never, never, never>,
  etcd: etcdModel as unknown as Model<never, never, never>,
  kv: kvModel as unknown as Model<never, never, never>,
  'porcupine-kv': porcupineKvModel as unknown as Model<never, never, never>,
  'kv-txn': kvTxnModel as unknown as Model<never, never, never>,
};

/**
 * Looks up a built-in model by name (`register`, `cas-register`, `etcd`, `kv`, `porcupine-kv`,
 * `kv-txn`).
 * Append `:unpartitioned` to a kv model name to check all keys together (slow; for comparison).
 * @throws UnknownModelError for any other name.
 */
export function getBuiltinModel(name: string): Model {
  if (name === 'kv:unpartitioned') return createKvModel({ partitioned: false }) as unknown as Model;
  if (name === 'porcupine-kv:unpartitioned') {
    return createKvModel({ name: 'porcupine-kv', absentValue: '', partitioned: false }) as unknown as Model;
  }
  const m = Object.hasOwn(builtinModels, name) ? builtinModels[name] : undefined;
  if (m === undefined) {
    throw new UnknownModelError(name, [
      ...Object.keys(builtinModels),
      'kv:unpartitioned',
      'porcupine-kv:unpartitioned',
    ]);
  }
  return m as unknown as Model;
}
