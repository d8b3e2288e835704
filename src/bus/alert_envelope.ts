/**
 * Alerts are the hot path of the bus, so their envelope is written and read
 * by hand here rather than through cbor-x. The bytes are ordinary CBOR: the
 * map `{ k: "a", f, t?, n, d, s? }` with keys in that order and shortest
 * heads. The reader also takes cbor-x's form of the same map (a 2-byte map
 * count); any other layout (a foreign client's key order, a map for `s`) is
 * left to the generic decoder.
 *
 * @module
 */
import type { FrameWriter } from "./frame_writer.ts";

/** The fields of an alert envelope. */
export interface AlertFields {
  f: number;
  t: number | undefined;
  n: string;
  d: Uint8Array;
  s: number | undefined;
}

const KEY_K = 0x6b; // "k"
const KEY_F = 0x66; // "f"
const KEY_T = 0x74; // "t"
const KEY_N = 0x6e; // "n"
const KEY_D = 0x64; // "d"
const KEY_S = 0x73; // "s"
const TEXT_1 = 0x61; // text string of length 1
const KIND_ALERT = 0x61; // "a"

function headBytes(value: number): number {
  return value < 24 ? 1 : value < 0x100 ? 2 : value < 0x10000 ? 3 : value < 0x100000000 ? 5 : 9;
}

function writeHead(buf: Uint8Array, at: number, major: number, value: number): number {
  if (value < 24) {
    buf[at] = major | value;
    return at + 1;
  }
  if (value < 0x100) {
    buf[at] = major | 24;
    buf[at + 1] = value;
    return at + 2;
  }
  if (value < 0x10000) {
    buf[at] = major | 25;
    buf[at + 1] = value >>> 8;
    buf[at + 2] = value & 0xff;
    return at + 3;
  }
  if (value < 0x100000000) {
    buf[at] = major | 26;
    buf[at + 1] = value >>> 24;
    buf[at + 2] = (value >>> 16) & 0xff;
    buf[at + 3] = (value >>> 8) & 0xff;
    buf[at + 4] = value & 0xff;
    return at + 5;
  }
  buf[at] = major | 27;
  const high = Math.floor(value / 0x100000000);
  const low = value >>> 0;
  for (let i = 0; i < 4; i++) buf[at + 1 + i] = (high >>> (24 - 8 * i)) & 0xff;
  for (let i = 0; i < 4; i++) buf[at + 5 + i] = (low >>> (24 - 8 * i)) & 0xff;
  return at + 9;
}

const nameCache = new Map<string, Uint8Array>();
const encoder = new TextEncoder();

function nameBytes(name: string): Uint8Array {
  let bytes = nameCache.get(name);
  if (!bytes) {
    bytes = encoder.encode(name);
    // Alert names are few and repeat; cap the cache so odd callers cannot grow it.
    if (nameCache.size < 1024) nameCache.set(name, bytes);
  }
  return bytes;
}

/** Size in bytes of the envelope {@linkcode writeAlert} writes. */
export function alertBytes(fields: AlertFields): number {
  const n = nameBytes(fields.n).byteLength;
  return 1 + 4 + 2 + headBytes(fields.f) + (fields.t === undefined ? 0 : 2 + headBytes(fields.t)) +
    2 + headBytes(n) + n + 2 + headBytes(fields.d.byteLength) + fields.d.byteLength +
    (fields.s === undefined ? 0 : 2 + headBytes(fields.s));
}

/** Queues an alert envelope on `writer` as one frame, written in place. */
export function writeAlert(writer: FrameWriter, fields: AlertFields, size: number): void {
  let at = writer.reserve(size);
  if (at < 0) return;
  const buf = writer.buffer;
  const entries = 4 + (fields.t === undefined ? 0 : 1) + (fields.s === undefined ? 0 : 1);
  buf[at++] = 0xa0 | entries;
  buf[at++] = TEXT_1;
  buf[at++] = KEY_K;
  buf[at++] = TEXT_1;
  buf[at++] = KIND_ALERT;
  buf[at++] = TEXT_1;
  buf[at++] = KEY_F;
  at = writeHead(buf, at, 0x00, fields.f);
  if (fields.t !== undefined) {
    buf[at++] = TEXT_1;
    buf[at++] = KEY_T;
    at = writeHead(buf, at, 0x00, fields.t);
  }
  const name = nameBytes(fields.n);
  buf[at++] = TEXT_1;
  buf[at++] = KEY_N;
  at = writeHead(buf, at, 0x60, name.byteLength);
  buf.set(name, at);
  at += name.byteLength;
  buf[at++] = TEXT_1;
  buf[at++] = KEY_D;
  at = writeHead(buf, at, 0x40, fields.d.byteLength);
  buf.set(fields.d, at);
  at += fields.d.byteLength;
  if (fields.s !== undefined) {
    buf[at++] = TEXT_1;
    buf[at++] = KEY_S;
    writeHead(buf, at, 0x00, fields.s);
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Decodes a name; short ASCII names (nearly all) without a call into the runtime's decoder. */
let lastNameBytes = new Uint8Array(0);
let lastName = "";

function readName(body: Uint8Array, at: number, length: number): string | undefined {
  // Consecutive alerts mostly share a name: reuse the string when the bytes match.
  if (length === lastNameBytes.byteLength) {
    let same = true;
    for (let i = 0; i < length; i++) {
      if (body[at + i] !== lastNameBytes[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastName;
  }
  const name = decodeName(body, at, length);
  if (name !== undefined && length <= 64) {
    lastNameBytes = body.slice(at, at + length);
    lastName = name;
  }
  return name;
}

function decodeName(body: Uint8Array, at: number, length: number): string | undefined {
  if (length <= 32) {
    let ascii = true;
    for (let i = at; i < at + length; i++) if (body[i] > 0x7f) ascii = false;
    if (ascii) return String.fromCharCode.apply(null, body.subarray(at, at + length) as unknown as number[]);
  }
  try {
    return decoder.decode(body.subarray(at, at + length));
  } catch {
    return undefined;
  }
}

/**
 * Reads an alert envelope in the layout {@linkcode writeAlert} writes.
 * Returns undefined for anything else (other kinds, other layouts), which
 * the caller then decodes the general way; `d` is a view into `body`.
 */
export function readAlert(body: Uint8Array): AlertFields | undefined {
  const end = body.byteLength;
  // cbor-x heads maps of objects with a 2-byte count (0xb9 0x00 n); ours use one byte.
  const wide = body[0] === 0xb9 && body[1] === 0;
  const entries = wide ? body[2] : body[0] - 0xa0;
  let at = wide ? 3 : 1;
  if (entries < 4 || entries > 6 || end < at + 8) return undefined;
  if (body[at] !== TEXT_1 || body[at + 1] !== KEY_K || body[at + 2] !== TEXT_1 || body[at + 3] !== KIND_ALERT) {
    return undefined;
  }
  at += 4;
  let left = entries - 1;
  let f = -1;
  let t: number | undefined;
  let n: string | undefined;
  let d: Uint8Array | undefined;
  let s: number | undefined;
  let value = 0;
  // Reads one head of major type `major` at `at` into `value`; false if it is not one.
  const head = (major: number): boolean => {
    if (at >= end) return false;
    const first = body[at];
    if ((first & 0xe0) !== major) return false;
    const info = first & 0x1f;
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
    } else return false;
    return true;
  };
  const expectKey = (key: number): boolean => {
    if (at + 2 > end || body[at] !== TEXT_1 || body[at + 1] !== key) return false;
    at += 2;
    return true;
  };
  if (!expectKey(KEY_F) || !head(0x00)) return undefined;
  f = value;
  left--;
  if (left === 4 || left === 3 && body[at + 1] === KEY_T) {
    if (!expectKey(KEY_T) || !head(0x00)) return undefined;
    t = value;
    left--;
  }
  if (!expectKey(KEY_N) || !head(0x60) || at + value > end) return undefined;
  n = readName(body, at, value);
  if (n === undefined) return undefined;
  at += value;
  left--;
  if (!expectKey(KEY_D) || !head(0x40) || at + value > end) return undefined;
  d = body.subarray(at, at + value);
  at += value;
  left--;
  if (left === 1) {
    if (!expectKey(KEY_S) || !head(0x00)) return undefined;
    s = value;
    left--;
  }
  if (left !== 0 || at !== end) return undefined;
  return { f, t, n, d, s };
}
