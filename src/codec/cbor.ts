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

/** Encodes one value as a CBOR item. */
export function encodeCbor(value: unknown): Uint8Array {
  // Where a Buffer global exists this is a Buffer: callers copy it into a
  // frame and never hand it to users, so it is not rewrapped per call.
  return encoder.encode(value);
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

/** Decodes one CBOR item of user data: byte strings come back as fresh `Uint8Array`s. */
export function decodeCbor(bytes: Uint8Array): unknown {
  return decodeWith(valueDecoder, bytes);
}

/** Decodes a protocol envelope; byte strings in it are views into `bytes`. */
export function decodeEnvelope(bytes: Uint8Array): unknown {
  return decodeWith(envelopeDecoder, bytes);
}
