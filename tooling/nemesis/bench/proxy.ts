/**
 * Cost of the fault proxy on loopback: frames/s of a pipelined echo stream and the round-trip latency of
 * single frames, direct vs through a pass-through FaultProxy. Run: `pnpm --filter @paxkv/nemesis bench`.
 */
import { connect, createServer, type Socket } from 'node:net';
import { encodeFrame, FaultProxy, FrameSplitter } from '../src/index.js';

const FRAMES = 200_000;
const WINDOW = 256;
const PINGS = 5_000;
const payload = encodeFrame(Buffer.alloc(200, 7));

async function echoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const socks: Socket[] = [];
  const server = createServer((s) => {
    socks.push(s);
    s.setNoDelay(true);
    s.pipe(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address();
  const port = typeof a === 'object' && a !== null ? a.port : 0;
  return {
    port,
    close: () =>
      new Promise((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}

async function open(port: number): Promise<{ socket: Socket; onFrames: (cb: (n: number) => void) => void }> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const split = new FrameSplitter();
  let cb: (n: number) => void = () => {};
  socket.on('data', (c: Buffer) => {
    const f = split.push(c);
    if (f !== 'oversized' && f.length > 0) cb(f.length);
  });
  return {
    socket,
    onFrames: (f) => {
      cb = f;
    },
  };
}

async function throughput(port: number): Promise<number> {
  const { socket, onFrames } = await open(port);
  let sent = 0;
  let got = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (sent < FRAMES && sent - got < WINDOW) {
        socket.write(payload);
        sent++;
      }
    };
    onFrames((n) => {
      got += n;
      if (got >= FRAMES) resolve();
      else pump();
    });
    pump();
  });
  const s = (performance.now() - t0) / 1000;
  socket.destroy();
  return FRAMES / s;
}

async function latency(port: number): Promise<{ p50: number; p99: number }> {
  const { socket, onFrames } = await open(port);
  const samples: number[] = [];
  for (let i = 0; i < PINGS; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      onFrames(() => resolve());
      socket.write(payload);
    });
    samples.push((performance.now() - t0) * 1000);
  }
  socket.destroy();
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(PINGS * 0.5)] ?? 0, p99: samples[Math.floor(PINGS * 0.99)] ?? 0 };
}

const echo = await echoServer();
const proxy = new FaultProxy();
const address = await proxy.addTarget(1, `127.0.0.1:${echo.port}`);
const proxyPort = Number(address.split(':')[1]);
const direct = await throughput(echo.port);
const viaProxy = await throughput(proxyPort);
const dl = await latency(echo.port);
const pl = await latency(proxyPort);
console.log(`frames of ${payload.length} B, window ${WINDOW}, ${FRAMES} frames echoed`);
console.log(
  `direct:      ${Math.round(direct).toLocaleString('en-US')} frames/s   round trip p50 ${dl.p50.toFixed(0)} µs  p99 ${dl.p99.toFixed(0)} µs`,
);
console.log(
  `via proxy:   ${Math.round(viaProxy).toLocaleString('en-US')} frames/s   round trip p50 ${pl.p50.toFixed(0)} µs  p99 ${pl.p99.toFixed(0)} µs`,
);
await proxy.close();
await echo.close();
