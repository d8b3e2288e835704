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
import { LARGE_READ_BYTES, raiseHeapThresholds } from "./heap_thresholds.ts";
import { ReadBufferSize } from "./read_buffer_size.ts";
import { bindSocket, dialSocket, isDeadSocketError, removeSocketFile, socketInode } from "./socket_path.ts";

import {
  BYTE_CHANNEL,
  type ByteChannel,
  type ByteChannelConnection,
  type ByteSink,
  ReadLoopPause,
} from "./byte_channel.ts";

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

/** Bytes a `readable` read asks the socket for when the reader brings no buffer of its own. */
const READ_CHUNK_BYTES = 64 * 1024;
/**
 * After a read that filled its buffer more is waiting: the next read goes
 * into one of these, shared by all connections and taken only for the read
 * and the synchronous handling of its bytes.
 */
const BURST_READ_BYTES = 64 * 1024;
/** Burst buffers kept for reuse: as many as connections read a burst at the same time. */
const MAX_POOLED_BURST_BUFFERS = 4;
const burstBuffers: Uint8Array[] = [];
/** A connection's own read buffer while a fresh one takes its place (made again when next needed). */
const NO_BUFFER = new Uint8Array(0);
/**
 * Turns of the microtask queue a connection waits for its own side to write
 * before it makes a fresh read buffer (see `#pump`): a request's answer is
 * handled, and the next request written, within a few.
 */
const WRITE_WAIT_TURNS = 32;
/**
 * ... and then waits this many more, so that what finishes the write (its
 * promise, the writer's bookkeeping) runs first. Measured on 100 KiB round
 * trips between a Deno hub and client, medians of 12 or 13 runs: 99 µs with
 * none, 89 with 8, 82.5 with 16 (82 and 80 with 32 and 64, four runs each).
 */
const AFTER_WRITE_TURNS = 16;

/**
 * The size of a fresh buffer for the next read, when the sink asks for one
 * of `wanted` bytes (a whole frame like the last): a sixteenth more, so a
 * frame a little larger fits too, within what this connection's own read
 * buffer may hold (`ownBytes`); 0 for none.
 */
function freshReadBytes(wanted: number, ownBytes: number): number {
  return wanted > 0 && wanted < ownBytes ? Math.min(wanted + (wanted >> 4), ownBytes) : 0;
}

class DenoConnection implements ByteChannelConnection {
  readonly [BYTE_CHANNEL]: ByteChannel;
  readonly #conn: DenoUnixConn;
  #closed = false;
  // The stream faces are made on first use: the hub and the peer read and
  // write through the byte channel, and a stream pair with its controllers,
  // queues and closures costs some 5 KiB per connection (issue 13).
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  /** Set when the byte channel opened: a `readable` made later comes locked. */
  #channelOpen = false;

  constructor(conn: DenoUnixConn) {
    this.#conn = conn;
    this[BYTE_CHANNEL] = new DenoByteChannel(conn, this);
  }

  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable) return this.#readable;
    const conn = this.#conn;
    // Built on read/write rather than conn.readable/conn.writable, whose p99
    // round trip measured 10x worse here. HWM 0: the socket is read only when
    // the consumer asks, so a paused reader leaves data in the kernel.
    let scratch: Uint8Array | undefined;
    this.#readable = new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        const request = controller.byobRequest;
        const view = request?.view;
        const target = view
          ? new Uint8Array(view.buffer, view.byteOffset, view.byteLength)
          : (scratch ??= new Uint8Array(READ_CHUNK_BYTES));
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
          controller.enqueue(target.slice(0, n));
        }
      },
      cancel: () => this.close(),
    }, { highWaterMark: 0 });
    // The socket has one reader: the byte channel's, if it opened first.
    if (this.#channelOpen) void this.#readable.getReader();
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array> {
    const channel = this[BYTE_CHANNEL];
    return this.#writable ??= new WritableStream({
      write: (chunk) => channel.write(chunk),
      close: async () => {
        if (!this.#closed) await this.#conn.closeWrite().catch(() => {});
      },
      abort: () => this.close(),
    });
  }

  /** The byte channel opens: locks the stream face, which throws if `readable` was read first. */
  lockReadable(): void {
    if (this.#readable) void this.#readable.getReader();
    this.#channelOpen = true;
  }

  get closed(): boolean {
    return this.#closed;
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

/** Reads with `conn.read` in a loop and pushes each chunk to the sink: what raw Deno code does. */
class DenoByteChannel extends ReadLoopPause implements ByteChannel {
  readonly #conn: DenoUnixConn;
  readonly #owner: DenoConnection;
  /** Whether this side wrote since its last read. */
  #wrote = false;

  constructor(conn: DenoUnixConn, owner: DenoConnection) {
    super();
    this.#conn = conn;
    this.#owner = owner;
  }

  open(sink: ByteSink): void {
    this.#owner.lockReadable();
    void this.#pump(sink);
  }

  async #pump(sink: ByteSink): Promise<void> {
    // The read that waits while the socket is quiet goes into a buffer of our
    // own, sized to what this connection's reads return (see ReadBufferSize):
    // it is held for as long as the other side is silent.
    const ownSize = new ReadBufferSize();
    let own = new Uint8Array(ownSize.bytes);
    let burst = false;
    let error: unknown;
    try {
      while (true) {
        // Checked first: awaiting even a settled promise costs a turn per read.
        if (this.paused) await this.untilResumed();
        const space = sink.space?.();
        if (space) {
          // A large frame is coming, and one fresh buffer per frame for its user:
          // let glibc keep large blocks in its heap from now on.
          if (space.byteLength >= LARGE_READ_BYTES) raiseHeapThresholds();
          const n = await this.#conn.read(space);
          if (n === null) break;
          sink.data(space.subarray(0, n), true);
          burst = false;
          continue;
        }
        // The last chunk was one whole large frame, handed to a user who keeps
        // it: the next goes into a fresh buffer, so that a frame like it is
        // handed over in it instead of being copied out of ours. The fresh
        // buffer takes the place of our own, within our own one's size.
        const fresh = freshReadBytes(sink.nextReadBytes?.() ?? 0, ownSize.bytes);
        if (fresh > 0) {
          raiseHeapThresholds();
          // Made once this side has written (a request/reply's next request):
          // making it then overlaps the other side's work, where before the
          // write, or while the write is being finished, it holds the write up.
          await this.#afterWrite();
          if (this.paused) continue;
          own = NO_BUFFER;
          const mine = new Uint8Array(fresh);
          const n = await this.#conn.read(mine);
          if (n === null) break;
          this.#wrote = false;
          ownSize.record(n);
          // Kept only when mostly full: a small frame must not keep a large buffer alive.
          sink.data(mine.subarray(0, n), n * 2 >= fresh);
          burst = n === fresh;
          continue;
        }
        // A read that filled its buffer left more behind: read it at once
        // into a large shared buffer. One that did not emptied the socket, and
        // the next may wait long: into the buffer of our own, sized to this
        // connection's reads.
        if (!burst && own.byteLength !== ownSize.bytes) own = new Uint8Array(ownSize.bytes);
        const buffer: Uint8Array = burst ? burstBuffers.pop() ?? new Uint8Array(BURST_READ_BYTES) : own;
        try {
          const n = await this.#conn.read(buffer);
          if (n === null) break;
          this.#wrote = false;
          sink.data(buffer.subarray(0, n), false);
          burst = n === buffer.byteLength;
          if (buffer === own) ownSize.record(n);
        } finally {
          if (buffer !== own && burstBuffers.length < MAX_POOLED_BURST_BUFFERS) burstBuffers.push(buffer);
        }
      }
    } catch (err) {
      if (!this.#owner.closed && !isClosedError(err)) error = err;
    }
    ownSize.release();
    sink.end(error);
  }

  /**
   * Resolves {@linkcode AFTER_WRITE_TURNS} turns after this side started a
   * write since its last read, or after {@linkcode WRITE_WAIT_TURNS} turns
   * without one (a peer that only receives).
   */
  async #afterWrite(): Promise<void> {
    for (let turn = 0; turn < WRITE_WAIT_TURNS && !this.#wrote; turn++) await undefined;
    if (!this.#wrote) return;
    for (let turn = 0; turn < AFTER_WRITE_TURNS; turn++) await undefined;
  }

  write(bytes: Uint8Array): Promise<void> {
    this.#wrote = true;
    // One promise besides the op's when the socket takes it all, as it mostly does.
    return this.#conn.write(bytes).then((n) => (n < bytes.byteLength ? this.#writeRest(bytes, n) : undefined));
  }

  async #writeRest(bytes: Uint8Array, offset: number): Promise<void> {
    while (offset < bytes.byteLength) offset += await this.#conn.write(bytes.subarray(offset));
  }

  async closeWrite(): Promise<void> {
    if (!this.#owner.closed) await this.#conn.closeWrite().catch(() => {});
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
