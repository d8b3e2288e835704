/**
 * The thin path under a {@linkcode Connection}'s Web Streams, for the bus's
 * own read and write loops: chunks are pushed to a callback as the adapter
 * reads them, and bytes are handed to the socket without a stream in
 * between. A `ReadableStream` read costs a promise, a pull and a queue per
 * chunk, a `WritableStream` write the same again; at one small message per
 * round trip that was about a third of the bus's CPU (issue 12).
 *
 * A connection is read either through its `readable` or through its byte
 * channel, never both: whichever is used first locks the other.
 *
 * @module
 */
import type { Connection } from "./connection.ts";

/** What a {@linkcode ByteChannel} pushes its bytes to. */
export interface ByteSink {
  /**
   * Bytes arrived. With `kept` false the chunk is the adapter's read buffer,
   * read into again once this returns: copy what must outlive the call. With
   * `kept` true it is a fresh buffer nobody else touches (Bun's, a stream's),
   * or `space()`'s. It may be a Node `Buffer` (Bun's).
   */
  data(chunk: Uint8Array, kept: boolean): void;
  /** The other side closed its writing side (no `error`) or the socket failed. Called once, last. */
  end(error?: unknown): void;
  /**
   * Where the next bytes should go, if the sink wants them in a buffer of
   * its own (the rest of a large frame, which then needs no copy). Asked
   * before each read by adapters that read into a caller's buffer (Deno);
   * adapters that are handed their chunks (Bun) never ask.
   */
  space?(): Uint8Array | undefined;
  /**
   * How large a fresh buffer the next read should go into, or 0 for the
   * adapter's own. A sink whose frames' users keep them asks for one after a
   * chunk that was one whole large frame: the next such frame, read into a
   * buffer of its own and pushed as kept, then needs no copy. Asked by
   * adapters that read into a caller's buffer (Deno) when `space()` offers
   * none; adapters that are handed their chunks (Bun) never ask.
   */
  nextReadBytes?(): number;
}

/** The thin read and write primitive of one connection. See the module doc. */
export interface ByteChannel {
  /** Starts pushing what is read to `sink`. Once per connection, and not after `readable` was read. */
  open(sink: ByteSink): void;
  /** Stops reading from the socket until {@linkcode resume}: data waits in the kernel, and the writer there blocks. */
  pause(): void;
  /** Reads again after {@linkcode pause}. */
  resume(): void;
  /**
   * Hands `bytes` to the socket. Returns undefined when the socket took all
   * of them at once, else a promise that settles when it has; the caller may
   * reuse `bytes` only then. One write at a time. Rejects when the socket is
   * closed or fails.
   */
  write(bytes: Uint8Array): Promise<void> | undefined;
  /** Shuts down the writing side once written bytes are out; the other side sees the end. */
  closeWrite(): Promise<void>;
}

/** Adapters put their {@linkcode ByteChannel} on their connections under this key. */
export const BYTE_CHANNEL: unique symbol = Symbol("ipcbus.byteChannel");

/** A connection whose adapter has a native {@linkcode ByteChannel}. */
export interface ByteChannelConnection extends Connection {
  readonly [BYTE_CHANNEL]: ByteChannel;
}

/**
 * The byte channel of `conn`: the adapter's own, or, for any other
 * {@linkcode Connection} (an in-memory pair, a user's), one built on its
 * streams, which costs what the streams cost.
 *
 * @param conn The connection to read and write.
 * @returns Its byte channel.
 */
export function byteChannel(conn: Connection): ByteChannel {
  return (conn as Partial<ByteChannelConnection>)[BYTE_CHANNEL] ?? new StreamByteChannel(conn);
}

/**
 * The pause and resume of a channel that reads in a loop of its own (one
 * read at a time): while paused, the loop waits in `untilResumed` before
 * its next read.
 */
export abstract class ReadLoopPause {
  #paused = false;
  #resume: (() => void) | undefined;

  /** Stops the loop before its next read until {@linkcode resume}. */
  pause(): void {
    this.#paused = true;
  }

  /** Lets the loop read again after {@linkcode pause}. */
  resume(): void {
    this.#paused = false;
    const resume = this.#resume;
    this.#resume = undefined;
    resume?.();
  }

  /** Whether {@linkcode pause} is in force. */
  protected get paused(): boolean {
    return this.#paused;
  }

  /** Resolves once resumed; the loop awaits it before a read while {@linkcode paused}. */
  protected async untilResumed(): Promise<void> {
    while (this.#paused) await new Promise<void>((resolve) => (this.#resume = resolve));
  }
}

/** A {@linkcode ByteChannel} over a connection's `readable` and `writable`. */
class StreamByteChannel extends ReadLoopPause implements ByteChannel {
  readonly #conn: Connection;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;

  constructor(conn: Connection) {
    super();
    this.#conn = conn;
  }

  open(sink: ByteSink): void {
    void this.#pump(this.#conn.readable.getReader(), sink);
  }

  async #pump(reader: ReadableStreamDefaultReader<Uint8Array>, sink: ByteSink): Promise<void> {
    let error: unknown;
    try {
      while (true) {
        // Checked first: awaiting even a settled promise costs a turn per read.
        if (this.paused) await this.untilResumed();
        const { value, done } = await reader.read();
        if (done) break;
        // A stream's chunks belong to whoever reads them.
        sink.data(value, true);
      }
    } catch (err) {
      error = err;
    } finally {
      reader.releaseLock();
    }
    sink.end(error);
  }

  write(bytes: Uint8Array): Promise<void> {
    this.#writer ??= this.#conn.writable.getWriter();
    return this.#writer.write(bytes);
  }

  async closeWrite(): Promise<void> {
    this.#writer ??= this.#conn.writable.getWriter();
    await this.#writer.close();
  }
}
