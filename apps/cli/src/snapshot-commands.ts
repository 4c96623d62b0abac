/**
 * `paxkv snapshot save <file>`, `paxkv snapshot restore <file>` and `paxkv snapshot status <file>`:
 * backups of a whole cluster (see `snapshot-file.ts` for the file).
 *
 * Save asks each partition's leader for its state (`snapshot`, a linearizable read at one revision per
 * partition: the backup holds every write acknowledged before the save started). Partitions are read one
 * after the other, so the backup is one point in time per partition, not one instant across partitions
 * (as etcd's `snapshot save` is one point in time because etcd is one raft group).
 *
 * Restore loads each partition's state through the log (`restore`) into a cluster with the same
 * partition count whose partitions are all empty: a new local cluster (`--dir`), or a running cluster
 * (`--servers`). It checks every partition is empty before it changes anything, then reads every
 * partition back and compares its revision and key count with the file.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { MAX_PARTITION_STATE_BYTES, type RestoreResult, type SnapshotResult } from '@paxkv/common';
import {
  decodeSnapshotFile,
  encodeSnapshotFile,
  type PartitionState,
  type SnapshotContents,
  SnapshotFileError,
} from './snapshot-file.js';

/** What the backup commands need from a client (`@paxkv/client`'s `PaxkvClient` has it). */
export interface BackupClientPort {
  lookupTable(): Promise<{ readonly partitions: number }>;
  snapshot(partition: number): Promise<SnapshotResult>;
  restore(partition: number, state: Uint8Array): Promise<RestoreResult>;
}

/** What a save or a restore did, for the summary line and `-w json`. */
export interface BackupSummary {
  readonly file: string;
  readonly partitions: number;
  readonly keys: number;
  readonly leases: number;
  /** Bytes of the file. */
  readonly bytes: number;
  /** SHA-256 of the file's contents (its trailer). */
  readonly sha256: string;
  readonly tookMs: number;
}

function size(n: number): string {
  return n < 1024
    ? `${n} B`
    : n < 1024 * 1024
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${(n / 1048576).toFixed(1)} MiB`;
}

/** The summary line of a save or restore. */
export function formatSummary(verb: 'saved' | 'restored', s: BackupSummary): string {
  return `${verb} ${s.partitions} partitions, ${s.keys} keys, ${s.leases} leases (${size(s.bytes)}) ${verb === 'saved' ? 'to' : 'from'} ${s.file} in ${(s.tookMs / 1000).toFixed(1)} s; sha256 ${s.sha256}`;
}

/** Writes `chunks` to `path` atomically: a temporary file in the same directory, fsync, rename, fsync of the directory. */
function writeFileAtomic(path: string, chunks: readonly Uint8Array[]): number {
  const tmp = `${dirname(path)}/.${basename(path)}.${process.pid}.tmp`;
  let bytes = 0;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    for (const c of chunks) {
      let off = 0;
      while (off < c.byteLength) off += writeSync(fd, c, off);
      bytes += c.byteLength;
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  return bytes;
}

/**
 * The error for a partition whose state exceeds what one snapshot message carries: the limit, that
 * nothing was written, and what to do (a cluster with more partitions; how many, from this one's size).
 */
function tooLarge(p: number, partitions: number, r: SnapshotResult, file: string): SnapshotFileError {
  const factor = Math.ceil(r.bytes / MAX_PARTITION_STATE_BYTES);
  return new SnapshotFileError(
    `partition ${p} holds ${size(r.bytes)} (${r.keys} keys), over the ${size(MAX_PARTITION_STATE_BYTES)} that one partition's backup can carry in this version (MAX_PARTITION_STATE_BYTES), so this cluster cannot be backed up with snapshot save; nothing was written to ${file}. Keep every partition under ${size(MAX_PARTITION_STATE_BYTES)}: the partition count is set when a cluster is created (paxkv cluster start --partitions N, paxkv-server --partitions N), and with data spread like this one's a cluster needs at least ${partitions * factor} partitions (now ${partitions}). (copies of data dirs are no backup: a server restarted on an older copy breaks the replication protocol's promises)`,
  );
}

/**
 * Saves a backup of every partition to `file`. `progress` gets one line per partition.
 * @throws {SnapshotFileError} when a partition is too large for a snapshot; the client's typed errors
 *   when the cluster does not answer
 */
export async function saveSnapshot(
  client: BackupClientPort,
  file: string,
  source: readonly string[],
  progress: (line: string) => void,
): Promise<BackupSummary> {
  const started = performance.now();
  const createdAt = new Date().toISOString();
  const { partitions } = await client.lookupTable();
  const states: PartitionState[] = [];
  for (let p = 0; p < partitions; p++) {
    const r = await client.snapshot(p);
    if (r.outcome === 'too-large') throw tooLarge(p, partitions, r, file);
    states.push({ partition: p, revision: r.revision, keys: r.keys, leases: r.leases, state: r.state });
    progress(
      `partition ${p + 1}/${partitions}: ${r.keys} keys, ${r.leases} leases, ${size(r.state.byteLength)} at revision ${r.revision}`,
    );
  }
  const chunks = encodeSnapshotFile({ createdAt, partitions, source }, states);
  const bytes = writeFileAtomic(file, chunks);
  return {
    file,
    partitions,
    keys: states.reduce((n, s) => n + s.keys, 0),
    leases: states.reduce((n, s) => n + s.leases, 0),
    bytes,
    sha256: Buffer.from(chunks[chunks.length - 1] as Uint8Array).toString('hex'),
    tookMs: performance.now() - started,
  };
}

/** Reads and verifies a backup file. @throws {SnapshotFileError} naming what is wrong */
export function readSnapshotFile(file: string): SnapshotContents {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SnapshotFileError(
      `cannot read ${file} (${code ?? (e as Error).message}): check the path and its permissions`,
    );
  }
  return decodeSnapshotFile(bytes, file);
}

/**
 * Restores `contents` into the cluster behind `client`: checks the partition count and that every
 * partition is empty (nothing is changed otherwise), loads every partition, then reads each back and
 * compares its revision and key count with the file. `progress` gets one line per partition.
 * @throws {SnapshotFileError} when the cluster does not fit the backup or a partition did not restore
 */
export async function restoreSnapshot(
  client: BackupClientPort,
  contents: SnapshotContents,
  file: string,
  progress: (line: string) => void,
): Promise<BackupSummary> {
  const started = performance.now();
  const { header, states } = contents;
  const { partitions } = await client.lookupTable();
  if (partitions !== header.partitions)
    throw new SnapshotFileError(
      `${file} holds ${header.partitions} partitions, the cluster has ${partitions}: keys hash by the partition count, so restore into a cluster started with --partitions ${header.partitions}`,
    );
  for (let p = 0; p < partitions; p++) {
    const now = await client.snapshot(p);
    if (now.keys > 0 || now.leases > 0 || now.revision > 0)
      throw new SnapshotFileError(
        `partition ${p} of the cluster is not empty (${now.keys} keys, revision ${now.revision}): restore only into a new cluster; nothing was changed`,
      );
  }
  for (let p = 0; p < partitions; p++) {
    const r = await client.restore(p, states[p] as Uint8Array);
    if (r.outcome !== 'restored')
      throw new SnapshotFileError(
        `partition ${p} was written to during the restore (${r.keys} keys at revision ${r.revision}): partitions 0..${p - 1} are restored, the rest is not; start again into a new cluster`,
      );
    progress(
      `partition ${p + 1}/${partitions}: restored ${r.keys} keys, ${r.leases} leases at revision ${r.revision}`,
    );
  }
  for (const part of header.parts) {
    const back = await client.snapshot(part.partition);
    if (back.keys !== part.keys || back.revision !== part.revision)
      throw new SnapshotFileError(
        `partition ${part.partition} reads back ${back.keys} keys at revision ${back.revision}, the file has ${part.keys} at ${part.revision}: the restore is incomplete`,
      );
  }
  return {
    file,
    partitions,
    keys: header.parts.reduce((n, p) => n + p.keys, 0),
    leases: header.parts.reduce((n, p) => n + p.leases, 0),
    bytes: contents.bytes,
    sha256: contents.sha256,
    tookMs: performance.now() - started,
  };
}
