/**
 * How large a connection's own read buffer should be: the read that waits
 * while the socket is quiet holds it for as long as the other side stays
 * silent, so an idle connection costs its size, and a buffer too small for
 * the messages that come costs a second read per message.
 *
 * @module
 */

/**
 * The sizes a read buffer takes, smallest first: an idle hub peer holds the
 * first (issue 13); a connection carrying 10 KiB messages reads each with one
 * read into the largest (issue 12: two reads a message cost a Deno client and
 * hub some 5 µs of CPU each). A read that waits holds its buffer, however
 * large the messages were before the quiet began: so no larger than that.
 */
const SIZES = [128, 256, 512, 1024, 2048, 4096, 8192, 16384] as const;
/** Steps up after a read that filled the buffer: more was waiting, so the messages are larger than it. */
const STEPS_UP = 2;

/**
 * The size of a connection's next read, adapted to what its reads return
 * (the rule of Netty's `AdaptiveRecvByteBufAllocator`): it starts at the
 * smallest, goes up two sizes at once after a read that filled the buffer,
 * and down one size after two reads in a row that would have fitted the
 * size below, from 128 B to 16 KiB. A connection whose messages are 1 KiB
 * settles at 2 KiB and reads each message with one read; one that only said
 * hello holds 128 B (a hello of more goes to 512 B).
 *
 * @example
 * ```ts
 * const size = new ReadBufferSize();
 * size.bytes; // 128
 * size.record(128); // filled: more is waiting
 * size.bytes; // 512
 * ```
 * @internal
 */
export class ReadBufferSize {
  #index = 0;
  #shrinking = false;

  /** Bytes the next read should ask for. */
  get bytes(): number {
    return SIZES[this.#index];
  }

  /** Records that a read into a buffer of {@linkcode bytes} returned `n` bytes. */
  record(n: number): void {
    const index = this.#index;
    if (n >= SIZES[index]) {
      this.#index = Math.min(index + STEPS_UP, SIZES.length - 1);
      this.#shrinking = false;
    } else if (index > 0 && n <= SIZES[index - 1]) {
      // Two in a row: one small message between large ones does not shrink it.
      if (this.#shrinking) this.#index = index - 1;
      this.#shrinking = !this.#shrinking;
    } else {
      this.#shrinking = false;
    }
  }
}
