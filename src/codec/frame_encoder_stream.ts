import { encodeCbor } from "./cbor.ts";
import { checkMaxFrameBytes, DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES } from "./frame_parser.ts";
import { joinFrames } from "./join_frames.ts";
import { FrameTooLargeError } from "../errors.ts";
import { positiveInteger } from "../util/positive_integer.ts";

/** Options of {@linkcode FrameEncoderStream}. */
export interface FrameEncoderStreamOptions {
  /**
   * Largest CBOR body one frame may carry; a value encoding to more errors
   * the stream with `FrameTooLargeError`.
   *
   * @default {67108864}
   */
  maxFrameBytes?: number;
  /**
   * Frames are coalesced into one chunk until this many bytes are waiting,
   * then emitted at once.
   *
   * @default {65536}
   */
  coalesceBytes?: number;
}

/**
 * Encodes each value as one frame: a 4-byte big-endian length, then one CBOR
 * item. Frames written in the same turn of the event loop leave as one chunk,
 * so many small messages cost few socket writes. A value holding a function,
 * a symbol or a cycle errors the stream with `DataError`, whose `path` names
 * the bad value.
 *
 * @example Encoding values to frames
 * ```ts
 * import { FrameEncoderStream } from "@ipcbus/ipcbus";
 * const chunks = await Array.fromAsync(
 *   ReadableStream.from([{ hello: "world" }, 42]).pipeThrough(new FrameEncoderStream()),
 * );
 * console.log(chunks.length); // 1: both frames in one chunk
 * ```
 */
export class FrameEncoderStream extends TransformStream<unknown, Uint8Array> {
  /**
   * Makes an encoder.
   *
   * @param options Frame size limit and coalescing threshold.
   * @throws {RangeError} when an option is not a positive integer, or `maxFrameBytes` exceeds 4294967295.
   */
  constructor(options: FrameEncoderStreamOptions = {}) {
    // Bounded by the header too: a larger body would be written with a wrapped length.
    const maxFrameBytes = checkMaxFrameBytes(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    const coalesceBytes = positiveInteger("coalesceBytes", options.coalesceBytes ?? 65536);
    let frames: Uint8Array[] = [];
    let waitingBytes = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const emit = (controller: TransformStreamDefaultController<Uint8Array>) => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      if (waitingBytes === 0) return;
      controller.enqueue(joinFrames(frames, waitingBytes));
      frames = [];
      waitingBytes = 0;
    };
    // `cancel` is newer than the Transformer type of some DOM libs (the one
    // tsc builds the declaration files with), hence the widened type.
    const transformer: Transformer<unknown, Uint8Array> & { cancel?(reason: unknown): void } = {
      transform(value, controller) {
        const body = encodeCbor(value);
        if (body.byteLength > maxFrameBytes) {
          throw new FrameTooLargeError(
            `Cannot encode frame: body of ${body.byteLength} bytes exceeds maxFrameBytes ${maxFrameBytes}`,
          );
        }
        frames.push(body);
        waitingBytes += FRAME_HEADER_BYTES + body.byteLength;
        if (waitingBytes >= coalesceBytes) emit(controller);
        // Transform calls for values written together arrive a few microtasks
        // apart, so only a macrotask sees them all.
        else if (timer === undefined) timer = setTimeout(() => emit(controller), 0);
      },
      flush: emit,
      cancel() {
        if (timer !== undefined) clearTimeout(timer);
      },
    };
    super(transformer);
  }
}
