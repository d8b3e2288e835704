import { copyBytes } from "./copy_bytes.ts";
import { plainBytes } from "./plain_bytes.ts";

/** Bytes per slab, as Node's `Buffer.poolSize`. */
const SLAB_BYTES = 8 * 1024;

/** Copies shorter than this share slabs; longer ones get a buffer of their own (Node pools below half a slab too). */
export const POOLED_BELOW = SLAB_BYTES / 2;

/**
 * How {@linkcode pooledCopy} copies fewer than {@linkcode POOLED_BELOW} bytes:
 * into a shared slab (`"slab"`), or into a fresh `Uint8Array` each
 * (`"fresh"`). Which is cheaper depends on the JavaScript engine, so the
 * runtime layer chooses (`transport/runtime.ts`).
 */
export type SmallCopies = "slab" | "fresh";

let smallCopies: SmallCopies = "slab";
let slab = new ArrayBuffer(0);
let used = 0;

/**
 * Sets how {@linkcode pooledCopy} copies small payloads for the whole
 * process. V8 (Deno) registers and sweeps each `ArrayBuffer`, so a fresh one
 * costs 1–3 µs where a view of a slab costs 0.1–0.2: `"slab"`, the default.
 * On JavaScriptCore (Bun) a copy of 100 B took 140–220 ns fresh and
 * 260–380 ns into a slab (probably because it keeps a small fresh
 * `Uint8Array`'s bytes in its garbage-collected heap, where a view of an
 * `ArrayBuffer` is the heavier object): `"fresh"`.
 *
 * @param how The way small copies are made from now on.
 * @returns The way they were made until now.
 *
 * @example
 * ```ts
 * import { setSmallCopies } from "./pooled_copy.ts";
 * setSmallCopies("fresh");
 * ```
 */
export function setSmallCopies(how: SmallCopies): SmallCopies {
  const before = smallCopies;
  smallCopies = how;
  return before;
}

/**
 * A copy of `bytes` for a user to keep, in a plain `Uint8Array`. Under
 * {@linkcode POOLED_BELOW} bytes, where small copies go into slabs (the
 * default, and Deno's; see {@linkcode setSmallCopies}), it is a view of a
 * shared 8 KiB slab, at an offset that is a multiple of 8, as Node's
 * `Buffer.allocUnsafe` takes small buffers from its pool: a fresh
 * `ArrayBuffer` costs about 1.3 µs on Deno (V8 registers and sweeps each
 * one), where a view costs 0.05. So a kept small payload keeps its slab
 * alive, at most 8 KiB, and its `buffer` holds other payloads too. Larger
 * copies, and every copy where small ones are `"fresh"` (Bun), have a
 * buffer of their own.
 *
 * @param bytes Any `Uint8Array`, a `Buffer` included.
 * @returns A plain `Uint8Array` with the same bytes, sharing memory with nothing but other copies.
 *
 * @example
 * ```ts
 * import { pooledCopy } from "./pooled_copy.ts";
 * const copy = pooledCopy(new Uint8Array([1, 2, 3])); // on Deno, copy.buffer is an 8 KiB slab
 * ```
 */
export function pooledCopy(bytes: Uint8Array): Uint8Array {
  const n = bytes.byteLength;
  if (n === 0 || n >= POOLED_BELOW || smallCopies === "fresh") return copyBytes(bytes);
  // A slab a user transferred away (detached) has no bytes left, so it is replaced here too.
  if (used + n > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_BYTES);
    used = 0;
  }
  const copy = new Uint8Array(slab, used, n);
  copy.set(bytes);
  used += (n + 7) & ~7;
  return copy;
}

/**
 * `bytes` in a form its receiver may keep: a plain view when they are `own`
 * (their buffer is not reused), else a {@linkcode pooledCopy} (they are in a
 * read buffer).
 *
 * @param bytes Any `Uint8Array`, a `Buffer` included.
 * @param own Whether `bytes` may be kept as they are.
 * @returns A plain `Uint8Array` the caller may keep.
 *
 * @example
 * ```ts
 * import { keptBytes } from "./pooled_copy.ts";
 * const kept = keptBytes(new Uint8Array([1, 2, 3]), false);
 * ```
 */
export function keptBytes(bytes: Uint8Array, own: boolean): Uint8Array {
  return own ? plainBytes(bytes) : pooledCopy(bytes);
}
