import fc from 'fast-check';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameSplitter, peerHelloSource } from './frames.js';

describe('FrameSplitter', () => {
  it('yields the same frames whatever the chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(payloads.map((p) => encodeFrame(p)));
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const split = new FrameSplitter();
          const out: Buffer[] = [];
          let prev = 0;
          for (const p of [...points, stream.length]) {
            const r = split.push(stream.subarray(prev, p));
            if (r === 'oversized') throw new Error('unexpected oversized');
            out.push(...r);
            prev = p;
          }
          expect(out.map((f) => Buffer.from(f.subarray(4)))).toEqual(payloads.map((p) => Buffer.from(p)));
          expect(split.pendingBytes).toBe(0);
        },
      ),
    );
  });

  it('reports an oversized declared length before buffering it', () => {
    const split = new FrameSplitter(10);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(11);
    expect(split.push(head)).toBe('oversized');
  });
});

describe('peerHelloSource', () => {
  it('reads the source node of peer.hello and nothing else', () => {
    expect(peerHelloSource(encodeFrame(pack({ type: 'peer.hello', from: 3 })))).toBe(3);
    // A cluster with a token: the handshake's first message identifies the dialling node.
    expect(
      peerHelloSource(encodeFrame(pack({ type: 'auth.hello', v: 1, from: 2, nonce: Buffer.alloc(32) }))),
    ).toBe(2);
    expect(
      peerHelloSource(encodeFrame(pack({ type: 'auth.hello', v: 1, from: null, nonce: Buffer.alloc(32) }))),
    ).toBeUndefined();
    expect(peerHelloSource(encodeFrame(pack({ type: 'peer.hello', from: 0 })))).toBeUndefined();
    expect(peerHelloSource(encodeFrame(pack({ type: 'kv', id: 1 })))).toBeUndefined();
    expect(peerHelloSource(encodeFrame(pack(['peer.hello'])))).toBeUndefined();
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const r = peerHelloSource(encodeFrame(bytes));
        expect(r === undefined || typeof r === 'number').toBe(true);
      }),
    );
  });
});
