import { writeOutput } from "../transport/output_write.ts";
import { waitAtMost } from "../util/with_timeout.ts";

/**
 * Bytes of lines held while the stream is slower than the log (a burst of
 * joins) or not read at all; past this, lines are dropped and counted. On
 * top of what the pipe itself holds (64 KiB on Linux).
 */
const MAX_PENDING_BYTES = 256 * 1024;

const encoder = new TextEncoder();

/**
 * Lines for stdout or stderr, written in order without ever holding up the
 * process: a hub logs every join and leave, and every peer dropped for bad
 * input, and whatever reads its output must not be able to stall the bus by
 * reading slowly, or not at all. Lines wait in memory while a write is under
 * way, up to {@linkcode MAX_PENDING_BYTES}; past that they are dropped, and
 * once there is room again one line (from `dropped`) says how many. When the
 * stream is gone (`EPIPE`: `ipcbus hub | head`), `gone` is told once and
 * nothing more is written.
 *
 * @example
 * ```ts
 * const log = new LogLines(1, (n) => `${n} lines dropped`, (err) => console.error(err));
 * log.write("hub ready");
 * await log.flush(1000);
 * ```
 */
export class LogLines {
  readonly #fd: 1 | 2;
  readonly #dropped: (count: number) => string;
  readonly #gone: (err: unknown) => void;
  #pending: string[] = [];
  #pendingBytes = 0;
  #droppedCount = 0;
  #writing: Promise<void> | undefined;
  #isGone = false;

  /**
   * @param fd 1 for stdout, 2 for stderr.
   * @param dropped The line that says `count` lines were dropped.
   * @param gone Called once, with the error, when the stream can no longer be written.
   */
  constructor(fd: 1 | 2, dropped: (count: number) => string, gone: (err: unknown) => void) {
    this.#fd = fd;
    this.#dropped = dropped;
    this.#gone = gone;
  }

  /** Queues `line` (a newline is added), or drops it if too much is waiting already. */
  write(line: string): void {
    if (this.#isGone) return;
    this.#noteDropped();
    if (!this.#hold(line)) {
      this.#droppedCount++;
      return;
    }
    this.#writing ??= this.#drain();
  }

  /** Resolves once every line queued is written or the stream is gone, or after `ms`, whichever comes first. */
  async flush(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    // A drain that ends may have lines queued after it started: it starts again for them.
    while (this.#writing && Date.now() < deadline) await waitAtMost(this.#writing, deadline - Date.now());
  }

  /** Queues `line` if it fits. */
  #hold(line: string): boolean {
    // Counted in UTF-16 units, not bytes: the bound is about memory, and a log line is mostly ASCII.
    const size = line.length + 1;
    if (this.#pendingBytes + size > MAX_PENDING_BYTES) return false;
    this.#pending.push(line);
    this.#pendingBytes += size;
    return true;
  }

  /** Once there is room again after lines were dropped, queues the line that says how many. */
  #noteDropped(): void {
    if (this.#droppedCount > 0 && this.#hold(this.#dropped(this.#droppedCount))) this.#droppedCount = 0;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        let bytes = encoder.encode(this.#pending.join("\n") + "\n");
        this.#pending = [];
        this.#pendingBytes = 0;
        while (bytes.byteLength > 0) bytes = bytes.subarray(await writeOutput(this.#fd, bytes));
        this.#noteDropped();
      }
    } catch (err) {
      this.#isGone = true;
      this.#pending = [];
      this.#gone(err);
    } finally {
      this.#writing = undefined;
    }
  }
}
