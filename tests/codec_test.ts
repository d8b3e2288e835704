import { test } from "node:test";
import assert from "node:assert/strict";
import { FrameDecoderStream, FrameEncoderStream, FrameTooLargeError, ProtocolError } from "../mod.ts";

async function roundTrip(values: unknown[]): Promise<unknown[]> {
  return await Array.fromAsync(
    ReadableStream.from(values).pipeThrough(new FrameEncoderStream()).pipeThrough(new FrameDecoderStream()),
  );
}

test("FrameDecoderStream round-trips every supported type", async () => {
  const values = [
    "text",
    "ü".repeat(200),
    42,
    -1.5,
    12345678901234567890n,
    true,
    false,
    null,
    undefined,
    { nested: { deep: [1, [2, [3]]] } },
    new Uint8Array([1, 2, 3]),
    new Map<unknown, unknown>([["a", 1], [2, "b"]]),
    new Date(1_700_000_000_000),
  ];
  const out = await roundTrip(values);
  assert.deepEqual(out, values);
  assert.equal((out[10] as Uint8Array).constructor, Uint8Array);
});

test("FrameDecoderStream reassembles frames delivered one byte at a time", async () => {
  const [chunk] = await Array.fromAsync(
    ReadableStream.from([{ a: 1 }, "x".repeat(1000)]).pipeThrough(new FrameEncoderStream()),
  );
  const bytes = Array.from(chunk, (b) => new Uint8Array([b]));
  const out = await Array.fromAsync(ReadableStream.from(bytes).pipeThrough(new FrameDecoderStream()));
  assert.deepEqual(out, [{ a: 1 }, "x".repeat(1000)]);
});

test("FrameDecoderStream errors with FrameTooLargeError before allocating a huge frame", async () => {
  const header = new Uint8Array([0x7f, 0xff, 0xff, 0xff]);
  await assert.rejects(
    Array.fromAsync(ReadableStream.from([header]).pipeThrough(new FrameDecoderStream({ maxFrameBytes: 1024 }))),
    (err: unknown) => err instanceof FrameTooLargeError && /2147483647 exceeds maxFrameBytes 1024/.test(err.message),
  );
});

test("FrameDecoderStream errors with ProtocolError on bytes that are not CBOR", async () => {
  const garbage = new Uint8Array([0, 0, 0, 2, 0xff, 0xff]);
  await assert.rejects(
    Array.fromAsync(ReadableStream.from([garbage]).pipeThrough(new FrameDecoderStream())),
    ProtocolError,
  );
});
