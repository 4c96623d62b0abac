/**
 * `paxkv txn` (the client's `txn` JSON read from stdin), `paxkv range <start> [end]`,
 * `paxkv get --prefix <p>` and `paxkv cas <key> <value> --mod-revision N | --version N`:
 * transactions, ordered ranges and revision compares from the command line and the prompt, printed
 * as a table (key, value, revisions) or as JSON (`-w json`).
 */
import {
  type CasExpectation,
  type CasResult,
  createClient,
  type RangePage,
  type TxnCallResult,
  type TxnRequestInput,
} from '@paxkv/client';
import { type KeyValue, type KvOp, KvOpSchema, zodErrorToBadRequest } from '@paxkv/common';
import { CommandSyntaxError, tokenize } from './commands.js';
import { displayValue, EXIT, type Outcome, valueToJson } from './execute.js';
import { clientSecurity } from './security-commands.js';
import { renderTable } from './views.js';

/** Options of a range listing. */
export interface RangeCliOptions {
  readonly limit?: number;
  readonly reverse?: boolean;
  readonly keysOnly?: boolean;
}

/** The JSON form of a key with its value and revisions. */
function kvJson(kv: KeyValue): Record<string, unknown> {
  return {
    key: kv.key,
    ...(kv.value !== undefined ? { value: valueToJson(kv.value) } : {}),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
  };
}

/** A range page as an outcome: a table (key, value, mod revision, version) or JSON. */
export function rangeOutcome(page: RangePage, keysOnly: boolean, reverse = false): Outcome {
  const header = keysOnly ? ['KEY', 'MOD', 'VERSION'] : ['KEY', 'VALUE', 'MOD', 'VERSION'];
  const rows = page.kvs.map((kv) => [
    kv.key,
    ...(keysOnly ? [] : [kv.value === undefined ? '' : displayValue(kv.value)]),
    String(kv.modRevision),
    String(kv.version),
  ]);
  const more = !page.more
    ? ''
    : reverse
      ? `\n(more keys: continue below ${JSON.stringify(page.next?.end ?? '')})`
      : `\n(more keys: continue from ${JSON.stringify(page.next?.start ?? '')})`;
  return {
    exitCode: EXIT.ok,
    stdout: `${rows.length === 0 ? '(no keys)' : renderTable(header, rows)}${more}`,
    stderr: '',
    json: {
      ok: true,
      command: 'range',
      kvs: page.kvs.map(kvJson),
      more: page.more,
      ...(page.next ? { next: page.next } : {}),
      revisions: page.revisions,
    },
  };
}

/** A transaction result as an outcome: `SUCCEEDED`/`FAILED` then one line per operation, or JSON. */
export function txnOutcome(r: TxnCallResult): Outcome {
  const lines = r.results.map((x) => {
    if (x.op === 'get')
      return `get ${x.key} = ${x.value === null ? '(absent)' : displayValue(x.value)} (mod ${x.modRevision}, version ${x.version})`;
    if (x.op === 'put') return `put ${x.key} (${x.created ? 'created' : 'updated'}, version ${x.version})`;
    return `delete ${x.key} (${x.existed ? 'deleted' : 'absent'})`;
  });
  return {
    exitCode: r.succeeded ? EXIT.ok : EXIT.notFound,
    stdout: [
      `${r.succeeded ? 'SUCCEEDED' : 'FAILED'} at revision ${r.revision} of partition ${r.partition}`,
      ...lines,
    ].join('\n'),
    stderr: '',
    json: {
      ok: true,
      command: 'txn',
      succeeded: r.succeeded,
      revision: r.revision,
      partition: r.partition,
      results: r.results.map((x) => (x.op === 'get' ? { ...x, value: valueToJson(x.value) } : x)),
    },
  };
}

/**
 * Parses the JSON a `paxkv txn` reads from stdin: exactly what the client's `txn` takes
 * (`{"compare": [...], "success": [...], "failure": [...]}`), checked against the wire schema.
 * @throws the schema's `BadRequestError` naming the offending field, or a SyntaxError for bad JSON.
 */
export function parseTxnJson(text: string): TxnRequestInput {
  const raw = JSON.parse(text) as Record<string, unknown>;
  const op = { op: 'txn', compare: [], success: [], failure: [], ...raw } as unknown;
  const parsed = KvOpSchema.safeParse(op);
  if (!parsed.success) throw zodErrorToBadRequest(parsed.error);
  const txn = parsed.data as Extract<KvOp, { op: 'txn' }>;
  return { compare: txn.compare, success: txn.success, failure: txn.failure };
}

/** Runs `fn` with a client of `servers`, closing it afterwards. */
export async function withClient<T>(
  servers: readonly string[],
  timeoutMs: number,
  fn: (client: ReturnType<typeof createClient>) => Promise<T>,
): Promise<T> {
  const client = createClient({ servers: [...servers], requestTimeoutMs: timeoutMs, ...clientSecurity() });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** What a revision compare-and-set compares: the key's `modRevision` or its `version` (0: absent). */
export type RevisionExpectation = { readonly modRevision: number } | { readonly version: number };

/**
 * Parses a revision flag's value (`--mod-revision N`, `--version N`): a non-negative integer.
 * @throws CommandSyntaxError naming the flag.
 */
export function parseRevisionFlag(flag: string, text: unknown): number {
  const n = typeof text === 'string' && /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw new CommandSyntaxError(
      `${flag} needs a non-negative integer (0: the key must be absent), got "${String(text)}"`,
    );
  }
  return n;
}

/** The outcome of a compare-and-set on a revision: exit 0 applied, 1 not applied (with the key's revisions). */
export function casRevisionOutcome(key: string, expect: RevisionExpectation, r: CasResult): Outcome {
  const on = 'modRevision' in expect ? `modRevision ${expect.modRevision}` : `version ${expect.version}`;
  const json = {
    ok: true,
    command: 'cas',
    key,
    outcome: r.outcome,
    current: valueToJson(r.current),
    createRevision: r.createRevision,
    modRevision: r.modRevision,
    version: r.version,
    revision: r.revision,
  };
  if (r.outcome === 'applied') {
    return {
      exitCode: EXIT.ok,
      stdout: `OK (applied: mod ${r.modRevision}, version ${r.version})`,
      stderr: '',
      json,
    };
  }
  const why =
    r.outcome === 'not-found'
      ? `not applied: ${key} does not exist (expected ${on})`
      : `not applied: ${key} is at mod ${r.modRevision}, version ${r.version} (expected ${on})`;
  return { exitCode: EXIT.notFound, stdout: '', stderr: why, json };
}

/** The client calls the data commands need (a port of `PaxkvClient`, so the prompt can be tested). */
export interface DataClientPort {
  range(
    start: string,
    end: string | undefined,
    options?: { limit?: number; reverse?: boolean; keysOnly?: boolean },
  ): Promise<RangePage>;
  txn(request: TxnRequestInput): Promise<TxnCallResult>;
  cas(key: string, expected: CasExpectation, value: string): Promise<CasResult>;
}

/** Prompt forms of the data commands, for `help`. */
export const DATA_COMMAND_USAGE = [
  'range <start> [end] [--limit N] [--keys-only] [--reverse]   keys from <start> to [end] in key order',
  'txn <json>                                                  a transaction: {"compare":[...],"success":[...],"failure":[...]}',
  'cas <key> <value> --mod-revision N | --version N           set <key> only if its modRevision / version is N (0: absent)',
] as const;

/**
 * Runs a prompt line that is a data command (`range`, `txn <json>`, or `cas` with `--mod-revision` /
 * `--version`) and resolves its outcome; resolves `undefined` for any other line (the prompt's own
 * commands). A malformed data command rejects with a `CommandSyntaxError` saying the right form.
 */
export async function runPromptDataLine(line: string, client: DataClientPort): Promise<Outcome | undefined> {
  const trimmed = line.trim();
  const name = /^(\S+)/.exec(trimmed)?.[1]?.toLowerCase();
  if (name === 'txn') {
    const json = trimmed.slice(3).trim();
    if (json === '') throw new CommandSyntaxError(`usage: ${DATA_COMMAND_USAGE[1]}`);
    let request: TxnRequestInput;
    try {
      request = parseTxnJson(json);
    } catch (e) {
      throw new CommandSyntaxError(`txn: ${(e as Error).message}`);
    }
    return txnOutcome(await client.txn(request));
  }
  if (name !== 'range' && name !== 'cas') return undefined;
  const words = tokenize(trimmed).slice(1);
  const flags = new Map<string, string | true>();
  const args: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (w === '--limit' || w === '--mod-revision' || w === '--version') {
      const v = words[i + 1];
      if (v === undefined) throw new CommandSyntaxError(`${w} needs a value`);
      flags.set(w, v);
      i++;
    } else if (w === '--keys-only' || w === '--reverse') flags.set(w, true);
    else args.push(w);
  }
  if (name === 'cas') {
    const mod = flags.get('--mod-revision');
    const ver = flags.get('--version');
    if (mod === undefined && ver === undefined) return undefined; // a value cas: the prompt's own
    if (args.length !== 2 || (mod !== undefined && ver !== undefined)) {
      throw new CommandSyntaxError(`usage: ${DATA_COMMAND_USAGE[2]}`);
    }
    const expect: RevisionExpectation =
      mod !== undefined
        ? { modRevision: parseRevisionFlag('--mod-revision', mod) }
        : { version: parseRevisionFlag('--version', ver) };
    const [key, value] = args as [string, string];
    return casRevisionOutcome(key, expect, await client.cas(key, expect, value));
  }
  if (args.length < 1 || args.length > 2) throw new CommandSyntaxError(`usage: ${DATA_COMMAND_USAGE[0]}`);
  const limitText = flags.get('--limit');
  const limit = limitText === undefined ? undefined : Number(limitText);
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) {
    throw new CommandSyntaxError(`--limit must be a positive integer, got "${String(limitText)}"`);
  }
  const keysOnly = flags.has('--keys-only');
  const reverse = flags.has('--reverse');
  const page = await client.range(args[0] as string, args[1], {
    ...(limit !== undefined ? { limit } : {}),
    ...(reverse ? { reverse } : {}),
    ...(keysOnly ? { keysOnly } : {}),
  });
  return rangeOutcome(page, keysOnly, reverse);
}
