import type { AppendFile, Disk, OpenAppendOptions } from './disk.js';

interface SimFile {
  data: Uint8Array;
  len: number;
  /** Bytes [0, syncedLen) survive a crash. */
  syncedLen: number;
  /** Whether the directory entry is durable (false for a file created and not yet covered by syncDir). */
  linked: boolean;
}

/** Options of {@link SimDisk}. */
export interface SimDiskOptions {
  /**
   * When `false` (default `true`), `sync()`, `syncDir()` and `writeFileAtomic()` stay pending until the
   * test calls {@link SimDisk.completeSyncs}: a crash in between loses what they were about to make
   * durable. Use it to let crashes fall between a write and its fsync.
   */
  readonly autoSync?: boolean;
}

/** Options of {@link SimDisk.crash}. */
export interface CrashOptions {
  /**
   * If given, each file keeps a random prefix of its unsynced bytes (a torn write), sometimes followed by
   * zeros (blocks allocated but never written), or (one time in four) all of them but a hole of zeros
   * (write-back out of order). Called for random numbers in [0, 1).
   */
  readonly tear?: () => number;
}

function never<T>(): Promise<T> {
  return new Promise<T>(() => {});
}

/**
 * An in-memory {@link Disk} with the failure model of a real machine: writes go to a cache; `sync` makes
 * them durable; {@link SimDisk.crash} throws away everything that was not synced (new files whose
 * directory was not synced vanish, removed files whose directory was not synced come back, pending syncs
 * never complete) and can tear the last unsynced write.
 * Handles opened before a crash are dead afterwards: their operations never complete, as in a killed
 * process. Deterministic: it uses no clock and no randomness of its own.
 */
export class SimDisk implements Disk {
  private readonly files = new Map<string, SimFile>();
  /**
   * Files removed while their directory entry was durable, until a sync of their directory makes the
   * removal durable: a crash before it brings them back (with their synced bytes), as an `unlink`
   * without an `fsync` of the directory may be undone by a power loss.
   */
  private readonly unlinked = new Map<string, SimFile>();
  private generation = 0;
  private readonly autoSync: boolean;
  private pending: Array<() => void> = [];
  /** Number of file syncs performed (for tests and metrics). */
  fsyncs = 0;

  constructor(options: SimDiskOptions = {}) {
    this.autoSync = options.autoSync ?? true;
  }

  join(...parts: string[]): string {
    return parts.join('/').replace(/\/+/g, '/');
  }

  private dirOf(path: string): string {
    const i = path.lastIndexOf('/');
    return i < 0 ? '' : path.slice(0, i);
  }

  /** Runs `effect` now (autoSync) or when the test calls {@link SimDisk.completeSyncs}; dead after a crash. */
  private durable(gen: number, effect: () => void): Promise<void> {
    if (gen !== this.generation) return never();
    if (this.autoSync) {
      effect();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.pending.push(() => {
        effect();
        resolve();
      });
    });
  }

  /**
   * A view of this disk for one incarnation of the process that uses it: once the disk crashes, every
   * operation started through the view never completes, as a killed process does nothing more. Without
   * it, code of a crashed incarnation still running in the test process (a write loop that was about to
   * create a segment, say) would act on the disk after the crash, beside the next incarnation.
   * Open each incarnation's storage on a fresh view.
   */
  incarnation(): Disk {
    const gen = this.generation;
    const guard = <R>(op: () => Promise<R>): Promise<R> => (gen === this.generation ? op() : never<R>());
    return {
      join: (...parts) => this.join(...parts),
      mkdirp: (dir) => guard(() => this.mkdirp(dir)),
      list: (dir) => guard(() => this.list(dir)),
      readFile: (path) => guard(() => this.readFile(path)),
      // A read changes nothing: a crashed incarnation may still read (as a dying process could).
      readFileSync: (path) => this.readFileSync(path),
      openAppend: (path, options) => guard(() => this.openAppend(path, options)),
      truncate: (path, size) => guard(() => this.truncate(path, size)),
      remove: (path) => guard(() => this.remove(path)),
      syncDir: (dir) => guard(() => this.syncDir(dir)),
      writeFileAtomic: (path, data) => guard(() => this.writeFileAtomic(path, data)),
      link: (existingPath, newPath) => guard(() => this.link(existingPath, newPath)),
    };
  }

  /** Completes every pending sync (manual mode). Returns how many completed. */
  completeSyncs(): number {
    const p = this.pending;
    this.pending = [];
    for (const f of p) f();
    return p.length;
  }

  /** Number of syncs waiting for {@link SimDisk.completeSyncs}. */
  get pendingSyncs(): number {
    return this.pending.length;
  }

  async mkdirp(_dir: string): Promise<void> {}

  async list(dir: string): Promise<string[]> {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    const out: string[] = [];
    for (const p of this.files.keys()) {
      if (p.startsWith(prefix) && !p.slice(prefix.length).includes('/')) out.push(p.slice(prefix.length));
    }
    return out.sort();
  }

  async readFile(path: string): Promise<Uint8Array | undefined> {
    return this.readFileSync(path);
  }

  readFileSync(path: string): Uint8Array | undefined {
    const f = this.files.get(path);
    return f ? f.data.slice(0, f.len) : undefined;
  }

  async openAppend(path: string, _options?: OpenAppendOptions): Promise<AppendFile> {
    let f = this.files.get(path);
    if (!f) {
      f = { data: new Uint8Array(256), len: 0, syncedLen: 0, linked: false };
      this.files.set(path, f);
    }
    const gen = this.generation;
    const file = f;
    const disk = this;
    return {
      get size() {
        return file.len;
      },
      write(data: Uint8Array): Promise<void> {
        if (gen !== disk.generation || disk.files.get(path) !== file) return never();
        SimDisk.appendTo(file, data);
        return Promise.resolve();
      },
      sync(): Promise<void> {
        const upTo = file.len;
        return disk.durable(gen, () => {
          disk.fsyncs++;
          if (disk.files.get(path) === file)
            file.syncedLen = Math.max(file.syncedLen, Math.min(upTo, file.len));
        });
      },
      close(): Promise<void> {
        return Promise.resolve();
      },
    };
  }

  private static appendTo(file: SimFile, data: Uint8Array): void {
    if (file.len + data.length > file.data.length) {
      const grown = new Uint8Array(Math.max(file.data.length * 2, file.len + data.length));
      grown.set(file.data.subarray(0, file.len));
      file.data = grown;
    }
    file.data.set(data, file.len);
    file.len += data.length;
  }

  async truncate(path: string, size: number): Promise<void> {
    const f = this.files.get(path);
    if (!f) return;
    f.len = Math.min(f.len, size);
    f.syncedLen = Math.min(f.syncedLen, f.len);
  }

  async remove(path: string): Promise<void> {
    const f = this.files.get(path);
    if (!f) return;
    this.files.delete(path);
    // Only a durable entry can come back; an earlier removal of the same name not yet synced keeps
    // its file (the last durable one) unless this one's entry was durable too.
    if (f.linked) this.unlinked.set(path, f);
  }

  syncDir(dir: string): Promise<void> {
    const d = dir.replace(/\/+$/, '');
    const names = [...this.files.entries()].filter(([p]) => this.dirOf(p) === d);
    const removed = [...this.unlinked.entries()].filter(([p]) => this.dirOf(p) === d);
    return this.durable(this.generation, () => {
      for (const [p, f] of names) if (this.files.get(p) === f) f.linked = true;
      for (const [p, f] of removed) if (this.unlinked.get(p) === f) this.unlinked.delete(p);
    });
  }

  writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
    const copy = data.slice();
    return this.durable(this.generation, () => {
      this.fsyncs++;
      this.files.set(path, { data: copy, len: copy.length, syncedLen: copy.length, linked: true });
    });
  }

  /**
   * A second name for `existingPath` (a hard link), lost in a crash until {@link SimDisk.syncDir} of its
   * directory. The new name holds the file's synced bytes: only files that are never written in place
   * again are linked (see `Disk.link`), so they are the same bytes. Rejects (with `code` `ENOENT` or
   * `EEXIST`) if the file is missing or `newPath` exists.
   */
  async link(existingPath: string, newPath: string): Promise<void> {
    const f = this.files.get(existingPath);
    if (!f) throw Object.assign(new Error(`link: no file ${existingPath}`), { code: 'ENOENT' });
    if (this.files.has(newPath))
      throw Object.assign(new Error(`link: ${newPath} exists`), { code: 'EEXIST' });
    const data = f.data.slice(0, f.syncedLen);
    this.files.set(newPath, { data, len: data.length, syncedLen: data.length, linked: false });
  }

  /**
   * Simulates a power loss: every file falls back to its synced bytes (optionally keeping a torn part of
   * the rest), files never made durable by a directory sync disappear, files removed without a
   * directory sync since come back (with `tear`, each one only sometimes: a journal may have committed
   * some of the removals), pending syncs are abandoned and every handle opened before is dead.
   */
  crash(options: CrashOptions = {}): void {
    this.generation++;
    this.pending = [];
    for (const [p, f] of [...this.files]) {
      if (!f.linked) {
        this.files.delete(p);
        continue;
      }
      const unsynced = f.len - f.syncedLen;
      let keep = f.syncedLen;
      if (options.tear && unsynced > 0 && options.tear() < 0.25) {
        // Write-back out of order: the unsynced bytes reached the disk except a hole of zeros (an
        // earlier write still in flight while a later one landed).
        const from = f.syncedLen + Math.floor(options.tear() * unsynced);
        const to = from + 1 + Math.floor(options.tear() * (f.len - from));
        f.data.fill(0, from, Math.min(to, f.len));
        f.syncedLen = f.len;
        continue;
      }
      if (options.tear && unsynced > 0) {
        keep += Math.floor(options.tear() * (unsynced + 1));
        if (keep < f.len && options.tear() < 0.5) {
          const zeros = Math.floor(options.tear() * (f.len - keep + 1));
          f.data.fill(0, keep, keep + zeros);
          keep += zeros;
        }
      }
      f.len = keep;
      f.syncedLen = keep;
    }
    for (const [p, f] of this.unlinked) {
      // A name whose removal did not survive: the file is back with its synced bytes. (A later file of
      // the same name was not durable, or the removal would have been synced with it.)
      if (this.files.has(p) || (options.tear && options.tear() < 0.5)) continue;
      const data = f.data.slice(0, f.syncedLen);
      this.files.set(p, { data, len: data.length, syncedLen: data.length, linked: true });
    }
    this.unlinked.clear();
  }

  /** Test helper: a copy of the current bytes of `path`, or `undefined`. */
  bytes(path: string): Uint8Array | undefined {
    const f = this.files.get(path);
    return f ? f.data.slice(0, f.len) : undefined;
  }

  /** Test helper: replaces `path` with `data`, durably. */
  setBytes(path: string, data: Uint8Array): void {
    this.files.set(path, { data: data.slice(), len: data.length, syncedLen: data.length, linked: true });
  }

  /** Test helper: every path on the disk. */
  paths(): string[] {
    return [...this.files.keys()].sort();
  }
}
