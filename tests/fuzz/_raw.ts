/**
 * A raw connection to a hub for the hostile-input tests: writes any bytes,
 * and reads back what the hub answers with `FrameDecoderStream`, keeping
 * every message and noticing when the hub hangs up.
 *
 * @module
 */
import { type Connection, dial, FrameDecoderStream } from "../../mod.ts";
import { encodeCbor } from "../../src/codec/cbor.ts";
import { within } from "../_helpers.ts";
import { frame } from "./_mutate.ts";

/** A message from the hub, as decoded. */
export type Message = Record<string, unknown> & { k?: unknown };

/** The `e.code` of an `error`, `refuse` or `x` message. */
export function codeOf(m: Message | undefined): unknown {
  return (m?.e as { code?: unknown } | undefined)?.code;
}

export class RawConn {
  readonly conn: Connection;
  readonly messages: Message[] = [];
  /** Set once the hub has closed the connection (or reset it, or sent bytes that do not decode). */
  closed = false;
  /** Why reading stopped with an error rather than an end, if it did. */
  readError: unknown;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #waiters: Array<() => void> = [];
  readonly #reading: Promise<void>;

  private constructor(conn: Connection) {
    this.conn = conn;
    this.#writer = conn.writable.getWriter();
    // A write on a connection the hub closed fails; the test looks at what the hub said instead.
    this.#writer.closed.catch(() => {});
    this.#reading = this.#read();
  }

  static async open(path: string): Promise<RawConn> {
    return new RawConn(await dial(path, { timeout: 5_000 }));
  }

  async #read(): Promise<void> {
    const reader = this.conn.readable.pipeThrough(new FrameDecoderStream()).getReader();
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        this.messages.push(value as Message);
        this.#wake();
      }
    } catch (err) {
      this.readError = err;
    } finally {
      this.closed = true;
      this.#wake();
    }
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Writes `bytes`; false if the connection is already closed. */
  async write(bytes: Uint8Array): Promise<boolean> {
    try {
      await this.#writer.write(bytes);
      return true;
    } catch {
      return false;
    }
  }

  /** Writes one frame holding `message` as CBOR. */
  send(message: Record<string, unknown>): Promise<boolean> {
    return this.write(frame(encodeCbor(message)));
  }

  /** Ends the writing side only: the hub sees the end of the stream and can still answer. */
  async halfClose(): Promise<void> {
    await this.#writer.close().catch(() => {});
  }

  /** Resolves with the first message (from index `from` on) that passes `accept`, or undefined once closed. */
  async next(ms: number, what: string, accept: (m: Message) => boolean, from = 0): Promise<Message | undefined> {
    return await within(
      ms,
      what,
      (async () => {
        for (let seen = from;;) {
          for (; seen < this.messages.length; seen++) if (accept(this.messages[seen])) return this.messages[seen];
          if (this.closed) return undefined;
          await new Promise<void>((resolve) => this.#waiters.push(resolve));
        }
      })(),
    );
  }

  /** Resolves once the hub has closed the connection; fails after `ms`. */
  async whenClosed(ms: number, what: string): Promise<void> {
    await within(
      ms,
      what,
      (async () => {
        while (!this.closed) await new Promise<void>((resolve) => this.#waiters.push(resolve));
      })(),
    );
  }

  /** Closes both directions and waits for the read loop to end. */
  async close(): Promise<void> {
    await this.conn.close();
    await within(5_000, "the raw connection's read loop to end", this.#reading);
  }
}
