/**
 * Bun adapter for `tryLockFile`. Bun has no file-lock API
 * (oven-sh/bun#26230), so this calls libc `flock(2)` through `bun:ffi` on a
 * descriptor opened with `node:fs`.
 *
 * @module
 */

import { closeSync, constants, openSync } from "node:fs";
import { constants as osConstants, platform } from "node:os";
import { IpcError, UnsupportedRuntimeError } from "../errors.ts";
import type { FileLock } from "./file_lock.ts";

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

/** A native function as `bun:ffi` returns it; every value used here is a number. */
type NativeFunction = (...args: number[]) => number;

/**
 * The part of `bun:ffi` used here, declared locally so that `deno check` needs
 * no Bun types.
 */
interface BunFfi {
  readonly suffix: string;
  readonly read: { i32(pointer: number, byteOffset: number): number };
  dlopen(
    path: string,
    symbols: Record<string, { args: string[]; returns: string }>,
  ): { symbols: Record<string, NativeFunction> };
}

interface Libc {
  flock(fd: number, operation: number): number;
  /** The calling thread's `errno`. */
  errno(): number;
}

let libc: Promise<Libc> | undefined;

async function openLibc(): Promise<Libc> {
  // A specifier that is not a string literal keeps `deno check` from trying
  // to resolve a module that only exists in Bun.
  const ffiSpecifier = "bun:ffi";
  const ffi = await import(ffiSpecifier) as BunFfi;
  const linux = platform() === "linux";
  // On glibc, "libc.so" is a linker script that dlopen rejects; "libc.so.6"
  // is the library itself, and musl answers to that name as well.
  const names = linux ? ["libc.so.6", `libc.${ffi.suffix}`] : [`libc.${ffi.suffix}`];
  const errnoSymbol = linux ? "__errno_location" : "__error";
  const failures: unknown[] = [];
  for (const name of names) {
    try {
      const { symbols } = ffi.dlopen(name, {
        flock: { args: ["i32", "i32"], returns: "i32" },
        [errnoSymbol]: { args: [], returns: "ptr" },
      });
      return {
        flock: (fd, operation) => symbols.flock(fd, operation),
        errno: () => ffi.read.i32(symbols[errnoSymbol](), 0),
      };
    } catch (err) {
      failures.push(err);
    }
  }
  throw new UnsupportedRuntimeError(
    `Cannot lock file: bun:ffi could not load libc as ${names.join(" or ")}`,
    { cause: new AggregateError(failures) },
  );
}

/**
 * Bun's implementation of `tryLockFile`.
 *
 * @param path The lock file; its parent directory must exist.
 * @returns The lock if it was taken, or `null` if another open file
 * description holds it.
 * @throws {UnsupportedRuntimeError} when `bun:ffi` cannot load libc.
 * @throws {IpcError} when `flock` fails for a reason other than the lock
 * being held, such as `ENOLCK`.
 * @throws {Error} the `node:fs` error, with its `code`, when the file cannot
 * be opened.
 *
 * @example
 * ```ts
 * import { tryLockFileBun } from "./file_lock_bun.ts";
 * // Only Bun has bun:ffi; portable code calls tryLockFile from file_lock.ts.
 * if ("Bun" in globalThis) {
 *   const lock = await tryLockFileBun("/tmp/ipcbus-example.lock");
 *   await lock?.release();
 * }
 * ```
 */
export async function tryLockFileBun(path: string): Promise<FileLock | null> {
  libc ??= openLibc();
  const { flock, errno } = await libc;
  // A fresh open file description per call: flock belongs to the description,
  // so this is what makes a second call in the same process see the lock.
  // Bun's openSync adds O_CLOEXEC by itself (node:fs has no constant for it),
  // so a child process spawned later does not inherit and keep the lock.
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  if (flock(fd, LOCK_EX | LOCK_NB) === 0) return new BunFileLock(path, fd, flock);
  // bun:ffi does not capture errno, so it is read with a second call right
  // away, before any other libc call on this thread can overwrite it.
  const code = errno();
  closeSync(fd);
  if (code === osConstants.errno.EWOULDBLOCK) return null;
  const name = Object.entries(osConstants.errno).find(([, value]) => value === code)?.[0];
  throw new IpcError(`Cannot lock file: flock on ${path} failed with ${name ?? `errno ${code}`}`);
}

class BunFileLock implements FileLock {
  readonly path: string;
  #fd: number;
  readonly #flock: Libc["flock"];

  constructor(path: string, fd: number, flock: Libc["flock"]) {
    this.path = path;
    this.#fd = fd;
    this.#flock = flock;
  }

  release(): Promise<void> {
    const fd = this.#fd;
    if (fd < 0) return Promise.resolve();
    this.#fd = -1;
    try {
      // The result is not checked: this descriptor is the only one on its
      // open file description, so closing it drops the lock in any case.
      this.#flock(fd, LOCK_UN);
      closeSync(fd);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
