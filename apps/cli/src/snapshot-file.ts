/**
 * The backup file of `paxkv snapshot save|restore`: the state of every partition of a cluster, with a
 * format version and checksums.
 *
 * Layout (integers big-endian):
 * ```
 * "PAXKVBAK"            8 bytes, magic
 * format version        u32 (SNAPSHOT_FILE_FORMAT = 1)
 * header length H       u32 (at most MAX_HEADER_BYTES)
 * header                H bytes of UTF-8 JSON (SnapshotHeader: partitions, per-partition revision,
 *                       keys, leases, byte length and SHA-256 of its state)
 * states                the partitions' states, in partition order, back to back
 * SHA-256               32 bytes, of everything before it
 * ```
 * The trailing SHA-256 covers the whole file (a flipped bit anywhere, a truncation or an append is
 * refused); each partition's own SHA-256 says which partition a damaged file lost.
 * @module
 */
import { createHash } from 'node:crypto';
import { MAX_PARTITION_STATE_BYTES } from '@paxkv/common';
import { z } from 'zod';

/** The format version this CLI writes (and the only one it reads). */
export const SNAPSHOT_FILE_FORMAT = 1;
/** The file's first 8 bytes. */
export const SNAPSHOT_MAGIC = Buffer.from('PAXKVBAK', 'latin1');
/** Largest header accepted, in bytes (about 200 bytes per partition; 65 536 partitions fit). */
export const MAX_HEADER_BYTES = 16 * 1024 * 1024;
const PREFIX_BYTES = 16;
const DIGEST_BYTES = 32;

/** A backup file that cannot be used; the message says why and what to do. */
export class SnapshotFileError extends Error {
  override readonly name = 'SnapshotFileError';
}

const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in hex');
const CountSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** One partition's entry in the header. */
export const SnapshotPartSchema = z.object({
  partition: z.number().int().nonnegative().max(0xffff),
  /** The partition's revision the state was taken at. */
  revision: CountSchema,
  keys: CountSchema,
  leases: CountSchema,
  /** Byte length of the state. */
  bytes: z.number().int().nonnegative().max(MAX_PARTITION_STATE_BYTES),
  sha256: Sha256Schema,
});

/** The header of a backup file. */
export const SnapshotHeaderSchema = z.object({
  format: z.literal(SNAPSHOT_FILE_FORMAT),
  /** When the save started (ISO 8601). */
  createdAt: z.string().max(64),
  /** Partition count of the source cluster: a restore needs a cluster with the same count. */
  partitions: z.number().int().min(1).max(0x10000),
  /** The servers it was taken from, for the record. */
  source: z.array(z.string().max(300)).max(1000),
  parts: z.array(SnapshotPartSchema).max(0x10000),
});

/** The header of a backup file. */
export type SnapshotHeader = z.infer<typeof SnapshotHeaderSchema>;
/** One partition's entry in the header. */
export type SnapshotPart = z.infer<typeof SnapshotPartSchema>;

/** One partition's state, as the `snapshot` operation returned it. */
export interface PartitionState {
  readonly partition: number;
  readonly revision: number;
  readonly keys: number;
  readonly leases: number;
  readonly state: Uint8Array;
}

/** A decoded backup file: its header and each partition's state, in partition order. */
export interface SnapshotContents {
  readonly header: SnapshotHeader;
  readonly states: ReadonlyArray<Uint8Array>;
  /** SHA-256 of the whole file (the trailer), hex. */
  readonly sha256: string;
  /** Size of the file in bytes. */
  readonly bytes: number;
}

function sha256(...chunks: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest();
}

/**
 * Encodes a backup of `states` (one per partition 0..partitions-1, in any order) as the chunks of the
 * file, to be written in order. The last chunk is the SHA-256 trailer.
 */
export function encodeSnapshotFile(
  meta: { readonly createdAt: string; readonly partitions: number; readonly source: readonly string[] },
  states: readonly PartitionState[],
): Uint8Array[] {
  const sorted = [...states].sort((a, b) => a.partition - b.partition);
  if (sorted.length !== meta.partitions || sorted.some((s, i) => s.partition !== i))
    throw new RangeError(`a backup needs the state of every partition 0..${meta.partitions - 1}`);
  const header: SnapshotHeader = {
    format: SNAPSHOT_FILE_FORMAT,
    createdAt: meta.createdAt,
    partitions: meta.partitions,
    source: [...meta.source],
    parts: sorted.map((s) => ({
      partition: s.partition,
      revision: s.revision,
      keys: s.keys,
      leases: s.leases,
      bytes: s.state.byteLength,
      sha256: sha256(s.state).toString('hex'),
    })),
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(PREFIX_BYTES);
  SNAPSHOT_MAGIC.copy(prefix, 0);
  prefix.writeUInt32BE(SNAPSHOT_FILE_FORMAT, 8);
  prefix.writeUInt32BE(headerBytes.length, 12);
  const body = [prefix, headerBytes, ...sorted.map((s) => s.state)];
  return [...body, sha256(...body)];
}

/**
 * Decodes and verifies a backup file: magic, format version, the whole-file SHA-256, the header's
 * shape, that the states fill the file exactly, and each partition's SHA-256.
 * @param name the file's name, for messages
 * @throws {SnapshotFileError} saying what is wrong and what to do
 */
export function decodeSnapshotFile(bytes: Uint8Array, name: string): SnapshotContents {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const corrupt = (why: string) =>
    new SnapshotFileError(
      `${name} is not a usable paxkv snapshot: ${why}; it cannot be restored (use another backup)`,
    );
  if (buf.length < SNAPSHOT_MAGIC.length || !buf.subarray(0, SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC))
    throw new SnapshotFileError(
      `${name} is not a paxkv snapshot (it does not start with ${SNAPSHOT_MAGIC.toString('latin1')}): pass a file written by \`paxkv snapshot save\``,
    );
  if (buf.length < PREFIX_BYTES + DIGEST_BYTES) throw corrupt(`truncated (${buf.length} bytes)`);
  const format = buf.readUInt32BE(8);
  if (format !== SNAPSHOT_FILE_FORMAT)
    throw new SnapshotFileError(
      `${name} has snapshot format ${format}; this paxkv reads format ${SNAPSHOT_FILE_FORMAT}: use the paxkv version that wrote it`,
    );
  const body = buf.subarray(0, buf.length - DIGEST_BYTES);
  const digest = buf.subarray(buf.length - DIGEST_BYTES);
  const actual = sha256(body);
  if (!actual.equals(digest))
    throw corrupt(
      `checksum mismatch (SHA-256 of the contents is ${actual.toString('hex').slice(0, 16)}..., the file records ${digest.toString('hex').slice(0, 16)}...): the file was damaged or truncated`,
    );
  const headerLength = buf.readUInt32BE(12);
  if (headerLength > MAX_HEADER_BYTES || PREFIX_BYTES + headerLength > body.length)
    throw corrupt(`header length ${headerLength} does not fit the file`);
  let raw: unknown;
  try {
    raw = JSON.parse(body.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength).toString('utf8'));
  } catch (e) {
    throw corrupt(`the header is not JSON (${(e as Error).message})`);
  }
  const parsed = SnapshotHeaderSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw corrupt(`bad header field '${issue?.path.join('.')}': ${issue?.message}`);
  }
  const header = parsed.data;
  if (header.parts.length !== header.partitions || header.parts.some((p, i) => p.partition !== i))
    throw corrupt(`the header does not list partitions 0..${header.partitions - 1} in order`);
  const total = header.parts.reduce((n, p) => n + p.bytes, 0);
  if (PREFIX_BYTES + headerLength + total !== body.length)
    throw corrupt(
      `the header's states add up to ${total} bytes, the file holds ${body.length - PREFIX_BYTES - headerLength}`,
    );
  const states: Uint8Array[] = [];
  let at = PREFIX_BYTES + headerLength;
  for (const p of header.parts) {
    const state = body.subarray(at, at + p.bytes);
    at += p.bytes;
    if (sha256(state).toString('hex') !== p.sha256)
      throw corrupt(`partition ${p.partition}'s state fails its SHA-256`);
    states.push(state);
  }
  return { header, states, sha256: actual.toString('hex'), bytes: buf.length };
}
