/**
 * A paxos batch to one peer over the frame limit (every group's messages of one turn, some of them large
 * snapshots) is split into frames that fit, in order; a single message over the limit is dropped with a
 * warning instead of throwing out of the flush, which killed the server (found by
 * `pnpm bench:cluster --keys 1000000`: "uncaught exception: FrameTooLargeError ... PeerLinks.flushPaxos").
 */
import { FrameTooLargeError } from '@paxkv/common';
import { describe, expect, it } from 'vitest';
import type { ServerContext } from './context.js';
import { ServerMetrics } from './metrics.js';
import { PeerLinks, sendWithinFrameLimit } from './peers.js';

/** A link whose frames hold at most `max` bytes (each item counts its `bytes`). */
function link(max: number) {
  const frames: number[][] = [];
  const send = (items: readonly { id: number; bytes: number }[]) => {
    const size = items.reduce((a, b) => a + b.bytes, 0);
    if (size > max) throw new FrameTooLargeError({ size, maxBytes: max });
    frames.push(items.map((i) => i.id));
  };
  return { frames, send };
}

describe('paxos frames within the frame limit', () => {
  it('a batch that fits leaves as one frame', () => {
    const l = link(100);
    sendWithinFrameLimit(
      [1, 2, 3].map((id) => ({ id, bytes: 10 })),
      l.send,
      () => expect.fail('nothing to drop'),
    );
    expect(l.frames).toEqual([[1, 2, 3]]);
  });

  it('a batch over the limit is split into frames that fit, every message once, in order', () => {
    const l = link(100);
    const items = [30, 30, 90, 5, 5, 60, 60, 1].map((bytes, id) => ({ id, bytes }));
    sendWithinFrameLimit(items, l.send, () => expect.fail('nothing to drop'));
    expect(l.frames.flat()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(l.frames.length).toBeGreaterThan(1);
  });

  it('a single message over the limit is dropped and reported, the others still go', () => {
    const l = link(100);
    const dropped: number[] = [];
    sendWithinFrameLimit(
      [10, 500, 10].map((bytes, id) => ({ id, bytes })),
      l.send,
      (item, e) => {
        expect(e.maxBytes).toBe(100);
        dropped.push(item.id);
      },
    );
    expect(dropped).toEqual([1]);
    expect(l.frames.flat()).toEqual([0, 2]);
  });

  it('other errors are not swallowed', () => {
    expect(() =>
      sendWithinFrameLimit(
        [1],
        () => {
          throw new Error('boom');
        },
        () => {},
      ),
    ).toThrow('boom');
  });
});

describe('a paxos message no frame can carry', () => {
  it('is counted in paxkv_paxos_messages_unsendable_total and logged as an error naming the limit', async () => {
    const metrics = new ServerMetrics({ defaultMetrics: false });
    const errors: string[] = [];
    const log = {
      error: (_: object, msg: string) => errors.push(msg),
      warn: () => {},
      info: () => {},
      debug: () => {},
    };
    const ctx = {
      nodeId: 1,
      metrics,
      log,
      config: { maxFrameBytes: 1000 },
      stopping: false,
    } as unknown as ServerContext;
    const sent: unknown[] = [];
    class Links extends PeerLinks {
      override send(_node: number, message: unknown): void {
        const size = JSON.stringify(message).length;
        if (size > 1000) throw new FrameTooLargeError({ size, maxBytes: 1000 });
        sent.push(message);
      }
    }
    const links = new Links(ctx, {
      addressOf: () => undefined,
      onPeerConnected: () => {},
      onPeerDisconnected: () => {},
    });
    const snapshot = { type: 'Paxos', config: 0, msg: { type: 'AcceptSync', data: 'x'.repeat(5000) } };
    links.sendPaxos(2, 7, snapshot);
    links.sendPaxos(2, 8, { type: 'Paxos', config: 0, msg: { type: 'Decide' } });
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('AcceptSync of partition 7');
    expect(errors[0]).toContain('raise maxFrameBytes');
    expect(await metrics.registry.getSingleMetricAsString('paxkv_paxos_messages_unsendable_total')).toContain(
      'paxkv_paxos_messages_unsendable_total{reason="frame-too-large"} 1',
    );
  });
});
