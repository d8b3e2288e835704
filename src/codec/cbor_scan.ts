import { ProtocolError } from "../errors.ts";

/** Deepest nesting of arrays, maps and tags a CBOR item may have. */
export const MAX_CBOR_DEPTH = 256;

/** Longest byte string a bignum (tags 2 and 3) may have: cbor-x builds bignums in time quadratic in their size. */
const MAX_BIGNUM_BYTES = 1024;

/**
 * cbor-x extensions ipcbus never writes, refused because a small item could
 * make cbor-x build far more than its size or read it again: packed values
 * (6, 51), whose prefix tags copy a shared array once per use, and value
 * sharing (28, 29), which makes cycles and re-reads shared maps.
 */
const REFUSED_TAGS: ReadonlySet<number> = new Set([6, 28, 29, 51]);

function fail(reason: string, at: number): never {
  throw new ProtocolError(`Cannot decode frame: ${reason} at byte ${at}`);
}

/**
 * Walks one CBOR item's heads without building anything, and rejects it if
 * it is malformed, nests deeper than `maxDepth`, does not end exactly at the
 * end of `bytes`, or declares more elements or bytes than the frame holds.
 * Every element takes at least one byte, so after this check the decoder
 * cannot be made to allocate much more than the frame's size.
 *
 * @throws {ProtocolError} naming what was wrong and where.
 */
export function scanCbor(bytes: Uint8Array, maxDepth: number = MAX_CBOR_DEPTH): void {
  const end = scanCborItem(bytes, maxDepth);
  if (end !== bytes.byteLength) fail(`${bytes.byteLength - end} bytes after the item`, end);
}

/**
 * {@linkcode scanCbor}'s checks for the first item of `bytes`, which may be
 * followed by others: where it ends. For a frame read item by item.
 *
 * @throws {ProtocolError} naming what was wrong and where.
 */
export function scanCborItem(bytes: Uint8Array, maxDepth: number = MAX_CBOR_DEPTH): number {
  // The bounds are the array's own, not a parameter: with them passed in, a scan took 10–30 % longer on Deno.
  const end = bytes.byteLength;
  // Items still expected in each open container; -1 = indefinite (until break).
  const open: number[] = [];
  let at = 0;
  let done = false;
  // Set after tag 2 or 3 until the item it wraps (tags in between included) is read.
  let bignum = false;
  while (!done) {
    if (at >= end) fail("truncated item", at);
    const start = at;
    // The head read inline, with its bounds checks: calling cborHeadArgument (below) here made a scan 17 % slower.
    const initial = bytes[at++];
    const major = initial >> 5;
    const info = initial & 0x1f;
    let value = info;
    if (info === 24) {
      if (at + 1 > end) fail("truncated head", start);
      value = bytes[at];
      at += 1;
    } else if (info === 25) {
      if (at + 2 > end) fail("truncated head", start);
      value = bytes[at] << 8 | bytes[at + 1];
      at += 2;
    } else if (info === 26) {
      if (at + 4 > end) fail("truncated head", start);
      value = bytes[at] * 0x1000000 + (bytes[at + 1] << 16 | bytes[at + 2] << 8 | bytes[at + 3]);
      at += 4;
    } else if (info === 27) {
      if (at + 8 > end) fail("truncated head", start);
      value = (bytes[at] * 0x1000000 + (bytes[at + 1] << 16 | bytes[at + 2] << 8 | bytes[at + 3])) * 0x100000000 +
        (bytes[at + 4] * 0x1000000 + (bytes[at + 5] << 16 | bytes[at + 6] << 8 | bytes[at + 7]));
      at += 8;
    } else if (info >= 28 && info <= 30) fail(`reserved additional information ${info}`, start);
    if (bignum && major !== 6) {
      // Found by tests/fuzz/: a 100 kB bignum held the decoder (the hub's too) for a second, 64 MiB for hours.
      if (major === 2 && value > MAX_BIGNUM_BYTES) fail(`bignum of ${value} bytes, over ${MAX_BIGNUM_BYTES}`, start);
      bignum = false;
    }

    let completes = true;
    if (info === 31) {
      if (major === 7) {
        // A break closes the innermost indefinite container.
        if (open.length === 0 || open[open.length - 1] !== -1) fail("unexpected break", start);
        open.pop();
      } else if (major >= 2 && major <= 5) {
        if (open.length >= maxDepth) fail(`nesting deeper than ${maxDepth} levels`, start);
        open.push(-1);
        completes = false;
      } else fail(`indefinite length on major type ${major}`, start);
    } else if (major === 2 || major === 3) {
      if (value > end - at) fail(`string of ${value} bytes with ${end - at} left`, start);
      at += value;
    } else if (major === 4 || major === 5) {
      const items = major === 5 ? value * 2 : value;
      if (items > end - at) {
        fail(`${major === 5 ? "map" : "array"} of ${value} entries with ${end - at} bytes left`, start);
      }
      if (items > 0) {
        if (open.length >= maxDepth) fail(`nesting deeper than ${maxDepth} levels`, start);
        open.push(items);
        completes = false;
      }
    } else if (major === 6) {
      // Found by tests/fuzz/: tags 51 + 225 made 1.2 kB decode to 90 000 elements (quadratic, OOM at 1 MiB).
      if (REFUSED_TAGS.has(value)) fail(`tag ${value} is not accepted`, start);
      if (value === 2 || value === 3) bignum = true;
      // A tag wraps the next item: a container of one.
      if (open.length >= maxDepth) fail(`nesting deeper than ${maxDepth} levels`, start);
      open.push(1);
      completes = false;
    }
    if (!completes) continue;
    // One item done: count it against the containers it closes.
    while (true) {
      if (open.length === 0) {
        done = true;
        break;
      }
      const top = open.length - 1;
      if (open[top] === -1) break;
      if (--open[top] > 0) break;
      open.pop();
    }
  }
  return at;
}

/** Where the head read by the last {@linkcode cborHeadArgument} ends (a module variable: this runs per item, 10⁶ times). */
let headEnd = 0;

/** Where the head read by the last {@linkcode cborHeadArgument} ends. */
export function cborHeadEnd(): number {
  return headEnd;
}

/** The argument of the head at `at` (a count or a length), its end then in {@linkcode cborHeadEnd}; -1 for an indefinite length. */
export function cborHeadArgument(bytes: Uint8Array, at: number): number {
  const info = bytes[at] & 0x1f;
  if (info < 24) {
    headEnd = at + 1;
    return info;
  }
  if (info === 24) {
    headEnd = at + 2;
    return bytes[at + 1];
  }
  if (info === 25) {
    headEnd = at + 3;
    return bytes[at + 1] << 8 | bytes[at + 2];
  }
  if (info === 26) {
    headEnd = at + 5;
    return bytes[at + 1] * 0x1000000 + (bytes[at + 2] << 16 | bytes[at + 3] << 8 | bytes[at + 4]);
  }
  if (info === 27) {
    let value = 0;
    for (let i = 1; i <= 8; i++) value = value * 256 + bytes[at + i];
    headEnd = at + 9;
    return value;
  }
  return -1;
}
