/**
 * Bun adapter: Unix sockets from `Bun.listen`/`Bun.connect` as Web Streams.
 *
 * Deno type-checks this file too, so the slice of Bun's API used here is
 * declared below and reached through `globalThis`.
 *
 * @module
 */
import type { Connection, DialOptions, Listener, ListenOptions } from "./connection.ts";
import { bindSocket, dialSocket, isDeadSocketError, removeSocketFile, socketInode } from "./socket_path.ts";
import { BYTE_CHANNEL, type ByteChannel, type ByteChannelConnection, type ByteSink } from "./byte_channel.ts";
import { plainBytes } from "../util/plain_bytes.ts";

interface BunSocket {
  data: BunConnection | undefined;
  write(data: Uint8Array): number;
  end(): void;
  shutdown(halfClose?: boolean): void;
  pause(): void;
  resume(): void;
}

interface BunSocketHandler {
  open?(socket: BunSocket): void;
  data(socket: BunSocket, data: Uint8Array): void;
  drain(socket: BunSocket): void;
  end(socket: BunSocket): void;
  close(socket: BunSocket, error?: Error): void;
  error(socket: BunSocket, error: Error): void;
  connectError?(socket: BunSocket, error: Error): void;
}

interface BunSocketOptions {
  unix: string;
  allowHalfOpen?: boolean;
  socket: BunSocketHandler;
}

interface BunApi {
  listen(options: BunSocketOptions): { stop(closeActive?: boolean): void };
  connect(options: BunSocketOptions): Promise<BunSocket>;
}

const bun = () => (globalThis as unknown as { Bun: BunApi }).Bun;

/**
 * Without it Bun closes the whole socket when the peer shuts down its writing
 * side, dropping whatever we were still sending: a client that sends, closes
 * its writable and waits for the answers would lose their tail. Deno sockets
 * are half-open already.
 */
const HALF_OPEN = true;

/** Bytes a paused reader lets queue in user space before pausing the socket. */
const READ_HIGH_WATER_BYTES = 64 * 1024;

/**
 * One Bun socket, with both faces: the Web Streams of a `Connection` and the
 * byte channel (Bun pushes each chunk to a callback already: the channel is
 * that callback, with pause/resume and write). One object per connection.
 */
class BunConnection implements ByteChannelConnection, ByteChannel {
  readonly [BYTE_CHANNEL]: ByteChannel = this;
  readonly #socket: BunSocket;
  /** Set when the byte channel is open: data goes straight to it, not to `readable`. */
  #sink: ByteSink | undefined;
  // The stream faces are made on first use: the hub and the peer read and
  // write through the byte channel, and a stream pair with its controllers,
  // queues and closures costs some 5 KiB per connection (issue 13). Data
  // that comes before either face is used waits here.
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;
  #reader: ReadableStreamDefaultController<Uint8Array> | undefined;
  #early: Uint8Array[] | undefined;
  #earlyBytes = 0;
  /** Set when the byte channel opened: a `readable` made later comes locked. */
  #channelOpened = false;
  /** How the readable side ended before the stream was made: closed (null) or failed. */
  #earlyEnd: Error | null | undefined;
  #paused = false;
  #closed = false;
  #drained: (() => void) | undefined;
  #lost: ((err: Error) => void) | undefined;

  constructor(socket: BunSocket) {
    this.#socket = socket;
    socket.data = this;
  }

  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable) return this.#readable;
    const socket = this.#socket;
    this.#readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#reader = controller;
      },
      pull: () => {
        if (this.#paused) {
          this.#paused = false;
          socket.resume();
        }
      },
      cancel: () => this.close(),
    }, new ByteLengthQueuingStrategy({ highWaterMark: READ_HIGH_WATER_BYTES }));
    const early = this.#early;
    this.#early = undefined;
    if (early) { for (const chunk of early) this.#enqueue(chunk); }
    if (this.#earlyEnd !== undefined) this.#endReadable(this.#earlyEnd);
    // The socket has one reader: the byte channel's, if it opened first.
    if (this.#channelOpened) void this.#readable.getReader();
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      close: () => {
        if (!this.#closed) this.#socket.shutdown();
      },
      abort: () => this.close(),
    });
  }

  /** Opens the byte channel (see ByteChannel.open). */
  open(sink: ByteSink): void {
    // Locks the stream face: the socket has one reader (throws if it was read first).
    if (this.#readable) void this.#readable.getReader();
    this.#channelOpened = true;
    this.#sink = sink;
    // Chunks that came before the channel opened (none in practice: it opens in the tick of the accept).
    const early = this.#early;
    this.#early = undefined;
    if (early) { for (const chunk of early) sink.data(chunk, true); }
    if (this.#earlyEnd !== undefined) return this.#endSink(this.#earlyEnd ?? undefined);
    if (this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
  }

  /** See ByteChannel.pause. */
  pause(): void {
    this.#socket.pause();
  }

  /** See ByteChannel.resume. */
  resume(): void {
    this.#socket.resume();
  }

  /** See ByteChannel.closeWrite. */
  closeWrite(): Promise<void> {
    this.#socket.shutdown();
    return Promise.resolve();
  }

  /** Writes at once when the socket takes everything (the common case), without a promise. */
  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#closed) return Promise.reject(new Error("Socket is closed"));
    const written = this.#socket.write(chunk);
    if (written === chunk.byteLength) return undefined;
    // Closed by the other side (Bun noticed it in this write): what a write to it gets from the kernel.
    if (written < 0) {
      return Promise.reject(Object.assign(new Error("Socket is closed by the other side"), { code: "EPIPE" }));
    }
    return this.#writeRest(chunk, written);
  }

  /** Bun's write may take only part of the buffer and keeps none of the rest (oven-sh/bun#16076): resend the rest on drain. */
  async #writeRest(chunk: Uint8Array, offset: number): Promise<void> {
    while (offset < chunk.byteLength) {
      await new Promise<void>((resolve, reject) => {
        this.#drained = resolve;
        this.#lost = reject;
      });
      if (this.#closed) throw new Error("Socket is closed");
      const written = this.#socket.write(chunk.subarray(offset));
      if (written < 0) throw new Error("Socket is closed");
      offset += written;
    }
  }

  onData(data: Uint8Array): void {
    if (this.#closed) return;
    // Bun hands each data event a fresh Buffer: kept. Passed as it is: a
    // plain view would cost JSC an ArrayBuffer object per chunk.
    if (this.#sink) return this.#sink.data(data, true);
    if (this.#reader) return this.#enqueue(data);
    // Neither face is in use yet: keep the chunk, and stop reading past the high-water mark.
    (this.#early ??= []).push(data);
    this.#earlyBytes += data.byteLength;
    if (this.#earlyBytes >= READ_HIGH_WATER_BYTES && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  #enqueue(data: Uint8Array): void {
    const reader = this.#reader!;
    // Bun hands a Buffer; users and cbor-x get a plain Uint8Array view.
    try {
      reader.enqueue(plainBytes(data));
    } catch {
      return; // The reader was cancelled: close() is under way.
    }
    if ((reader.desiredSize ?? 0) <= 0 && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  /** The peer shut down its writing side: our readable ends, our writable stays open. */
  onEnd(): void {
    this.#endReadable(null);
  }

  onDrain(): void {
    const drained = this.#drained;
    this.#drained = this.#lost = undefined;
    drained?.();
  }

  onClose(error?: Error): void {
    const lost = this.#lost;
    this.#drained = this.#lost = undefined;
    lost?.(error ?? new Error("Socket closed while writing"));
    if (this.#closed) return this.#endSink(error);
    this.#closed = true;
    this.#endReadable(error ?? null);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#socket.end();
      this.#endReadable(null);
      const lost = this.#lost;
      this.#drained = this.#lost = undefined;
      lost?.(new Error("Socket closed while writing"));
    }
    return Promise.resolve();
  }

  /** The reading side ended (`null`) or failed: tells whichever face is in use, or keeps it for the first used. */
  #endReadable(error: Error | null): void {
    if (this.#sink) return this.#endSink(error ?? undefined);
    if (!this.#reader) {
      this.#earlyEnd ??= error;
      return;
    }
    try {
      if (error) this.#reader.error(error);
      else this.#reader.close();
    } catch {
      // Closed or cancelled already.
    }
  }

  #endSink(error?: unknown): void {
    const sink = this.#sink;
    if (!sink) return;
    this.#sink = undefined;
    sink.end(error);
  }
}

// One handler object shared by every socket, as Bun recommends.
const handlers: BunSocketHandler = {
  data: (socket, data) => socket.data?.onData(data),
  drain: (socket) => socket.data?.onDrain(),
  end: (socket) => socket.data?.onEnd(),
  close: (socket, error) => socket.data?.onClose(error),
  error: (socket, error) => socket.data?.onClose(error),
};

class BunListener implements Listener {
  readonly path: string;
  readonly #accepted: Connection[] = [];
  #wake: (() => void) | undefined;
  #server: { stop(closeActive?: boolean): void } | undefined;
  #inode: number | undefined;
  #closed = false;

  constructor(path: string) {
    this.path = path;
  }

  start(): void {
    this.#server = bun().listen({
      unix: this.path,
      allowHalfOpen: HALF_OPEN,
      socket: {
        ...handlers,
        open: (socket) => {
          this.#accepted.push(new BunConnection(socket));
          this.#wake?.();
        },
      },
    });
    this.#inode = socketInode(this.path);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Connection> {
    while (!this.#closed) {
      const next = this.#accepted.shift();
      if (next) {
        yield next;
        continue;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#server?.stop(false);
      removeSocketFile(this.path, this.#inode);
      for (const conn of this.#accepted.splice(0)) void conn.close();
      this.#wake?.();
    }
    return Promise.resolve();
  }
}

async function isLive(path: string): Promise<boolean> {
  try {
    const socket = await bun().connect({ unix: path, allowHalfOpen: HALF_OPEN, socket: { ...handlers } });
    socket.end();
    return true;
  } catch (err) {
    if (isDeadSocketError(err)) return false;
    throw err;
  }
}

/** Binds a Unix socket with Bun. See the neutral `listen`. */
export function listenBun(path: string, options: ListenOptions = {}): Promise<Listener> {
  return bindSocket(path, options, {
    isLive,
    bind: () => {
      const listener = new BunListener(path);
      listener.start();
      return listener;
    },
    isAddressInUse: (err: unknown) => (err as { code?: string }).code === "EADDRINUSE",
  });
}

/** Connects to a Unix socket with Bun. See the neutral `dial`. */
export async function dialBun(path: string, options: DialOptions = {}): Promise<Connection> {
  const socket = await dialSocket(path, options, () =>
    bun().connect({
      unix: path,
      allowHalfOpen: HALF_OPEN,
      // Attached in open, before Bun can deliver the first data.
      socket: { ...handlers, open: (socket) => void new BunConnection(socket) },
    }));
  return socket.data!;
}
