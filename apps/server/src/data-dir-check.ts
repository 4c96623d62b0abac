/**
 * The start-up check of the data dir: the server refuses to start (exit 1, a message that says what to
 * do) when its data dir cannot be created or written, or when a file in it (WAL segment, snapshot,
 * identity) cannot be read, instead of listening while its replica groups fail to open.
 */
import {
  accessSync,
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

/** The data dir is unusable; the message names the path, the OS error and the fix. */
export class DataDirError extends Error {
  override readonly name = 'DataDirError';
}

const codeOf = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

function checkReadable(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path);
    try {
      if (st.isDirectory()) {
        accessSync(path, constants.R_OK | constants.X_OK);
        checkReadable(path);
      } else if (st.isFile()) {
        closeSync(openSync(path, 'r'));
      }
    } catch (e) {
      if (e instanceof DataDirError) throw e;
      throw new DataDirError(
        `cannot read ${path} (${codeOf(e)}): the server needs every file of its data dir; fix its permissions`,
      );
    }
  }
}

/**
 * Creates `dir` if needed, proves it writable (a probe file written, fsynced and removed) and every file
 * under it readable.
 * @throws {DataDirError} otherwise.
 */
export function checkDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new DataDirError(
      `cannot create the data dir ${dir} (${codeOf(e)}): create it, or pass another --data-dir`,
    );
  }
  const probe = join(dir, `.paxkv-write-check-${process.pid}`);
  try {
    const fd = openSync(probe, 'w');
    try {
      writeSync(fd, 'ok');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    unlinkSync(probe);
  } catch (e) {
    throw new DataDirError(
      `the data dir ${dir} is not writable (${codeOf(e)}): fix its permissions, or pass another --data-dir`,
    );
  }
  try {
    checkReadable(dir);
  } catch (e) {
    if (e instanceof DataDirError) throw e;
    throw new DataDirError(`cannot list the data dir ${dir} (${codeOf(e)}): fix its permissions`);
  }
}
