import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeEnvelope, encodeCbor } from "../src/codec/cbor.ts";
import { ProtocolError } from "../src/errors.ts";
import { readEnvelope } from "../src/bus/fast_envelope.ts";
import { asHeaders, checkHeaders, MAX_HEADERS } from "../src/bus/headers.ts";
import { asAlert, asEnvelope, asReply, asRequest } from "../src/bus/protocol.ts";
import { isReply, reply } from "../src/bus/reply.ts";

const d = new Uint8Array(encodeCbor({ n: 1 }));

test("checkHeaders accepts an object of strings and treats an empty one as none", () => {
  assert.deepEqual(checkHeaders({ trace: "abc", "content-type": "text/plain" }), {
    trace: "abc",
    "content-type": "text/plain",
  });
  assert.equal(checkHeaders({}), undefined);
  assert.equal(checkHeaders(undefined), undefined);
});

test("checkHeaders throws TypeError for values that are not strings and RangeError past the limit", () => {
  assert.throws(() => checkHeaders({ n: 1 }), /Invalid header "n": expected a string, got number/);
  assert.throws(() => checkHeaders({ "": "x" }), TypeError);
  assert.throws(() => checkHeaders(["x"]), TypeError);
  assert.throws(() => checkHeaders("x"), TypeError);
  const many = Object.fromEntries(Array.from({ length: MAX_HEADERS + 1 }, (_, i) => [`h${i}`, "v"]));
  assert.throws(() => checkHeaders(many), RangeError);
});

test("an alert, request or response envelope with h takes the general decoder, which keeps the headers", () => {
  const h = { trace: "abc", "ü": "ö" };
  const frames = [
    { k: "a", f: 1, t: 2, n: "job", d, h },
    { k: "q", f: 1, r: 7, u: "/render", d, w: 1000, h },
    { k: "p", f: 2, t: 1, r: 7, d, h },
  ];
  const validate = [asAlert, asRequest, asReply];
  frames.forEach((frame, i) => {
    const body = encodeCbor(frame);
    assert.equal(readEnvelope(body), undefined, `${frame.k}: the fast reader leaves h to the general decoder`);
    const m = validate[i](asEnvelope(decodeEnvelope(body)));
    assert.deepEqual((m as { h?: unknown }).h, h);
    assert.deepEqual((m as { d: Uint8Array }).d, d);
  });
});

test("the envelope validators refuse an h that is not a map of text to text", () => {
  for (const h of [[], "x", 3, { a: 1 }, { "": "x" }, new Uint8Array(2)]) {
    const m = asEnvelope(decodeEnvelope(encodeCbor({ k: "a", f: 1, n: "job", d, h })));
    assert.throws(() => asAlert(m), ProtocolError, JSON.stringify(h));
  }
  assert.throws(() => asHeaders({ a: "x", b: 2 }, "request"), /Invalid request message: field h/);
});

test("reply() wraps a response with headers, and only what it made counts as a reply", () => {
  const r = reply({ html: "<p>" }, { headers: { "content-type": "text/html" } });
  assert.ok(isReply(r));
  assert.deepEqual(r, { data: { html: "<p>" }, headers: { "content-type": "text/html" } });
  assert.ok(Object.isFrozen(r));
  assert.deepEqual(reply(1).headers, {});
  assert.ok(!isReply({ data: 1, headers: {} }));
  assert.throws(() => reply(1, { headers: { n: 1 as unknown as string } }), TypeError);
});
