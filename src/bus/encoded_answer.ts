/**
 * Answers whose CBOR is already made, so a responder can send bytes it
 * received back untouched (the built-in `/ipcbus/echo`).
 *
 * @module
 */
import { encodeCborTransient } from "../codec/cbor.ts";

/**
 * A request handler's result given as the CBOR bytes of one item: written
 * into the answer as they are, not encoded again.
 * @internal
 */
export class EncodedAnswer {
  /** One complete CBOR item. */
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
}

/**
 * The payload of the answer carrying `result`: its own bytes if it is an
 * {@linkcode EncodedAnswer}, else its encoding, valid until the next encode
 * (see `encodeCborTransient`): the answer is written at once.
 */
export function answerPayload(result: unknown): Uint8Array {
  return result instanceof EncodedAnswer ? result.bytes : encodeCborTransient(result);
}
