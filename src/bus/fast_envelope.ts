/**
 * Alerts, requests and responses are the hot path of the bus, so their
 * envelopes are written and read by hand here rather than through cbor-x.
 * The bytes are ordinary CBOR, byte for byte what cbor-x writes for the same
 * values but for the map head (shortest form here): a map of one-letter text
 * keys to numbers, text and byte strings, `k` first. Numbers follow cbor-x
 * (PROTOCOL.md §3): integers from -2³² to 2³²−1 as CBOR integers with at
 * most a 4-byte argument, every other number as a float64. The reader takes
 * any key order, cbor-x's form of the map head (a 2-byte count) and integers
 * of at most a 4-byte argument; anything else (a map for `s`, a float, other
 * kinds) is left to the generic decoder.
 *
 * @module
 */
import { ByteStringCbor } from "../codec/byte_string_cbor.ts";
import { headBytes, writeHead } from "../codec/cbor.ts";

/** The fields of an envelope the fast path handles; which are set depends on `k`. */
export interface FastEnvelope {
  k: string;
  f: number;
  t: number | undefined;
  n: string | undefined;
  u: string | undefined;
  r: number | undefined;
  s: number | undefined;
  w: number | undefined;
  d: Uint8Array | undefined;
}

/**
 * Where {@linkcode writeEnvelope} writes: a `FrameWriter`'s batch,
 * or one exact-size buffer (the NATS link, whose messages need no frame header).
 */
export interface EnvelopeSink {
  /** Makes room for `bodyBytes` and returns the offset in `buffer` to write them at, or -1. */
  reserve(bodyBytes: number): number;
  readonly buffer: Uint8Array;
}

/**
 * Fields to write: one-letter keys and their values; undefined values are
 * left out. `d` may be a {@linkcode ByteStringCbor}, written straight from
 * the caller's array.
 */
export type EnvelopeFields = Array<
  [key: keyof typeof KEY, value: number | string | Uint8Array | ByteStringCbor | undefined]
>;

const TEXT_1 = 0x61; // text string of length 1
const KEY = {
  k: 0x6b,
  f: 0x66,
  t: 0x74,
  n: 0x6e,
  u: 0x75,
  r: 0x72,
  s: 0x73,
  w: 0x77,
  d: 0x64,
} as const;

/** Integers cbor-x writes as CBOR integers; it writes every other number as a float64. */
function isSmallInt(value: number): boolean {
  return Number.isInteger(value) && value >= -0x100000000 && value < 0x100000000;
}

/** Size of `value` written by {@linkcode writeNumber}. */
function numberBytes(value: number): number {
  return !isSmallInt(value) ? 9 : headBytes(value < 0 ? -1 - value : value);
}

const float64 = new DataView(new ArrayBuffer(8));

/**
 * Writes a number as cbor-x does. Found by a Python client: every number went
 * out as an unsigned head, so a request id of -1 or 2³² got an answer the hub
 * could not read, and the hub disconnected the responder.
 */
function writeNumber(buf: Uint8Array, at: number, value: number): number {
  if (isSmallInt(value)) return value < 0 ? writeHead(buf, at, 0x20, -1 - value) : writeHead(buf, at, 0x00, value);
  buf[at] = 0xfb;
  float64.setFloat64(0, value);
  for (let i = 0; i < 8; i++) buf[at + 1 + i] = float64.getUint8(i);
  return at + 9;
}

const textCache = new Map<string, Uint8Array>();
const encoder = new TextEncoder();

/** Names and routes are few and repeat: encode each once (the cache is capped). */
function textBytes(text: string): Uint8Array {
  let bytes = textCache.get(text);
  if (!bytes) {
    bytes = encoder.encode(text);
    if (textCache.size < 1024) textCache.set(text, bytes);
  }
  return bytes;
}

const KIND_BYTES: Record<string, number> = { a: 0x61, q: 0x71, p: 0x70 };

/**
 * Queues one envelope of kind `k` ("a", "q" or "p") on `writer` as one
 * frame, written in place. Text values are passed as strings and written as
 * CBOR text; numbers as cbor-x writes them (integers from -2³² to 2³²−1 as
 * CBOR integers, other numbers as float64); `Uint8Array`s as byte strings,
 * and a `ByteStringCbor` as the byte string holding its CBOR.
 * `size` is {@linkcode envelopeBytes} of `fields`, if the caller has it.
 * Returns the frame body's size, or -1 if the writer has failed.
 */
export function writeEnvelope(
  writer: EnvelopeSink,
  k: "a" | "q" | "p",
  fields: EnvelopeFields,
  size: number = envelopeBytes(fields),
): number {
  let at = writer.reserve(size);
  if (at < 0) return -1;
  const buf = writer.buffer;
  // Written field by field, with no list built on the way: this runs per message.
  let entries = 1;
  for (let i = 0; i < fields.length; i++) if (fields[i][1] !== undefined) entries++;
  buf[at++] = 0xa0 | entries;
  buf[at++] = TEXT_1;
  buf[at++] = KEY.k;
  buf[at++] = TEXT_1;
  buf[at++] = KIND_BYTES[k];
  for (let i = 0; i < fields.length; i++) {
    const value = fields[i][1];
    if (value === undefined) continue;
    buf[at++] = TEXT_1;
    buf[at++] = KEY[fields[i][0]];
    if (typeof value === "number") at = writeNumber(buf, at, value);
    else if (value instanceof ByteStringCbor) at = value.writeTo(buf, writeHead(buf, at, 0x40, value.byteLength));
    else {
      const bytes = typeof value === "string" ? textBytes(value) : value;
      at = writeHead(buf, at, typeof value === "string" ? 0x60 : 0x40, bytes.byteLength);
      buf.set(bytes, at);
      at += bytes.byteLength;
    }
  }
  return size;
}

/** The size {@linkcode writeEnvelope} would write, to check limits first. */
export function envelopeBytes(fields: EnvelopeFields): number {
  let size = 1 + 4;
  for (const [, value] of fields) {
    if (value === undefined) continue;
    if (typeof value === "number") size += 2 + numberBytes(value);
    else {
      const length = typeof value === "string" ? textBytes(value).byteLength : value.byteLength;
      size += 2 + headBytes(length) + length;
    }
  }
  return size;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
let lastTextBytes = new Uint8Array(0);
let lastText = "";

/** Decodes a text value; reuses the last string when the bytes repeat, as names and routes do. */
function readText(body: Uint8Array, at: number, length: number): string | undefined {
  if (length === lastTextBytes.byteLength) {
    let same = true;
    for (let i = 0; i < length; i++) {
      if (body[at + i] !== lastTextBytes[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastText;
  }
  let text: string | undefined;
  let ascii = length <= 32;
  for (let i = at; ascii && i < at + length; i++) if (body[i] > 0x7f) ascii = false;
  if (ascii) text = String.fromCharCode.apply(null, body.subarray(at, at + length) as unknown as number[]);
  else {
    try {
      text = decoder.decode(body.subarray(at, at + length));
    } catch {
      return undefined;
    }
  }
  if (length <= 64) {
    lastTextBytes = body.slice(at, at + length);
    lastText = text;
  }
  return text;
}

/**
 * Reads an envelope of kind "a", "q" or "p" whose values are all integers
 * with at most a 4-byte argument (negative only for `r`), text or byte
 * strings. Returns undefined for anything else, which
 * the caller then decodes the general way; `d` is a view into `body`.
 */
export function readEnvelope(body: Uint8Array): FastEnvelope | undefined {
  const end = body.byteLength;
  const wide = body[0] === 0xb9 && body[1] === 0;
  const entries = wide ? body[2] : body[0] - 0xa0;
  let at = wide ? 3 : 1;
  if (entries < 2 || entries > 8 || at + 4 > end) return undefined;
  if (body[at] !== TEXT_1 || body[at + 1] !== KEY.k || body[at + 2] !== TEXT_1) return undefined;
  const kindByte = body[at + 3];
  const k = kindByte === 0x61 ? "a" : kindByte === 0x71 ? "q" : kindByte === 0x70 ? "p" : undefined;
  if (k === undefined) return undefined;
  at += 4;
  const m: FastEnvelope = {
    k,
    f: -1,
    t: undefined,
    n: undefined,
    u: undefined,
    r: undefined,
    s: undefined,
    w: undefined,
    d: undefined,
  };
  for (let i = 1; i < entries; i++) {
    if (at + 3 > end || body[at] !== TEXT_1) return undefined;
    const key = body[at + 1];
    at += 2;
    const first = body[at];
    const major = first & 0xe0;
    const info = first & 0x1f;
    let value: number;
    if (info < 24) {
      value = info;
      at += 1;
    } else if (info === 24 && at + 2 <= end) {
      value = body[at + 1];
      at += 2;
    } else if (info === 25 && at + 3 <= end) {
      value = body[at + 1] << 8 | body[at + 2];
      at += 3;
    } else if (info === 26 && at + 5 <= end) {
      value = body[at + 1] * 0x1000000 + (body[at + 2] << 16 | body[at + 3] << 8 | body[at + 4]);
      at += 5;
    } else return undefined;
    if (major === 0x20) {
      // Only a request id may be negative; a negative anything else is refused by the generic path.
      if (key !== KEY.r) return undefined;
      m.r = -1 - value;
    } else if (major === 0x00) {
      if (key === KEY.f) m.f = value;
      else if (key === KEY.t) m.t = value;
      else if (key === KEY.r) m.r = value;
      else if (key === KEY.s) m.s = value;
      else if (key === KEY.w) m.w = value;
      else return undefined;
    } else if (major === 0x40) {
      if (key !== KEY.d || at + value > end) return undefined;
      m.d = body.subarray(at, at + value);
      at += value;
    } else if (major === 0x60) {
      if (at + value > end) return undefined;
      const text = readText(body, at, value);
      if (text === undefined) return undefined;
      if (key === KEY.n) m.n = text;
      else if (key === KEY.u) m.u = text;
      else return undefined;
      at += value;
    } else return undefined;
  }
  if (at !== end || m.f < 0 || m.d === undefined) return undefined;
  if (
    k === "a"
      ? m.n === undefined
      : k === "q"
      ? m.r === undefined || m.u === undefined
      : m.r === undefined || m.t === undefined
  ) {
    return undefined;
  }
  return m;
}
