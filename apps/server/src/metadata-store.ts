/**
 * How the cluster metadata is stored in the metadata group's state machine: one key,
 * {@link METADATA_KEY}, holding the {@link ClusterMetadata} as JSON. A change is a linearizable read on
 * the group's leader, a pure change, and a compare-and-set (`txn` on the key's `modRevision`) through
 * the group's log, re-read and retried when another change won ({@link casChange}); the first version
 * is written only if the key does not exist ({@link writeSeed}). Sans policy: the caller serialises
 * and adopts.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ClusterMetadata,
  ClusterMetadataSchema,
  InternalError,
  NotReadyError,
  UnavailableError,
} from '@paxkv/common';
import type { ServerContext } from './context.js';
import type { ReplicaGroupPort } from './group-port.js';

/** The key of the metadata group's state machine that holds the cluster metadata. */
export const METADATA_KEY = 'paxkv/cluster-metadata';
/** File (in the data dir) with the newest metadata this server has seen. */
export const METADATA_FILE = 'metadata.json';
/** How many times a change is re-read and re-proposed when the metadata moved under it. */
const CAS_ATTEMPTS = 5;

/** Parses the stored metadata; throws {@link InternalError} when it is not valid (never expected). */
export function parseMetadata(value: unknown): ClusterMetadata {
  let raw: unknown = value;
  if (typeof value === 'string') {
    try {
      raw = JSON.parse(value);
    } catch {
      raw = undefined;
    }
  }
  const r = ClusterMetadataSchema.safeParse(raw);
  if (!r.success) throw new InternalError({ reason: 'the stored cluster metadata is not valid' });
  return r.data;
}

/**
 * The metadata of `metadata.json` in the data dir (written in the background after each version this
 * server adopts), or null when there is none; an unreadable file is logged and ignored (the metadata is
 * fetched again from the metadata group).
 */
export function readMetadataFile(ctx: ServerContext): ClusterMetadata | null {
  try {
    return parseMetadata(JSON.parse(readFileSync(join(ctx.config.dataDir, METADATA_FILE), 'utf8')));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      ctx.log.warn({ err: (e as Error).message }, `ignoring ${METADATA_FILE}: it will be fetched again`);
    }
    return null;
  }
}

/** A change's outcome: the metadata after it, and whether it must be proposed. */
export interface MetadataChange {
  readonly metadata: ClusterMetadata;
  readonly changed: boolean;
}

/**
 * Reads the metadata on `group` (linearizable: it must be the leader), applies `fn`, and proposes the
 * result with a compare-and-set on the key's `modRevision`; re-reads and retries when another change
 * won. `adopt` gets every version read or written. Rejects with a typed error (not written yet: retry;
 * kept changing: retry).
 */
export async function casChange<T extends MetadataChange>(
  group: ReplicaGroupPort,
  fn: (m: ClusterMetadata) => T,
  adopt: (m: ClusterMetadata) => void,
): Promise<T> {
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    const got = await group.submit({ op: 'get', key: METADATA_KEY }, { consistency: 'linearizable' });
    if (got.op !== 'get') throw new InternalError({ reason: 'unexpected result reading the metadata' });
    if (got.value === null) {
      throw new NotReadyError({
        reason:
          'the cluster metadata is not written yet (the bootstrap server writes it once the metadata group has a leader); retry in a moment',
      });
    }
    const current = parseMetadata(got.value);
    const out = fn(current);
    if (!out.changed) {
      adopt(current);
      return out;
    }
    // Never propose what a peer would refuse to adopt.
    const next = ClusterMetadataSchema.parse(out.metadata);
    const r = await group.submit(
      {
        op: 'txn',
        compare: [{ key: METADATA_KEY, target: 'modRevision', op: '=', value: got.modRevision }],
        success: [{ put: { key: METADATA_KEY, value: JSON.stringify(next) } }],
        failure: [],
      },
      { consistency: 'linearizable' },
    );
    if (r.op === 'txn' && r.succeeded) {
      adopt(next);
      return out;
    }
  }
  throw new UnavailableError({ reason: 'the cluster metadata kept changing under this change; retry' });
}

/**
 * Writes `seed` on `group` (the leader) unless metadata exists; resolves with what is stored and
 * whether it is the seed.
 */
export async function writeSeed(
  group: ReplicaGroupPort,
  seed: ClusterMetadata,
): Promise<{ readonly stored: ClusterMetadata; readonly written: boolean }> {
  const r = await group.submit(
    {
      op: 'txn',
      compare: [{ key: METADATA_KEY, target: 'exists', op: '=', value: false }],
      success: [{ put: { key: METADATA_KEY, value: JSON.stringify(seed) } }],
      failure: [{ get: { key: METADATA_KEY } }],
    },
    { consistency: 'linearizable' },
  );
  if (r.op !== 'txn') throw new InternalError({ reason: 'unexpected result writing the metadata' });
  if (r.succeeded) return { stored: seed, written: true };
  const found = r.results[0];
  if (found?.op !== 'get' || found.value === null) {
    throw new InternalError({ reason: 'the cluster metadata exists but could not be read' });
  }
  return { stored: parseMetadata(found.value), written: false };
}

/**
 * The value {@link readLocal} last parsed, per replica: every heartbeat reads the metadata again, and
 * parsing the unchanged JSON each time was ~1.5 % of a loaded server's CPU.
 */
const lastParsed = new WeakMap<
  ReplicaGroupPort,
  { readonly raw: unknown; readonly parsed: ClusterMetadata }
>();

/** Reads the metadata of `group`'s replica (decided state only, any role); null before the seed. */
export async function readLocal(group: ReplicaGroupPort): Promise<ClusterMetadata | null> {
  const got = await group.submit({ op: 'get', key: METADATA_KEY }, { consistency: 'stale' });
  if (got.op !== 'get' || got.value === null) return null;
  const last = lastParsed.get(group);
  if (last !== undefined && last.raw === got.value) return last.parsed;
  const parsed = parseMetadata(got.value);
  lastParsed.set(group, { raw: got.value, parsed });
  return parsed;
}
