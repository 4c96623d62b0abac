/**
 * The server's identity file `<data-dir>/server.json`: its node id, the newest lookup table it adopted and
 * (on the bootstrap server) the spares it registered. Written atomically (temp file, fsync, rename, fsync of
 * the directory) so that a crash leaves the old or the new version, never a torn one. With it, a restarted
 * server keeps its id and starts its replica groups at once, even while the bootstrap server is down.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LookupTableSchema, NodeEntrySchema, NodeIdSchema } from '@paxkv/common';
import { z } from 'zod';

/** File name of the identity file inside the data dir. */
export const IDENTITY_FILE = 'server.json';

/** Schema of the identity file (version 1). */
export const identitySchema = z.object({
  version: z.literal(1),
  nodeId: NodeIdSchema.nullable(),
  table: LookupTableSchema.nullable(),
  spares: z.array(NodeEntrySchema).default([]),
});

/** The identity file's contents. */
export type Identity = z.infer<typeof identitySchema>;

/** An identity file that exists but cannot be used; the message says how to recover. */
export class IdentityFileError extends Error {
  override readonly name = 'IdentityFileError';
}

/** Reads the identity file of `dataDir`; a missing file yields an empty identity. */
export function readIdentity(dataDir: string): Identity {
  const path = join(dataDir, IDENTITY_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      return { version: 1, nodeId: null, table: null, spares: [] };
    throw new IdentityFileError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new IdentityFileError(
      `${path} is not valid JSON (${(e as Error).message}); restore it from a backup or start with an empty data dir`,
    );
  }
  const r = identitySchema.safeParse(raw);
  if (!r.success) {
    throw new IdentityFileError(
      `${path} is invalid (${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message})`,
    );
  }
  return r.data;
}

/** Writes the identity file atomically and durably. */
export function writeIdentity(dataDir: string, identity: Identity): void {
  writeJsonFile(dataDir, IDENTITY_FILE, identity);
}

/** Writes `value` as JSON to `<dataDir>/<name>` atomically (temp file, fsync, rename, fsync of the dir). */
export function writeJsonFile(dataDir: string, name: string, value: unknown): void {
  const path = join(dataDir, name);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, `${JSON.stringify(value, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dirFd = openSync(dataDir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch {
    // Directory fsync is not supported everywhere; the rename is still atomic.
  }
}
