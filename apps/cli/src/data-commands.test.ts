import { describe, expect, it } from 'vitest';
import {
  casRevisionOutcome,
  type DataClientPort,
  parseRevisionFlag,
  parseTxnJson,
  rangeOutcome,
  runPromptDataLine,
  txnOutcome,
} from './data-commands.js';

describe('paxkv txn / range output', () => {
  it("reads the client's txn JSON (the issue's transfer) and rejects a malformed one naming the field", () => {
    const t = parseTxnJson(
      '{"compare":[{"key":"{acct}:a","target":"value","op":"=","value":"100"}],"success":[{"put":{"key":"{acct}:a","value":"50"}},{"put":{"key":"{acct}:b","value":"50"}}],"failure":[{"get":{"key":"{acct}:a"}}]}',
    );
    expect(t.success).toHaveLength(2);
    expect(parseTxnJson('{"success":[{"get":{"key":"k"}}]}').compare).toEqual([]);
    expect(() => parseTxnJson('{"compare":[{"key":"k","target":"version","op":"=","value":-1}]}')).toThrow(
      /compare\.0\.value/,
    );
    expect(() => parseTxnJson('{')).toThrow();
  });
  it('prints a range as a table or JSON, with where to continue', () => {
    const page = {
      kvs: [{ key: 'a', value: 'x', createRevision: 1, modRevision: 2, version: 2 }],
      more: true,
      next: { start: 'a\u0000', end: undefined },
      revisions: [{ partition: 0, revision: 2 }],
    };
    const o = rangeOutcome(page, false);
    expect(o.stdout).toMatch(/KEY\s+VALUE\s+MOD\s+VERSION\na\s+x\s+2\s+2\n\(more keys: continue from/);
    expect(o.json).toMatchObject({ kvs: [{ key: 'a', value: 'x', modRevision: 2 }], more: true });
  });
  it('exits 1 when the compares failed', () => {
    const failed = txnOutcome({
      succeeded: false,
      results: [{ op: 'get', key: 'k', value: null, createRevision: 0, modRevision: 0, version: 0 }],
      revision: 4,
      partition: 1,
    });
    expect(failed.exitCode).toBe(1);
    expect(failed.stdout).toMatch(/^FAILED at revision 4 of partition 1\nget k = \(absent\)/);
  });
});

describe('revision cas and the prompt data commands', () => {
  /** A fake cluster of one partition: keys with revisions, as the state machine numbers them. */
  function fakeClient() {
    let rev = 0;
    const data = new Map<
      string,
      { value: string; createRevision: number; modRevision: number; version: number }
    >();
    const meta = (k: string) => {
      const e = data.get(k);
      return e
        ? { createRevision: e.createRevision, modRevision: e.modRevision, version: e.version }
        : { createRevision: 0, modRevision: 0, version: 0 };
    };
    /** Writes `k` at revision `at` (a transaction writes all its keys at one revision). */
    const write = (k: string, value: string, at = rev + 1) => {
      const e = data.get(k);
      rev = at;
      data.set(k, {
        value,
        createRevision: e?.createRevision ?? at,
        modRevision: at,
        version: (e?.version ?? 0) + 1,
      });
    };
    const client: DataClientPort = {
      range: async (start, end, o = {}) => {
        const keys = [...data.keys()].filter((k) => k >= start && (end === undefined || k < end)).sort();
        if (o.reverse) keys.reverse();
        const page = keys.slice(0, o.limit ?? keys.length);
        return {
          kvs: page.map((key) => ({
            key,
            ...(o.keysOnly ? {} : { value: data.get(key)!.value }),
            ...meta(key),
          })),
          more: page.length < keys.length,
          revisions: [{ partition: 0, revision: rev }],
        };
      },
      txn: async (request) => {
        const ok = (request.compare ?? []).every(
          (c) => c.target === 'modRevision' && meta(c.key).modRevision === c.value,
        );
        const results = [];
        const at = rev + 1;
        for (const r of (ok ? request.success : request.failure) ?? []) {
          if ('put' in r) {
            const created = !data.has(r.put.key);
            write(r.put.key, String(r.put.value), at);
            results.push({ op: 'put' as const, key: r.put.key, created, ...meta(r.put.key) });
          }
        }
        return { succeeded: ok, results, revision: rev, partition: 0 };
      },
      cas: async (key, expected, value) => {
        const m = meta(key);
        const want = expected as { modRevision?: number; version?: number };
        const applies =
          want.modRevision !== undefined ? m.modRevision === want.modRevision : m.version === want.version;
        if (applies) write(key, value);
        return {
          outcome: applies ? 'applied' : data.has(key) ? 'mismatch' : 'not-found',
          current: data.get(key)?.value ?? null,
          ...meta(key),
          revision: rev,
          partition: 0,
        };
      },
    };
    return { client, data };
  }

  it('cas --mod-revision / --version applies only at that revision, and says where the key is otherwise', async () => {
    const { client } = fakeClient();
    const created = await runPromptDataLine('cas {a}k v1 --version 0', client);
    expect(created?.exitCode).toBe(0);
    expect(created?.stdout).toBe('OK (applied: mod 1, version 1)');
    const stale = await runPromptDataLine('cas {a}k v2 --mod-revision 7', client);
    expect(stale?.exitCode).toBe(1);
    expect(stale?.stderr).toBe('not applied: {a}k is at mod 1, version 1 (expected modRevision 7)');
    expect((await runPromptDataLine('cas {a}k v2 --mod-revision 1', client))?.exitCode).toBe(0);
    expect(await runPromptDataLine('cas {a}k old new', client)).toBeUndefined(); // a value cas: the prompt's own
    await expect(runPromptDataLine('cas {a}k v --mod-revision -1', client)).rejects.toThrow(
      /non-negative integer/,
    );
    await expect(runPromptDataLine('cas {a}k v --mod-revision 1 --version 1', client)).rejects.toThrow(
      /usage/,
    );
    expect(parseRevisionFlag('--version', '12')).toBe(12);
  });

  it('range and txn at the prompt: a transfer guarded by modRevisions, then a listing', async () => {
    const { client } = fakeClient();
    await runPromptDataLine('cas {acct}:a 100 --version 0', client);
    await runPromptDataLine('cas {acct}:b 100 --version 0', client);
    const t = await runPromptDataLine(
      'txn {"compare":[{"key":"{acct}:a","target":"modRevision","op":"=","value":1}],"success":[{"put":{"key":"{acct}:a","value":"70"}},{"put":{"key":"{acct}:b","value":"130"}}]}',
      client,
    );
    expect(t?.exitCode).toBe(0);
    expect(t?.stdout).toMatch(/^SUCCEEDED at revision 3/);
    const r = await runPromptDataLine('range {acct}: {acct}; --limit 5', client);
    expect(r?.stdout).toMatch(/\{acct\}:a\s+70\s+3\s+2\n\{acct\}:b\s+130\s+3\s+2/);
    const rev = await runPromptDataLine('range "{acct}:" --keys-only --reverse --limit 1', client);
    expect(rev?.stdout).toMatch(/^KEY\s+MOD\s+VERSION\n\{acct\}:b\s+3\s+2\n\(more keys/);
    await expect(runPromptDataLine('txn {"compare":5}', client)).rejects.toThrow(/^txn:/);
    await expect(runPromptDataLine('range', client)).rejects.toThrow(/usage: range/);
    expect(await runPromptDataLine('get k', client)).toBeUndefined();
  });

  it('casRevisionOutcome reports an absent key', () => {
    const o = casRevisionOutcome(
      'k',
      { modRevision: 3 },
      {
        outcome: 'not-found',
        current: null,
        createRevision: 0,
        modRevision: 0,
        version: 0,
        revision: 9,
        partition: 0,
      },
    );
    expect(o.exitCode).toBe(1);
    expect(o.stderr).toBe('not applied: k does not exist (expected modRevision 3)');
    expect(o.json).toMatchObject({ outcome: 'not-found', revision: 9 });
  });
});
