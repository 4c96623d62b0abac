// The custom-model example of the README, verbatim (imports aside): it must type-check and hold.
import { expect, it } from 'vitest';
import { buildHistory, checkSync, defineModel } from '../src/index.js';

it('README example: a custom counter model', () => {
  // A counter: add(n) → {}, get() → { value }.
  type In = { op: 'add'; n: number } | { op: 'get' };
  const counter = defineModel<number, In, { value?: number }>({
    name: 'counter',
    init: () => 0,
    step: (s, i, o) =>
      i.op === 'add' ? { ok: true, state: s + i.n } : o?.value === s ? { ok: true, state: s } : { ok: false },
    readOnly: (i) => i.op === 'get', // lets the checker drop timed-out reads and prune the search
  });
  const history = buildHistory([
    { process: 1, call: 0, ret: 5, input: { op: 'add', n: 2 }, output: {} },
    { process: 2, call: 1, ret: 3, input: { op: 'get' }, output: { value: 2 } },
    { process: 3, call: 2, input: { op: 'add', n: 1 } }, // no `ret`: timed out, may or may not have happened
  ]);
  expect(checkSync(history, { model: counter }).verdict).toBe('linearizable');
});
