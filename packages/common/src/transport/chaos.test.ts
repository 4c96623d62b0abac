// Transport under a fault-injecting TCP proxy: bytes are re-chunked at random boundaries, delayed,
// and connections are cut at random moments. Each TCP session must deliver a gap-free, in-order,
// uncorrupted prefix of what was sent on it, and the client must keep reconnecting.
// Default run ~2 s; PAXKV_SOAK=1 runs 30 s.
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { PaxkvError } from '../errors.js';
import { ReconnectingConnection } from './reconnecting-connection.js';
import { TransportServer } from './server.js';

const SOAK = process.env.PAXKV_SOAK === '1';
const DURATION_MS = SOAK ? 30_000 : 1_500;

/** mulberry32: a small seeded PRNG so a failing seed can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function checksum(bytes: Uint8Array): number {
  let h = 0;
  for (const b of bytes) h = (Math.imul(h, 31) + b) >>> 0;
  return h;
}

/** A proxy that re-chunks and delays bytes and cuts connections with probability `cutRate` per chunk. */
function chaosProxy(targetPort: number, random: () => number, cutRate: number) {
  const sockets = new Set<Socket>();
  let cuts = 0;
  const server: Server = createServer((down) => {
    const up = netConnect({ host: '127.0.0.1', port: targetPort });
    sockets.add(down).add(up);
    let dead = false; // after a cut nothing more may be forwarded: that would be a gap, not a cut
    // Every connection is also cut after a random lifetime, inside the next chunk (or at once if idle).
    let cutDue = false;
    const lifetime = setTimeout(
      () => {
        cutDue = true;
        setTimeout(() => {
          if (!dead) {
            cuts++;
            kill();
          }
        }, 100).unref();
      },
      50 + random() * 400,
    );
    lifetime.unref();
    const kill = () => {
      clearTimeout(lifetime);
      dead = true;
      down.destroy();
      up.destroy();
    };
    for (const s of [down, up]) {
      s.on('error', kill);
      s.on('close', () => {
        sockets.delete(s);
        kill();
      });
    }
    const pipe = (src: Socket, dst: Socket) => {
      // Ordered forwarding through an explicit queue; a `pause` step yields to the event loop so that
      // the pieces around it reach the receiver as separate reads.
      type Step = { readonly piece: Uint8Array; readonly pause: boolean; readonly cut: boolean };
      const queue: Step[] = [];
      let pumping = false;
      const pump = (): void => {
        pumping = true;
        for (;;) {
          const step = queue.shift();
          if (!step) break;
          if (dst.destroyed) {
            kill();
            break;
          }
          if (step.cut) {
            dst.write(step.piece, kill);
            queue.length = 0;
            break;
          }
          dst.write(step.piece);
          if (step.pause) {
            setImmediate(pump);
            return;
          }
        }
        pumping = false;
        if (src.isPaused()) src.resume();
      };
      src.on('data', (chunk: Buffer) => {
        if (dead) return;
        if (cutDue || random() < cutRate) {
          cuts++;
          dead = true;
          // Forward a random prefix first, so that cuts land inside frames too.
          queue.push({
            piece: chunk.subarray(0, Math.floor(random() * chunk.length)),
            pause: false,
            cut: true,
          });
        } else {
          let at = 0;
          while (at < chunk.length) {
            const n = 1 + Math.floor(random() * Math.min(chunk.length - at, 300));
            queue.push({ piece: chunk.subarray(at, at + n), pause: random() < 0.005, cut: false });
            at += n;
          }
        }
        if (queue.length > 1_000) src.pause(); // the proxy is slow too: pass backpressure on
        if (!pumping) pump();
      });
    };
    pipe(down, up);
    pipe(up, down);
  });
  return {
    server,
    get cuts() {
      return cuts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('transport through a chaos proxy', () => {
  it.each(SOAK ? [1, 2, 3, 4, 5] : [1, 2])(
    'seed %i: every session delivers an in-order, gap-free, intact prefix; the client keeps reconnecting',
    async (seed) => {
      const random = rng(seed);
      const target = new TransportServer({ maxFrameBytes: 64 * 1024 });
      cleanups.push(() => target.close());
      const sessions = new Map<number, number>(); // session -> next expected seq
      const violations: string[] = [];
      const errors: string[] = [];
      let delivered = 0;
      target.on('connection', (conn) => {
        let session: number | undefined;
        conn.on('protocolError', (e: PaxkvError) => errors.push(e.code));
        conn.on('message', (raw) => {
          const m = raw as { session: number; seq: number; payload: Uint8Array; sum: number };
          session ??= m.session;
          if (m.session !== session)
            violations.push(`session changed on one connection: ${session} -> ${m.session}`);
          const expected = sessions.get(m.session) ?? 0;
          if (m.seq !== expected)
            violations.push(`session ${m.session}: got seq ${m.seq}, expected ${expected}`);
          if (checksum(m.payload) !== m.sum)
            violations.push(`session ${m.session} seq ${m.seq}: corrupted payload`);
          sessions.set(m.session, m.seq + 1);
          delivered++;
        });
      });
      const { port } = await target.listen('127.0.0.1:0');
      const proxy = chaosProxy(port, random, 0.02);
      cleanups.push(() => proxy.close());
      await new Promise<void>((r) => proxy.server.listen(0, '127.0.0.1', r));
      const proxyPort = (proxy.server.address() as { port: number }).port;

      const client = new ReconnectingConnection(`127.0.0.1:${proxyPort}`, {
        highWaterMark: 256 * 1024,
        backoff: { initialDelayMs: 1, maxDelayMs: 20 },
        random,
      });
      cleanups.push(() => client.close());
      let session = 0;
      let seq = 0;
      let connects = 0;
      client.on('connect', () => {
        connects++;
        session++;
        seq = 0;
      });
      const end = Date.now() + DURATION_MS;
      while (Date.now() < end) {
        if (!client.connected) {
          await new Promise((r) => setTimeout(r, 2));
          continue;
        }
        for (let i = 0; i < 50 && client.connected; i++) {
          const payload = new Uint8Array(Math.floor(random() * 2_000));
          for (let j = 0; j < payload.length; j += 97) payload[j] = Math.floor(random() * 256);
          if (!client.send({ session, seq, payload, sum: checksum(payload) })) break;
          seq++;
        }
        await new Promise((r) => setImmediate(r));
      }
      expect(violations).toEqual([]);
      expect(errors.filter((c) => c !== 'TRUNCATED_FRAME')).toEqual([]); // cuts only ever truncate
      expect(delivered).toBeGreaterThan(100);
      expect(proxy.cuts).toBeGreaterThan(0);
      expect(connects).toBeGreaterThan(1);
    },
    DURATION_MS + 20_000,
  );
});
