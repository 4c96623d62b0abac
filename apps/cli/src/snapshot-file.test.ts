import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodeSnapshotFile,
  encodeSnapshotFile,
  type PartitionState,
  SNAPSHOT_FILE_FORMAT,
  SnapshotFileError,
} from './snapshot-file.js';

const states: PartitionState[] = [
  { partition: 1, revision: 9, keys: 2, leases: 0, state: new Uint8Array([4, 5, 6, 7]) },
  { partition: 0, revision: 3, keys: 1, leases: 1, state: new Uint8Array([1, 2, 3]) },
];
const meta = { createdAt: '2026-12-06T03:00:00.000Z', partitions: 2, source: ['127.0.0.1:7000'] };
const file = () => Buffer.concat(encodeSnapshotFile(meta, states));

/** Rewrites the trailer so that only the inner checks can catch a change. */
function resealed(bytes: Buffer): Buffer {
  const body = bytes.subarray(0, bytes.length - 32);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

describe('snapshot file', () => {
  it('round-trips every partition in order with its header', () => {
    const c = decodeSnapshotFile(file(), 'f');
    expect(c.header).toMatchObject({
      format: SNAPSHOT_FILE_FORMAT,
      partitions: 2,
      createdAt: meta.createdAt,
    });
    expect(c.header.parts.map((p) => [p.partition, p.revision, p.keys, p.leases, p.bytes])).toEqual([
      [0, 3, 1, 1, 3],
      [1, 9, 2, 0, 4],
    ]);
    expect(c.states.map((s) => [...s])).toEqual([
      [1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(c.sha256).toBe(file().subarray(-32).toString('hex'));
    expect(c.bytes).toBe(file().length);
  });

  it('refuses a backup that misses a partition', () => {
    expect(() => encodeSnapshotFile({ ...meta, partitions: 3 }, states)).toThrow(/every partition 0..2/);
  });

  it('refuses every damage with a message that says what is wrong', () => {
    const good = file();
    const cases: Array<[string, Buffer, RegExp]> = [
      ['empty', Buffer.alloc(0), /is not a paxkv snapshot/],
      [
        'other magic',
        Buffer.from(`XAXKVBAK${good.subarray(8).toString('latin1')}`, 'latin1'),
        /is not a paxkv snapshot/,
      ],
      ['truncated', good.subarray(0, good.length - 1), /checksum mismatch/],
      ['appended', Buffer.concat([good, Buffer.from([0])]), /checksum mismatch/],
      ['short', good.subarray(0, 20), /truncated/],
    ];
    for (let i = 0; i < good.length - 32; i++) {
      const b = Buffer.from(good);
      b[i] = (b[i] as number) ^ 0x10;
      cases.push([
        `bit flip at ${i}`,
        b,
        i < 8 ? /is not a paxkv snapshot/ : i < 12 ? /format/ : /checksum mismatch/,
      ]);
    }
    const newer = Buffer.from(good);
    newer.writeUInt32BE(2, 8);
    cases.push(['newer format', resealed(newer), /has snapshot format 2; this paxkv reads format 1/]);
    // Damage behind a valid trailer (a bug, or a crafted file): the inner checks catch it.
    const state = Buffer.from(good);
    state[state.length - 33] = (state[state.length - 33] as number) ^ 1;
    cases.push(['state', resealed(state), /partition 1's state fails its SHA-256/]);
    const header = Buffer.from(good);
    header.writeUInt32BE(5, 12);
    cases.push(['header length', resealed(header), /header is not JSON/]);
    const huge = Buffer.from(good);
    huge.writeUInt32BE(0xffffffff, 12);
    cases.push(['header length too large', resealed(huge), /does not fit the file/]);
    for (const [name, bytes, message] of cases) {
      let error: unknown;
      try {
        decodeSnapshotFile(bytes, 'backup.paxkv');
      } catch (e) {
        error = e;
      }
      expect(error, name).toBeInstanceOf(SnapshotFileError);
      expect((error as Error).message, name).toMatch(message);
      expect((error as Error).message, name).toMatch(/^backup\.paxkv /);
    }
  });
});
