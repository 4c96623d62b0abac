import { describe, expect, it } from 'vitest';
import { parseTxnJson, rangeOutcome, txnOutcome } from './data-commands.js';

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
