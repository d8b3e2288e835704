import { test } from "node:test";
import assert from "node:assert/strict";
import {
  asAlert,
  asEnvelope,
  asPatterns,
  asRequest,
  clip,
  compileReceivedRoutes,
  type PatternRecord,
} from "../src/bus/protocol.ts";
import { ProtocolError } from "../src/errors.ts";

test("clip cuts text at a code point, never inside a surrogate pair", () => {
  assert.equal(clip("ab😀c", 3), "ab");
  assert.equal(clip("ab😀c", 4), "ab😀");
  assert.equal(clip("abc", 80), "abc");
  const message = (() => {
    try {
      asAlert(asEnvelope({ k: "a", f: 1, n: 5, d: new Uint8Array(0), t: "😀".repeat(100) }));
    } catch (err) {
      return (err as Error).message;
    }
  })();
  assert.ok(message && !message.includes("\ufffd") && !/[\ud800-\udbff]$/.test(message), message);
});

test("a null field counts as absent: a broadcast may say t: null, a request w: null", () => {
  const alert = asAlert(asEnvelope({ k: "a", f: 1, t: null, n: "x", d: new Uint8Array(0) }));
  assert.equal(alert.t, undefined);
  assert.ok(!("t" in alert));
  const request = asRequest(asEnvelope({ k: "q", f: 1, t: null, r: -1, u: "/x", d: new Uint8Array(0), w: null }));
  assert.equal(request.t, undefined);
  assert.equal(request.w, undefined);
});

test("a PatternRecord with more than one of exact, prefix and regexp is refused with ProtocolError", () => {
  assert.throws(
    () => asPatterns({ k: "handle", patterns: [{ exact: "/a", regexp: { source: "b", flags: "" } }] }),
    (err) => err instanceof ProtocolError && /got exact and regexp/.test(err.message),
  );
  assert.equal(asPatterns({ k: "handle", patterns: [{ prefix: "/a/" }, { exact: "/b" }] }).length, 2);
});

test("a handle message with a RegExp the hub cannot run in linear time is refused with ProtocolError", () => {
  const handle = (...patterns: PatternRecord[]) => compileReceivedRoutes(asPatterns({ k: "handle", patterns }));
  const refused: Array<[PatternRecord[], RegExp]> = [
    [[{ regexp: { source: "(", flags: "" } }], /Invalid regular expression/],
    [[{ regexp: { source: "^/a(?=/b)", flags: "" } }], /lookahead/],
    [[{ regexp: { source: "^/(a)/\\1$", flags: "" } }], /backreferences/],
    [[{ regexp: { source: "(?:a{1000}){1000}", flags: "" } }], /too large/],
    [Array.from({ length: 11 }, (_, i) => ({ regexp: { source: `^/${i}/a{1900}`, flags: "" } })), /per peer/],
  ];
  for (const [patterns, why] of refused) {
    assert.throws(
      () => handle(...patterns),
      (err) =>
        err instanceof ProtocolError && err.message.startsWith("Invalid handle message: ") && why.test(err.message),
    );
  }
  // Ten of those fit one peer's budget, and so does any pattern a finite automaton can run.
  assert.equal(handle(...Array.from({ length: 10 }, () => ({ regexp: { source: "a{1900}", flags: "" } }))).length, 10);
  assert.equal(handle({ regexp: { source: "^(.*)*x$", flags: "ims" } }).length, 1);
});

test("a request id may be any safe integer, negative or past 2^32, and nothing else", () => {
  const d = new Uint8Array(0);
  for (const r of [-1, -5, 0, 2 ** 32, 2 ** 33, -(2 ** 33), 2 ** 53 - 1]) {
    assert.equal(asRequest(asEnvelope({ k: "q", f: 1, r, u: "/x", d })).r, r);
  }
  // An 8-byte head (a bigint to cbor-x), as Python's cbor2 writes 2**32 and above, is read as the number.
  for (const r of [1n, 2n ** 32n, -(2n ** 40n), BigInt(Number.MAX_SAFE_INTEGER)]) {
    assert.equal(asRequest(asEnvelope({ k: "q", f: 1, r, u: "/x", d })).r, Number(r));
  }
  for (const r of [1.5, 2 ** 53, -(2 ** 53), 2n ** 53n, -(2n ** 64n), "1", null]) {
    assert.throws(() => asRequest(asEnvelope({ k: "q", f: 1, r, u: "/x", d })), ProtocolError, String(r));
  }
});
