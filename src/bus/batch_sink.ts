import { type ByteChannel, byteChannel } from "../transport/byte_channel.ts";
import type { Connection } from "../transport/connection.ts";

/**
 * Where a `FrameWriter` (`frame_writer.ts`) writes its batches: a
 * connection's byte channel, or any byte stream.
 *
 * @module
 */

/** Where batches are written. */
export interface BatchSink {
  write(bytes: Uint8Array): Promise<void> | undefined;
  closeWrite(): Promise<void>;
  abort(): void;
}

/** The sink for a connection (through its byte channel) or a stream. */
export function batchSink(target: Connection | WritableStream<Uint8Array>): BatchSink {
  return target instanceof WritableStream ? new StreamSink(target) : new ChannelSink(target);
}

/** A connection's byte channel; aborting closes the connection. Methods, not closures: one per connection. */
class ChannelSink implements BatchSink {
  readonly #conn: Connection;
  readonly #channel: ByteChannel;

  constructor(conn: Connection) {
    this.#conn = conn;
    this.#channel = byteChannel(conn);
  }

  write(bytes: Uint8Array): Promise<void> | undefined {
    return this.#channel.write(bytes);
  }

  closeWrite(): Promise<void> {
    return this.#channel.closeWrite().catch(() => {});
  }

  abort(): void {
    void this.#conn.close();
  }
}

/** A byte stream's writer. */
class StreamSink implements BatchSink {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(stream: WritableStream<Uint8Array>) {
    this.#writer = stream.getWriter();
    // A failed write closes the connection (see #fail); the writer's own promise must not go unhandled.
    this.#writer.closed.catch(() => {});
  }

  write(bytes: Uint8Array): Promise<void> {
    return this.#writer.write(bytes);
  }

  closeWrite(): Promise<void> {
    return this.#writer.close().catch(() => {});
  }

  abort(): void {
    void this.#writer.abort().catch(() => {});
  }
}
