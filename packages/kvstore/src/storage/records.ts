/**
 * The schema of the records a replica group writes to the write-ahead log, enforced in BOTH
 * directions by one function, {@link checkRecord}: the encoder refuses (with {@link WalRecordError},
 * before anything is written or changed) every record the decoder would reject, so the log never holds
 * a record that cannot be read back.
 *
 * Records (msgpack maps, one per storage write):
 * - `P` promise, `A` accepted round: `b` = ballot `[n, pid]`;
 * - `R` own ballot round `r`; `D` decided index `i`;
 * - `E` truncate-and-append: `from`, entries `e`, optional accepted round `a` set together with them,
 *   and `k: 1` when the record is part of a checkpoint;
 * - `S` snapshot installed: index `i` and file name `f` (the snapshot bytes are in their own file);
 * - `C` checkpoint header (the partition's whole state; `n` checkpoint `E` records follow it), with
 *   optional `g`: the configuration record of a reconfigurable group's storage (`i` configuration id,
 *   `m` replicas, `b` base log position) and, on a retired configuration's tombstone, `x`: the lowest
 *   configuration id the replica may still join (`minConfigId`).
 *
 * Every integer is a safe non-negative integer (at most 2^53 - 1, what msgpack decodes exactly into a
 * JavaScript number); a snapshot file name is `snap-<16 digits>.bin` naming the index it covers.
 * @module
 */
import { isMemberList } from '@paxkv/paxos';
import { CorruptDataError, decode, encode } from '../codec.js';
import { crc32c } from './crc32c.js';
import { WalRecordError } from './wal.js';

/** A ballot as stored: `[n, pid]`. */
export type StoredBallot = [number, number];

/** One record of a group's state in the write-ahead log. */
export type WalRecord =
  | { t: 'P' | 'A'; b: StoredBallot }
  | { t: 'R'; r: number }
  | { t: 'D'; i: number }
  | { t: 'E'; from: number; e: unknown[]; a?: StoredBallot; k?: 1 }
  | { t: 'S'; i: number; f: string }
  | {
      t: 'C';
      p: StoredBallot;
      a: StoredBallot;
      r: number;
      d: number;
      c: number;
      s: { i: number; f: string } | null;
      n: number;
      g?: StoredConfig;
    };

/** A configuration record as stored in a checkpoint header (see the module notes). */
export interface StoredConfig {
  /** Configuration id. */
  i: number;
  /** Its replicas (distinct node ids). */
  m: number[];
  /** Log position the configuration starts at. */
  b: number;
  /** Set on a retired configuration's tombstone: the `minConfigId` to persist. */
  x?: number;
}

function checkConfig(g: unknown): string | undefined {
  if (typeof g !== 'object' || g === null) return 'bad configuration record';
  const c = g as Record<string, unknown>;
  if (!isIndex(c.i) || !isIndex(c.b)) return 'bad configuration record';
  if (!isMemberList(c.m)) return 'bad configuration members';
  if (c.x !== undefined && (!isIndex(c.x) || (c.x as number) <= (c.i as number)))
    return 'bad configuration tombstone';
  return undefined;
}

/** Largest index a snapshot file name can carry (16 decimal digits; safe integers all fit). */
const SNAPSHOT_NAME = /^snap-(\d{16})\.bin$/;

/** File name of the snapshot covering the first `index` entries. */
export function snapshotFileName(index: number): string {
  return `snap-${index.toString().padStart(16, '0')}.bin`;
}

/** The index a snapshot file name covers, or undefined if `name` is not one. */
export function snapshotIndexOf(name: string): number | undefined {
  const m = SNAPSHOT_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

const isIndex = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
const isBallot = (x: unknown): x is StoredBallot =>
  Array.isArray(x) && x.length === 2 && isIndex(x[0]) && isIndex(x[1]);
const isSnapshotRef = (i: unknown, f: unknown): boolean =>
  isIndex(i) && typeof f === 'string' && snapshotIndexOf(f) === i;

/**
 * Checks one record against the schema: returns undefined when valid, or what is wrong. Used before
 * encoding (a failure there is a {@link WalRecordError}) and after decoding (a {@link CorruptDataError}).
 * Never throws.
 */
export function checkRecord(x: unknown, isEntry: (e: unknown) => boolean): string | undefined {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const r = x as Record<string, unknown>;
  switch (r.t) {
    case 'P':
    case 'A':
      return isBallot(r.b) ? undefined : 'bad ballot';
    case 'R':
      return isIndex(r.r) ? undefined : 'bad integer';
    case 'D':
      return isIndex(r.i) ? undefined : 'bad integer';
    case 'E': {
      if (!isIndex(r.from)) return 'bad integer';
      if (!Array.isArray(r.e)) return 'entries not an array';
      if (r.a !== undefined && !isBallot(r.a)) return 'bad ballot';
      if (r.k !== undefined && r.k !== 1) return 'bad checkpoint flag';
      for (const e of r.e) if (!isEntry(e)) return 'entry rejected by isEntry';
      if (!isIndex(r.from + r.e.length)) return 'log length overflows';
      return undefined;
    }
    case 'S':
      return isSnapshotRef(r.i, r.f) ? undefined : 'bad snapshot reference';
    case 'C': {
      if (!isBallot(r.p) || !isBallot(r.a)) return 'bad ballot';
      if (!isIndex(r.r) || !isIndex(r.d) || !isIndex(r.c) || !isIndex(r.n)) return 'bad integer';
      if (r.d < r.c) return 'decided index below the compacted index';
      if (r.s !== null) {
        const s = r.s as { i?: unknown; f?: unknown } | undefined;
        if (typeof s !== 'object' || !isSnapshotRef(s.i, s.f) || s.i !== r.c) return 'bad snapshot reference';
      }
      if (r.g !== undefined) return checkConfig(r.g);
      return undefined;
    }
    default:
      return 'unknown record type';
  }
}

/**
 * Encodes a record after checking it against the schema the decoder enforces.
 * @throws WalRecordError if the decoder would reject the record (nothing is encoded).
 */
export function encodeRecordPayload(rec: WalRecord, isEntry: (e: unknown) => boolean): Uint8Array {
  assertWritable(rec, isEntry);
  return encode(rec);
}

/**
 * Throws unless the decoder would accept `rec`.
 * @throws WalRecordError naming the record type and what is wrong.
 */
export function assertWritable(rec: WalRecord, isEntry: (e: unknown) => boolean): void {
  const bad = checkRecord(rec, isEntry);
  if (bad !== undefined) {
    throw new WalRecordError(
      `refusing to write WAL record ${JSON.stringify(rec.t)} (${bad}): it could not be read back; the value came from a bug or an unchecked peer message`,
    );
  }
}

/**
 * Decodes a record and checks it against the schema.
 * @throws CorruptDataError if the bytes are not a record this version writes.
 */
export function decodeRecordPayload(
  bytes: Uint8Array,
  isEntry: (e: unknown) => boolean,
  what: string,
): WalRecord {
  const raw = decode(bytes, what);
  if (raw instanceof CorruptDataError) throw raw;
  const bad = checkRecord(raw, isEntry);
  if (bad !== undefined) {
    throw new CorruptDataError(`${what} ${JSON.stringify((raw as { t?: unknown })?.t)} (${bad})`);
  }
  return raw as WalRecord;
}

/**
 * Whether `payload` may be a checkpoint header (a `C` record), judged from its first five bytes
 * without decoding it: {@link encodeRecordPayload} writes every record as a msgpack map of fewer than
 * 16 keys (a fixmap) whose first key is `"t"`, so a `C` record starts `8x a1 74 a1 43`. Recovery uses
 * it to find a partition's last checkpoint without decoding the records before it. It is only a
 * filter: a "yes" is confirmed by decoding the record (and the `n` records of its checkpoint), and a
 * header it misses only makes recovery start at an earlier checkpoint (replaying a later complete
 * checkpoint replaces the whole state), so it never changes what is recovered, only how much is read.
 */
export function mayBeCheckpointHeader(payload: Uint8Array): boolean {
  return (
    payload.length >= 5 &&
    (payload[0]! & 0xf0) === 0x80 &&
    payload[1] === 0xa1 &&
    payload[2] === 0x74 &&
    payload[3] === 0xa1 &&
    payload[4] === 0x43
  );
}

const SNAP_MAGIC = [0x50, 0x58, 0x53, 0x4e]; // "PXSN"
const SNAP_VERSION = 1;
/** Size of a snapshot file header: magic, version, CRC-32C of the data. */
export const SNAPSHOT_HEADER_BYTES = 12;
/** Largest snapshot a file can hold (2 GiB minus the header; Node buffers cannot be larger anyway). */
export const MAX_SNAPSHOT_BYTES = 2 ** 31 - 1 - SNAPSHOT_HEADER_BYTES;

/**
 * Encodes a snapshot file (header + data).
 * @throws WalRecordError if the data is larger than {@link MAX_SNAPSHOT_BYTES}.
 */
export function encodeSnapshotFile(data: Uint8Array): Uint8Array {
  if (data.length > MAX_SNAPSHOT_BYTES) {
    throw new WalRecordError(
      `refusing to write a snapshot of ${data.length} bytes (limit ${MAX_SNAPSHOT_BYTES}); the state is too large for one snapshot file`,
    );
  }
  const out = new Uint8Array(SNAPSHOT_HEADER_BYTES + data.length);
  out.set(SNAP_MAGIC, 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(4, SNAP_VERSION, true);
  dv.setUint32(8, crc32c(data), true);
  out.set(data, SNAPSHOT_HEADER_BYTES);
  return out;
}

/** Decodes a snapshot file; undefined if its header or checksum is wrong. */
export function decodeSnapshotFile(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length < SNAPSHOT_HEADER_BYTES) return undefined;
  for (let i = 0; i < 4; i++) if (bytes[i] !== SNAP_MAGIC[i]) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(4, true) !== SNAP_VERSION) return undefined;
  const data = bytes.slice(SNAPSHOT_HEADER_BYTES);
  return crc32c(data) === dv.getUint32(8, true) ? data : undefined;
}
