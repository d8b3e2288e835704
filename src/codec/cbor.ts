/**
 * The one place cbor-x is configured. Loaded through `cbor-x/encode` and
 * `cbor-x/decode` so the optional native addon `cbor-extract` is never
 * loaded: it crashes Deno (missing V8 symbol) and Bun (long strings) alike,
 * and the bare `cbor-x` entry also demands `--allow-env` on Deno.
 *
 * @module
 */
import { Encoder } from "cbor-x/encode";
import { Decoder, setSizeLimits } from "cbor-x/decode";
import { ProtocolError } from "../errors.ts";
import { scanCbor } from "./cbor_scan.ts";
import { plainBytes } from "../util/plain_bytes.ts";

/** Upper bounds on what one CBOR item may declare, whatever its frame size. */
const CBOR_LIMITS = {
  maxArraySize: 1_000_000,
  maxMapSize: 1_000_000,
  maxObjectSize: 1_000_000,
} as const;

// Declared in cbor-x's JavaScript but missing from its type definitions.
(setSizeLimits as unknown as (limits: typeof CBOR_LIMITS) => void)(CBOR_LIMITS);

// Plain RFC 8949 on the wire: no record extension, and byte strings untagged
// whether or not a Node `Buffer` global exists.
const encoder = new Encoder({
  useRecords: false,
  tagUint8Array: false,
  // deno-lint-ignore no-explicit-any
} as any);
// copyBuffers: byte strings in user data must not keep whole read chunks alive.
const valueDecoder = new Decoder({ useRecords: false, copyBuffers: true } as Record<string, unknown>);
// Envelopes are decoded in place: their payload is a view the hub forwards.
// Byte strings come back as plain Uint8Arrays because the source always is
// one (plainBytes): cbor-x slices or views its source.
const envelopeDecoder = new Decoder({ useRecords: false } as Record<string, unknown>);

const MAJOR_BYTES = 0x40;

/** Bytes of the CBOR head of a byte string of `length` bytes (a frame's, so below 2^32). */
export function byteStringHeadBytes(length: number): number {
  return length < 24 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
}

/** Writes the CBOR head of a byte string of `length` bytes (below 2^32) at `at`; returns the offset after it. */
export function writeByteStringHead(target: Uint8Array, at: number, length: number): number {
  if (length < 24) {
    target[at] = MAJOR_BYTES | length;
    return at + 1;
  }
  if (length < 0x100) {
    target[at] = MAJOR_BYTES | 24;
    target[at + 1] = length;
    return at + 2;
  }
  if (length < 0x10000) {
    target[at] = MAJOR_BYTES | 25;
    target[at + 1] = length >>> 8;
    target[at + 2] = length & 0xff;
    return at + 3;
  }
  target[at] = MAJOR_BYTES | 26;
  target[at + 1] = length >>> 24;
  target[at + 2] = (length >>> 16) & 0xff;
  target[at + 3] = (length >>> 8) & 0xff;
  target[at + 4] = length & 0xff;
  return at + 5;
}

/** Encodes one value as a CBOR item. */
export function encodeCbor(value: unknown): Uint8Array {
  // Where a Buffer global exists this is a Buffer: callers copy it into a
  // frame and never hand it to users, so it is not rewrapped per call.
  return encoder.encode(value);
}

/**
 * The contents of `bytes` if it is exactly one definite-length CBOR byte
 * string, else undefined: a view when `bytes` lies in a frame's own buffer
 * (`own`), else a copy, a plain `Uint8Array` either way.
 */
function byteString(bytes: Uint8Array, own: boolean): Uint8Array | undefined {
  if (bytes.byteLength === 0) return undefined;
  const first = bytes[0];
  if (first < MAJOR_BYTES || first > (MAJOR_BYTES | 26)) return undefined;
  const info = first & 0x1f;
  let head = 1;
  let length = info;
  if (info === 24) {
    head = 2;
    length = bytes[1];
  } else if (info === 25) {
    head = 3;
    length = bytes[1] << 8 | bytes[2];
  } else if (info === 26) {
    head = 5;
    length = bytes[1] * 0x1000000 + (bytes[2] << 16 | bytes[3] << 8 | bytes[4]);
  } else if (info > 26) return undefined;
  // Truncated heads read undefined bytes: NaN lengths fail this too.
  if (head + length !== bytes.byteLength) return undefined;
  if (!own) return new Uint8Array(bytes.subarray(head));
  // A view of Bun's Buffer would be a Buffer: users get plain arrays.
  return bytes.constructor === Uint8Array
    ? bytes.subarray(head)
    : new Uint8Array(bytes.buffer, bytes.byteOffset + head, length);
}

function decodeWith(decoder: Decoder, bytes: Uint8Array): unknown {
  const plain = plainBytes(bytes);
  // Checked before cbor-x sees it: nesting, declared sizes, trailing bytes.
  scanCbor(plain);
  try {
    return decoder.decode(plain);
  } catch (cause) {
    throw new ProtocolError(
      `Cannot decode frame: invalid CBOR in ${bytes.byteLength} bytes (${(cause as Error)?.message ?? cause})`,
      { cause },
    );
  }
}

/**
 * Decodes one CBOR item of user data: byte strings come back as fresh
 * `Uint8Array`s, except that a value that is one byte string comes back as
 * a view of `bytes` when they lie in a frame's own buffer (`own`: a plain
 * `Uint8Array` the frame reader allocated and handed over).
 */
export function decodeCbor(bytes: Uint8Array, own = false): unknown {
  return byteString(bytes, own) ?? decodeWith(valueDecoder, bytes);
}

/** Decodes a protocol envelope; byte strings in it are views into `bytes`. */
export function decodeEnvelope(bytes: Uint8Array): unknown {
  return decodeWith(envelopeDecoder, bytes);
}
