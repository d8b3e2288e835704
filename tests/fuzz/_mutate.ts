/**
 * Inputs for the fuzzers: random CBOR written head by head (every length
 * encoding, indefinite lengths, tags), hostile heads that declare far more
 * than they hold, and mutations of valid frames.
 *
 * @module
 */
import { encodeCbor } from "../../src/codec/cbor.ts";
import type { Rng } from "./_rng.ts";

/** Bytes of a CBOR head of `major` with `value`, in the shortest form or the width `info` asks for. */
export function head(major: number, value: number | bigint, info?: 24 | 25 | 26 | 27): number[] {
  const v = BigInt(value);
  const width = info ?? (v < 24n ? undefined : v < 0x100n ? 24 : v < 0x10000n ? 25 : v < 0x100000000n ? 26 : 27);
  if (width === undefined) return [(major << 5) | Number(v)];
  const bytes = width === 24 ? 1 : width === 25 ? 2 : width === 26 ? 4 : 8;
  const out = [(major << 5) | width];
  for (let i = bytes - 1; i >= 0; i--) out.push(Number((v >> BigInt(8 * i)) & 0xffn));
  return out;
}

/** A text string item. */
export function text(s: string): number[] {
  const bytes = new TextEncoder().encode(s);
  return [...head(3, bytes.length), ...bytes];
}

/** A frame: the 4-byte big-endian length then `body`. */
export function frame(body: Uint8Array | number[], declared = body.length): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, declared >>> 0);
  out.set(body, 4);
  return out;
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Splits `bytes` at random points into at least one chunk; single bytes are common. */
export function splitChunks(rng: Rng, bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const size = rng.chance(0.3)
      ? 1
      : rng.range(1, Math.max(1, Math.min(bytes.byteLength - at, rng.pick([4, 16, 256]))));
    chunks.push(bytes.slice(at, at + size));
    at += size;
  }
  return chunks.length > 0 ? chunks : [new Uint8Array(0)];
}

/** Tags cbor-x gives a meaning to (dates, bignums, typed arrays, sets, maps …), and some it does not. */
const TAGS = [
  0,
  1,
  2,
  3,
  4,
  5,
  6,
  14,
  15,
  21,
  24,
  27,
  28,
  29,
  32,
  51,
  64,
  69,
  72,
  77,
  85,
  86,
  105,
  225,
  258,
  259,
  55799,
];

/**
 * One random, well-formed CBOR item of at most about `budget` bytes: every
 * major type, every head width (not only the shortest), indefinite-length
 * strings and containers, tags.
 */
export function randomItem(rng: Rng, budget: number, depth = 0): number[] {
  const wide = (): 24 | 25 | 26 | 27 | undefined => rng.chance(0.2) ? rng.pick([24, 25, 26, 27] as const) : undefined;
  const leaf = budget < 4 || depth > 12 || rng.chance(0.35);
  if (leaf) {
    switch (rng.int(7)) {
      case 0:
        return head(0, rng.chance(0.5) ? rng.int(30) : BigInt(rng.int(2 ** 31)) * BigInt(rng.int(2 ** 31)), wide());
      case 1:
        return head(1, rng.int(1000), wide());
      case 2: {
        const n = rng.int(Math.min(budget, 16) + 1);
        return [...head(2, n, wide()), ...rng.bytes(n)];
      }
      case 3: {
        const n = rng.int(Math.min(budget, 16) + 1);
        const s = Array.from({ length: n }, () => rng.chance(0.9) ? 0x61 + rng.int(26) : rng.int(256));
        return [...head(3, s.length, wide()), ...s];
      }
      case 4:
        return [rng.pick([0xf4, 0xf5, 0xf6, 0xf7])];
      case 5:
        return rng.pick([[0xf9, rng.int(256), rng.int(256)], [0xfa, ...rng.bytes(4)], [0xfb, ...rng.bytes(8)]]);
      default:
        return rng.chance(0.5) ? [0xf8, rng.range(32, 255)] : [0xe0 | rng.int(20)];
    }
  }
  const kind = rng.int(6);
  if (kind === 0 || kind === 1) {
    // Array or map, definite or indefinite.
    const isMap = kind === 1;
    const n = rng.int(Math.min(8, budget) + 1);
    const indefinite = rng.chance(0.15);
    const out = indefinite ? [isMap ? 0xbf : 0x9f] : head(isMap ? 5 : 4, n, wide());
    for (let i = 0; i < n * (isMap ? 2 : 1); i++) out.push(...randomItem(rng, Math.floor(budget / (n + 1)), depth + 1));
    if (indefinite) out.push(0xff);
    return out;
  }
  if (kind === 2) {
    // Indefinite byte or text string made of definite chunks.
    const major = rng.pick([2, 3]);
    const out = [(major << 5) | 31];
    for (let i = rng.int(4); i > 0; i--) {
      const n = rng.int(6);
      out.push(...head(major, n), ...Array.from({ length: n }, () => 0x61 + rng.int(26)));
    }
    out.push(0xff);
    return out;
  }
  if (kind === 3) {
    // A tag over a fitting or an arbitrary item.
    const tag = rng.pick(TAGS);
    const inner = tag === 2 || tag === 3
      ? [...head(2, 9), ...rng.bytes(9)]
      : tag === 27
      ? [0x83, ...text(rng.pick(["Error", "RegExp", "Nope"])), ...text("ab"), ...text("g")]
      : randomItem(rng, budget - 3, depth + 1);
    return [...head(6, tag, wide()), ...inner];
  }
  // An envelope-like map with the protocol's keys, to reach deeper into validators.
  const keys = ["k", "f", "t", "n", "d", "s", "r", "u", "e", "v", "id", "pid", "runtime", "name", "patterns"];
  const n = rng.range(1, 6);
  const out = head(5, n);
  for (let i = 0; i < n; i++) out.push(...text(rng.pick(keys)), ...randomItem(rng, Math.floor(budget / n), depth + 1));
  return out;
}

/** Well-formed CBOR that is a plausible protocol message. */
export function validEnvelope(rng: Rng): Uint8Array {
  const d = encodeCbor(rng.pick<unknown>([undefined, 1, "x", { n: [1, 2] }, new Uint8Array(3), [null, true]]));
  return encodeCbor(rng.pick<Record<string, unknown>>([
    { k: "hello", v: 1, pid: rng.int(99999), runtime: "deno", name: `n${rng.int(100)}`, inc: "0123456789abcdef" },
    { k: "a", f: rng.int(5), t: rng.int(5), n: "tick", d },
    { k: "a", f: rng.int(5), n: "all", d, s: { "1": 3, "2": 4 } },
    { k: "q", f: rng.int(5), r: rng.int(1000), u: "/ipcbus/echo", d },
    { k: "p", f: rng.int(5), t: rng.int(5), r: rng.int(1000), d },
    { k: "x", f: 0, t: 1, r: 2, e: { name: "RangeError", message: "no", code: "c", sys: true } },
    { k: "handle", patterns: [{ exact: "/a" }, { prefix: "/b/" }, { regexp: { source: "^/c", flags: "i" } }] },
    { k: "welcome", v: 1, id: 3, host: 0, peers: [{ id: 0, pid: 1, runtime: "bun", since: 1_700_000_000_000 }] },
    { k: "ack", f: 1, t: 2, s: 7, g: true },
    { k: "bye" },
  ]));
}

/** Bytes that make decoders misbehave when dropped in at random. */
const INTERESTING = [0x00, 0x17, 0x18, 0x1b, 0x1f, 0x3b, 0x5b, 0x5f, 0x7b, 0x7f, 0x9b, 0x9f, 0xbb, 0xbf, 0xdb, 0xff];

/** One to four random edits of `input`: bit flips, overwrites, truncation, insertion, deletion, duplication. */
export function mutate(rng: Rng, input: Uint8Array): Uint8Array {
  let bytes = Array.from(input);
  for (let edits = rng.range(1, 4); edits > 0; edits--) {
    const at = rng.int(bytes.length + 1);
    switch (rng.int(7)) {
      case 0:
        if (at < bytes.length) bytes[at] ^= 1 << rng.int(8);
        break;
      case 1:
        if (at < bytes.length) bytes[at] = rng.pick(INTERESTING);
        break;
      case 2:
        bytes = bytes.slice(0, at);
        break;
      case 3:
        bytes.splice(at, 0, ...rng.bytes(rng.range(1, 8)));
        break;
      case 4:
        bytes.splice(at, rng.range(1, 8));
        break;
      case 5: {
        const from = rng.int(bytes.length + 1);
        bytes.splice(at, 0, ...bytes.slice(from, from + rng.range(1, 16)));
        break;
      }
      default:
        // A head that declares a huge count or length, where a small one was.
        bytes.splice(at, 0, ...head(rng.pick([2, 3, 4, 5]), rng.pick([2 ** 32 - 1, 2 ** 31, 1_000_001]), 26));
    }
  }
  return new Uint8Array(bytes);
}

/** Items that declare far more than a frame can hold: counts and lengths at every head width, and indefinite ones never closed. */
export function hugeDeclarations(): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  for (const [major, what] of [[2, "byte string"], [3, "text string"], [4, "array"], [5, "map"]] as const) {
    for (const value of [0xff, 0xffff, 0xffffffff, 2n ** 53n - 1n, 2n ** 64n - 1n]) {
      const info = value <= 0xff ? 24 : value <= 0xffff ? 25 : value <= 0xffffffff ? 26 : 27;
      out.push([`${what} declaring ${value}`, new Uint8Array([...head(major, value, info), 0x01, 0x01])]);
    }
    out.push([`${what} of indefinite length never closed`, new Uint8Array([(major << 5) | 31, 0x41, 0x00])]);
  }
  // Well-formed and within a 1 MiB frame, but over the decoder's limit of 1 000 000 entries.
  const overLimit = new Uint8Array(5 + 1_000_001);
  overLimit.set(head(4, 1_000_001, 26));
  out.push(["array of 1 000 001 entries", overLimit]);
  return out;
}

/** Items nested `depth` levels deep, of every container kind the decoder recurses into. */
export function deepNesting(depth: number): Array<[string, Uint8Array]> {
  const nest = (open: number[], leaf: number[], close: number[] = []): Uint8Array => {
    const out: number[] = [];
    for (let i = 0; i < depth; i++) out.push(...open);
    out.push(...leaf);
    for (let i = 0; i < depth; i++) out.push(...close);
    return new Uint8Array(out);
  };
  return [
    [`${depth} nested arrays`, nest([0x81], [0x00])],
    [`${depth} nested maps`, nest([0xa1, 0x00], [0x00])],
    [`${depth} nested tags`, nest([0xd8, 0x20], [0x00])],
    [`${depth} nested indefinite arrays`, nest([0x9f], [0x00], [0xff])],
    [`${depth} nested indefinite maps`, nest([0xbf, 0x00], [0x00], [0xff])],
    [`${depth} nested Map tags (259)`, nest([0xd9, 0x01, 0x03, 0xa1, 0x00], [0x00])],
    [`${depth} nested shared values (tag 28)`, nest([0xd8, 0x1c, 0x81], [0x00])],
    [`${depth} indefinite byte strings nested in one another`, nest([0x5f], [0x40], [0xff])],
  ];
}

/**
 * Items cbor-x would expand far beyond their size, or spend far more time on
 * than their size, if the scan let them through.
 */
export function amplifiers(): Array<[string, Uint8Array]> {
  // Tag 51 (packed values) with a 300-entry prefix array, then 300 tag-225 items that each copy it.
  const prefix = [...head(4, 300), ...new Array(300).fill(0x01)];
  const copies = [...head(4, 300), ...new Array(300).fill([0xd8, 0xe1, 0x80]).flat()];
  const packed = [0xd8, 0x33, 0x84, 0x81, 0x00, 0x82, 0x00, ...prefix, 0x80, ...copies];
  const bignum = (bytes: number) => new Uint8Array([0xc2, ...head(2, bytes, 26), ...new Array(bytes).fill(0xff)]);
  // Tags 28/29 (value sharing): a cycle, and a Map target that makes cbor-x read its item twice.
  const cycle = [0xd8, 0x1c, 0x81, 0xd8, 0x1d, 0x00];
  const reread = [0xd8, 0x1c, 0xd9, 0x01, 0x03, 0xa1, 0x00, 0xd8, 0x1d, 0x00];
  return [
    ["packed-value prefixes copied 300 times (tags 51, 225)", new Uint8Array(packed)],
    ["a packed reference with no table (tag 6)", new Uint8Array([0xc6, 0x00])],
    ["a bignum of 100 000 bytes (tag 2)", bignum(100_000)],
    ["a negative bignum of 100 000 bytes (tag 3)", new Uint8Array([0xc3, ...bignum(100_000).subarray(1)])],
    ["a bignum over an indefinite byte string", new Uint8Array([0xc2, 0x5f, 0x41, 0xff, 0xff])],
    ["a shared value referring to itself (tags 28, 29)", new Uint8Array(cycle)],
    ["a shared Map read twice (tags 28, 259, 29)", new Uint8Array(reread)],
  ];
}
