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
 * first (issue 13); a connection carrying 100 KiB messages reads each with
 * one read into a buffer of 128 KiB (issue 12: a second read per message,
 * and the copy of the first part into the frame's own buffer, cost a Deno
 * client and hub 5–15 µs of CPU each at 100 KiB). A read that waits holds
 * its buffer, however large the messages were before the quiet began: sizes
 * above {@linkcode FREE_READ_BUFFER_BYTES} come from a budget shared by the
 * process, so that idle connections cannot hold more than it in all.
 */
const SIZES = [128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144] as const;
/** Steps up after a read that filled the buffer: more was waiting, so the messages are larger than it. */
const STEPS_UP = 2;
/** Every connection may read into a buffer this large. */
export const FREE_READ_BUFFER_BYTES = 16 * 1024;
/**
 * What the connections of the process may hold together in read buffers
 * beyond {@linkcode FREE_READ_BUFFER_BYTES} each: 8 MiB, so 73 connections
 * of 100 KiB messages at a time; the others read as they would at 16 KiB.
 */
export const LARGE_READ_BUFFER_BUDGET_BYTES = 8 * 1024 * 1024;
/** Bytes of {@linkcode LARGE_READ_BUFFER_BUDGET_BYTES} granted to connections now. */
let budgetUsed = 0;

/**
 * The size of a connection's next read, adapted to what its reads return
 * (the rule of Netty's `AdaptiveRecvByteBufAllocator`): it starts at the
 * smallest, goes up two sizes at once after a read that filled the buffer,
 * and down one size after two reads in a row that would have fitted the
 * size below, from 128 B to 256 KiB. A connection whose messages are 1 KiB
 * settles at 2 KiB and reads each message with one read; one that only said
 * hello holds 128 B (a hello of more goes to 512 B). Sizes over 16 KiB are
 * granted from a budget of 8 MiB shared by the process, and given back by
 * {@linkcode release} when the connection ends; when it is spent, a
 * connection reads into 16 KiB at most.
 *
 * @example
 * ```ts
 * const size = new ReadBufferSize();
 * size.bytes; // 128
 * size.record(128); // filled: more is waiting
 * size.bytes; // 512
 * size.release(); // the connection ended
 * ```
 * @internal
 */
export class ReadBufferSize {
  #index = 0;
  #shrinking = false;
  /** Bytes of the shared budget this connection holds: its size over FREE_READ_BUFFER_BYTES. */
  #granted = 0;

  /** Bytes the next read should ask for. */
  get bytes(): number {
    return SIZES[this.#index];
  }

  /** Records that a read into a buffer of {@linkcode bytes} returned `n` bytes. */
  record(n: number): void {
    const index = this.#index;
    if (n >= SIZES[index]) {
      this.#resize(Math.min(index + STEPS_UP, SIZES.length - 1));
      this.#shrinking = false;
    } else if (index > 0 && n <= SIZES[index - 1]) {
      // Two in a row: one small message between large ones does not shrink it.
      if (this.#shrinking) this.#resize(index - 1);
      this.#shrinking = !this.#shrinking;
    } else {
      this.#shrinking = false;
    }
  }

  /** The connection ended: gives back what it held of the shared budget. */
  release(): void {
    this.#resize(0);
  }

  /** Moves to size `index`, or to the largest below it that the shared budget allows. */
  #resize(index: number): void {
    const free = LARGE_READ_BUFFER_BUDGET_BYTES - budgetUsed + this.#granted;
    while (SIZES[index] - FREE_READ_BUFFER_BYTES > free) index--;
    const granted = Math.max(0, SIZES[index] - FREE_READ_BUFFER_BYTES);
    budgetUsed += granted - this.#granted;
    this.#granted = granted;
    this.#index = index;
  }
}

/** Bytes of the shared read-buffer budget granted now (for tests). */
export function grantedReadBufferBytes(): number {
  return budgetUsed;
}
