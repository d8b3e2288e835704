/**
 * Frame codec against bare cbor-x, per message size.
 *
 * Each group's baseline is cbor-x alone, configured as ipcbus configures it,
 * on the same value; the other entries add ipcbus framing: the internal path
 * the bus uses (`encodeCbor` + `joinFrames`, `FrameParser` + `decodeCbor`)
 * and the public `FrameEncoderStream`/`FrameDecoderStream` for a batch.
 *
 * Run: `deno task bench` (all suites) or `deno bench -A bench/codec_bench.ts`.
 *
 * @module
 */
import { Encoder } from "cbor-x/encode";
import { FrameDecoderStream, FrameEncoderStream } from "../mod.ts";
import { decodeCbor, encodeCbor } from "../src/codec/cbor.ts";
import { FRAME_HEADER_BYTES, FrameParser } from "../src/codec/frame_parser.ts";
import { joinFrames } from "../src/codec/join_frames.ts";
import { SIZES } from "./_sizes.ts";

type EncoderOptions = ConstructorParameters<typeof Encoder>[0];
const cbor = new Encoder({ useRecords: false, tagUint8Array: false } as EncoderOptions);
// Not a baseline: cbor-x with the copyBuffers setting ipcbus decodes user data
// with, to tell the cost of copying byte strings from the cost of framing.
const cborCopying = new Encoder({ useRecords: false, tagUint8Array: false, copyBuffers: true } as EncoderOptions);

/** A message as an application sends it: a few fields and a binary payload of `bytes`. */
function message(bytes: number): { id: number; kind: string; data: Uint8Array } {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + 7) & 0xff;
  return { id: 1, kind: "bench", data };
}

/** Messages per batch for the stream entries: about 1 MiB, at least 2. */
function batchSize(bytes: number): number {
  return Math.max(2, Math.min(256, Math.floor((1024 * 1024) / bytes)));
}

// Results go here so the JIT cannot drop the work.
let sink = 0;

for (const { label, bytes } of SIZES) {
  const value = message(bytes);
  const body = encodeCbor(value);
  const frame = joinFrames([body], FRAME_HEADER_BYTES + body.byteLength);
  const parser = new FrameParser();
  const onFrame = (b: Uint8Array) => {
    sink += (decodeCbor(b) as { id: number }).id;
  };

  Deno.bench({
    name: `cbor-x encode ${label}`,
    group: `encode ${label}`,
    baseline: true,
    fn() {
      sink += cbor.encode(value).byteLength;
    },
  });
  Deno.bench({
    name: `ipcbus encodeCbor + joinFrames ${label}`,
    group: `encode ${label}`,
    fn() {
      const b = encodeCbor(value);
      sink += joinFrames([b], FRAME_HEADER_BYTES + b.byteLength).byteLength;
    },
  });

  Deno.bench({
    name: `cbor-x decode ${label}`,
    group: `decode ${label}`,
    baseline: true,
    fn() {
      sink += (cbor.decode(body) as { id: number }).id;
    },
  });
  Deno.bench({
    name: `cbor-x decode, copyBuffers ${label}`,
    group: `decode ${label}`,
    fn() {
      sink += (cborCopying.decode(body) as { id: number }).id;
    },
  });
  Deno.bench({
    name: `ipcbus FrameParser + decodeCbor ${label}`,
    group: `decode ${label}`,
    fn() {
      parser.push(frame, onFrame);
    },
  });

  const n = batchSize(bytes);
  const batch = Array.from({ length: n }, () => value);
  Deno.bench({
    name: `cbor-x encode + decode ${n} × ${label}`,
    group: `stream round trip ${n} × ${label}`,
    baseline: true,
    fn() {
      for (const v of batch) sink += (cbor.decode(cbor.encode(v)) as { id: number }).id;
    },
  });
  Deno.bench({
    name: `FrameEncoderStream → FrameDecoderStream ${n} × ${label}`,
    group: `stream round trip ${n} × ${label}`,
    async fn() {
      const out = await Array.fromAsync(
        ReadableStream.from(batch).pipeThrough(new FrameEncoderStream()).pipeThrough(new FrameDecoderStream()),
      );
      sink += out.length;
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === -1) console.log(sink);
});
