/**
 * Deno adapter for `tryLockFile`: `DenoFsFile.tryLock` is stable
 * and calls `flock(fd, LOCK_EX | LOCK_NB)` on Unix.
 *
 * @module
 */

import type { FileLock } from "./file_lock.ts";

// Declared here rather than taken from Deno's global types so that `tsc`
// (which builds the package's declaration files) checks this file too.
interface DenoFsFile {
  tryLock(exclusive: boolean): Promise<boolean>;
  unlock(): Promise<void>;
  close(): void;
}

interface DenoFileApi {
  open(path: string, options: { read: true; write: true; create: true; mode: number }): Promise<DenoFsFile>;
}

const deno = () => (globalThis as unknown as { Deno: DenoFileApi }).Deno;

/**
 * Deno's implementation of `tryLockFile`. Needs read and write
 * permission for `path`.
 *
 * @param path The lock file; its parent directory must exist.
 * @returns The lock if it was taken, or `null` if another open file
 * description holds it.
 * @throws {Deno.errors.NotFound} when the parent directory is missing.
 * @throws {Deno.errors.PermissionDenied} when the file cannot be opened for
 * writing.
 *
 * @example
 * ```ts
 * import { tryLockFileDeno } from "./file_lock_deno.ts";
 * const lock = await tryLockFileDeno("/tmp/ipcbus-example.lock");
 * await lock?.release();
 * ```
 */
export async function tryLockFileDeno(path: string): Promise<FileLock | null> {
  // A fresh open file description per call: flock belongs to the description,
  // so this is what makes a second call in the same process see the lock.
  const file = await deno().open(path, {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  });
  let locked: boolean;
  try {
    locked = await file.tryLock(true);
  } catch (err) {
    file.close();
    throw err;
  }
  if (!locked) {
    file.close();
    return null;
  }
  return new DenoFileLock(path, file);
}

class DenoFileLock implements FileLock {
  readonly path: string;
  #file: DenoFsFile | null;

  constructor(path: string, file: DenoFsFile) {
    this.path = path;
    this.#file = file;
  }

  async release(): Promise<void> {
    const file = this.#file;
    if (file === null) return;
    this.#file = null;
    try {
      // Deno may run file ops on a dup of the descriptor; unlocking first
      // frees the lock even while such a dup is still open.
      await file.unlock();
    } finally {
      file.close();
    }
  }
}
