import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ChangeEvent, WatchHub } from './watch-hub.js';

function apply(hub: WatchHub, revision: number, ...keys: string[]): void {
  for (const key of keys) hub.record({ type: 'put', key, value: `v${revision}`, revision });
  hub.endEntry();
}

describe('WatchHub', () => {
  it('streams matching changes of a key or a prefix in revision order', () => {
    const hub = new WatchHub(0);
    const seenKey: ChangeEvent[] = [];
    const seenPrefix: ChangeEvent[] = [];
    hub.watch({ key: 'a' }, 1, (es) => seenKey.push(...es));
    hub.watch({ prefix: 'b/' }, 1, (es) => seenPrefix.push(...es));
    apply(hub, 1, 'a');
    apply(hub, 2, 'b/1', 'b/2', 'c');
    hub.record({ type: 'delete', key: 'a', revision: 3 });
    hub.endEntry();
    expect(seenKey.map((e) => [e.type, e.revision])).toEqual([
      ['put', 1],
      ['delete', 3],
    ]);
    expect(seenPrefix.map((e) => e.key)).toEqual(['b/1', 'b/2']);
  });

  it('replays history from a past revision, then goes live without gap or duplicate', () => {
    const hub = new WatchHub(0);
    for (let r = 1; r <= 5; r++) apply(hub, r, 'k');
    const seen: number[] = [];
    const h = hub.watch({ key: 'k' }, 3, (es) => seen.push(...es.map((e) => e.revision)));
    if ('replay' in h) h.replay();
    apply(hub, 6, 'k');
    if ('cancel' in h) h.cancel();
    apply(hub, 7, 'k');
    expect(seen).toEqual([3, 4, 5, 6]);
  });

  it('refuses a revision older than its history with the first one still available', () => {
    const hub = new WatchHub(10, { historyEvents: 3 });
    expect(hub.watch({ key: 'k' }, 10, () => {})).toEqual({ reason: 'compacted', compactRevision: 11 });
    for (let r = 11; r <= 15; r++) apply(hub, r, 'k');
    // 13, 14, 15 are kept
    expect(hub.oldestRevision).toBe(13);
    expect(hub.watch({ key: 'k' }, 12, () => {})).toEqual({ reason: 'compacted', compactRevision: 13 });
    const seen: number[] = [];
    const h = hub.watch({ key: 'k' }, 13, (es) => seen.push(...es.map((e) => e.revision)));
    expect(seen).toEqual([]);
    if ('replay' in h) h.replay();
    expect(seen).toEqual([13, 14, 15]);
  });

  it('never starts a watch inside a revision whose events were partly dropped', () => {
    const hub = new WatchHub(0, { historyEvents: 3 });
    apply(hub, 1, 'a', 'b', 'c');
    apply(hub, 2, 'd'); // drops revision 1's first event
    expect(hub.oldestRevision).toBe(2);
  });

  it('restarts history after a snapshot install and bounds its watchers', () => {
    const hub = new WatchHub(0, { maxWatchers: 1 });
    apply(hub, 1, 'a');
    hub.reset(100);
    expect(hub.watch({ key: 'a' }, 50, () => {})).toEqual({ reason: 'compacted', compactRevision: 101 });
    expect('cancel' in (hub.watch({ key: 'a' }, 101, () => {}) as object)).toBe(true);
    expect(hub.watch({ key: 'a' }, 101, () => {})).toEqual({ reason: 'too-many-watchers', limit: 1 });
  });

  it('delivers through its key/prefix index exactly what filtering every watcher would (property)', () => {
    const keyArb = fc.constantFrom('a', 'ab', 'abc', 'b', 'b/1', 'b/2', '');
    fc.assert(
      fc.property(
        fc.array(fc.record({ key: fc.boolean(), on: keyArb, from: fc.integer({ min: 1, max: 6 }) }), {
          maxLength: 12,
        }),
        fc.array(
          fc.array(
            keyArb.filter((k) => k !== ''),
            { minLength: 1, maxLength: 4 },
          ),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
        fc.array(fc.integer({ min: 0, max: 11 }), { maxLength: 3 }),
        (specs, entries, cancelAfterFirst) => {
          const hub = new WatchHub(0);
          const got = specs.map(() => [] as string[]);
          const handles = specs.map((spec, i) =>
            hub.watch(spec.key ? { key: spec.on } : { prefix: spec.on }, spec.from, (es) => {
              got[i]?.push(...es.map((e) => `${e.revision}:${e.key}`));
            }),
          );
          entries.forEach((keys, r) => {
            apply(hub, r + 1, ...keys);
            if (r === 0)
              for (const c of cancelAfterFirst) {
                const h = handles[c];
                if (h && 'cancel' in h) h.cancel();
              }
          });
          specs.forEach((spec, i) => {
            const cancelled = cancelAfterFirst.includes(i);
            const expected = entries
              .flatMap((keys, r) => keys.map((key) => ({ key, revision: r + 1 })))
              .filter((e) => (cancelled ? e.revision === 1 : true))
              .filter(
                (e) => e.revision >= spec.from && (spec.key ? e.key === spec.on : e.key.startsWith(spec.on)),
              )
              .map((e) => `${e.revision}:${e.key}`);
            expect(got[i]).toEqual(expected);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a sink that cancels another watcher stops its delivery at once', () => {
    const hub = new WatchHub(0);
    const seen: string[] = [];
    const handles: { cancel(): void }[] = [];
    // Each cancels the other: whichever is served first, the other gets nothing.
    const a = hub.watch({ key: 'k' }, 1, (es) => {
      seen.push(...es.map((e) => `a:${e.key}`));
      handles[1]?.cancel();
    });
    const b = hub.watch({ prefix: '' }, 1, (es) => {
      seen.push(...es.map((e) => `b:${e.key}`));
      handles[0]?.cancel();
    });
    if ('cancel' in a && 'cancel' in b) handles.push(a, b);
    apply(hub, 1, 'k');
    expect(seen).toHaveLength(1);
    expect(hub.watcherCount).toBe(1);
  });
});
