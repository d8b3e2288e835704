import { FrameTooLargeError } from "../errors.ts";

/** Bytes of the big-endian length that precedes every frame body. */
export const FRAME_HEADER_BYTES = 4;

/** Default `maxFrameBytes`: 64 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Largest length the 4-byte header can state. */
const MAX_FRAME_BYTES_LIMIT = 0xffff_ffff;

/**
 * Checks a `maxFrameBytes` option: a positive integer the header can state.
 *
 * @throws {RangeError} otherwise.
 */
export function checkMaxFrameBytes(value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0 || value > MAX_FRAME_BYTES_LIMIT) {
    throw new RangeError(
      `Invalid option maxFrameBytes: expected a positive integer up to ${MAX_FRAME_BYTES_LIMIT}, got ${value}`,
    );
  }
  return value;
}

/**
 * Splits a byte stream into frame bodies. Chunks of a split frame are kept in
 * a list and joined once, when the frame is complete; frames wholly inside one
 * chunk are emitted as views of it without copying.
 */
export class FrameParser {
  readonly #maxFrameBytes: number;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Length of the frame being assembled, or -1 until its header is in. */
  #bodyBytes = -1;

  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received of a frame not yet complete, its header included once read. */
  get buffered(): number {
    return this.#pendingBytes + (this.#bodyBytes >= 0 ? FRAME_HEADER_BYTES : 0);
  }

  /**
   * Feeds one chunk; calls `onFrame` with every frame body it completes.
   *
   * @throws {FrameTooLargeError} when a header declares more than `maxFrameBytes`.
   */
  push(chunk: Uint8Array, onFrame: (body: Uint8Array) => void): void {
    let offset = 0;
    // A header may end exactly at a chunk's end: then no body byte is pending
    // yet, but the next chunk still starts inside that frame's body.
    if (this.#pendingBytes > 0 || this.#bodyBytes >= 0) {
      offset = this.#completePending(chunk, onFrame);
      if (offset < 0) return;
    }
    const end = chunk.byteLength;
    while (end - offset >= FRAME_HEADER_BYTES) {
      const bodyBytes = this.#readLength(
        chunk[offset] * 0x1000000 + (chunk[offset + 1] << 16 | chunk[offset + 2] << 8 | chunk[offset + 3]),
      );
      const start = offset + FRAME_HEADER_BYTES;
      if (end - start < bodyBytes) {
        // Keep only the body's first bytes: the header is consumed.
        this.#bodyBytes = bodyBytes;
        offset = start;
        break;
      }
      offset = start + bodyBytes;
      onFrame(chunk.subarray(start, offset));
    }
    if (offset < end) {
      this.#pending.push(chunk.subarray(offset));
      this.#pendingBytes = end - offset;
    }
  }

  #readLength(bodyBytes: number): number {
    if (bodyBytes > this.#maxFrameBytes) {
      throw new FrameTooLargeError(
        `Cannot decode frame: declared length ${bodyBytes} exceeds maxFrameBytes ${this.#maxFrameBytes}`,
      );
    }
    return bodyBytes;
  }

  /**
   * Adds `chunk` to a partial frame. Returns the offset in `chunk` where
   * unconsumed bytes start, or -1 when all of it was kept as pending.
   */
  #completePending(chunk: Uint8Array, onFrame: (body: Uint8Array) => void): number {
    if (this.#bodyBytes < 0) {
      const missing = FRAME_HEADER_BYTES - this.#pendingBytes;
      if (chunk.byteLength < missing) {
        this.#keep(chunk);
        return -1;
      }
      const header = this.#take(this.#pendingBytes, chunk, missing);
      this.#bodyBytes = this.#readLength(new DataView(header.buffer, header.byteOffset, 4).getUint32(0));
      this.#pending = [];
      this.#pendingBytes = 0;
      return this.#completeBody(chunk, missing, onFrame);
    }
    return this.#completeBody(chunk, 0, onFrame);
  }

  #completeBody(chunk: Uint8Array, offset: number, onFrame: (body: Uint8Array) => void): number {
    const missing = this.#bodyBytes - this.#pendingBytes;
    if (chunk.byteLength - offset < missing) {
      this.#keep(chunk.subarray(offset));
      return -1;
    }
    const body = this.#take(this.#pendingBytes, chunk.subarray(offset), missing);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#bodyBytes = -1;
    onFrame(body);
    return offset + missing;
  }

  #keep(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.byteLength;
  }

  /** Joins the pending chunks and the first `fromChunk` bytes of `chunk`, once. */
  #take(pendingBytes: number, chunk: Uint8Array, fromChunk: number): Uint8Array {
    if (pendingBytes === 0) return chunk.subarray(0, fromChunk);
    const joined = new Uint8Array(pendingBytes + fromChunk);
    let at = 0;
    for (const part of this.#pending) {
      joined.set(part, at);
      at += part.byteLength;
    }
    joined.set(chunk.subarray(0, fromChunk), at);
    return joined;
  }
}

/** Writes `bodyBytes` as the 4-byte big-endian frame header at `offset`. */
export function writeFrameHeader(target: Uint8Array, offset: number, bodyBytes: number): void {
  target[offset] = bodyBytes >>> 24;
  target[offset + 1] = (bodyBytes >>> 16) & 0xff;
  target[offset + 2] = (bodyBytes >>> 8) & 0xff;
  target[offset + 3] = bodyBytes & 0xff;
}

/** One frame: the 4-byte header then `body`, in a new buffer. */
export function frameBytes(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.byteLength);
  writeFrameHeader(frame, 0, body.byteLength);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}
