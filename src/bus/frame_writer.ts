import { FRAME_HEADER_BYTES, readFrameHeader, writeFrameHeader } from "../codec/frame_parser.ts";
import type { Connection } from "../transport/connection.ts";
import { type BatchSink, batchSink } from "./batch_sink.ts";
import { waitAtMost } from "../util/with_timeout.ts";
import { giveBack, takeBatch } from "./batch_pool.ts";
import { giveBackLargeBuffer, takeLargeBuffer } from "../codec/large_buffer_pool.ts";

/** Limits of one outgoing queue. */
export interface QueueLimits {
  /** Frames queued or being written, at most. */
  maxMessages: number;
  /** Bytes (headers included) queued or being written, at most. */
  maxBytes: number;
}

/**
 * A frame this large gets a buffer of its own instead of a place in the
 * batch: written as it is, between the batches before and after it, it is
 * copied once (when its body is written into it) and the batch is not
 * regrown to hold it.
 */
const OWN_BUFFER_FRAME_BYTES = 64 * 1024;
/**
 * The shared buffers a writer's waiting runs keep alive (see pushShared) hold at most twice the bytes it has queued,
 * plus this much: a peer that takes every broadcast keeps about what it queued, and one that takes one broadcast in a
 * thousand cannot keep a whole buffer alive for each.
 */
const SHARED_SLACK_BYTES = 128 * 1024;
/** One write takes at most this much of a run (see #writable); more than the kernel's socket buffer. */
const MAX_WRITE_BYTES = 256 * 1024;

/** Writers waiting for the microtask that drains them (see FrameWriter.#drainScheduled), and the list that takes turns with it. */
let scheduled: FrameWriter[] = [];
let spareScheduled: FrameWriter[] = [];

/** Where `#target` points before the first frame: one empty array for every writer (an ArrayBuffer each costs memory). */
const NO_BYTES = new Uint8Array(0);

/** A run of frames ready to be written, in order: `bytes[start, end)`. */
interface Sealed {
  bytes: Uint8Array;
  start: number;
  end: number;
  frames: number;
  /**
   * What `bytes` is, given back to its pool once written: a batch, or a large frame's own buffer; or frames other
   * writers write too (see pushShared), nobody's to give back, in a run that may grow until written.
   */
  kind: "batch" | "own" | "shared";
}

/**
 * The outgoing side of one connection. Frames are written, each behind its length, into one batch buffer; the batch
 * is written with a single `write()` once the current tick ends, while the next batch fills. A batch without
 * droppable frames grows to what one write takes at most (256 KiB, or half of `maxBytes`); a burst beyond that goes
 * on in the next. A small frame is copied exactly once, and no per-frame buffer is allocated; a large one is written
 * into a buffer of its own (see OWN_BUFFER_FRAME_BYTES); one that many writers write is not copied at all (see
 * pushShared).
 *
 * Written through the connection's byte channel (no stream per write), or
 * through a `WritableStream`.
 *
 * The caller checks {@linkcode FrameWriter.hasRoom} before pushing: this
 * class never refuses, so the policy for a full queue lives with the caller.
 */
export class FrameWriter {
  readonly limits: QueueLimits;
  /** Called after each completed write, to notice when room returns. */
  onWritten: (() => void) | undefined;
  framesOut = 0;
  bytesOut = 0;
  /**
   * When the writer last made progress (`performance.now()`): a write
   * completed, or the first frame after an idle spell was queued. With frames
   * queued, the time since tells how long the other side has read nothing.
   */
  progressAt = 0;
  /** Only the hub reads {@linkcode progressAt}, and a clock read per write costs (0.13 µs on Deno). */
  readonly #tracksProgress: boolean;
  #writableFrames = 0; // frames in the bytes #writable last returned
  readonly #sink: BatchSink;
  /** The batch filling, if any frame is in it. */
  #batch: Uint8Array | undefined;
  #batchBytes = 0;
  #batchFrames = 0;
  /** Where the last reserve() points: the batch, or a large frame's own buffer. */
  #target: Uint8Array = NO_BYTES;
  /** Start offsets of droppable frames in the batch, oldest first (see dropOldest). */
  #droppable: number[] = [];
  /** Runs sealed before the batch (when a large frame came), oldest first. */
  readonly #sealed: Sealed[] = [];
  #sealedMessages = 0;
  #sealedBytes = 0;
  /** Bytes of the shared buffers that runs among them are in (see pushShared). */
  #sharedBufferBytes = 0;
  #inFlightMessages = 0;
  #inFlightBytes = 0;
  /** What the transport is writing, and the batch it is in (if it is in one). */
  #inFlight: Uint8Array | undefined;
  #inFlightBatch: Uint8Array | undefined;
  /** Whether that buffer goes back to its pool once written: not while a run still waits in the same batch. */
  #inFlightPooled = false;
  #writing = false;
  #scheduled = false;
  #failed = false;
  /** Made when first waited on: most writers never are. */
  #idleWaiters: Array<() => void> | undefined;

  /**
   * @param target The connection to write to (through its byte channel, and
   * closed on abort), or a stream.
   * @param limits The queue's limits.
   * @param tracksProgress Whether to keep {@linkcode progressAt}.
   */
  constructor(target: Connection | WritableStream<Uint8Array>, limits: QueueLimits, tracksProgress = true) {
    this.#sink = batchSink(target);
    this.limits = limits;
    this.#tracksProgress = tracksProgress;
  }

  /** Whether a write failed or the writer was aborted: nothing more will be written. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Frames queued or in flight. */
  get messages(): number {
    return this.#batchFrames + this.#sealedMessages + this.#inFlightMessages;
  }

  /** Bytes queued or in flight. */
  get bytes(): number {
    return this.#batchBytes + this.#sealedBytes + this.#inFlightBytes;
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
    if (at >= 0) this.#target.set(body, at);
  }

  /**
   * Queues the frame at `buffer[start, end)` (header included), which other
   * writers queue too: the hub's announcements and broadcasts go to every peer
   * at once, and copied, each took a batch of its own, a thousand at a time
   * (issue 13). It is written from there, never copied nor changed, and a
   * frame that follows the last one queued so, in the same buffer, joins its
   * write. Each run keeps its whole buffer alive, so a new run starts only
   * while the buffers of the runs waiting (not the one being written) stay
   * within twice what is queued plus SHARED_SLACK_BYTES; else the frame is
   * copied in behind what waits, as {@linkcode push} does.
   */
  pushShared(buffer: Uint8Array, start = 0, end = buffer.byteLength): void {
    if (this.#failed) return;
    const sealed = this.#sealed;
    const last = this.#batch || sealed.length === 0 ? undefined : sealed[sealed.length - 1];
    const joins = last !== undefined && last.kind === "shared" && last.bytes === buffer && last.end === start;
    if (!joins && this.#sharedBufferBytes + buffer.byteLength > 2 * (this.bytes + end - start) + SHARED_SLACK_BYTES) {
      return this.push(buffer.subarray(start + FRAME_HEADER_BYTES, end));
    }
    this.#schedule();
    if (joins) {
      last.end = end;
      last.frames++;
    } else {
      this.#seal(); // what waits in the batch came first
      sealed.push({ bytes: buffer, start, end, frames: 1, kind: "shared" });
      this.#sharedBufferBytes += buffer.byteLength;
    }
    this.#sealedMessages++;
    this.#sealedBytes += end - start;
  }

  #schedule(): void {
    if (this.#tracksProgress && this.messages === 0) this.progressAt = performance.now();
    if (!this.#scheduled && !this.#writing) {
      this.#scheduled = true;
      if (scheduled.push(this) === 1) queueMicrotask(FrameWriter.#drainScheduled);
    }
  }

  /**
   * Makes room for a frame body of `bodyBytes`, writes its header, and
   * returns the offset in {@linkcode buffer} where the caller writes the
   * body now (before yielding). Returns -1 if the writer has failed.
   */
  reserve(bodyBytes: number, droppable = false): number {
    if (this.#failed) return -1;
    this.#schedule();
    const frameBytes = FRAME_HEADER_BYTES + bodyBytes;
    if (frameBytes >= OWN_BUFFER_FRAME_BYTES) {
      this.#seal();
      const own = takeLargeBuffer(frameBytes).subarray(0, frameBytes);
      writeFrameHeader(own, 0, bodyBytes);
      this.#sealed.push({ bytes: own, start: 0, end: frameBytes, frames: 1, kind: "own" });
      this.#sealedMessages++;
      this.#sealedBytes += frameBytes;
      this.#target = own;
      return FRAME_HEADER_BYTES;
    }
    let batch = this.#batch;
    let need = this.#batchBytes + frameBytes;
    // Full, and grown to what one write takes: its frames wait as a run, and the next go into a new batch. Growing on
    // would copy the whole queue again at each doubling, and a batch larger than the pool keeps is garbage once
    // written (a sender flat out made several MiB of it per full queue). Droppable frames can only be dropped from the
    // batch: for them it grows.
    if (batch && need > batch.byteLength && need > this.#writeLimit() && this.#droppable.length === 0) {
      this.#seal();
      batch = undefined;
      need = frameBytes;
    }
    if (!batch) batch = this.#batch = takeBatch(need);
    else if (need > batch.byteLength) batch = this.#grow(batch, need);
    if (droppable) this.#droppable.push(this.#batchBytes);
    writeFrameHeader(batch, this.#batchBytes, bodyBytes);
    this.#batchBytes = need;
    this.#batchFrames++;
    this.#target = batch;
    return need - bodyBytes;
  }

  /** The buffer the last {@linkcode reserve} offset points into. */
  get buffer(): Uint8Array {
    return this.#target;
  }

  #grow(batch: Uint8Array, need: number): Uint8Array {
    const next = takeBatch(Math.max(need, batch.byteLength * 2));
    next.set(batch.subarray(0, this.#batchBytes));
    giveBack(batch);
    return this.#batch = next;
  }

  /**
   * Moves the batch's frames from offset `from` on (`frames` of them; all by default) behind the runs already
   * sealed; the next frame starts a new batch.
   */
  #seal(from = 0, frames = this.#batchFrames): void {
    const batch = this.#batch;
    if (!batch) return;
    this.#sealed.push({ bytes: batch, start: from, end: this.#batchBytes, frames, kind: "batch" });
    this.#sealedMessages += frames;
    this.#sealedBytes += this.#batchBytes - from;
    this.#forgetBatch();
  }

  /** The batch was sealed, written or dropped: the next frame starts a new one. */
  #forgetBatch(): void {
    this.#batch = undefined;
    this.#batchBytes = 0;
    this.#batchFrames = 0;
    this.#droppable.length = 0;
  }

  /** Removes the oldest droppable frame still in the batch. Returns false if there is none. */
  dropOldest(): boolean {
    const start = this.#droppable.shift();
    if (start === undefined) return false;
    const b = this.#batch!;
    const frameBytes = FRAME_HEADER_BYTES + readFrameHeader(b, start);
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
    if (this.#batch) giveBack(this.#batch);
    this.#forgetBatch();
    // A run left of the batch a write under way reads from is not given back: that write still reads it.
    for (const run of this.#sealed) if (run.kind === "batch" && run.bytes !== this.#inFlightBatch) giveBack(run.bytes);
    this.#sealed.length = 0;
    this.#sealedMessages = 0;
    this.#sealedBytes = 0;
    this.#sharedBufferBytes = 0;
  }

  /** Resolves once everything pushed so far has been written (or writing failed). */
  idle(): Promise<void> {
    if (this.messages === 0 || this.#failed) return Promise.resolve();
    return new Promise((resolve) => (this.#idleWaiters ??= []).push(resolve));
  }

  /** Closes the writing side after the queued frames, waiting at most `timeout` ms for them. */
  async close(timeout: number): Promise<void> {
    await waitAtMost(this.idle(), timeout);
    if (this.messages === 0 && !this.#failed) await this.#sink.closeWrite();
    else this.abort();
  }

  /** Drops everything queued; the connection (or stream) is closed. */
  abort(): void {
    this.#failed = true;
    this.discardQueued();
    this.#sink.abort();
    this.#wakeIdle();
  }

  #drain(): void {
    this.#scheduled = false;
    if (this.#writing) return;
    this.#writing = true;
    this.#writeNext();
  }

  /**
   * Writes the sealed runs, then the batch, for as long as the sink takes
   * them at once (Bun's socket usually does), without a promise; the first
   * write that has to wait continues this when it settles.
   */
  #writeNext(): void {
    try {
      while (!this.#failed) {
        // Runs sealed before a large frame go first; the batch filling now is the newest.
        const sealed = this.#sealed.length > 0 ? this.#sealed.shift() : undefined;
        let bytes: Uint8Array;
        let frames: number;
        let batch: Uint8Array | undefined;
        /** Whether the buffer written goes back to a pool once written (not when a part of a run is). */
        let pooled = true;
        if (sealed) {
          const { start, end } = sealed;
          frames = sealed.frames;
          batch = sealed.kind === "batch" ? sealed.bytes : undefined;
          bytes = start === 0 && end === sealed.bytes.byteLength ? sealed.bytes : sealed.bytes.subarray(start, end);
          pooled = sealed.kind !== "shared";
          const n = this.#writable(bytes, bytes.byteLength, frames);
          const taken = this.#writableFrames;
          if (taken < frames) {
            // The rest of the run stays first in line, and its batch goes back once the rest is written.
            this.#sealed.unshift({ ...sealed, start: start + n, frames: frames - taken });
            bytes = bytes.subarray(0, n);
            frames = taken;
            pooled = false;
          } else if (sealed.kind === "shared") this.#sharedBufferBytes -= sealed.bytes.byteLength;
          this.#sealedMessages -= frames;
          this.#sealedBytes -= bytes.byteLength;
        } else if (this.#batchFrames > 0) {
          batch = this.#batch!;
          const n = this.#writable(batch, this.#batchBytes, this.#batchFrames);
          const taken = this.#writableFrames;
          bytes = batch.subarray(0, n);
          frames = taken;
          const restFrames = this.#batchFrames - taken;
          if (restFrames > 0 && (this.#droppable.at(-1) ?? -1) >= n) {
            // Frames beyond this write stay queued (and droppable), at the start of the next batch.
            const rest = batch.subarray(n, this.#batchBytes);
            this.#batch = takeBatch(rest.byteLength);
            this.#batch.set(rest);
            this.#batchBytes = rest.byteLength;
            this.#batchFrames = restFrames;
            this.#droppable = this.#droppable.filter((at) => at >= n).map((at) => at - n);
          } else if (restFrames > 0) {
            // None of them can be dropped: they wait where they are, as a run first in line, which gives the
            // batch back once written.
            this.#seal(n, restFrames);
            pooled = false;
          } else this.#forgetBatch();
        } else break;
        this.#inFlightMessages = frames;
        this.#inFlightBytes = bytes.byteLength;
        this.#inFlight = bytes;
        this.#inFlightBatch = batch;
        this.#inFlightPooled = pooled;
        // Counted when handed to the transport: the other side may have them
        // before this write's promise settles.
        this.framesOut += frames;
        this.bytesOut += bytes.byteLength;
        const writing = this.#sink.write(bytes);
        if (writing) {
          this.#writtenLater ??= () => {
            this.#written();
            this.#writeNext();
          };
          this.#failLater ??= () => this.#fail();
          return void writing.then(this.#writtenLater, this.#failLater);
        }
        this.#written();
      }
    } catch {
      return this.#fail();
    }
    this.#writing = false;
    if (this.messages === 0 || this.#failed) this.#wakeIdle();
  }

  /** The transport is done with what is in flight: its buffer can be reused. */
  #written(): void {
    if (this.#inFlightPooled) {
      if (this.#inFlightBatch) giveBack(this.#inFlightBatch);
      else giveBackLargeBuffer(this.#inFlight!);
    }
    this.#inFlight = this.#inFlightBatch = undefined;
    this.#inFlightPooled = false;
    // reserve()'s target is used at once, never after a write: let go of the batch it may point to, which an
    // idle writer would otherwise keep out of the pool (4 KiB per idle connection, measured).
    this.#target = NO_BYTES;
    this.#inFlightMessages = 0;
    this.#inFlightBytes = 0;
    if (this.#tracksProgress) this.progressAt = performance.now();
    this.onWritten?.();
  }

  /**
   * How much of a run of `frames` frames in `bytes` bytes of `b` one write
   * takes: all of it, or the frames that fit in half of either limit and in
   * MAX_WRITE_BYTES (one at least). A write to a peer that stopped reading
   * never completes, so what it took can never be dropped: without the half,
   * one write could hold a whole queue and leave `dropOldest()` nothing to
   * drop (tests/load/, a peer frozen mid-burst). And a write completes only
   * once the peer has read most of it: the hub tells a slow peer from a
   * stalled one by completed writes, so a peer reading a 2 MiB write for
   * longer than the stall threshold looked stalled. Returns the bytes to
   * write; the frames they hold are left in {@linkcode #writableFrames}.
   */
  #writable(b: Uint8Array, bytes: number, frames: number): number {
    const { maxMessages } = this.limits;
    const maxBytes = this.#writeLimit();
    this.#writableFrames = frames;
    // All of it, as almost always: no walk over the frames and no result object (this runs per write).
    if (frames * 2 <= maxMessages && bytes <= maxBytes) return bytes;
    let at = 0;
    let taken = 0;
    while (taken < frames) {
      const end = at + FRAME_HEADER_BYTES + readFrameHeader(b, at);
      if (taken > 0 && ((taken + 1) * 2 > maxMessages || end > maxBytes)) break;
      at = end;
      taken++;
    }
    this.#writableFrames = taken;
    return at;
  }

  /** Bytes one write takes at most (see #writable). */
  #writeLimit(): number {
    return Math.min(this.limits.maxBytes / 2, MAX_WRITE_BYTES);
  }

  /** Drains every writer scheduled since the last time: one microtask for all of them (a broadcast schedules each peer's). */
  static #drainScheduled(): void {
    const writers = scheduled;
    scheduled = spareScheduled;
    for (const writer of writers) writer.#drain();
    writers.length = 0;
    spareScheduled = writers;
  }

  // Made on the first write that completes later (Deno's all do, Bun's rarely), then kept: no closure per batch,
  // and none for a connection that never needs them.
  #writtenLater: (() => void) | undefined;
  #failLater: (() => void) | undefined;

  /** A write failed: nothing more can be written in order, so the connection (or stream) is closed. */
  #fail(): void {
    this.#failed = true;
    this.#writing = false;
    this.#inFlightMessages = 0;
    this.#inFlightBytes = 0;
    this.#sink.abort();
    this.#wakeIdle();
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = undefined;
    if (waiters) { for (const wake of waiters) wake(); }
  }
}
