/**
 * Envelopes written by the hand encoder (src/bus/fast_envelope.ts), for the
 * tests that compare it with cbor-x.
 *
 * @module
 */
import { type EnvelopeFields, writeEnvelope } from "../src/bus/fast_envelope.ts";
import { FrameWriter } from "../src/bus/frame_writer.ts";

/** Writes one envelope with the hand encoder and returns its frame body. */
export async function handEncoded(kind: "a" | "q" | "p", fields: EnvelopeFields): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const writer = new FrameWriter(new WritableStream({ write: (c) => void chunks.push(c.slice()) }), {
    maxMessages: 10,
    maxBytes: 1 << 24,
  });
  writeEnvelope(writer, kind, fields);
  await writer.idle();
  return chunks[0].subarray(4);
}
