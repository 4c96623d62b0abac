// Loopback transport benchmark: round-trip latency (one request in flight) and one-way throughput
// of ~200 B frames between a TransportServer and a ReconnectingConnection in the same process.
// Run: tsx --conditions=@paxkv/source bench/transport.ts
import { ReconnectingConnection, TransportServer } from '../src/index.js';
import { fmt, percentile } from './util.js';

const message = {
  type: 'kv',
  id: 0,
  op: { op: 'put', key: 'user:000123:profile', value: 'v'.repeat(74) },
  session: { client: 'client-7f3a9c', seq: 42 },
};

const server = new TransportServer();
let received = 0;
server.on('connection', (conn) => {
  conn.on('message', (m) => {
    received++;
    if ((m as { echo?: boolean }).echo) conn.send(m);
  });
});
const { port } = await server.listen('127.0.0.1:0');
const client = new ReconnectingConnection(`127.0.0.1:${port}`);
await client.waitConnected();

// Round trips.
const rounds = 20_000;
const lat: number[] = [];
await new Promise<void>((resolve) => {
  let i = 0;
  let t0 = 0n;
  const next = () => {
    t0 = process.hrtime.bigint();
    client.send({ ...message, id: i, echo: true });
  };
  client.on('message', () => {
    lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    if (++i === rounds) resolve();
    else next();
  });
  next();
});
lat.splice(0, 1000); // warm-up
lat.sort((a, b) => a - b);
console.log(
  `round trip (${fmt(lat.length)} sequential requests): p50 ${percentile(lat, 50).toFixed(1)} µs, ` +
    `p99 ${percentile(lat, 99).toFixed(1)} µs, p99.9 ${percentile(lat, 99.9).toFixed(1)} µs`,
);

// One-way throughput, respecting backpressure.
received = 0;
const total = 500_000;
const start = process.hrtime.bigint();
let sent = 0;
await new Promise<void>((resolve) => {
  const pump = () => {
    while (sent < total) {
      if (!client.send({ ...message, id: sent })) {
        client.once('drain', pump);
        return;
      }
      sent++;
    }
    resolve();
  };
  pump();
});
while (received < total) await new Promise((r) => setImmediate(r));
const secs = Number(process.hrtime.bigint() - start) / 1e9;
console.log(
  `one-way throughput: ${fmt(total / secs)} frames/s (${((total * 200) / secs / 1e6).toFixed(0)} MB/s of ~200 B frames)`,
);

client.close();
await server.close();
