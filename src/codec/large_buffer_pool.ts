/**
 * Large buffers for one frame each, shared by the process: the frame
 * readers that lend the frames they assemble from pieces (the hub's), and
 * the frame writers, whose large frames are written from a buffer of their
 * own.
 *
 * On Deno a fresh `Uint8Array` of 100 KiB costs about 47 µs on the project's
 * machine, against 1 µs to copy 100 KiB into a buffer already in use:
 * V8 zeroes it and the kernel faults its pages in (`perf record` of a loop of
 * `new Uint8Array(102400)`: 38 % `memset`, 31 % page faults). Bun's is
 * cheaper (about 7 µs) but not free. A reader that lends each frame only for
 * the call that handles it takes its buffer from here and gives it back
 * after that call, a writer once the frame is written, so a stream of large
 * frames is read and written in memory that is already mapped.
 *
 * Bounded: at most {@linkcode MAX_POOLED_BUFFERS} buffers of at most
 * {@linkcode MAX_POOLED_BUFFER_BYTES} each are kept; others are let go.
 *
 * @module
 */

/** Largest buffer kept for reuse: frames above it are assembled in a fresh buffer each. */
export const MAX_POOLED_BUFFER_BYTES = 4 * 1024 * 1024;
/** Buffers kept, at most: as many as connections read or write a large frame at the same moment. */
export const MAX_POOLED_BUFFERS = 4;

const pooled: Uint8Array[] = [];

/**
 * A buffer of at least `bytes`: the smallest pooled one that holds `wanted`
 * if any does, else the smallest that holds `bytes`, else a new one of
 * about `bytes`. A frame reader that may hold only part of a frame's room
 * at first asks for that part and wants the whole: a pooled buffer costs
 * nothing more for being larger, and one that holds the whole frame is never
 * regrown (regrowing copies all that came so far).
 *
 * @param bytes Room needed.
 * @param wanted Room that would serve the caller to the end, if a pooled buffer has it.
 * @returns A buffer that is the caller's until it gives it back with
 * {@linkcode giveBackLargeBuffer}; a new one is up to an eighth larger than `bytes` (see `sizeClass`).
 */
export function takeLargeBuffer(bytes: number, wanted: number = bytes): Uint8Array {
  let best = -1;
  for (let i = 0; i < pooled.length; i++) {
    const size = pooled[i].byteLength;
    if (size < bytes || (best >= 0 && !isBetter(size, pooled[best].byteLength, wanted))) continue;
    best = i;
  }
  if (best < 0) return new Uint8Array(sizeClass(bytes));
  const buffer = pooled[best];
  pooled[best] = pooled[pooled.length - 1];
  pooled.pop();
  return buffer;
}

/**
 * The size a fresh buffer for `bytes` is made at: `bytes` rounded up to the
 * next eighth of its power of two (at most 12.5 % more), or `bytes` itself
 * above {@linkcode MAX_POOLED_BUFFER_BYTES}, where nothing is kept anyway. A
 * run of frames that each need a little more than the last (a hub's
 * welcomes, which list every peer, on a bus that grows one peer at a time)
 * then reuses one buffer per eighth, where exact sizes made a fresh buffer
 * for each frame: 100 MB of garbage over the 1 000 joins from 1 000 to
 * 2 000 peers, which fragmented a Deno hub's heap by some 28 KiB per peer.
 */
function sizeClass(bytes: number): number {
  if (bytes > MAX_POOLED_BUFFER_BYTES) return bytes;
  const step = Math.max(1, 2 ** Math.floor(Math.log2(bytes)) / 8);
  return Math.ceil(bytes / step) * step;
}

/** Whether a pooled buffer of `size` serves a caller that wants `wanted` better than one of `than`. */
function isBetter(size: number, than: number, wanted: number): boolean {
  if ((size >= wanted) !== (than >= wanted)) return size >= wanted;
  return size < than;
}

/**
 * Gives back a buffer from {@linkcode takeLargeBuffer} (or a view of one): kept
 * for the next frame if it is small enough and the pool has room, the
 * smallest one pooled making way for a larger one (it serves every smaller frame too).
 *
 * @param bytes The buffer, or any view of it; the caller must not touch it afterwards.
 */
export function giveBackLargeBuffer(bytes: Uint8Array): void {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : new Uint8Array(bytes.buffer);
  if (whole.byteLength > MAX_POOLED_BUFFER_BYTES || whole.byteLength === 0) return;
  if (pooled.length >= MAX_POOLED_BUFFERS) {
    let smallest = 0;
    for (let i = 1; i < pooled.length; i++) if (pooled[i].byteLength < pooled[smallest].byteLength) smallest = i;
    if (pooled[smallest].byteLength >= whole.byteLength) return;
    pooled[smallest] = whole;
    return;
  }
  pooled.push(whole);
}
