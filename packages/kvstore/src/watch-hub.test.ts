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
});
