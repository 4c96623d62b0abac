// Codec microbenchmark: frames/s encoded + decoded for a ~200 B message, compared with raw
// msgpackr and JSON; plus the cost of validating the message with its zod schema and of routing.
// Run: pnpm --filter @paxkv/common bench   (or tsx --conditions=@paxkv/source bench/codec.ts)
import { Packr, Unpackr } from 'msgpackr';
import {
  encodeFrame,
  FrameDecoder,
  msgpackCodec,
  parseClientRequest,
  parsePeerMessage,
  partitionOf,
} from '../src/index.js';
import { fmt, opsPerSecond, type Rate } from './util.js';

const message = {
  type: 'kv',
  id: 123_456,
  op: { op: 'put', key: 'user:000123:profile', value: 'v'.repeat(74) },
  session: { client: 'client-7f3a9c', seq: 42 },
  consistency: 'linearizable',
};

const frame = encodeFrame(message);
const jsonSize = Buffer.byteLength(JSON.stringify(message));
console.log(`message: ${frame.length - 4} B msgpack payload (+4 B header), ${jsonSize} B as JSON`);
console.log(`node ${process.version}, ${new Date().toISOString()}\n`);

const results: [string, Rate][] = [];
let sink = 0;

// 1. Frame encode + streaming decode, one frame per chunk (the worst case for the decoder).
{
  const decoder = new FrameDecoder();
  results.push([
    'frame encode + decode (1 frame per chunk)',
    opsPerSecond((n) => {
      for (let i = 0; i < n; i++) {
        const out = decoder.push(encodeFrame(message));
        sink += out.length;
      }
    }),
  ]);
}

// 2. Encode 100 frames, concatenate, decode the batch (frames that arrive together in one TCP read).
{
  const decoder = new FrameDecoder();
  results.push([
    'frame encode + decode (100 frames per chunk)',
    opsPerSecond((n) => {
      for (let b = 0; b < n / 100; b++) {
        const frames: Uint8Array[] = [];
        for (let i = 0; i < 100; i++) frames.push(encodeFrame(message));
        sink += decoder.push(Buffer.concat(frames)).length;
      }
    }),
  ]);
}

// 3. Frames split at awkward boundaries (7-byte chunks).
{
  const decoder = new FrameDecoder();
  const stream = Buffer.concat(Array.from({ length: 100 }, () => encodeFrame(message)));
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i += 7) chunks.push(stream.subarray(i, i + 7));
  results.push([
    'decode only, stream cut into 7 B chunks',
    opsPerSecond((n) => {
      for (let b = 0; b < n / 100; b++) for (const c of chunks) sink += decoder.push(c).length;
    }),
  ]);
}

// 4. Our codec alone (no framing).
results.push([
  'codec encode + decode (msgpackCodec)',
  opsPerSecond((n) => {
    for (let i = 0; i < n; i++) {
      const r = msgpackCodec.decode(msgpackCodec.encode(message));
      if (r.ok) sink++;
    }
  }),
]);

// 5. Raw msgpackr, same options, no wrapper.
{
  const packr = new Packr({ useRecords: false });
  const unpackr = new Unpackr({ useRecords: false });
  results.push([
    'raw msgpackr pack + unpack',
    opsPerSecond((n) => {
      for (let i = 0; i < n; i++) sink += unpackr.unpack(packr.pack(message)) ? 1 : 0;
    }),
  ]);
}

// 6. JSON.
results.push([
  'JSON stringify + parse',
  opsPerSecond((n) => {
    for (let i = 0; i < n; i++) sink += JSON.parse(JSON.stringify(message)) ? 1 : 0;
  }),
]);

// 7. Validation at the boundary.
results.push([
  'parseClientRequest (zod + size limits)',
  opsPerSecond((n) => {
    for (let i = 0; i < n; i++) sink += parseClientRequest(message).ok ? 1 : 0;
  }),
]);

// 7b. The peer hot path: a paxos envelope (its payload is left to the paxos package).
{
  const envelope = {
    type: 'paxos',
    partition: 3,
    from: 2,
    msg: { kind: 'Accept', n: { round: 7, pid: 2 }, entries: [message.op], decidedIdx: 41 },
  };
  results.push([
    'parsePeerMessage (paxos envelope)',
    opsPerSecond((n) => {
      for (let i = 0; i < n; i++) sink += parsePeerMessage(envelope).ok ? 1 : 0;
    }),
  ]);
}

// 8. Routing.
results.push([
  'partitionOf (FNV-1a of a 19-char key)',
  opsPerSecond((n) => {
    for (let i = 0; i < n; i++) sink += partitionOf(message.op.key, 64);
  }),
]);

const width = Math.max(...results.map(([name]) => name.length));
console.log(
  `${''.padEnd(width)}  ${'best ops/s'.padStart(12)}  ${'µs/op'.padStart(7)}  ${'median ops/s'.padStart(12)}`,
);
for (const [name, { best, median }] of results) {
  console.log(
    `${name.padEnd(width)}  ${fmt(best).padStart(12)}  ${(1e6 / best).toFixed(2).padStart(7)}  ${fmt(median).padStart(12)}`,
  );
}
if (sink === -1) console.log(sink);
