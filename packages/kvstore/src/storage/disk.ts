/**
 * The file port of the storage layer. Everything the write-ahead log and the snapshot store do to a
 * disk goes through {@link Disk}, so the same code runs on the real file system ({@link NodeDisk}) and
 * on a simulated disk ({@link SimDisk}) that keeps only synced bytes when the simulated machine crashes.
 * @module
 */

/** A file opened for appending. Writes land in the OS cache; only {@link AppendFile.sync} makes them durable. */
export interface AppendFile {
  /** Current size of the file in bytes (including unsynced writes). */
  readonly size: number;
  /**
   * Writes `data` at the end of the file as of the call: {@link AppendFile.size} grows at once, so
   * several writes may be in flight, each landing at its own offset in call order. Not durable until
   * {@link AppendFile.sync} resolves (or this write resolves, on a file that {@link AppendFile.syncsEachWrite}).
   * After a crash, an earlier write still in flight may be missing while a later one is on disk.
   */
  write(data: Uint8Array): Promise<void>;
  /** Makes every byte written so far durable (fdatasync). */
  sync(): Promise<void>;
  /** Closes the handle. Unsynced bytes stay in the OS cache (and may be lost on a machine crash). */
  close(): Promise<void>;
  /**
   * True when every {@link AppendFile.write} is durable once it resolves (the file was opened with
   * {@link OpenAppendOptions.syncEachWrite} and the disk honours it), so no separate sync is needed.
   */
  readonly syncsEachWrite?: boolean;
}

/** Options of {@link Disk.openAppend}. */
export interface OpenAppendOptions {
  /**
   * Make every write durable before it resolves (`O_DSYNC`): one system call per write instead of a
   * write and an `fdatasync`. A disk may ignore it; {@link AppendFile.syncsEachWrite} says whether it
   * did. Default false.
   */
  readonly syncEachWrite?: boolean;
}

/**
 * What the storage layer needs from a file system. Paths are plain strings joined with {@link Disk.join}.
 * Every method rejects with the underlying error on IO failure; callers treat that as fatal for the
 * store (after a failed fsync nothing can be assumed about the file).
 */
export interface Disk {
  /** Joins path segments with the platform separator. */
  join(...parts: string[]): string;
  /**
   * Creates `dir` and its parents if missing. The entries of the directories it creates are durable
   * when it resolves (their parents are synced), so a file made durable in `dir` is never lost with it.
   */
  mkdirp(dir: string): Promise<void>;
  /** Names (not paths) of the entries of `dir`; empty if `dir` does not exist. */
  list(dir: string): Promise<string[]>;
  /** Whole content of `path`, or `undefined` if the file does not exist. */
  readFile(path: string): Promise<Uint8Array | undefined>;
  /**
   * {@link Disk.readFile}, synchronously. Optional: with it, a group's storage drops its snapshot's
   * bytes from memory once the snapshot file is durable and reads the file again when the snapshot is
   * needed (a follower that fell behind the log, a replica that joins); without it, the bytes of the
   * latest snapshot stay in memory.
   */
  readFileSync?(path: string): Uint8Array | undefined;
  /** Opens `path` for appending, creating it if missing (a new file is durable only after {@link Disk.syncDir}). */
  openAppend(path: string, options?: OpenAppendOptions): Promise<AppendFile>;
  /** Cuts `path` to `size` bytes and makes the cut durable. */
  truncate(path: string, size: number): Promise<void>;
  /** Removes `path` if it exists. */
  remove(path: string): Promise<void>;
  /** Makes the entries (creations, renames, removals) of `dir` durable. */
  syncDir(dir: string): Promise<void>;
  /**
   * Replaces `path` with `data` atomically and durably: write a temporary file, fsync it, rename it over
   * `path`, fsync the directory. After a crash the file holds either the old or the new content, never a mix.
   */
  writeFileAtomic(path: string, data: Uint8Array): Promise<void>;
  /**
   * Gives the existing file `existingPath` a second name, `newPath` (a hard link: no byte is copied).
   * The new name is durable after {@link Disk.syncDir} of its directory. Only for files that are never
   * written in place again (snapshot files: they are replaced with {@link Disk.writeFileAtomic}).
   * Optional: without it, or when it rejects (`newPath` exists, another file system, no hard links),
   * the storage writes a copy instead.
   */
  link?(existingPath: string, newPath: string): Promise<void>;
}
