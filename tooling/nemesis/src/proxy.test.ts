import { connect, createServer, type Server, type Socket } from 'node:net';
import { pack, unpack } from 'msgpackr';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeFrame, FrameSplitter } from './frames.js';
import { FaultProxy, parseHostPort } from './proxy.js';

/** A plain framed TCP server that records what each connection sent and can answer. */
class FrameSink {
  readonly server: Server;
  readonly received: unknown[][] = [];
  readonly sockets: Socket[] = [];
  port = 0;

  constructor() {
    this.server = createServer((s) => {
      const idx = this.received.length;
      this.received.push([]);
      this.sockets.push(s);
      const split = new FrameSplitter();
      s.on('error', () => {});
      s.on('data', (chunk: Buffer) => {
        const frames = split.push(chunk);
        if (frames === 'oversized') return;
        for (const f of frames) {
          const msg = unpackFrame(f);
          this.received[idx]?.push(msg);
          if (typeof msg === 'object' && msg !== null && (msg as { type?: string }).type === 'echo')
            s.write(f);
        }
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    const a = this.server.address();
    if (a === null || typeof a === 'string') throw new Error('no address');
    this.port = a.port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function unpackFrame(f: Buffer): unknown {
  return unpack(f.subarray(4));
}

/** A framed client socket with a queue of received messages. */
class Peer {
  readonly got: unknown[] = [];
  closed = false;
  private readonly split = new FrameSplitter();
  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      const frames = this.split.push(chunk);
      if (frames === 'oversized') return;
      for (const f of frames) this.got.push(unpackFrame(f));
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static async open(address: string): Promise<Peer> {
    const { host, port } = parseHostPort(address);
    const socket = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return new Peer(socket);
  }

  send(msg: unknown): void {
    if (!this.closed) this.socket.write(encodeFrame(pack(msg)));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Polls `cond` until it holds; `ms` is a guard for a loaded machine, not a wait. */
async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('FaultProxy on loopback', () => {
  let sink: FrameSink;
  let proxy: FaultProxy;
  let address: string;
  const peers: Peer[] = [];

  beforeEach(async () => {
    sink = new FrameSink();
    await sink.start();
    // A connection is classified by its first frame; the timeout only ends a silent one. Well above
    // an event-loop stall on a loaded machine, or a peer's hello could lose the race against it.
    proxy = new FaultProxy({ seed: 7, identifyTimeoutMs: 2000 });
    address = await proxy.addTarget(1, `127.0.0.1:${sink.port}`);
  });

  afterEach(async () => {
    for (const p of peers.splice(0)) p.close();
    await proxy.close();
    await sink.stop();
  });

  const open = async (): Promise<Peer> => {
    const p = await Peer.open(address);
    peers.push(p);
    return p;
  };

  it('forwards client traffic both ways and classifies it as a client', async () => {
    const c = await open();
    c.send({ type: 'echo', n: 1 });
    c.send({ type: 'echo', n: 2 });
    await until(() => c.got.length === 2);
    expect(c.got).toEqual([
      { type: 'echo', n: 1 },
      { type: 'echo', n: 2 },
    ]);
    expect(proxy.connections()).toEqual([{ id: 1, from: 'client', to: 1 }]);
  });

  it('learns the source of a peer connection from peer.hello', async () => {
    const p = await open();
    p.send({ type: 'peer.hello', from: 2 });
    p.send({ type: 'echo', n: 1 });
    await until(() => p.got.length === 1);
    expect(proxy.connections()[0]?.from).toBe(2);
    expect(proxy.stats.peerConnections).toBe(1);
    expect(sink.received[0]).toEqual([
      { type: 'peer.hello', from: 2 },
      { type: 'echo', n: 1 },
    ]);
  });

  it('a blackhole stops bytes without a reset, holds a close, and delivers both in order when lifted', async () => {
    const p = await open();
    p.send({ type: 'peer.hello', from: 2 });
    p.send({ type: 'echo', n: 1 });
    await until(() => p.got.length === 1);
    proxy.setRuleBoth(2, 1, { kind: 'blackhole' });
    p.send({ type: 'echo', n: 2 });
    p.send({ type: 'echo', n: 3 });
    await until(() => proxy.stats.framesHeld === 2);
    // Nothing crossed either way, and nobody saw the connection close.
    expect(sink.received[0]).toEqual([
      { type: 'peer.hello', from: 2 },
      { type: 'echo', n: 1 },
    ]);
    expect(p.got).toEqual([{ type: 'echo', n: 1 }]);
    expect(p.closed).toBe(false);
    expect(proxy.stats.framesHeld).toBe(2);
    // The server side closes meanwhile (say, its liveness check gave up): the close is held too.
    sink.sockets[0]?.destroy();
    await sleep(100);
    expect(p.closed).toBe(false);
    expect(proxy.connections()).toHaveLength(1);
    // Lifted: the held frames arrive in order (the server side is gone, so only the client sees the close).
    proxy.heal();
    await until(() => p.closed);
    await until(() => proxy.connections().length === 0);
  });

  it('a lifted blackhole delivers the held frames in order and keeps the connection', async () => {
    const p = await open();
    p.send({ type: 'peer.hello', from: 2 });
    await until(() => proxy.connections()[0]?.from === 2);
    proxy.setRule(2, 1, { kind: 'blackhole' });
    for (let n = 1; n <= 5; n++) p.send({ type: 'echo', n });
    await until(() => proxy.stats.framesHeld === 5);
    expect(p.got).toEqual([]);
    proxy.setRule(2, 1, { kind: 'pass' });
    p.send({ type: 'echo', n: 6 });
    await until(() => p.got.length === 6);
    expect(p.got).toEqual([1, 2, 3, 4, 5, 6].map((n) => ({ type: 'echo', n })));
    expect(p.closed).toBe(false);
  });

  it('a cut closes existing connections of that link and refuses new ones, other links pass', async () => {
    const p2 = await open();
    p2.send({ type: 'peer.hello', from: 2 });
    const p3 = await open();
    p3.send({ type: 'peer.hello', from: 3 });
    await until(
      () => proxy.connections().every((c) => c.from !== undefined) && proxy.connections().length === 2,
    );
    proxy.setRule(2, 1, { kind: 'cut', mode: 'refuse' });
    await until(() => p2.closed);
    p3.send({ type: 'echo', n: 3 });
    await until(() => p3.got.length === 1);
    const again = await open();
    again.send({ type: 'peer.hello', from: 2 });
    again.send({ type: 'echo', n: 4 });
    await until(() => again.closed);
    expect(again.got).toEqual([]);
    // Healing lets node 2 in again.
    proxy.heal();
    const healed = await open();
    healed.send({ type: 'peer.hello', from: 2 });
    healed.send({ type: 'echo', n: 5 });
    await until(() => healed.got.length === 1);
    expect(proxy.stats.closedByRule).toBe(2);
  });

  it('cuts one direction only: the reverse direction of a connection breaks its session when used', async () => {
    const p = await open();
    p.send({ type: 'peer.hello', from: 2 });
    await until(() => proxy.connections()[0]?.from === 2);
    proxy.setRule(1, 2, { kind: 'cut', mode: 'refuse' });
    // 2 -> 1 still passes on this connection.
    p.send({ type: 'note', n: 1 });
    await until(() => (sink.received[0]?.length ?? 0) === 2);
    expect(p.closed).toBe(false);
    // A frame 1 -> 2 (the echo) breaks the session instead of being delivered.
    p.send({ type: 'echo', n: 2 });
    await until(() => p.closed);
    expect(p.got).toEqual([]);
  });

  it('a blackhole swallows frames silently and closes the connection when lifted', async () => {
    const p = await open();
    p.send({ type: 'peer.hello', from: 2 });
    await until(() => proxy.connections()[0]?.from === 2);
    proxy.setRule(2, 1, { kind: 'cut', mode: 'blackhole' });
    p.send({ type: 'echo', n: 1 });
    await until(() => proxy.stats.framesDropped === 1);
    expect(p.closed).toBe(false);
    expect(sink.received[0]).toEqual([{ type: 'peer.hello', from: 2 }]);
    proxy.heal();
    await until(() => p.closed);
    expect(proxy.stats.framesDropped).toBe(1);
  });

  it('delays frames by at least the configured time and keeps their order', async () => {
    proxy.setRule('client', 1, { kind: 'delay', ms: 80, jitterMs: 40 });
    const c = await open();
    const start = Date.now();
    for (let n = 0; n < 20; n++) c.send({ type: 'echo', n });
    await until(() => c.got.length === 20);
    expect(Date.now() - start).toBeGreaterThanOrEqual(80);
    expect(c.got.map((m) => (m as { n: number }).n)).toEqual([...Array(20).keys()]);
  });

  it('drop-then-close with probability 1 closes the connection on the first frame of that direction', async () => {
    proxy.setRule('client', 1, { kind: 'drop-then-close', probability: 1 });
    const c = await open();
    c.send({ type: 'echo', n: 1 });
    await until(() => c.closed);
    expect(c.got).toEqual([]);
    expect(proxy.stats.framesDropped).toBe(1);
  });

  it('closes a connection whose upstream target is down', async () => {
    await sink.stop();
    const c = await open();
    await until(() => c.closed);
    sink = new FrameSink();
    await sink.start();
  });

  it('rebinds a listener to the node id learned after start-up', async () => {
    const p = await open();
    p.send({ type: 'peer.hello', from: 2 });
    await until(() => proxy.connections()[0]?.from === 2);
    proxy.rebindTarget(1, 9);
    expect(proxy.connections()[0]?.to).toBe(9);
    expect(proxy.addressOf(9)).toBe(address);
    proxy.setRule(2, 9, { kind: 'cut', mode: 'refuse' });
    await until(() => p.closed);
    expect(() => proxy.rebindTarget(1, 3)).toThrow(/addTarget/);
  });

  it('rejects invalid rules and addresses with typed errors', () => {
    expect(() => proxy.setRule(1, 2, { kind: 'delay', ms: -1, jitterMs: 0 })).toThrow(/delay needs/);
    expect(() => proxy.setRule(1, 2, { kind: 'drop-then-close', probability: 2 })).toThrow(/probability/);
    expect(() => parseHostPort('nope')).toThrow(/host:port/);
    expect(parseHostPort('[::1]:80')).toEqual({ host: '::1', port: 80 });
  });
});
