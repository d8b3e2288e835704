import { decodeCbor } from "./cbor.ts";
import { checkMaxFrameBytes, DEFAULT_MAX_FRAME_BYTES, FrameParser } from "./frame_parser.ts";
import { ProtocolError } from "../errors.ts";

/** Options of {@linkcode FrameDecoderStream}. */
export interface FrameDecoderStreamOptions {
  /**
   * Largest frame body accepted. A header declaring more errors the stream
   * with `FrameTooLargeError` before anything of that size is allocated.
   *
   * @default {67108864}
   */
  maxFrameBytes?: number;
}

/**
 * Decodes length-prefixed CBOR frames back into values. Frames may arrive
 * split across chunks or many to a chunk; a split frame is copied once.
 * Byte strings come back as plain `Uint8Array`s.
 *
 * Errors the stream with `FrameTooLargeError` for a declared length above
 * `maxFrameBytes`, and with `ProtocolError` for bytes that are not CBOR.
 *
 * @example Round-tripping values through frames
 * ```ts
 * import { FrameDecoderStream, FrameEncoderStream } from "@ipcbus/ipcbus";
 * const values = await Array.fromAsync(
 *   ReadableStream.from([{ n: 1 }, "two"])
 *     .pipeThrough(new FrameEncoderStream())
 *     .pipeThrough(new FrameDecoderStream()),
 * );
 * console.log(values); // [{ n: 1 }, "two"]
 * ```
 */
export class FrameDecoderStream extends TransformStream<Uint8Array, unknown> {
  /**
   * Makes a decoder.
   *
   * @param options The frame size limit.
   * @throws {RangeError} when `maxFrameBytes` is not a positive integer up to 4294967295.
   */
  constructor(options: FrameDecoderStreamOptions = {}) {
    const parser = new FrameParser(checkMaxFrameBytes(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES));
    super({
      transform(chunk, controller) {
        parser.push(chunk, (body) => controller.enqueue(decodeCbor(body)));
      },
      flush(controller) {
        if (parser.buffered > 0) {
          controller.error(
            new ProtocolError(
              `Cannot decode frame: stream ended inside a frame, ${parser.buffered} bytes unread`,
            ),
          );
        }
      },
    });
  }
}
