import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeDisk } from './node-disk.js';

/** A NodeDisk that records which directories it synced. */
class SyncRecordingDisk extends NodeDisk {
  readonly synced: string[] = [];
  override async syncDir(dir: string): Promise<void> {
    this.synced.push(dir);
    await super.syncDir(dir);
  }
}

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

describe('NodeDisk.mkdirp', () => {
  it('syncs the parent of every directory it creates, and nothing when they all exist', async () => {
    const root = mkdtempSync(join(tmpdir(), 'paxkv-mkdirp-'));
    roots.push(root);
    const disk = new SyncRecordingDisk();
    await disk.mkdirp(join(root, 'a', 'b', 'c'));
    expect(statSync(join(root, 'a', 'b', 'c')).isDirectory()).toBe(true);
    expect([...disk.synced].sort()).toEqual([root, join(root, 'a'), join(root, 'a', 'b')].sort());
    disk.synced.length = 0;
    await disk.mkdirp(join(root, 'a', 'b', 'c'));
    expect(disk.synced).toEqual([]);
    // One more level under an existing directory: only its parent.
    await disk.mkdirp(join(root, 'a', 'b', 'c', 'd'));
    expect(disk.synced).toEqual([join(root, 'a', 'b', 'c')]);
  });
});
