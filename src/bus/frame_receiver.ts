import { FrameParser } from "../codec/frame_parser.ts";
import { type ByteChannel, byteChannel, type ByteSink } from "../transport/byte_channel.ts";
import type { Connection } from "../transport/connection.ts";

/** What a {@linkcode FrameReceiver} calls. */
export interface FrameHandlers {
  /**
   * A frame arrived. With `own` false the body is a view into a read buffer
   * that may be overwritten once this returns: copy what must outlive the
   * call. With `own` true it is a buffer of its own, which may be kept.
   * Throwing ends the reading with that error.
   */
  frame(body: Uint8Array, own: boolean): void;
  /**
   * Reading ended: the other side closed (no `error`), the socket failed, a
   * header declared too large a frame, or `frame` threw. Called once; no
   * frame follows it.
   */
  end(error?: unknown): void;
}

/**
 * Reads a connection's frames for the hub and the peer: chunks come from its
 * byte channel as the socket delivers them, and go through the one frame
 * reader (`FrameParser`) to the handler, in the same call, with no stream,
 * promise or queue per chunk or per frame.
 */
export class FrameReceiver implements ByteSink {
  readonly #channel: ByteChannel;
  readonly #parser: FrameParser;
  readonly #handlers: FrameHandlers;
  #ended = false;

  /**
   * Starts reading `conn` at once.
   *
   * @param conn The connection; its `readable` is locked from now on.
   * @param maxFrameBytes Largest frame body accepted: a header declaring more ends the reading with `FrameTooLargeError`.
   * @param handlers Called with each frame and once at the end.
   * @param lend Frames split across reads are lent from a shared pool (`own` false) rather than given
   * in a fresh buffer each: for a reader that copies what it keeps (see `FrameParser`).
   */
  constructor(conn: Connection, maxFrameBytes: number, handlers: FrameHandlers, lend = false) {
    this.#channel = byteChannel(conn);
    this.#parser = new FrameParser(maxFrameBytes, lend);
    this.#handlers = handlers;
    // The receiver is the channel's sink itself: no closures per connection (issue 13: an idle peer's cost).
    this.#channel.open(this);
  }

  /** Stops reading the socket until {@linkcode resume}: what is sent waits in the kernel, then in the sender. */
  pause(): void {
    this.#channel.pause();
  }

  /** Reads again after {@linkcode pause}. */
  resume(): void {
    this.#channel.resume();
  }

  /** Ends the reading now, as if the connection had ended with `error`; later bytes are ignored. */
  stop(error?: unknown): void {
    this.end(error);
  }

  /** For the byte channel (see {@linkcode ByteSink}): bytes arrived. */
  data(chunk: Uint8Array, kept: boolean): void {
    if (this.#ended) return;
    try {
      this.#parser.push(chunk, this.#onFrame, kept);
    } catch (err) {
      this.end(err);
    }
  }

  /** For the byte channel (see {@linkcode ByteSink}): where the rest of a large frame goes. */
  space(): Uint8Array | undefined {
    return this.#ended ? undefined : this.#parser.space();
  }

  /** For the byte channel (see {@linkcode ByteSink}): the size of a fresh buffer for the next read, or 0. */
  nextReadBytes(): number {
    return this.#ended ? 0 : this.#parser.wholeFrameBytes;
  }

  /** For the byte channel (see {@linkcode ByteSink}): the connection ended; the handlers hear it once. */
  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#handlers.end(error);
  }

  readonly #onFrame = (body: Uint8Array, own: boolean): void => {
    if (!this.#ended) this.#handlers.frame(body, own);
  };
}
