import { describe, expect, it } from 'vitest';
import { encode } from '../codec.js';
import { isKvCommand } from '../command.js';
import {
  decodeRecordPayload,
  decodeSnapshotFile,
  encodeRecordPayload,
  encodeSnapshotFile,
  mayBeCheckpointHeader,
  snapshotFileName,
  type WalRecord,
} from './records.js';
import { WalRecordError } from './wal.js';

const MAX = Number.MAX_SAFE_INTEGER;
const isEntry = (x: unknown): boolean => isKvCommand(x);
const cmd = (value: string | Uint8Array) => ({
  id: '1.n.1',
  op: { op: 'put', key: 'k', value },
  session: { client: 'c', seq: MAX },
});

/** Every record type at its limits: zeros, the largest safe integers, empty and large payloads. */
const AT_LIMITS: WalRecord[] = [
  { t: 'P', b: [0, 0] },
  { t: 'P', b: [MAX, MAX] },
  { t: 'A', b: [MAX, 1] },
  { t: 'R', r: 0 },
  { t: 'R', r: MAX },
  { t: 'D', i: MAX },
  { t: 'E', from: 0, e: [] },
  { t: 'E', from: MAX, e: [] },
  { t: 'E', from: MAX - 2, e: [cmd(''), cmd(new Uint8Array(0))], a: [MAX, MAX] },
  { t: 'E', from: 5, e: [cmd('x'.repeat(1 << 16)), cmd(new Uint8Array(1 << 16).fill(255))], k: 1 },
  { t: 'S', i: 0, f: snapshotFileName(0) },
  { t: 'S', i: MAX, f: snapshotFileName(MAX) },
  { t: 'C', p: [0, 0], a: [0, 0], r: 0, d: 0, c: 0, s: null, n: 0 },
  {
    t: 'C',
    p: [MAX, MAX],
    a: [MAX, MAX],
    r: MAX,
    d: MAX,
    c: MAX,
    s: { i: MAX, f: snapshotFileName(MAX) },
    n: MAX,
  },
];

/** Just past the limits: each must be refused at encode time and rejected at decode time. */
const PAST_LIMITS: Array<[string, unknown]> = [
  ['ballot n 2^53', { t: 'P', b: [MAX + 1, 1] }],
  ['ballot pid -1', { t: 'A', b: [1, -1] }],
  ['ballot of 3', { t: 'P', b: [1, 1, 1] }],
  ['round 2^53', { t: 'R', r: MAX + 1 }],
  ['round 2^64', { t: 'R', r: 2 ** 64 }],
  ['round fractional', { t: 'R', r: 0.5 }],
  ['round NaN', { t: 'R', r: Number.NaN }],
  ['round Infinity', { t: 'R', r: Number.POSITIVE_INFINITY }],
  ['round as string', { t: 'R', r: '1' }],
  ['decided -1', { t: 'D', i: -1 }],
  ['append from 2^53', { t: 'E', from: MAX + 1, e: [] }],
  ['append past 2^53', { t: 'E', from: MAX, e: [cmd('a')] }],
  ['entry not a command', { t: 'E', from: 0, e: [{ id: 1 }] }],
  ['entries not an array', { t: 'E', from: 0, e: {} }],
  ['bad checkpoint flag', { t: 'E', from: 0, e: [], k: 2 }],
  ['snapshot name for another index', { t: 'S', i: 5, f: snapshotFileName(6) }],
  ['snapshot path', { t: 'S', i: 5, f: `../${snapshotFileName(5)}` }],
  ['snapshot index 2^53', { t: 'S', i: MAX + 1, f: snapshotFileName(MAX + 1) }],
  ['checkpoint decided below compacted', { t: 'C', p: [0, 0], a: [0, 0], r: 0, d: 1, c: 2, s: null, n: 0 }],
  [
    'checkpoint snapshot not at compacted',
    { t: 'C', p: [0, 0], a: [0, 0], r: 0, d: 3, c: 3, s: { i: 2, f: snapshotFileName(2) }, n: 0 },
  ],
  ['checkpoint count -1', { t: 'C', p: [0, 0], a: [0, 0], r: 0, d: 0, c: 0, s: null, n: -1 }],
  ['unknown type', { t: 'X' }],
  ['not an object', 7],
];

describe('WAL record schema (one check for the encoder and the decoder)', () => {
  it('round-trips every record type at its limits', () => {
    for (const rec of AT_LIMITS) {
      const bytes = encodeRecordPayload(rec, isEntry);
      expect(decodeRecordPayload(bytes, isEntry, 'test record'), JSON.stringify(rec).slice(0, 80)).toEqual(
        rec,
      );
    }
  });

  it('refuses at encode time, with a typed error, every record the decoder rejects', () => {
    for (const [what, rec] of PAST_LIMITS) {
      expect(() => encodeRecordPayload(rec as WalRecord, isEntry), what).toThrow(WalRecordError);
      // The same bytes written by someone else are rejected when read back.
      expect(() => decodeRecordPayload(encode(rec), isEntry, 'test record'), what).toThrow(
        /could not be decoded/,
      );
    }
  });

  it('rejects bytes that are not msgpack with a typed error', () => {
    expect(() => decodeRecordPayload(new Uint8Array([0xc1]), isEntry, 'test record')).toThrow(
      /could not be decoded/,
    );
  });

  it('round-trips snapshot files, empty and large, and rejects a damaged one', () => {
    for (const data of [new Uint8Array(0), new Uint8Array(3 << 20).map((_, i) => i * 7)]) {
      const file = encodeSnapshotFile(data);
      expect(Buffer.from(decodeSnapshotFile(file)!).equals(Buffer.from(data))).toBe(true);
      const bad = file.slice();
      bad[bad.length - 1]! ^= 1;
      if (data.length > 0) expect(decodeSnapshotFile(bad)).toBeUndefined();
      expect(decodeSnapshotFile(file.subarray(0, 11))).toBeUndefined();
    }
  });
});

describe('mayBeCheckpointHeader', () => {
  it('recognises every checkpoint header the encoder writes, and no other record', () => {
    for (const rec of AT_LIMITS) {
      expect(mayBeCheckpointHeader(encodeRecordPayload(rec, isEntry)), JSON.stringify(rec).slice(0, 80)).toBe(
        rec.t === 'C',
      );
    }
    expect(AT_LIMITS.filter((r) => r.t === 'C').length).toBeGreaterThan(1);
    expect(mayBeCheckpointHeader(new Uint8Array([0x84, 0xa1, 0x74, 0xa1]))).toBe(false);
    expect(mayBeCheckpointHeader(encode({ t: 'C' }).subarray(0, 4))).toBe(false);
  });
});
