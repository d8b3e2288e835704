/**
 * Exclusive, non-blocking file locks, used to elect the one hub of a channel.
 *
 * Two processes can never both hold the lock on a path. Both runtimes take it
 * with BSD `flock(2)` in exclusive mode (`LOCK_EX | LOCK_NB`), which the kernel
 * grants to at most one open file description per inode, so every holder of
 * the same file contends for the same lock. Both use `flock` rather than
 * `fcntl` record locks on purpose: on Linux the two kinds never see each
 * other, so a Deno hub and a Bun hub would otherwise both win. The kernel
 * drops the lock when the last descriptor of the holder is closed, which also
 * happens when the process dies, even by `SIGKILL`, so a crashed hub never
 * leaves a stale lock behind. Lock files are opened close-on-exec, so a child
 * the hub spawns does not keep the lock alive after the hub is gone.
 *
 * @module
 */

import { runtime, unsupportedRuntime } from "./runtime.ts";
import { tryLockFileBun } from "./file_lock_bun.ts";
import { tryLockFileDeno } from "./file_lock_deno.ts";
import { asPermissionError } from "./permission_error.ts";

/**
 * An exclusive `flock(2)` held on a file until {@linkcode FileLock.release}
 * is called or the process exits.
 *
 * @example Holding a lock while serving
 * ```ts
 * import { type FileLock, tryLockFile } from "./file_lock.ts";
 * const lock: FileLock | null = await tryLockFile("/tmp/ipcbus-example.lock");
 * if (lock !== null) {
 *   console.log(`serving while holding ${lock.path}`);
 *   await lock.release();
 * }
 * ```
 */
export interface FileLock {
  /** The path the lock was taken on, as given to {@linkcode tryLockFile}. */
  readonly path: string;
  /**
   * Unlocks and closes the file. Calling it again does nothing.
   *
   * @returns A promise that resolves once another process can take the lock.
   */
  release(): Promise<void>;
}

type TryLockFile = (path: string) => Promise<FileLock | null>;

/** Adapter for the runtime this module was loaded in, chosen once. */
const tryLockFileHere: TryLockFile = runtime === "deno"
  ? tryLockFileDeno
  : runtime === "bun"
  ? tryLockFileBun
  : () => Promise.reject(unsupportedRuntime("Cannot lock file: "));

/**
 * Tries to take an exclusive `flock(2)` on `path`, creating the file with
 * mode `0600` if it is missing. Never waits for the lock: each call opens the
 * file anew, so a second call for the same path, even in the same process,
 * resolves to `null` while the first lock is held.
 *
 * @param path The lock file; its parent directory must exist.
 * @returns The lock if it was taken, or `null` at once if another open file
 * description holds it.
 * @throws {UnsupportedRuntimeError} when running on neither Deno nor Bun, or
 * when Bun cannot load libc through `bun:ffi`.
 * @throws {Error} the runtime's own error when the file cannot be opened, for
 * example because its directory is missing or not writable.
 *
 * @example Electing a hub
 * ```ts
 * import { tryLockFile } from "./file_lock.ts";
 * const lock = await tryLockFile("/tmp/ipcbus-example.lock");
 * if (lock === null) {
 *   console.log("another process is the hub");
 * } else {
 *   console.log("this process is the hub");
 *   await lock.release();
 * }
 * ```
 */
export function tryLockFile(path: string): Promise<FileLock | null> {
  return tryLockFileHere(path).catch((err) => {
    throw asPermissionError(err, `Cannot lock ${path}`) ?? err;
  });
}
