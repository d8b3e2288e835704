import { FRAME_HEADER_BYTES, writeFrameHeader } from "./frame_parser.ts";

/** All `bodies`, each behind its 4-byte length, joined into one buffer of `totalBytes`. */
export function joinFrames(bodies: Uint8Array[], totalBytes: number): Uint8Array {
  const out = new Uint8Array(totalBytes);
  let at = 0;
  for (const body of bodies) {
    writeFrameHeader(out, at, body.byteLength);
    out.set(body, at + FRAME_HEADER_BYTES);
    at += FRAME_HEADER_BYTES + body.byteLength;
  }
  return out;
}
