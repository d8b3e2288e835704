import { test } from "node:test";
import assert from "node:assert/strict";
import { type EnvelopeFields, readEnvelope } from "../src/bus/fast_envelope.ts";
import { FrameParser } from "../src/codec/frame_parser.ts";
import { FrameWriter } from "../src/bus/frame_writer.ts";
import { decodeEnvelope, encodeCbor } from "../src/codec/cbor.ts";
import { ByteStringCbor, cborBytes } from "../src/codec/byte_string_cbor.ts";
import { handEncoded } from "./_envelopes.ts";

function asObject(kind: string, fields: EnvelopeFields): Record<string, unknown> {
  const object: Record<string, unknown> = { k: kind };
  for (const [key, value] of fields) if (value !== undefined) object[key] = value;
  return object;
}

const numbers = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1];
const cases: Array<["a" | "q" | "p", EnvelopeFields]> = [];
for (const n of numbers) {
  cases.push(["a", [["f", n], ["t", undefined], ["n", "job"], ["d", new Uint8Array([1, 2, 3])]]]);
  cases.push(["a", [["f", 1], ["t", n], ["n", "ü-名前"], ["d", new Uint8Array(300).fill(7)], ["s", n]]]);
  cases.push(["q", [["f", 2], ["t", n], ["r", n], ["u", "/route/" + n], ["d", new Uint8Array(0)]]]);
  cases.push(["q", [["f", n], ["r", 9], ["u", "x".repeat(300)], ["d", new Uint8Array(70000).fill(1)]]]);
  cases.push(["p", [["f", 3], ["t", n], ["r", n], ["d", new Uint8Array([n & 0xff])]]]);
}

test("a byte string handed over unencoded is written byte for byte as its CBOR would be", async () => {
  for (const size of [0, 1, 23, 24, 255, 256, 65535, 65536, 200_000]) {
    const bytes = new Uint8Array(size).map((_, i) => i * 7);
    const lazy = new ByteStringCbor(bytes);
    assert.deepEqual(cborBytes(lazy), new Uint8Array(encodeCbor(bytes)));
    for (const kind of ["a", "q", "p"] as const) {
      const fields = (
        d: Uint8Array | ByteStringCbor,
      ): EnvelopeFields => [["f", 1], ["t", 2], ["r", 3], ["n", "x"], ["d", d]];
      assert.deepEqual(await handEncoded(kind, fields(lazy)), await handEncoded(kind, fields(encodeCbor(bytes))));
    }
  }
});

test("envelopes written by hand decode with cbor-x to the same map", async () => {
  for (const [kind, fields] of cases) {
    assert.deepEqual(decodeEnvelope(await handEncoded(kind, fields)), asObject(kind, fields));
  }
});

test("readEnvelope reads hand-written envelopes and cbor-x's form of the same map alike", async () => {
  for (const [kind, fields] of cases) {
    const expected = asObject(kind, fields);
    for (const body of [await handEncoded(kind, fields), new Uint8Array(encodeCbor(expected))]) {
      const m = readEnvelope(body);
      assert.ok(m, JSON.stringify(Object.keys(expected)));
      for (const [key, value] of Object.entries(expected)) assert.deepEqual(m[key as keyof typeof m], value);
    }
  }
});

test("readEnvelope leaves other kinds, other value types and incomplete envelopes to the generic decoder", () => {
  const d = new Uint8Array(0);
  for (
    const object of [
      { k: "x", f: 1, t: 2, r: 3, e: { name: "E", message: "m" } },
      { k: "hello", v: 1, pid: 1, runtime: "deno" },
      { k: "a", f: 1, n: "x", d, s: { 1: 2 } },
      { k: "a", f: -1, n: "x", d },
      { k: "a", f: 1, d },
      { k: "q", f: 1, u: "/x", d },
      { k: "p", f: 1, r: 1, d },
      { f: 1, k: "a", n: "x", d },
    ]
  ) {
    assert.equal(readEnvelope(encodeCbor(object)), undefined, JSON.stringify(object));
  }
});

test("readEnvelope rejects a truncated envelope instead of reading past it", async () => {
  const body = await handEncoded("q", [["f", 1], ["t", 2], ["r", 3], ["u", "/job"], ["d", new Uint8Array(10)]]);
  for (let cut = 0; cut < body.byteLength; cut++) assert.equal(readEnvelope(body.subarray(0, cut)), undefined);
});

test("FrameWriter writes frames large and small in the order pushed, large ones in buffers of their own", async () => {
  const chunks: Uint8Array[] = [];
  const writer = new FrameWriter(new WritableStream({ write: (c) => void chunks.push(c.slice()) }), {
    maxMessages: 100,
    maxBytes: 1 << 24,
  });
  const sizes = [10, 100_000, 20, 30, 70_000, 65_532, 5];
  sizes.forEach((n, i) => writer.push(new Uint8Array(n).fill(i)));
  await writer.idle();
  const bodies: Uint8Array[] = [];
  const parser = new FrameParser();
  for (const chunk of chunks) parser.push(chunk, (body) => bodies.push(body.slice()));
  assert.deepEqual(bodies.map((b) => [b.byteLength, b[0] ?? 0]), sizes.map((n, i) => [n, i]));
  assert.ok(chunks.some((c) => c.byteLength === 4 + 100_000), "the 100 kB frame was written alone");
  assert.equal(writer.framesOut, sizes.length);
  assert.equal(writer.messages, 0);
});
