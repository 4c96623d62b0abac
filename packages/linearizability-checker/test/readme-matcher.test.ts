// The matcher and online-checking examples of the README, verbatim (imports aside): they must
// type-check and hold.
import { expect, it } from 'vitest';
import { HistoryRecorder, OnlineChecker } from '../src/index.js';
import { type LinearizabilityMatchers, linearizabilityMatchers } from '../src/matchers.js';

declare module 'vitest' {
  // biome-ignore lint/suspicious/noExplicitAny: the shape vitest declares
  interface Assertion<T = any> extends LinearizabilityMatchers<T> {}
}

expect.extend(linearizabilityMatchers);

it('README example: toBeLinearizable on a recorded history', () => {
  let now = 0;
  const rec = new HistoryRecorder({ model: 'kv', clock: () => now++ });
  const w = rec.invoke('c1', { f: 'put', key: 'k', value: 'v1' });
  rec.ok(w, {});
  const r = rec.invoke('c2', { f: 'get', key: 'k' });
  rec.ok(r, { value: 'v1' });
  expect(rec).toBeLinearizable();

  const stale = rec.invoke('c3', { f: 'get', key: 'k' });
  rec.ok(stale, { value: null }); // the put finished before this get started
  expect(rec).not.toBeLinearizable();
});

it('README example: the failure message explains the violation', () => {
  let now = 0;
  const rec = new HistoryRecorder({ model: 'kv', clock: () => now++ });
  rec.ok(rec.invoke('c1', { f: 'put', key: 'k', value: 'v1' }), {});
  rec.ok(rec.invoke('c2', { f: 'get', key: 'k' }), { value: null });
  expect(() => expect(rec).toBeLinearizable()).toThrow(/not-linearizable[\s\S]*minimal failing sub-history/);
});

it('README example: online checking flags a violation before the run ends', () => {
  let now = 0;
  const seen: string[] = [];
  const online = new OnlineChecker({ firstCheckOps: 10, onViolation: (r) => seen.push(r.verdict) });
  const rec = new HistoryRecorder({ model: 'kv', clock: () => now++, sink: online.sink });
  for (let i = 0; i < 100; i++) {
    rec.ok(rec.invoke('w', { f: 'put', key: 'k', value: `v${i}` }), {});
    // a stale read at i = 50, while the run goes on
    rec.ok(rec.invoke('r', { f: 'get', key: 'k' }), { value: i === 50 ? 'v0' : `v${i}` });
    if (online.violation) break;
  }
  expect(seen).toEqual(['not-linearizable']);
  expect(now).toBeLessThan(400); // stopped well before the end of the run
});
