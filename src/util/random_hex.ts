/**
 * `bytes` random bytes as lowercase hex (incarnation ids, tokens).
 *
 * @param bytes How many random bytes.
 * @returns `2 * bytes` hex digits.
 *
 * @example
 * ```ts
 * import { randomHex } from "./random_hex.ts";
 * const id = randomHex(8); // e.g. "3f9a0c1e5b7d2468"
 * ```
 */
export function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}
