/**
 * Length-prefixed frames for the raw baselines of compare.ts: the least a
 * program must do to exchange framed bytes over a socket, with none of
 * ipcbus's code. Shared by raw_deno.ts and raw_bun.ts.
 *
 * @module
 */

/** Bytes of the big-endian length before every frame. */
export const HEADER_BYTES = 4;

/**
 * A growable receive buffer. Bytes are read straight into {@linkcode space}
 * (Deno) or copied there from a chunk (Bun), then whole frames are handed
 * out as views, header included.
 */
export class FrameBuffer {
  #buf = new Uint8Array(256 * 1024);
  #start = 0;
  #end = 0;

  /** Free space of at least `minBytes` at the end of the buffered bytes, to read into. */
  space(minBytes = 64 * 1024): Uint8Array {
    if (this.#buf.byteLength - this.#end < minBytes) {
      const used = this.#end - this.#start;
      if (used + minBytes > this.#buf.byteLength) {
        const next = new Uint8Array(Math.max(used + minBytes, this.#buf.byteLength * 2));
        next.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = next;
      } else this.#buf.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = used;
    }
    return this.#buf.subarray(this.#end);
  }

  /** Marks `n` bytes read into {@linkcode space} as buffered. */
  commit(n: number): void {
    this.#end += n;
  }

  /** Copies `chunk` in. */
  append(chunk: Uint8Array): void {
    this.space(chunk.byteLength).set(chunk);
    this.#end += chunk.byteLength;
  }

  /** Bytes the next read should make room for: the rest of a large frame at once, else 64 KiB. */
  wanted(): number {
    if (this.#end - this.#start >= HEADER_BYTES) {
      const missing = HEADER_BYTES + readLength(this.#buf, this.#start) - (this.#end - this.#start);
      if (missing > 64 * 1024) return missing;
    }
    return 64 * 1024;
  }

  /** Calls `onFrame` with each complete frame (header included), as a view valid during the call. */
  drain(onFrame: (frame: Uint8Array) => void): void {
    while (this.#end - this.#start >= HEADER_BYTES) {
      const total = HEADER_BYTES + readLength(this.#buf, this.#start);
      if (this.#end - this.#start < total) break;
      onFrame(this.#buf.subarray(this.#start, this.#start + total));
      this.#start += total;
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }
}

/**
 * A copy of a frame's body in memory of its own, out of the receive buffer
 * that the next read reuses: what a program that keeps its messages must do,
 * and what ipcbus does for every payload it hands to its user. The latency
 * and cpu roles make one per reply with `spec.keep`, the baseline that
 * prices that copy (bench/README.md, "What is measured").
 */
export function copyBody(frame: Uint8Array): Uint8Array {
  return frame.slice(HEADER_BYTES);
}

/** The body length in the header at `at`. */
export function readLength(buf: Uint8Array, at: number): number {
  return buf[at] * 0x1000000 + (buf[at + 1] << 16 | buf[at + 2] << 8 | buf[at + 3]);
}

/** Writes a header for `length` at `at`. */
export function writeLength(buf: Uint8Array, at: number, length: number): void {
  buf[at] = length >>> 24;
  buf[at + 1] = (length >>> 16) & 0xff;
  buf[at + 2] = (length >>> 8) & 0xff;
  buf[at + 3] = length & 0xff;
}

/** One frame of `bytes` body bytes. */
export function makeFrame(bytes: number): Uint8Array {
  const frame = new Uint8Array(HEADER_BYTES + bytes).fill(7);
  writeLength(frame, 0, bytes);
  return frame;
}

/**
 * Batches cbor-x-encoded frames for the one-way baseline: frames are encoded
 * into one buffer, which is handed to `write` whenever it holds `batchBytes`.
 */
export class FrameBatcher {
  readonly #batchBytes: number;
  #batch: Uint8Array;
  #at = 0;

  constructor(batchBytes: number) {
    this.#batchBytes = batchBytes;
    this.#batch = new Uint8Array(batchBytes);
  }

  /** Adds one frame; returns a full batch to write, or undefined. */
  add(body: Uint8Array): Uint8Array | undefined {
    let full: Uint8Array | undefined;
    if (this.#at + HEADER_BYTES + body.byteLength > this.#batch.byteLength) full = this.take();
    writeLength(this.#batch, this.#at, body.byteLength);
    this.#batch.set(body, this.#at + HEADER_BYTES);
    this.#at += HEADER_BYTES + body.byteLength;
    return full;
  }

  /** What is batched so far; the next frames go to a new buffer. */
  take(): Uint8Array {
    const out = this.#batch.subarray(0, this.#at);
    this.#batch = new Uint8Array(this.#batchBytes);
    this.#at = 0;
    return out;
  }
}
