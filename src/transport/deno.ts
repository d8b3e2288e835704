/**
 * Deno adapter: Unix sockets from `Deno.listen`/`Deno.connect` as Web Streams.
 *
 * Deno users grant `--allow-read --allow-write --allow-net=unix:<path>`
 * (recent Deno asks for net permission on Unix sockets too, denoland/deno#34395).
 *
 * The package's declaration files are built by `tsc`, which has no `Deno`
 * namespace, so the slice of Deno's API used here is declared below and
 * reached through `globalThis`, as the Bun adapter does.
 *
 * @module
 */
import type { Connection, DialOptions, Listener, ListenOptions } from "./connection.ts";
import { bindSocket, dialSocket, isDeadSocketError, removeSocketFile, socketInode } from "./socket_path.ts";

interface DenoUnixConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
}

interface DenoUnixListener {
  accept(): Promise<DenoUnixConn>;
  close(): void;
}

type ErrorClass = abstract new (...args: never[]) => Error;

interface DenoApi {
  listen(options: { transport: "unix"; path: string }): DenoUnixListener;
  connect(options: { transport: "unix"; path: string }): Promise<DenoUnixConn>;
  errors: Record<"BadResource" | "Interrupted" | "ConnectionReset" | "AddrInUse", ErrorClass>;
}

const deno = () => (globalThis as unknown as { Deno: DenoApi }).Deno;

const READ_CHUNK_BYTES = 64 * 1024;

class DenoConnection implements Connection {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly #conn: DenoUnixConn;
  #closed = false;

  constructor(conn: DenoUnixConn) {
    this.#conn = conn;
    // Built on read/write rather than conn.readable/conn.writable, whose p99
    // round trip measured 10x worse here. HWM 0: the socket is read only when
    // the consumer asks, so a paused reader leaves data in the kernel.
    const scratch = new Uint8Array(READ_CHUNK_BYTES);
    this.readable = new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        const request = controller.byobRequest;
        const view = request?.view;
        const target = view ? new Uint8Array(view.buffer, view.byteOffset, view.byteLength) : scratch;
        let n: number | null;
        try {
          n = await conn.read(target);
        } catch (err) {
          n = null;
          if (!this.#closed && !isClosedError(err)) {
            controller.error(err);
            return;
          }
        }
        if (n === null) {
          controller.close();
          request?.respond(0);
        } else if (request) {
          request.respond(n);
        } else {
          controller.enqueue(scratch.slice(0, n));
        }
      },
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
    this.writable = new WritableStream({
      async write(chunk) {
        let offset = 0;
        while (offset < chunk.byteLength) offset += await conn.write(chunk.subarray(offset));
      },
      close: async () => {
        if (!this.#closed) await conn.closeWrite().catch(() => {});
      },
      abort: () => this.close(),
    });
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#conn.close();
      } catch {
        // Already closed by the other side's reset: nothing left to release.
      }
    }
    return Promise.resolve();
  }
}

function isClosedError(err: unknown): boolean {
  return err instanceof deno().errors.BadResource || err instanceof deno().errors.Interrupted ||
    err instanceof deno().errors.ConnectionReset;
}

class DenoListener implements Listener {
  readonly path: string;
  readonly #listener: DenoUnixListener;
  readonly #inode: number | undefined;
  #closed = false;
  #accepting: Promise<unknown> | undefined;

  constructor(listener: DenoUnixListener, path: string) {
    this.#listener = listener;
    this.path = path;
    this.#inode = socketInode(path);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Connection> {
    while (!this.#closed) {
      let conn: DenoUnixConn;
      try {
        const accepting = this.#listener.accept();
        this.#accepting = accepting.catch(() => {});
        conn = await accepting;
      } catch (err) {
        if (this.#closed || isClosedError(err)) return;
        throw err;
      }
      yield new DenoConnection(conn);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Closed already.
    }
    // Deno unlinks the socket path itself once the pending accept() is
    // cancelled, after close() returns; wait for that, or it would delete a
    // socket another hub binds at the same path right after us.
    await this.#accepting;
    removeSocketFile(this.path, this.#inode);
  }
}

async function isLive(path: string): Promise<boolean> {
  try {
    (await deno().connect({ transport: "unix", path })).close();
    return true;
  } catch (err) {
    if (isDeadSocketError(err)) return false;
    throw err;
  }
}

/** Binds a Unix socket with Deno. See the neutral `listen`. */
export function listenDeno(path: string, options: ListenOptions = {}): Promise<Listener> {
  return bindSocket(path, options, {
    isLive,
    bind: () => new DenoListener(deno().listen({ transport: "unix", path }), path),
    isAddressInUse: (err) => err instanceof deno().errors.AddrInUse,
  });
}

/** Connects to a Unix socket with Deno. See the neutral `dial`. */
export async function dialDeno(path: string, options: DialOptions = {}): Promise<Connection> {
  return new DenoConnection(await dialSocket(path, options, () => deno().connect({ transport: "unix", path })));
}
