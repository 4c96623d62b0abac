/**
 * Test support shared by the real-process replica tests: one server's view of its groups (`status`) and
 * the snapshot files a server keeps on disk.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request } from './harness.js';

/** One group as a server's `status` reports it. */
export interface GroupRow {
  partition: number;
  role: string;
  decidedIndex: number;
  /** Entries applied to the replica's state machine: what a `stale` read there sees. */
  appliedIndex?: number;
  configId?: number;
  members?: number[];
}

/** The groups of the server at `address`, or null when it does not answer `status` within 3 s. */
export async function groupRows(address: string): Promise<GroupRow[] | null> {
  const r = (await request(address, { type: 'status', id: 2 }, 3000).catch(() => null)) as {
    type: string;
    status?: { groups: GroupRow[] };
  } | null;
  return r?.type === 'status.ok' ? (r.status?.groups ?? null) : null;
}

/** Every snapshot file under `dir` (any configuration slot). */
export function snapshotFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...snapshotFiles(path));
    else if (/^snap-\d+\.bin$/.test(name)) out.push(path);
  }
  return out;
}
