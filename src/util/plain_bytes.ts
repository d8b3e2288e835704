/**
 * Views `bytes` as a plain `Uint8Array` (never a Node `Buffer`), without copying.
 *
 * @param bytes Any `Uint8Array`, a `Buffer` included.
 * @returns `bytes` itself when plain, else a plain view of the same memory.
 *
 * @example
 * ```ts
 * import { plainBytes } from "./plain_bytes.ts";
 * const view = plainBytes(new Uint8Array([1, 2, 3]));
 * ```
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
