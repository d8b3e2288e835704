/**
 * The seam between the runtime-neutral core and the runtimes. Everything
 * above `src/transport/` sees only these two shapes.
 *
 * @module
 */

/**
 * One duplex byte stream, such as an accepted or dialled Unix socket.
 *
 * @example Writing and reading bytes
 * ```ts
 * import { dial } from "@ipcbus/ipcbus";
 * const conn = await dial("/tmp/app.sock");
 * const writer = conn.writable.getWriter();
 * await writer.write(new Uint8Array([0, 0, 0, 1, 0xf6]));
 * await conn.close();
 * ```
 */
export interface Connection {
  /** Bytes from the other side; ends when it closes. Stops draining the socket when not read. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the other side; `write()` waits while the socket is full. */
  readonly writable: WritableStream<Uint8Array>;
  /** Closes both directions at once, whatever streams are locked. Idempotent. */
  close(): Promise<void>;
}

/**
 * A bound socket that yields each accepted {@linkcode Connection}.
 *
 * @example Accepting connections
 * ```ts
 * import { listen } from "@ipcbus/ipcbus";
 * const listener = await listen("/tmp/app.sock");
 * for await (const conn of listener) {
 *   await conn.close();
 *   break;
 * }
 * await listener.close();
 * ```
 */
export interface Listener extends AsyncIterable<Connection> {
  /** The socket file's path. */
  readonly path: string;
  /** Stops accepting and removes the socket file this listener created. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@linkcode listen}. */
export interface ListenOptions {
  /**
   * Permission bits of the socket file. Connecting needs write permission,
   * so `0o660` shares with the file's group.
   *
   * @default {0o600}
   */
  mode?: number;
}

/** Options of {@linkcode dial}. */
export interface DialOptions {
  /**
   * Milliseconds to wait for the connection before failing with `ConnectError`.
   *
   * @default {5000}
   */
  timeout?: number;
}
