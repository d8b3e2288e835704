import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { AddressInUseError, ConnectError } from "../errors.ts";
import type { Listener } from "./connection.ts";
import { asPermissionError } from "./permission_error.ts";
import { withTimeout } from "../util/with_timeout.ts";

/** Longest socket path Linux accepts: `sun_path` is 108 bytes with its NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Checks a socket path before use.
 *
 * @throws {RangeError} for an empty path or one longer than the OS allows.
 */
function checkSocketPath(path: string): string {
  if (typeof path !== "string" || path.length === 0) {
    throw new TypeError(`Invalid socket path: expected a non-empty string, got ${String(path)}`);
  }
  const bytes = new TextEncoder().encode(path).byteLength;
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new RangeError(
      `Invalid socket path: ${bytes} bytes exceeds the OS limit of ${MAX_SOCKET_PATH_BYTES} (${path})`,
    );
  }
  return path;
}

/**
 * Checks the `mode` option of `listen` before anything is bound, so a bad
 * value cannot leave a bound socket behind.
 *
 * @throws {RangeError} unless `mode` is an integer from 0 to 0o777.
 */
function checkSocketMode(mode: number): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(`Invalid option mode: expected permission bits from 0 to 0o777, got ${String(mode)}`);
  }
  return mode;
}

/**
 * Whether a failed dial proves that nobody accepts on the path: refused (a
 * socket file without a listener) or gone. Anything else, such as `EAGAIN`
 * from a live server whose backlog is full or `EACCES`, proves nothing.
 */
export function isDeadSocketError(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === "ECONNREFUSED" || code === "ENOENT";
}

/**
 * Makes `path` ready to bind: creates its parent directory `0700` if missing,
 * and removes a stale socket file that nobody accepts on. `isLive` dials the
 * path with the runtime's own API: it resolves `false` only when the dial
 * fails with {@linkcode isDeadSocketError}, and rejects when the dial fails in
 * a way that does not tell.
 *
 * @throws {AddressInUseError} when a live server accepts on `path`, a
 * non-socket file is in the way, or the socket cannot be probed.
 */
async function prepareSocketPath(path: string, isLive: (path: string) => Promise<boolean>): Promise<void> {
  checkSocketPath(path);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new AddressInUseError(`Cannot listen on ${path}: a file that is not a socket is in the way`);
  }
  let live;
  try {
    live = await isLive(path);
  } catch (cause) {
    const denied = asPermissionError(cause, `Cannot listen on ${path}`);
    if (denied) throw denied;
    // Removing a socket we could not prove dead might steal a live server's path.
    const reason = (cause as { code?: string })?.code ?? (cause as Error)?.message ?? String(cause);
    throw new AddressInUseError(`Cannot listen on ${path}: cannot tell whether a process accepts on it (${reason})`, {
      cause,
    });
  }
  if (live) throw addressInUse(path);
  try {
    unlinkSync(path);
  } catch (cause) {
    if ((cause as { code?: string }).code !== "ENOENT") throw cause;
  }
}

/** The inode of the socket file, to remove it on close only if it is still ours. */
export function socketInode(path: string): number | undefined {
  try {
    return lstatSync(path).ino;
  } catch {
    return undefined;
  }
}

/**
 * Removes the socket file if it is still the one with `inode`. Deno 2.9 and
 * Bun 1.4 already unlink the path when a listener closes; this covers
 * runtimes that do not.
 */
export function removeSocketFile(path: string, inode: number | undefined): void {
  if (inode === undefined || socketInode(path) !== inode) return;
  try {
    unlinkSync(path);
  } catch {
    // Already gone: someone else cleaned up, which is the outcome we wanted.
  }
}

/** A `ConnectError` for `path` that keeps the runtime's error as `cause`. */
export function connectError(path: string, cause: unknown): ConnectError {
  if (cause instanceof ConnectError) return cause;
  const reason = (cause as { code?: string; message?: string })?.code ??
    (cause as { message?: string })?.message ?? String(cause);
  return new ConnectError(`Cannot connect to ${path}: ${reason}`, { cause });
}

/** Rejects with `ConnectError` for `path` after `timeout` ms unless `attempt` settles first. */
function withConnectTimeout<T>(path: string, timeout: number, attempt: Promise<T>): Promise<T> {
  return withTimeout(
    attempt,
    timeout,
    () => new ConnectError(`Cannot connect to ${path}: no answer within ${timeout} ms`),
  );
}

/** The `AddressInUseError` for a live server on `path`. */
function addressInUse(path: string, cause?: unknown): AddressInUseError {
  return new AddressInUseError(`Cannot listen on ${path}: a live process accepts connections on it`, { cause });
}

/**
 * The steps every adapter's `listen` shares: check the mode, make the path
 * ready (parent directory, stale socket), bind with the runtime's `bind`,
 * then set the file's mode, closing the listener again if that fails.
 *
 * @throws {AddressInUseError} when a live process serves `path`, or wins the bind race.
 * @throws {PermissionError} when Deno lacks a permission flag for `path`.
 */
export async function bindSocket(
  path: string,
  options: { mode?: number },
  runtime: {
    isLive(path: string): Promise<boolean>;
    bind(): Listener;
    isAddressInUse(err: unknown): boolean;
  },
): Promise<Listener> {
  const mode = checkSocketMode(options.mode ?? 0o600);
  let listener: Listener;
  try {
    await prepareSocketPath(path, runtime.isLive);
    listener = runtime.bind();
  } catch (cause) {
    // Another process bound it between our stale check and now.
    if (runtime.isAddressInUse(cause)) throw addressInUse(path, cause);
    throw asPermissionError(cause, `Cannot listen on ${path}`) ?? cause;
  }
  try {
    chmodSync(path, mode);
  } catch (err) {
    await listener.close();
    throw err;
  }
  return listener;
}

/** The steps every adapter's `dial` shares: check the path, connect within the timeout, wrap failures in `ConnectError`. */
export async function dialSocket<T>(
  path: string,
  options: { timeout?: number },
  connect: () => Promise<T>,
): Promise<T> {
  checkSocketPath(path);
  try {
    return await withConnectTimeout(path, options.timeout ?? 5000, connect());
  } catch (cause) {
    throw asPermissionError(cause, `Cannot connect to ${path}`) ?? connectError(path, cause);
  }
}
