import { FrameTooLargeError } from "../errors.ts";
import { giveBackLargeBuffer, takeLargeBuffer } from "./large_buffer_pool.ts";

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
 * Called with each complete frame body. With `own` true the body may be
 * kept, and views of it too: it is a buffer of its own (a frame assembled
 * from several chunks), or most of a chunk its reader does not reuse, so a
 * view pins little else. Otherwise it is a view into a chunk that may be
 * overwritten once the call returns, or that holds much more.
 */
export type FrameHandler = (body: Uint8Array, own: boolean) => void;

/** A frame whose rest is at least this large is read straight into its own buffer (see `space`). */
const MIN_SPACE_BYTES = 4 * 1024;
/** A chunk that is one whole frame this large or larger is reported by {@linkcode FrameParser.wholeFrameBytes}. */
export const WHOLE_FRAME_MIN_BYTES = 32 * 1024;
/** A frame being assembled gets at least this much room at first, however little of it came. */
const FIRST_CAPACITY_BYTES = 64 * 1024;
/** ... and at most this many times what came of it so far (see FrameParser). */
const CAPACITY_PER_BYTE_IN = 16;

/**
 * Splits a byte stream into frame bodies: the one frame reader of the hub,
 * the peer and `FrameDecoderStream`. Frames wholly inside one chunk are
 * handed out as views of it without copying. A frame split across chunks is
 * assembled in a buffer of its own size, allocated once its header is in:
 * each byte is copied once, and a reader that reads into a buffer of the
 * caller's choosing can read the rest of a large frame straight into it
 * ({@linkcode space}), which copies nothing.
 *
 * A header may lie about its length (up to `maxFrameBytes`): that buffer
 * therefore grows with what arrives, to at most 16 times the bytes in (at
 * least 64 KiB), so a liar gets little memory for the bytes it sends, and
 * an honest large frame is regrown once or twice, copying a sixteenth of
 * it on the way.
 *
 * A parser made with `lend: true` assembles in buffers from a pool shared
 * by the process (`large_buffer_pool.ts`) and hands such frames out with `own`
 * false, taking the buffer back once the handler returns: for a reader
 * that copies what it keeps anyway, as the hub does, since a fresh buffer
 * per large frame costs more than the copy.
 */
export class FrameParser {
  readonly #maxFrameBytes: number;
  /** Header of a frame whose 4 header bytes were split across chunks. */
  /** Made when a header is first split (an ArrayBuffer per idle connection costs memory). */
  #head: Uint8Array | undefined;
  #headBytes = 0;
  /** Body of the frame being assembled (its first bytes, while it grows), its length, and how much is in. */
  #body: Uint8Array | undefined;
  #bodyBytes = 0;
  #filled = 0;

  readonly #lend: boolean;
  /** See {@linkcode wholeFrameBytes}. */
  #wholeFrameBytes = 0;

  /**
   * @param maxFrameBytes Largest frame body accepted.
   * @param lend Assemble split frames in pooled buffers and lend them to the handler (see the class doc).
   */
  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES, lend = false) {
    this.#maxFrameBytes = maxFrameBytes;
    this.#lend = lend;
  }

  /** Bytes received of a frame not yet complete, its header included once read. */
  get buffered(): number {
    return this.#body ? FRAME_HEADER_BYTES + this.#filled : this.#headBytes;
  }

  /**
   * The size of the last chunk pushed when it was exactly one whole frame,
   * header included, of at least {@linkcode WHOLE_FRAME_MIN_BYTES}; else 0,
   * and always 0 for a lending parser. Replies of one size come one per
   * chunk, so a reader that reads into buffers of its choosing can read the
   * next chunk into a fresh buffer about this large and push it as kept:
   * the frame in it then reaches its user without a copy.
   */
  get wholeFrameBytes(): number {
    return this.#wholeFrameBytes;
  }

  /**
   * Where the next bytes should be read to: the rest of a large frame being
   * assembled, which then needs no copy. Undefined when there is none, or
   * when the rest is small enough that reading more at once is cheaper.
   */
  space(): Uint8Array | undefined {
    let body = this.#body;
    if (!body || this.#bodyBytes - this.#filled < MIN_SPACE_BYTES) return undefined;
    if (body.byteLength - this.#filled < MIN_SPACE_BYTES) body = this.#grow(this.#filled + MIN_SPACE_BYTES);
    // Only up to the frame's end: a pooled buffer may be larger, and what follows the frame must not land in it.
    return body.subarray(this.#filled, Math.min(body.byteLength, this.#bodyBytes));
  }

  /**
   * Feeds one chunk; calls `onFrame` with every frame body it completes.
   * With `kept` false the chunk is a buffer the caller reads into again once
   * this returns; either way what is left of a frame is copied out of it
   * (unless it was read into {@linkcode space}).
   *
   * @throws {FrameTooLargeError} when a header declares more than `maxFrameBytes`.
   */
  push(chunk: Uint8Array, onFrame: FrameHandler, kept = false): void {
    const end = chunk.byteLength;
    let at = 0;
    this.#wholeFrameBytes = 0;
    if (this.#body) {
      at = this.#fill(chunk, onFrame);
    } else if (this.#headBytes > 0) {
      const head = this.#head!;
      while (this.#headBytes < FRAME_HEADER_BYTES && at < end) head[this.#headBytes++] = chunk[at++];
      if (this.#headBytes < FRAME_HEADER_BYTES) return;
      this.#headBytes = 0;
      const bodyBytes = this.#readLength(readFrameHeader(head, 0));
      if (end - at < bodyBytes) return this.#assemble(chunk, at, bodyBytes);
      onFrame(chunk.subarray(at, at + bodyBytes), kept && bodyBytes * 2 >= end);
      at += bodyBytes;
    }
    while (end - at >= FRAME_HEADER_BYTES) {
      const bodyBytes = this.#readLength(readFrameHeader(chunk, at));
      at += FRAME_HEADER_BYTES;
      if (end - at < bodyBytes) return this.#assemble(chunk, at, bodyBytes);
      if (at === FRAME_HEADER_BYTES && end === at + bodyBytes && end >= WHOLE_FRAME_MIN_BYTES && !this.#lend) {
        this.#wholeFrameBytes = end;
      }
      onFrame(chunk.subarray(at, at + bodyBytes), kept && bodyBytes * 2 >= end);
      at += bodyBytes;
    }
    if (at === end) return;
    const head = this.#head ??= new Uint8Array(FRAME_HEADER_BYTES);
    while (at < end) head[this.#headBytes++] = chunk[at++];
  }

  #readLength(bodyBytes: number): number {
    if (bodyBytes > this.#maxFrameBytes) {
      throw new FrameTooLargeError(
        `Cannot decode frame: declared length ${bodyBytes} exceeds maxFrameBytes ${this.#maxFrameBytes}`,
      );
    }
    return bodyBytes;
  }

  /** Starts assembling a frame of `bodyBytes` with the rest of `chunk`, from `at`. */
  #assemble(chunk: Uint8Array, at: number, bodyBytes: number): void {
    const have = chunk.byteLength - at;
    this.#bodyBytes = bodyBytes;
    this.#body = this.#allocate(this.#capacity(have));
    this.#body.set(chunk.subarray(at));
    this.#filled = have;
  }

  /** Room for a frame of which `bytesIn` bytes came: see the class doc. */
  #capacity(bytesIn: number): number {
    return Math.min(this.#bodyBytes, Math.max(FIRST_CAPACITY_BYTES, bytesIn * CAPACITY_PER_BYTE_IN));
  }

  /** Regrows the frame being assembled to hold at least `bytes`, within the capacity its bytes in allow. */
  #grow(bytes: number): Uint8Array {
    const grown = this.#allocate(Math.max(bytes, this.#capacity(this.#filled)));
    grown.set(this.#body!.subarray(0, this.#filled));
    if (this.#lend) giveBackLargeBuffer(this.#body!);
    return this.#body = grown;
  }

  #allocate(bytes: number): Uint8Array {
    return this.#lend ? takeLargeBuffer(bytes, this.#bodyBytes) : new Uint8Array(bytes);
  }

  /** Adds the start of `chunk` to the frame being assembled; returns where its unused bytes start. */
  #fill(chunk: Uint8Array, onFrame: FrameHandler): number {
    let body = this.#body!;
    const n = Math.min(this.#bodyBytes - this.#filled, chunk.byteLength);
    // Read straight into space(): the bytes are in place already.
    const inPlace = chunk.buffer === body.buffer && chunk.byteOffset === body.byteOffset + this.#filled;
    if (!inPlace) {
      if (this.#filled + n > body.byteLength) body = this.#grow(this.#filled + n);
      body.set(n === chunk.byteLength ? chunk : chunk.subarray(0, n), this.#filled);
    }
    this.#filled += n;
    if (this.#filled === this.#bodyBytes) {
      this.#body = undefined;
      this.#filled = 0;
      if (!this.#lend) onFrame(body, true);
      else {
        try {
          onFrame(body.byteLength === this.#bodyBytes ? body : body.subarray(0, this.#bodyBytes), false);
        } finally {
          giveBackLargeBuffer(body);
        }
      }
    }
    return n;
  }
}

/** Writes `bodyBytes` as the 4-byte big-endian frame header at `offset`. */
export function writeFrameHeader(target: Uint8Array, offset: number, bodyBytes: number): void {
  target[offset] = bodyBytes >>> 24;
  target[offset + 1] = (bodyBytes >>> 16) & 0xff;
  target[offset + 2] = (bodyBytes >>> 8) & 0xff;
  target[offset + 3] = bodyBytes & 0xff;
}

/** The body length in the 4-byte big-endian frame header at `offset`. */
export function readFrameHeader(source: Uint8Array, offset: number): number {
  return source[offset] * 0x1000000 + (source[offset + 1] << 16 | source[offset + 2] << 8 | source[offset + 3]);
}

/** One frame: the 4-byte header then `body`, in a new buffer. */
export function frameBytes(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.byteLength);
  writeFrameHeader(frame, 0, body.byteLength);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}
