import type { Connection, DialOptions, Listener, ListenOptions } from "./connection.ts";
import { dialDeno, listenDeno } from "./deno.ts";
import { dialBun, listenBun } from "./bun.ts";
import { runtime, unsupportedRuntime } from "./runtime.ts";

/**
 * Binds a Unix socket at `path` and accepts connections as Web Streams, on
 * Deno or Bun. The parent directory is created `0700` if missing; a stale
 * socket file (nobody accepts on it) is replaced; `close()` removes the file.
 *
 * @param path Socket file path, at most 107 bytes.
 * @param options The socket file's mode.
 * @returns The listener, already accepting.
 * @throws {AddressInUseError} when a live server accepts on `path`, a file
 * that is not a socket is in the way, or the socket file cannot be probed.
 * @throws {RangeError} when `path` is longer than the OS allows, or `mode` is
 * not permission bits from 0 to 0o777.
 * @throws {UnsupportedRuntimeError} on a runtime other than Deno or Bun.
 *
 * @example An echo server
 * ```ts
 * import { listen } from "@ipcbus/ipcbus";
 * const listener = await listen("/tmp/echo.sock");
 * for await (const conn of listener) void conn.readable.pipeTo(conn.writable);
 * ```
 */
export function listen(path: string, options?: ListenOptions): Promise<Listener> {
  if (runtime === "deno") return listenDeno(path, options);
  if (runtime === "bun") return listenBun(path, options);
  return Promise.reject(unsupportedRuntime(""));
}

/**
 * Connects to the Unix socket at `path`, on Deno or Bun.
 *
 * @param path Socket file path.
 * @param options Connect timeout.
 * @returns The connection.
 * @throws {ConnectError} when the socket is missing, dead, or does not answer in time.
 * @throws {UnsupportedRuntimeError} on a runtime other than Deno or Bun.
 *
 * @example Sending a frame
 * ```ts
 * import { dial, FrameEncoderStream } from "@ipcbus/ipcbus";
 * const conn = await dial("/tmp/echo.sock");
 * await ReadableStream.from([{ hi: 1 }]).pipeThrough(new FrameEncoderStream()).pipeTo(conn.writable);
 * ```
 */
export function dial(path: string, options?: DialOptions): Promise<Connection> {
  if (runtime === "deno") return dialDeno(path, options);
  if (runtime === "bun") return dialBun(path, options);
  return Promise.reject(unsupportedRuntime(""));
}
