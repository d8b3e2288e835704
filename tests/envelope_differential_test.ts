/**
 * The hand-written envelope writer and reader (src/bus/fast_envelope.ts)
 * against cbor-x, on random values across every field's range: the writer
 * must produce cbor-x's bytes (map head aside), and the reader must read what
 * cbor-x decodes, or leave the envelope to the generic decoder.
 * Seed: `IPCBUS_FUZZ_SEED`; count: `IPCBUS_FUZZ_COUNT` (tests/fuzz/_rng.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { envelopeBytes, type EnvelopeFields, readEnvelope } from "../src/bus/fast_envelope.ts";
import { decodeEnvelope, encodeCbor } from "../src/codec/cbor.ts";
import { fuzzCount, fuzzSeed, Rng } from "./fuzz/_rng.ts";
import { handEncoded } from "./_envelopes.ts";

const rng = new Rng(fuzzSeed);
const COUNT = fuzzCount(3000);

/** Integers at the edges of every CBOR head size and of the float64 switch, both signs. */
const EDGES = [
  0,
  1,
  23,
  24,
  255,
  256,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 33,
  2 ** 53 - 1,
];

function uint(): number {
  switch (rng.int(4)) {
    case 0:
      return rng.pick(EDGES);
    case 1:
      return rng.int(1000);
    case 2:
      return rng.int(2 ** 32);
    default:
      return Math.floor(rng.next() * 2 ** 53);
  }
}

/** A request id: any safe integer, and now and then a float (the hub refuses those, the writer must not care). */
function int(): number {
  if (rng.chance(0.05)) return rng.pick([0.5, -1.5, 1e300, -0, 2 ** 53, -(2 ** 53), Number.MAX_VALUE]);
  const n = rng.chance(0.3) ? rng.pick(EDGES) + rng.pick([-1, 0, 1]) : uint();
  return rng.chance(0.5) ? -n : n;
}

function text(): string {
  const alphabets = ["abc/", "ü-é", "名前ルート", "😀🚀", "\u0000\u007f\u0080\u07ff\u0800\uffff"];
  const length = rng.pick([0, 1, 23, 24, 255, 256, rng.int(40), rng.int(70_000)]);
  const alphabet = [...rng.pick(alphabets)];
  // A random stem repeated: long strings without a random draw per character.
  const stem = Array.from({ length: Math.min(length, 32) }, () => rng.pick(alphabet)).join("");
  // Cut by code points: a lone surrogate is not valid text (cbor-x and TextEncoder write it differently).
  return [...stem.repeat(Math.ceil(length / Math.max(1, stem.length)))].slice(0, length).join("");
}

function bytes(): Uint8Array {
  return rng.bytes(rng.pick([0, 1, 23, 24, 255, 256, 65535, 65536, rng.int(300)]));
}

const maybe = <T>(value: () => T): T | undefined => rng.chance(0.5) ? value() : undefined;

function randomEnvelope(): ["a" | "q" | "p", EnvelopeFields] {
  switch (rng.int(3)) {
    case 0:
      return ["a", [["f", uint()], ["t", maybe(uint)], ["n", text()], ["d", bytes()], ["s", maybe(uint)]]];
    case 1:
      return ["q", [["f", uint()], ["t", maybe(uint)], ["r", int()], ["u", text()], ["d", bytes()], [
        "w",
        maybe(uint),
      ]]];
    default:
      return ["p", [["f", uint()], ["t", uint()], ["r", int()], ["d", bytes()]]];
  }
}

function asObject(kind: string, fields: EnvelopeFields): Record<string, unknown> {
  const object: Record<string, unknown> = { k: kind };
  for (const [key, value] of fields) if (value !== undefined) object[key] = value;
  return object;
}

const hex = (b: Uint8Array) => Array.from(b.subarray(0, 64), (x) => x.toString(16).padStart(2, "0")).join(" ");

/** What the reader returned, as the map cbor-x would decode (only the fields that were set). */
function readBack(m: NonNullable<ReturnType<typeof readEnvelope>>): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(m)) {
    if (value !== undefined) object[key] = value instanceof Uint8Array ? new Uint8Array(value) : value;
  }
  return object;
}

function plain(object: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    out[key] = value instanceof Uint8Array ? new Uint8Array(value) : value;
  }
  return out;
}

test("the hand-written envelope writer produces cbor-x's bytes for random values of every field", async () => {
  for (let i = 0; i < COUNT; i++) {
    const [kind, fields] = randomEnvelope();
    const hand = await handEncoded(kind, fields);
    const reference = new Uint8Array(encodeCbor(asObject(kind, fields)));
    const what = `${kind} ${JSON.stringify(fields.map(([k, v]) => [k, v instanceof Uint8Array ? v.length : v]))}`;
    // The one allowed difference: the map head, shortest form by hand, a 2-byte count by cbor-x.
    assert.equal(hand[0], 0xa0 | (reference[2]), what);
    assert.deepEqual(reference.subarray(0, 2), new Uint8Array([0xb9, 0x00]), what);
    assert.equal(hex(hand.subarray(1)), hex(reference.subarray(3)), what);
    assert.deepEqual(hand.subarray(1), reference.subarray(3), what);
    assert.equal(envelopeBytes(fields), hand.byteLength, what);
  }
});

test("the hand-written envelope reader reads what cbor-x decodes, or leaves it to the generic decoder", async () => {
  let fast = 0;
  for (let i = 0; i < COUNT; i++) {
    const [kind, fields] = randomEnvelope();
    const object = asObject(kind, fields);
    for (const body of [await handEncoded(kind, fields), new Uint8Array(encodeCbor(object))]) {
      const expected = plain(decodeEnvelope(body) as Record<string, unknown>);
      const m = readEnvelope(body);
      if (m === undefined) {
        // Only numbers the reader does not take may send an envelope the generic way.
        const numbers = fields.filter(([, v]) => typeof v === "number").map(([, v]) => v as number);
        assert.ok(
          numbers.some((n) => !Number.isInteger(n) || n < -(2 ** 32) || n >= 2 ** 32 || n < 0),
          `fast reader refused ${kind} ${hex(body)}`,
        );
        continue;
      }
      fast++;
      assert.deepEqual(readBack(m), expected, `${kind} ${hex(body)}`);
    }
  }
  assert.ok(fast > COUNT / 2, `only ${fast} of ${2 * COUNT} envelopes read by the fast path`);
});
