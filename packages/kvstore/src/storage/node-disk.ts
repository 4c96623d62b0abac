import { constants, promises as fsp, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { AppendFile, Disk, OpenAppendOptions } from './disk.js';

class NodeAppendFile implements AppendFile {
  #size: number;
  constructor(
    private readonly handle: fsp.FileHandle,
    size: number,
    readonly syncsEachWrite: boolean,
  ) {
    this.#size = size;
  }
  get size(): number {
    return this.#size;
  }
  /** Positional writes at offsets reserved in call order, so several may be in flight. */
  async write(data: Uint8Array): Promise<void> {
    const at = this.#size;
    this.#size += data.length;
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await this.handle.write(data, off, data.length - off, at + off);
      off += bytesWritten;
    }
  }
  async sync(): Promise<void> {
    await this.handle.datasync();
  }
  async close(): Promise<void> {
    await this.handle.close();
  }
}

function isNotFound(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT';
}

/**
 * {@link Disk} on Node's `fs`: appends by positional writes at reserved offsets, `fdatasync` for sync, directory
 * fsync after creations and renames (POSIX needs it for the entry itself to survive a crash).
 */
export class NodeDisk implements Disk {
  join(...parts: string[]): string {
    return join(...parts);
  }
  async mkdirp(dir: string): Promise<void> {
    const first = await fsp.mkdir(dir, { recursive: true });
    if (first === undefined) return;
    // New directories: each one's entry lives in its parent, durable only after that parent's fsync
    // (a WAL checkpoint could otherwise outlive the directory of the snapshot file it names).
    const created: string[] = [];
    for (let d = resolve(dir); ; d = dirname(d)) {
      created.push(d);
      if (d === resolve(first) || dirname(d) === d) break;
    }
    for (const d of created) await this.syncDir(dirname(d));
  }
  async list(dir: string): Promise<string[]> {
    try {
      return await fsp.readdir(dir);
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
  }
  async readFile(path: string): Promise<Uint8Array | undefined> {
    try {
      const b = await fsp.readFile(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }
  readFileSync(path: string): Uint8Array | undefined {
    try {
      const b = readFileSync(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }
  async openAppend(path: string, options: OpenAppendOptions = {}): Promise<AppendFile> {
    const dsync = options.syncEachWrite === true;
    // No O_APPEND: Linux ignores the position of a positional write on an O_APPEND file, and writes
    // in flight together must land at the offsets reserved for them.
    const flags = constants.O_WRONLY | constants.O_CREAT | (dsync ? constants.O_DSYNC : 0);
    const handle = await fsp.open(path, flags, 0o644);
    const st = await handle.stat();
    return new NodeAppendFile(handle, st.size, dsync);
  }
  async truncate(path: string, size: number): Promise<void> {
    const handle = await fsp.open(path, 'r+');
    try {
      await handle.truncate(size);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  async remove(path: string): Promise<void> {
    await fsp.rm(path, { force: true });
  }
  async syncDir(dir: string): Promise<void> {
    let handle: fsp.FileHandle | undefined;
    try {
      handle = await fsp.open(dir, 'r');
      await handle.sync();
    } catch (e) {
      // Some platforms (Windows) cannot open or fsync a directory; the rename is still atomic there.
      const code = (e as { code?: unknown }).code;
      if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') throw e;
    } finally {
      await handle?.close();
    }
  }
  async link(existingPath: string, newPath: string): Promise<void> {
    await fsp.link(existingPath, newPath);
  }
  async writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
    const tmp = `${path}.tmp`;
    const handle = await fsp.open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, path);
    await this.syncDir(dirname(path));
  }
}
