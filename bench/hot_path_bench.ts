/**
 * The pieces of the bus's hot path, each against the least code that does
 * the same job, so a regression shows as a ratio to that baseline:
 *
 * - `frame reader`: length-prefixed frames out of read chunks. Baseline: a
 *   loop reading each 4-byte length and taking a view, as the raw benchmark
 *   clients do; against `FrameParser.push` on the same chunks (1 KiB frames
 *   many to a 64 KiB chunk, and a 1 MiB frame in 64 KiB reads, read into the
 *   parser's `space()` as the Deno adapter does, or copied in as on Bun).
 * - `envelope write`: a request envelope with a 1 KiB `Uint8Array` payload
 *   into a batch. Baseline: a header and a `set` of the payload into a
 *   buffer; against `writeEnvelope` with the payload encoded as the bus
 *   encodes it now (`encodeCborTransient`: by hand into a reused buffer) and
 *   by cbor-x (the general path).
 * - `envelope read`: the same envelope read back. Baseline: the length and a
 *   view of the payload; against `readEnvelope` + `decodeCbor`.
 * - `byte-string payload decode`: a 100 B, a 1 KiB and a 1 MiB `Uint8Array`
 *   from its CBOR. Baseline: `slice()` (one copy, a buffer of its own);
 *   against `decodeCbor` (a copy, into a shared slab under 4 KiB, or a view
 *   of a frame's own buffer) and cbor-x as ipcbus used to decode it.
 *
 * Run: `deno task bench` (all suites) or `deno bench -A bench/hot_path_bench.ts`.
 *
 * @module
 */
import { Decoder } from "cbor-x/decode";
import { Encoder } from "cbor-x/encode";
import { type EnvelopeFields, readEnvelope, writeEnvelope } from "../src/bus/fast_envelope.ts";
import type { FrameWriter } from "../src/bus/frame_writer.ts";
import { decodeCbor, encodeCborTransient } from "../src/codec/cbor.ts";
import { frameBytes, FrameParser } from "../src/codec/frame_parser.ts";

type EncoderOptions = ConstructorParameters<typeof Encoder>[0];
const cborX = new Encoder({ useRecords: false, tagUint8Array: false } as EncoderOptions);
const cborXCopying = new Decoder({ useRecords: false, copyBuffers: true } as EncoderOptions);

// Results go here so the JIT cannot drop the work.
let sink = 0;

function payload(bytes: number): Uint8Array {
  return new Uint8Array(bytes).map((_, i) => (i * 31 + 7) & 0xff);
}

// ---- frame reader ------------------------------------------------------------------

/** The baseline reader: whole frames in one chunk, each a view. */
function rawFrames(chunk: Uint8Array): void {
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  for (let at = 0; at + 4 <= chunk.byteLength;) {
    const length = view.getUint32(at);
    sink += chunk.subarray(at + 4, at + 4 + length).byteLength;
    at += 4 + length;
  }
}

{
  const frame = frameBytes(payload(1024));
  const perChunk = Math.floor((64 * 1024) / frame.byteLength);
  const chunk = new Uint8Array(perChunk * frame.byteLength);
  for (let i = 0; i < perChunk; i++) chunk.set(frame, i * frame.byteLength);
  const parser = new FrameParser();
  const onFrame = (body: Uint8Array) => void (sink += body.byteLength);
  Deno.bench({
    name: `views of ${perChunk} 1 KiB frames in a 64 KiB chunk`,
    group: "frame reader, 1 KiB frames",
    baseline: true,
    fn: () => rawFrames(chunk),
  });
  Deno.bench({
    name: "FrameParser.push",
    group: "frame reader, 1 KiB frames",
    fn: () => parser.push(chunk, onFrame),
  });
}

{
  const frame = frameBytes(payload(1024 * 1024));
  const READ = 64 * 1024;
  const target = new Uint8Array(frame.byteLength);
  Deno.bench({
    name: "1 MiB frame: 64 KiB reads copied into one buffer",
    group: "frame reader, 1 MiB frame",
    baseline: true,
    fn() {
      for (let at = 0; at < frame.byteLength; at += READ) target.set(frame.subarray(at, at + READ), at);
      sink += target[5];
    },
  });
  const parser = new FrameParser();
  const onFrame = (body: Uint8Array) => void (sink += body.byteLength);
  Deno.bench({
    name: "FrameParser.push, read into space() (Deno)",
    group: "frame reader, 1 MiB frame",
    fn() {
      const first = frame.subarray(0, 8 * 1024);
      parser.push(first, onFrame);
      for (let at = first.byteLength; at < frame.byteLength;) {
        const space = parser.space() ?? new Uint8Array(0);
        const n = Math.min(space.byteLength || READ, READ, frame.byteLength - at);
        if (space.byteLength > 0) {
          space.set(frame.subarray(at, at + n));
          parser.push(space.subarray(0, n), onFrame);
        } else parser.push(frame.subarray(at, at + n), onFrame);
        at += n;
      }
    },
  });
  Deno.bench({
    name: "FrameParser.push, chunks copied in (Bun)",
    group: "frame reader, 1 MiB frame",
    fn() {
      for (let at = 0; at < frame.byteLength; at += READ) parser.push(frame.subarray(at, at + READ), onFrame);
    },
  });
}

// ---- envelopes -----------------------------------------------------------------

{
  const data = payload(1024);
  const batch = new Uint8Array(64 * 1024);
  // Only what writeEnvelope uses of a FrameWriter: every envelope goes to the start of one batch.
  const writer = { reserve: () => 4, buffer: batch } as unknown as FrameWriter;
  const head: EnvelopeFields = [["f", 3], ["r", 1234], ["u", "/ipcbus/echo"], ["w", 10_000]];
  Deno.bench({
    name: "header + set of the payload",
    group: "envelope write, 1 KiB request",
    baseline: true,
    fn() {
      new DataView(batch.buffer).setUint32(0, data.byteLength + 30);
      batch.set(data, 34);
      sink += batch[40];
    },
  });
  Deno.bench({
    name: "encodeCborTransient + writeEnvelope",
    group: "envelope write, 1 KiB request",
    fn: () => void (sink += writeEnvelope(writer, "q", [...head, ["d", encodeCborTransient(data)]])),
  });
  Deno.bench({
    name: "writeEnvelope, payload encoded by cbor-x",
    group: "envelope write, 1 KiB request",
    fn: () => void (sink += writeEnvelope(writer, "q", [...head, ["d", new Uint8Array(cborX.encode(data))]])),
  });

  const body = batch.slice(4, 4 + writeEnvelope(writer, "q", [...head, ["d", encodeCborTransient(data)]]));
  Deno.bench({
    name: "length + view of the payload",
    group: "envelope read, 1 KiB request",
    baseline: true,
    fn() {
      sink += new DataView(body.buffer).getUint32(0) + body.subarray(40).byteLength;
    },
  });
  Deno.bench({
    name: "readEnvelope + decodeCbor (a copy of the payload)",
    group: "envelope read, 1 KiB request",
    fn() {
      const m = readEnvelope(body)!;
      sink += (decodeCbor(m.d!) as Uint8Array).byteLength;
    },
  });
}

// ---- byte-string payloads ---------------------------------------------------------

for (const [label, bytes] of [["100 B", 100], ["1 KiB", 1024], ["1 MiB", 1024 * 1024]] as const) {
  const data = payload(bytes);
  const encoded = new Uint8Array(cborX.encode(data));
  Deno.bench({
    name: `slice() ${label}`,
    group: `byte-string payload decode ${label}`,
    baseline: true,
    fn: () => void (sink += encoded.slice(5).byteLength),
  });
  Deno.bench({
    name: `decodeCbor ${label}, a copy`,
    group: `byte-string payload decode ${label}`,
    fn: () => void (sink += (decodeCbor(encoded) as Uint8Array).byteLength),
  });
  Deno.bench({
    name: `decodeCbor ${label}, a view of a frame's own buffer`,
    group: `byte-string payload decode ${label}`,
    fn: () => void (sink += (decodeCbor(encoded, true) as Uint8Array).byteLength),
  });
  Deno.bench({
    name: `cbor-x decode ${label} (copyBuffers, as ipcbus had it)`,
    group: `byte-string payload decode ${label}`,
    fn: () => void (sink += (cborXCopying.decode(encoded) as Uint8Array).byteLength),
  });
}

// Keeps `sink` observable.
addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
