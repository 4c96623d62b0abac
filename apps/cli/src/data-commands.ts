/**
 * `paxkv txn` (the client's `txn` JSON read from stdin), `paxkv range <start> [end]` and
 * `paxkv get --prefix <p>`: transactions and ordered ranges from the command line, printed as a
 * table (key, value, revisions) or as JSON (`-w json`).
 */
import { createClient, type RangePage, type TxnCallResult, type TxnRequestInput } from '@paxkv/client';
import { type KeyValue, type KvOp, KvOpSchema, zodErrorToBadRequest } from '@paxkv/common';
import { displayValue, EXIT, type Outcome, valueToJson } from './execute.js';
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
  const client = createClient({ servers: [...servers], requestTimeoutMs: timeoutMs });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
