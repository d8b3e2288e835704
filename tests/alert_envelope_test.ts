import { test } from "node:test";
import assert from "node:assert/strict";
import { alertBytes, type AlertFields, readAlert, writeAlert } from "../src/bus/alert_envelope.ts";
import { FrameWriter } from "../src/bus/frame_writer.ts";
import { decodeEnvelope, encodeCbor } from "../src/codec/cbor.ts";

/** Writes `fields` with the hand encoder and returns the frame body. */
async function handEncoded(fields: AlertFields): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const writer = new FrameWriter(new WritableStream({ write: (c) => void chunks.push(c.slice()) }), {
    maxMessages: 10,
    maxBytes: 1 << 24,
  });
  writeAlert(writer, fields, alertBytes(fields));
  await writer.idle();
  return chunks[0].subarray(4);
}

const cases: AlertFields[] = [];
for (const f of [0, 1, 23, 24, 255, 256, 65535, 65536]) {
  for (const t of [undefined, 0, 7, 300, 70000]) {
    cases.push({ f, t, n: "job", d: new Uint8Array([1, 2, 3]), s: undefined });
  }
}
for (const s of [0, 23, 24, 65536, 2 ** 32 - 1]) cases.push({ f: 3, t: 4, n: "seq", d: new Uint8Array(0), s });
cases.push({ f: 1, t: undefined, n: "ü-名前", d: new Uint8Array(300).fill(7), s: 9 });
cases.push({ f: 1, t: 2, n: "x".repeat(300), d: new Uint8Array(70000).fill(1), s: undefined });

function asObject(c: AlertFields): Record<string, unknown> {
  const object: Record<string, unknown> = { k: "a", f: c.f };
  if (c.t !== undefined) object.t = c.t;
  object.n = c.n;
  object.d = c.d;
  if (c.s !== undefined) object.s = c.s;
  return object;
}

test("alert envelopes written by hand decode with cbor-x to the same map", async () => {
  for (const c of cases) {
    assert.deepEqual(decodeEnvelope(await handEncoded(c)), asObject(c), JSON.stringify({ ...c, d: c.d.byteLength }));
  }
});

test("readAlert also reads the envelopes cbor-x writes", () => {
  for (const c of cases) assert.deepEqual(readAlert(encodeCbor(asObject(c))), c);
});

test("readAlert reads every hand-written envelope back, and agrees with cbor-x", async () => {
  for (const c of cases) {
    const body = await handEncoded(c);
    assert.deepEqual(readAlert(body), c);
    const generic = decodeEnvelope(body) as Record<string, unknown>;
    assert.equal(generic.n, c.n);
    assert.deepEqual(generic.d, c.d);
  }
});

test("readAlert leaves other kinds and other key orders to the generic decoder", () => {
  assert.equal(readAlert(encodeCbor({ k: "q", f: 1, r: 1, u: "/x", d: new Uint8Array(0) })), undefined);
  assert.equal(readAlert(encodeCbor({ f: 1, k: "a", n: "x", d: new Uint8Array(0) })), undefined);
  assert.equal(readAlert(encodeCbor({ k: "a", f: 1, n: "x", d: new Uint8Array(0), s: { 1: 2 } })), undefined);
  assert.equal(readAlert(new Uint8Array([0xa4, 0x61, 0x6b, 0x61, 0x61, 0x61, 0x66])), undefined);
});

test("readAlert rejects a truncated envelope instead of reading past it", async () => {
  const body = await handEncoded({ f: 1, t: 2, n: "job", d: new Uint8Array(10), s: undefined });
  for (let cut = 0; cut < body.byteLength; cut++) assert.equal(readAlert(body.subarray(0, cut)), undefined);
});
