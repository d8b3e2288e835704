/**
 * Views `bytes` as a plain `Uint8Array` (never a Node `Buffer`), without
 * copying. Bun hands socket data as `Buffer`s and cbor-x makes them where a
 * `Buffer` global exists; users and the decoders get plain arrays.
 *
 * @param bytes Any `Uint8Array`, a `Buffer` included.
 * @returns `bytes` itself when it is plain, else a plain view of the same memory.
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
