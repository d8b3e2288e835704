import { FRAME_HEADER_BYTES, writeFrameHeader } from "../codec/frame_parser.ts";
import { waitAtMost } from "../util/with_timeout.ts";

/** Limits of one outgoing queue. */
export interface QueueLimits {
  /** Frames queued or being written, at most. */
  maxMessages: number;
  /** Bytes (headers included) queued or being written, at most. */
  maxBytes: number;
}

/**
 * Small, because they are taken for every batch: at 64 KiB a hub with 500
 * idle peers held 64 MiB in them (tests/load/soak_test.ts). A busy
 * connection's batches grow by doubling, and the grown one is kept as the
 * spare while the connection stays busy.
 */
const INITIAL_BATCH_BYTES = 4 * 1024;
/** One write takes at most this much of the batch (see #writable); more than the kernel's socket buffer. */
const MAX_WRITE_BYTES = 256 * 1024;
/** A spare batch buffer larger than this is let go after a burst instead of kept. */
const MAX_SPARE_BYTES = 1024 * 1024;
/**
 * Batch buffers of {@linkcode INITIAL_BATCH_BYTES} kept for reuse by any
 * writer of the process, at most this many. An idle connection holds none
 * (a hub with 1 000 idle peers held 8 MiB in two buffers each, bench/hub_scale.ts);
 * a busy one takes from here instead of allocating.
 */
const POOL_SIZE = 64;
const pool: Uint8Array[] = [];
/** The batch of a writer that holds no buffer. */
const NO_BATCH = new Uint8Array(0);

function takeBuffer(bytes: number): Uint8Array {
  return bytes <= INITIAL_BATCH_BYTES ? pool.pop() ?? new Uint8Array(INITIAL_BATCH_BYTES) : new Uint8Array(bytes);
}

function giveBack(buffer: Uint8Array | undefined): void {
  if (buffer?.byteLength === INITIAL_BATCH_BYTES && pool.length < POOL_SIZE) pool.push(buffer);
}

/**
 * The outgoing side of one connection. Frames are copied, each behind its
 * length, into one batch buffer; the batch is written with a single
 * `write()` once the current tick ends, while the next batch fills. A frame
 * is copied exactly once, and no per-frame buffer is allocated.
 *
 * The caller checks {@linkcode FrameWriter.hasRoom} before pushing: this
 * class never refuses, so the policy for a full queue lives with the caller.
 */
export class FrameWriter {
  readonly limits: QueueLimits;
  /** Called after each completed write, to notice when room returns. */
  onWritten: (() => void) | undefined;
  /** Called once if a write fails; nothing is written after. */
  onError: ((err: unknown) => void) | undefined;
  framesOut = 0;
  bytesOut = 0;
  /**
   * When the writer last made progress (`performance.now()`): a write
   * completed, or the first frame after an idle spell was queued. With frames
   * queued, the time since tells how long the other side has read nothing.
   */
  progressAt = 0;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #batch: Uint8Array = NO_BATCH;
  #spare: Uint8Array | undefined;
  #batchBytes = 0;
  #batchFrames = 0;
  /** Start offsets of droppable frames in the batch, oldest first (see dropOldest). */
  #droppable: number[] = [];
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

  /** Whether a write failed or the writer was aborted: nothing more will be written. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Frames queued or in flight. */
  get messages(): number {
    return this.#batchFrames + this.#inFlightMessages;
  }

  /** Bytes queued or in flight. */
  get bytes(): number {
    return this.#batchBytes + this.#inFlightBytes;
  }

  /**
   * Whether a frame with a body of `bodyBytes` may be queued: while fewer
   * than `maxMessages` frames and fewer than `maxBytes` bytes are queued. The
   * last frame taken may overshoot, so a frame above `maxBytes` (within
   * `maxFrameBytes`) can still be sent, and the queue never holds more than
   * `maxBytes + maxFrameBytes`.
   */
  hasRoom(): boolean {
    return this.messages < this.limits.maxMessages && this.bytes < this.limits.maxBytes;
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
    const at = this.reserve(body.byteLength, droppable);
    if (at >= 0) this.#batch.set(body, at);
  }

  /**
   * Makes room for a frame body of `bodyBytes`, writes its header, and
   * returns the offset in {@linkcode buffer} where the caller writes the
   * body now (before yielding). Returns -1 if the writer has failed.
   */
  reserve(bodyBytes: number, droppable = false): number {
    if (this.#failed) return -1;
    if (this.messages === 0) this.progressAt = performance.now();
    const need = this.#batchBytes + FRAME_HEADER_BYTES + bodyBytes;
    if (need > this.#batch.byteLength) this.#grow(need);
    if (droppable) this.#droppable.push(this.#batchBytes);
    writeFrameHeader(this.#batch, this.#batchBytes, bodyBytes);
    this.#batchBytes = need;
    this.#batchFrames++;
    if (!this.#scheduled && !this.#writing) {
      this.#scheduled = true;
      queueMicrotask(() => void this.#drain());
    }
    return need - bodyBytes;
  }

  /** The batch buffer {@linkcode reserve} offsets point into. */
  get buffer(): Uint8Array {
    return this.#batch;
  }

  #grow(need: number): void {
    const next = takeBuffer(Math.max(need, this.#batch.byteLength * 2));
    next.set(this.#batch.subarray(0, this.#batchBytes));
    giveBack(this.#batch);
    this.#batch = next;
  }

  /** Removes the oldest queued droppable frame. Returns false if there is none. */
  dropOldest(): boolean {
    const start = this.#droppable.shift();
    if (start === undefined) return false;
    const b = this.#batch;
    const frameBytes = FRAME_HEADER_BYTES +
      (b[start] * 0x1000000 + (b[start + 1] << 16 | b[start + 2] << 8 | b[start + 3]));
    b.copyWithin(start, start + frameBytes, this.#batchBytes);
    this.#batchBytes -= frameBytes;
    this.#batchFrames--;
    for (let i = 0; i < this.#droppable.length; i++) this.#droppable[i] -= frameBytes;
    return true;
  }

  /**
   * Drops the frames queued and not yet handed to the transport; the write
   * under way, if any, goes on. For a connection about to be closed with
   * one last frame.
   */
  discardQueued(): void {
    this.#batchBytes = 0;
    this.#batchFrames = 0;
    this.#droppable = [];
  }

  /** Resolves once everything pushed so far has been written (or writing failed). */
  idle(): Promise<void> {
    if (this.messages === 0 || this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Closes the stream after the queued frames, waiting at most `timeout` ms for them. */
  async close(timeout: number): Promise<void> {
    await waitAtMost(this.idle(), timeout);
    if (this.messages === 0 && !this.#failed) await this.#writer.close().catch(() => {});
    else this.abort();
  }

  /** Drops everything queued; the stream errors. */
  abort(): void {
    this.#failed = true;
    this.#batchBytes = 0;
    this.#batchFrames = 0;
    this.#droppable = [];
    void this.#writer.abort().catch(() => {});
    this.#wakeIdle();
  }

  async #drain(): Promise<void> {
    this.#scheduled = false;
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#batchFrames > 0 && !this.#failed) {
        const written = this.#batch;
        const [bytes, frames] = this.#writable();
        const rest = written.subarray(bytes, this.#batchBytes);
        const restFrames = this.#batchFrames - frames;
        const droppable = this.#droppable;
        this.#batch = this.#spare ?? NO_BATCH;
        this.#spare = undefined;
        this.#batchBytes = 0;
        this.#batchFrames = 0;
        this.#droppable = [];
        if (restFrames > 0) {
          // Frames beyond this write stay queued, at the start of the next batch.
          if (rest.byteLength > this.#batch.byteLength) {
            giveBack(this.#batch);
            this.#batch = takeBuffer(rest.byteLength);
          }
          this.#batch.set(rest);
          this.#batchBytes = rest.byteLength;
          this.#batchFrames = restFrames;
          this.#droppable = droppable.filter((at) => at >= bytes).map((at) => at - bytes);
        }
        this.#inFlightMessages = frames;
        this.#inFlightBytes = bytes;
        // Counted when handed to the transport: the other side may have them
        // before this write's promise settles.
        this.framesOut += frames;
        this.bytesOut += bytes;
        await this.#writer.write(written.subarray(0, bytes));
        this.progressAt = performance.now();
        // The transport is done with it: reuse it for a later batch unless a burst made it huge.
        if (written.byteLength <= MAX_SPARE_BYTES) this.#spare = written;
        this.#inFlightMessages = 0;
        this.#inFlightBytes = 0;
        this.onWritten?.();
      }
      if (this.#batchFrames === 0) {
        // Idle: hold no buffer.
        giveBack(this.#spare);
        giveBack(this.#batch);
        this.#spare = undefined;
        this.#batch = NO_BATCH;
      }
    } catch (err) {
      this.#failed = true;
      this.#inFlightMessages = 0;
      this.#inFlightBytes = 0;
      this.onError?.(err);
    } finally {
      this.#writing = false;
      if (this.#batchFrames === 0 || this.#failed) this.#wakeIdle();
    }
  }

  /**
   * How much of the batch one write takes: all of it, or the frames that
   * fit in half of either limit and in MAX_WRITE_BYTES (one at least). A
   * write to a peer that stopped reading never completes, so what it took
   * can never be dropped: without the half, one write could hold a whole
   * queue and leave `dropOldest()` nothing to drop (tests/load/, a peer
   * frozen mid-burst). And a write completes only once the peer has read
   * most of it: the hub tells a slow peer from a stalled one by completed
   * writes, so a peer reading a 2 MiB write for longer than the stall
   * threshold looked stalled.
   */
  #writable(): [bytes: number, frames: number] {
    const { maxMessages } = this.limits;
    const maxBytes = Math.min(this.limits.maxBytes / 2, MAX_WRITE_BYTES);
    if (this.#batchFrames * 2 <= maxMessages && this.#batchBytes <= maxBytes) {
      return [this.#batchBytes, this.#batchFrames];
    }
    const b = this.#batch;
    let at = 0;
    let frames = 0;
    while (frames < this.#batchFrames) {
      const end = at + FRAME_HEADER_BYTES + (b[at] * 0x1000000 + (b[at + 1] << 16 | b[at + 2] << 8 | b[at + 3]));
      if (frames > 0 && ((frames + 1) * 2 > maxMessages || end > maxBytes)) break;
      at = end;
      frames++;
    }
    return [at, frames];
  }

  #wakeIdle(): void {
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }
}
