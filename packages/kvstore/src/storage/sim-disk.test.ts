import { describe, expect, it } from 'vitest';
import { SimDisk } from './sim-disk.js';

const bytes = (...b: number[]) => new Uint8Array(b);

/** A file at `path` with `data` synced and its directory entry durable. */
async function durableFile(disk: SimDisk, path: string, data: Uint8Array): Promise<void> {
  const f = await disk.openAppend(path);
  await f.write(data);
  await f.sync();
  await disk.syncDir(path.slice(0, path.lastIndexOf('/')));
}

describe('SimDisk directory entries', () => {
  it('a file created without a directory sync vanishes in a crash', async () => {
    const disk = new SimDisk();
    const f = await disk.openAppend('/d/new');
    await f.write(bytes(1));
    await f.sync();
    disk.crash();
    expect(disk.paths()).toEqual([]);
  });

  it('a removal without a directory sync is undone by a crash, with the synced bytes only', async () => {
    const disk = new SimDisk();
    await durableFile(disk, '/d/a', bytes(1, 2));
    const f = await disk.openAppend('/d/a');
    await f.write(bytes(3)); // never synced
    await disk.remove('/d/a');
    expect(await disk.list('/d')).toEqual([]);
    disk.crash();
    expect(disk.bytes('/d/a')).toEqual(bytes(1, 2));
  });

  it('a removal made durable by a sync of its directory stays done', async () => {
    const disk = new SimDisk();
    await durableFile(disk, '/d/a', bytes(1));
    await durableFile(disk, '/e/b', bytes(2));
    await disk.remove('/d/a');
    await disk.remove('/e/b');
    await disk.syncDir('/d');
    disk.crash();
    // Only the directory that was synced lost its file for good.
    expect(disk.paths()).toEqual(['/e/b']);
  });

  it('a removal whose directory sync is still pending (manual syncs) is undone by a crash', async () => {
    const disk = new SimDisk({ autoSync: false });
    disk.setBytes('/d/a', bytes(7));
    await disk.remove('/d/a');
    void disk.syncDir('/d');
    disk.crash();
    expect(disk.bytes('/d/a')).toEqual(bytes(7));
  });

  it('a file re-created under a removed name and not made durable gives way to the old one', async () => {
    const disk = new SimDisk();
    await durableFile(disk, '/d/a', bytes(1));
    await disk.remove('/d/a');
    const f = await disk.openAppend('/d/a');
    await f.write(bytes(9));
    await f.sync();
    disk.crash();
    expect(disk.bytes('/d/a')).toEqual(bytes(1));
  });

  it('with tearing, a crash undoes some removals and not others', async () => {
    const disk = new SimDisk();
    for (let i = 0; i < 40; i++) await durableFile(disk, `/d/f${i}`, bytes(i));
    for (let i = 0; i < 40; i++) await disk.remove(`/d/f${i}`);
    let s = 12345;
    const tear = () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    };
    disk.crash({ tear });
    const back = disk.paths().length;
    expect(back).toBeGreaterThan(0);
    expect(back).toBeLessThan(40);
    for (const p of disk.paths()) expect(disk.bytes(p)).toEqual(bytes(Number(p.slice(4))));
  });
});
