import { describe, expect, it } from 'vitest';
import { countOutcomes, MemoryHistory, mergeHistories, pairOperations, toJsonl } from './history.js';

const line = (o: Record<string, unknown>) => JSON.stringify(o);

describe('history merge', () => {
  it('renumbers processes and ids per client so the union stays unique, and pairs completions', () => {
    const a = new MemoryHistory();
    const b = new MemoryHistory();
    a.write(`${line({ paxkvHistory: 1, model: 'kv' })}\n`);
    a.write(
      `${line({ type: 'invoke', process: 0, id: 1, time: 10, op: { f: 'put', key: 'k', value: 'a' } })}\n`,
    );
    a.write(`${line({ type: 'ok', process: 0, id: 1, time: 20, result: { created: true } })}\n`);
    b.write(`${line({ type: 'invoke', process: 0, id: 1, time: 15, op: { f: 'get', key: 'k' } })}\n`);
    b.write(`${line({ type: 'invoke', process: 1, id: 2, time: 16, op: { f: 'delete', key: 'k' } })}\n`);
    b.write(`${line({ type: 'info', process: 1, id: 2, time: 30, error: 'timeout' })}\n`);
    b.write('not json\n');
    const m = mergeHistories([a.lines, b.lines]);
    expect(m.skipped).toBe(1);
    expect(new Set(m.events.map((e) => `${e.process}`)).size).toBe(3);
    expect(new Set(m.events.filter((e) => e.type === 'invoke').map((e) => e.id)).size).toBe(3);
    expect([...m.clientOfId.values()]).toEqual([0, 1, 1]);
    const ops = pairOperations(m.events);
    expect(ops.map((o) => [o.op.f, o.status, o.returnTime])).toEqual([
      ['put', 'ok', 20],
      ['get', 'info', undefined],
      ['delete', 'info', undefined],
    ]);
    expect(countOutcomes(ops)).toEqual({ ok: 1, fail: 0, info: 2 });
    const text = toJsonl(m.events);
    expect(text.split('\n')[0]).toBe('{"paxkvHistory":1,"model":"kv"}');
    expect(text.trim().split('\n')).toHaveLength(1 + m.events.length);
  });
});
