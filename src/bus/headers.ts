/**
 * Headers: optional text metadata on alerts, requests and responses, carried
 * in the envelope's `h` key (PROTOCOL.md, section 4.4). The hub forwards
 * them with the frame, untouched; peers that do not know `h` ignore it.
 *
 * @module
 */
import { ByteStringCbor, cborBytes } from "../codec/byte_string_cbor.ts";
import { encodeCbor } from "../codec/cbor.ts";
import { ProtocolError } from "../errors.ts";
import type { EnvelopeFields } from "./fast_envelope.ts";

/**
 * Text metadata on a message: header names to values. Names are case
 * sensitive; both are strings.
 */
export type MessageHeaders = Readonly<Record<string, string>>;

/** Headers a message may carry, at most. */
export const MAX_HEADERS = 1024;

/** The headers of a message that has none: one shared frozen object, so receiving costs nothing. */
export const NO_HEADERS: MessageHeaders = Object.freeze({});

/**
 * Checks headers given to `send`, `broadcast`, `request` or `reply`.
 * Returns undefined when there are none, so nothing goes on the wire.
 *
 * @throws {TypeError} when `headers` is not an object of non-empty names to strings.
 * @throws {RangeError} when it has more than {@linkcode MAX_HEADERS} entries.
 */
export function checkHeaders(headers: unknown): MessageHeaders | undefined {
  if (headers === undefined) return undefined;
  if (headers === null || typeof headers !== "object" || Array.isArray(headers)) {
    throw new TypeError(`Invalid headers: expected an object of strings, got ${describe(headers)}`);
  }
  const entries = Object.entries(headers);
  if (entries.length === 0) return undefined;
  if (entries.length > MAX_HEADERS) {
    throw new RangeError(`Invalid headers: ${entries.length} entries exceed the limit of ${MAX_HEADERS}`);
  }
  for (const [name, value] of entries) {
    if (name.length === 0) throw new TypeError("Invalid headers: a header name is empty");
    if (typeof value !== "string") {
      throw new TypeError(`Invalid header ${JSON.stringify(name)}: expected a string, got ${describe(value)}`);
    }
  }
  return headers as MessageHeaders;
}

/**
 * Validates the `h` key of a received envelope.
 *
 * @throws {ProtocolError} when it is not a map of non-empty text to text within {@linkcode MAX_HEADERS}.
 */
export function asHeaders(value: unknown, kind: string): MessageHeaders {
  if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array) {
    throw new ProtocolError(`Invalid ${kind} message: field h is ${describe(value)}, expected a map of text to text`);
  }
  let count = 0;
  for (const name in value) {
    const text = (value as Record<string, unknown>)[name];
    if (name.length === 0 || typeof text !== "string" || ++count > MAX_HEADERS) {
      throw new ProtocolError(
        `Invalid ${kind} message: field h must map at most ${MAX_HEADERS} non-empty names to text (at ${
          JSON.stringify(name)
        })`,
      );
    }
  }
  return value as MessageHeaders;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  return typeof value;
}

/**
 * The CBOR of an alert, request or response envelope (`fields` as the fast
 * path takes them) with headers: the fast path writes flat maps only, so an
 * envelope with `h` goes through the general encoder.
 */
export function envelopeWithHeaders(k: "a" | "q" | "p", fields: EnvelopeFields, headers: MessageHeaders): Uint8Array {
  const envelope: Record<string, unknown> = { k };
  for (const [key, value] of fields) {
    if (value !== undefined) envelope[key] = value instanceof ByteStringCbor ? cborBytes(value) : value;
  }
  envelope.h = headers;
  return encodeCbor(envelope);
}
