import { FRAME_HEADER_BYTES } from "../codec/frame_parser.ts";
import { joinFrames } from "../codec/join_frames.ts";

/** Limits of one outgoing queue. */
export interface QueueLimits {
  /** Frames queued or being written, at most. */
  maxMessages: number;
  /** Bytes (headers included) queued or being written, at most. */
  maxBytes: number;
}

/**
 * The outgoing side of one connection: frames pushed in the same tick are
 * joined into one chunk and written with one `write()`; while a write is in
 * flight, new frames wait in a bounded queue. The caller checks
 * {@linkcode FrameWriter.hasRoom} before pushing: this class never refuses,
 * so the policy for a full queue lives with the caller.
 */
export class FrameWriter {
  readonly limits: QueueLimits;
  /** Called after each completed write, to notice when room returns. */
  onWritten: (() => void) | undefined;
  /** Called once if a write fails; nothing is written after. */
  onError: ((err: unknown) => void) | undefined;
  framesOut = 0;
  bytesOut = 0;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #frames: Uint8Array[] = [];
  /** Parallel to #frames: which frames may be dropped to make room. */
  #droppable: boolean[] = [];
  #queuedBytes = 0;
  #inFlightMessages = 0;
  #inFlightBytes = 0;
  #writing = false;
  #scheduled = false;
  #failed = false;
  #idleWaiters: Array<() => void> = [];

  constructor(writable: WritableStream<Uint8Array>, limits: QueueLimits) {
    this.#writer = writable.getWriter();
    this.limits = limits;
    // A failed write is reported through onError; the writer's own promise must not go unhandled.
    this.#writer.closed.catch(() => {});
  }

  /** Frames queued or in flight. */
  get messages(): number {
    return this.#frames.length + this.#inFlightMessages;
  }

  /** Bytes queued or in flight. */
  get bytes(): number {
    return this.#queuedBytes + this.#inFlightBytes;
  }

  /** Whether a frame with a body of `bodyBytes` fits within the limits. */
  hasRoom(bodyBytes: number): boolean {
    return this.messages < this.limits.maxMessages &&
      this.bytes + FRAME_HEADER_BYTES + bodyBytes <= this.limits.maxBytes;
  }

  /** Whether the queue is above half of either limit. */
  get aboveHighWater(): boolean {
    return this.messages * 2 > this.limits.maxMessages || this.bytes * 2 > this.limits.maxBytes;
  }

  /** Whether the queue is below a quarter of both limits. */
  get belowLowWater(): boolean {
    return this.messages * 4 <= this.limits.maxMessages && this.bytes * 4 <= this.limits.maxBytes;
  }

  /** Queues one frame body. `droppable` frames may later be removed by {@linkcode dropOldest}. */
  push(body: Uint8Array, droppable = false): void {
    if (this.#failed) return;
    // While a write is in flight the frame waits, and a view would pin the
    // whole read chunk it came from; copy it so queued bytes are what we count.
    this.#frames.push(this.#writing ? body.slice() : body);
    this.#droppable.push(droppable);
    this.#queuedBytes += FRAME_HEADER_BYTES + body.byteLength;
    if (!this.#scheduled && !this.#writing) {
      this.#scheduled = true;
      queueMicrotask(() => void this.#drain());
    }
  }

  /** Removes the oldest queued droppable frame. Returns false if there is none. */
  dropOldest(): boolean {
    const index = this.#droppable.indexOf(true);
    if (index < 0) return false;
    this.#queuedBytes -= FRAME_HEADER_BYTES + this.#frames[index].byteLength;
    this.#frames.splice(index, 1);
    this.#droppable.splice(index, 1);
    return true;
  }

  /** Resolves once everything pushed so far has been written (or writing failed). */
  idle(): Promise<void> {
    if (this.messages === 0 || this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Closes the stream after the queued frames, waiting at most `timeout` ms for them. */
  async close(timeout: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.idle(), new Promise((resolve) => (timer = setTimeout(resolve, timeout)))]);
    clearTimeout(timer);
    if (this.messages === 0 && !this.#failed) await this.#writer.close().catch(() => {});
    else this.abort();
  }

  /** Drops everything queued; the stream errors. */
  abort(): void {
    this.#failed = true;
    this.#frames = [];
    this.#droppable = [];
    this.#queuedBytes = 0;
    void this.#writer.abort().catch(() => {});
    this.#wakeIdle();
  }

  async #drain(): Promise<void> {
    this.#scheduled = false;
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#frames.length > 0 && !this.#failed) {
        const frames = this.#frames;
        const bytes = this.#queuedBytes;
        this.#frames = [];
        this.#droppable = [];
        this.#queuedBytes = 0;
        this.#inFlightMessages = frames.length;
        this.#inFlightBytes = bytes;
        await this.#writer.write(joinFrames(frames, bytes));
        this.#inFlightMessages = 0;
        this.#inFlightBytes = 0;
        this.framesOut += frames.length;
        this.bytesOut += bytes;
        this.onWritten?.();
      }
    } catch (err) {
      this.#failed = true;
      this.#inFlightMessages = 0;
      this.#inFlightBytes = 0;
      this.onError?.(err);
    } finally {
      this.#writing = false;
      if (this.#frames.length === 0 || this.#failed) this.#wakeIdle();
    }
  }

  #wakeIdle(): void {
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }
}
