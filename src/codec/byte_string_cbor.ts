/**
 * A byte string's CBOR that is not built until it is written: a request's or
 * an alert's `Uint8Array` goes from the user's array straight into the frame,
 * one copy, where encoding it first made two (issue 12's payload copies).
 *
 * @module
 */
import { headBytes, writeByteString } from "./cbor.ts";

/**
 * The CBOR of the byte string `bytes`: its head, then `bytes`, written where
 * the envelope is written. It refers to the caller's array, so whoever takes
 * one copies it before returning (`writeEnvelope` does).
 *
 * @example
 * ```ts
 * const cbor = new ByteStringCbor(new Uint8Array([1, 2, 3]));
 * cbor.byteLength; // 4: the head 0x43, then the three bytes
 * ```
 */
export class ByteStringCbor {
  /** The byte string's bytes: the caller's, not a copy. */
  readonly bytes: Uint8Array;
  /** Bytes of the CBOR: head and bytes. */
  readonly byteLength: number;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.byteLength = headBytes(bytes.byteLength) + bytes.byteLength;
  }

  /** Writes the CBOR into `target` at `at`; returns where it ends. */
  writeTo(target: Uint8Array, at: number): number {
    return writeByteString(target, at, this.bytes);
  }
}

/** One CBOR item of user data: its bytes, or a byte string's not yet written. */
export type CborData = Uint8Array | ByteStringCbor;

/**
 * `data` as bytes: itself, or a byte string's CBOR written into a new buffer.
 *
 * @example
 * ```ts
 * cborBytes(new ByteStringCbor(new Uint8Array([7]))); // Uint8Array [0x41, 7]
 * ```
 */
export function cborBytes(data: CborData): Uint8Array {
  if (data instanceof Uint8Array) return data;
  const bytes = new Uint8Array(data.byteLength);
  data.writeTo(bytes, 0);
  return bytes;
}
