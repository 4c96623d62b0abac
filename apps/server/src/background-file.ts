/**
 * A JSON file of the data dir (`metadata.json`, `server.json`) rewritten in the background, off the event
 * loop: the cluster metadata changes twice per replica move on every server, and each version was written
 * synchronously (temp file, fsync, rename, fsync of the directory). Measured in `bench:cluster --reconfig`
 * (session 5): 300-520 ms of each 5 s of moves blocked every server's event loop in those fsyncs, which
 * stalled every group the server leads at once. These files are caches (the metadata lives in the
 * metadata group's log, each group's configuration in its own storage; a restarted server catches up
 * from its peers), so the newest version only has to reach the disk soon, atomically, in order.
 * @module
 */
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonFile } from './identity.js';

/**
 * One JSON file rewritten in the background with the newest value: at most one write in flight; the
 * writes requested meanwhile are coalesced into one more (of the value current when it starts). Each
 * write is atomic and durable (its own temp file `<name>.bg.tmp`, fsync, rename, fsync of the
 * directory). {@link writeNow} writes synchronously (for the rare writes a caller needs durable before
 * it goes on) and wins over a background write in flight, which then writes again.
 */
export class BackgroundJsonFile {
  /** Bumped by every write started (background or {@link writeNow}); a background write renames only if still the newest. */
  private seq = 0;
  private running: Promise<void> | null = null;
  private dirty = false;

  /**
   * @param dataDir the directory of the file
   * @param name its file name
   * @param current the value to write, read when a write starts (null: nothing to write yet)
   * @param onError called when a write fails (the next request tries again)
   */
  constructor(
    private readonly dataDir: string,
    private readonly name: string,
    private readonly current: () => unknown,
    private readonly onError: (e: Error) => void,
  ) {}

  /** Requests a write of the current value, in the background. */
  schedule(): void {
    this.dirty = true;
    if (this.running === null) this.running = this.loop();
  }

  /** Writes the current value now, synchronously (blocks the event loop: rare writes only). */
  writeNow(): void {
    this.seq += 1;
    const value = this.current();
    if (value !== null) writeJsonFile(this.dataDir, this.name, value);
    // A background write in flight may rename its (older) file after this one: write again after it.
    if (this.running !== null) this.dirty = true;
  }

  /** Resolves once no write is in flight nor requested (never rejects). */
  async flushed(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  private async loop(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        this.seq += 1;
        try {
          await this.writeOnce(this.seq);
        } catch (e) {
          this.onError(e as Error);
        }
      }
    } finally {
      this.running = null;
    }
  }

  private async writeOnce(seq: number): Promise<void> {
    const value = this.current();
    if (value === null) return;
    const path = join(this.dataDir, this.name);
    const tmp = `${path}.bg.tmp`;
    const file = await open(tmp, 'w');
    try {
      await file.writeFile(`${JSON.stringify(value, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    if (seq !== this.seq) {
      // A newer write started meanwhile (a writeNow, or a request after a failure): it wins.
      await unlink(tmp).catch(() => {});
      return;
    }
    await rename(tmp, path);
    try {
      const dir = await open(this.dataDir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch {
      // Directory fsync is not supported everywhere; the rename is still atomic.
    }
  }
}
