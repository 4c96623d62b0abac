// Bounded decoding: what the pre-scan (scanMsgpack) costs on legitimate messages, and how fast it
// refuses amplification frames, against msgpackr without limits.
// Run: tsx --conditions=@paxkv/source bench/bounded-decode.ts
import { Packr } from 'msgpackr';
import { createMsgpackCodec, scanMsgpack } from '../src/index.js';
import { arrayOf } from '../test/fixtures/msgpack-bombs.js';
import { fmt, opsPerSecond } from './util.js';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });
const bounded = createMsgpackCodec();
const unbounded = createMsgpackCodec({ limits: null });
console.log(`node ${process.version}, ${new Date().toISOString()}\n`);

// 1. Legitimate messages: decode with and without the pre-scan.
const accept = packr.pack({
  type: 'paxos',
  partition: 3,
  from: 2,
  msg: {
    type: 'Accept',
    n: { n: 5, pid: 2 },
    start: 100,
    decidedIndex: 90,
    entries: Array.from({ length: 1024 }, (_, i) => ({
      kind: 'kv',
      op: { op: 'put', key: `k${i}`, value: `v${i}` },
      session: { client: `c-${i % 7}`, seq: i },
    })),
  },
});
const put = packr.pack({
  type: 'kv',
  id: 123_456,
  op: { op: 'put', key: 'user:000123:profile', value: 'v'.repeat(74) },
  session: { client: 'client-7f3a9c', seq: 42 },
});
let sink = 0;
for (const [name, bytes, batch] of [
  ['kv put (~150 B)', put, 10_000],
  ['Accept of 1024 puts (~74 KB)', accept, 10],
] as const) {
  const b = opsPerSecond((n) => {
    for (let i = 0; i < n; i++) sink += bounded.decode(bytes).ok ? 1 : 0;
  }, batch);
  const u = opsPerSecond((n) => {
    for (let i = 0; i < n; i++) sink += unbounded.decode(bytes).ok ? 1 : 0;
  }, batch);
  console.log(
    `${name.padEnd(30)} bounded ${fmt(b.median).padStart(9)}/s  unbounded ${fmt(u.median).padStart(9)}/s  ratio ${(b.median / u.median).toFixed(2)}`,
  );
}

// 2. Amplification frames: time to refuse (bounded) vs time and heap to decode (unbounded).
const heap = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
for (const [name, element, count] of [
  ['16 MiB array of empty maps', [0x80], 16 * 1024 * 1024 - 5],
  ['16 MiB array of empty binaries', [0xc4, 0x00], 8 * 1024 * 1024 - 3],
] as const) {
  const bytes = arrayOf(count, element);
  let t = performance.now();
  const r = bounded.decode(bytes);
  const refuseMs = performance.now() - t;
  // Unbounded on a 1/8 slice only, so the benchmark itself does not take gigabytes.
  const slice = arrayOf(Math.floor(count / 8), element);
  (globalThis as { gc?: () => void }).gc?.();
  const before = heap();
  t = performance.now();
  const v = unbounded.decode(slice);
  const decodeMs = performance.now() - t;
  const grown = heap() - before;
  sink += v.ok ? 1 : 0;
  console.log(
    `${name.padEnd(32)} bounded: ${r.ok ? 'ACCEPTED' : 'refused'} in ${refuseMs.toFixed(1)} ms; unbounded, 1/8 of it: ${decodeMs.toFixed(0)} ms, +${fmt(grown / 1e6)} MB heap (x8 for the whole frame: ~${fmt((decodeMs * 8) / 1000)} s, ~${fmt((grown * 8) / 1e6)} MB)`,
  );
}
// Keep the scan itself honest: a 16 MiB binary value is skipped, not walked.
{
  const big = packr.pack({
    type: 'kv',
    id: 1,
    op: { op: 'put', key: 'k', value: new Uint8Array(16 * 1024 * 1024 - 64) },
  });
  const t = performance.now();
  const ok = scanMsgpack(big) === null;
  console.log(
    `scan of a 16 MiB binary value: ${ok ? 'ok' : 'REFUSED'} in ${(performance.now() - t).toFixed(2)} ms`,
  );
}
if (sink < 0) console.log(sink);
