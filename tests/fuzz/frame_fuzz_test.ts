/**
 * Hostile input for the frame decoder and the CBOR decoder (issue 7, 1):
 * random bytes, mutated valid frames, huge declared lengths and counts, deep
 * nesting and random chunk splits. Every input either decodes or fails with
 * `FrameTooLargeError`/`ProtocolError`, fast, and a decode never builds much
 * more than its input's size.
 *
 * CI runs a fixed seed and a bounded count; `IPCBUS_FUZZ_COUNT=1000000`
 * (and `IPCBUS_FUZZ_SEED`) make a longer run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { FrameDecoderStream, FrameTooLargeError, ProtocolError } from "../../mod.ts";
import { decodeCbor, decodeEnvelope, encodeCbor } from "../../src/codec/cbor.ts";
import { MAX_CBOR_DEPTH, scanCbor } from "../../src/codec/cbor_scan.ts";
import { FrameParser } from "../../src/codec/frame_parser.ts";
import { currentRuntime } from "../_helpers.ts";
import { fuzzCount, fuzzSeed, Rng } from "./_rng.ts";
import {
  amplifiers,
  concat,
  deepNesting,
  frame,
  hugeDeclarations,
  mutate,
  randomItem,
  splitChunks,
  validEnvelope,
} from "./_mutate.ts";

const MiB = 1024 * 1024;
/** Growth of the test process's resident memory over a whole fuzz run that still passes. */
const RSS_BOUND = 200 * MiB;
/** A change of memory, in MiB with its sign. */
const signed = (bytes: number): string => `${bytes < 0 ? "" : "+"}${(bytes / MiB).toFixed(1)} MiB`;
/** A decode of `bytes` slower than this (500 ms plus 2 ms per kB) is treated as a hang. */
const slowMs = (bytes: number): number => 500 + bytes / 500;
/** A decoded value may hold at most this many elements per input byte (plus a constant). */
const ELEMENTS_PER_BYTE = 2;

/**
 * Counts what a decoded value holds: one per value, map entry and array slot,
 * one per 8 characters or bytes of strings and byte strings. Shared and
 * cyclic parts count once; counting stops past `cap`.
 */
function elements(value: unknown, cap: number): number {
  let n = 0;
  const seen = new Set<object>();
  const stack: unknown[] = [value];
  while (stack.length > 0 && n <= cap) {
    const v = stack.pop();
    n++;
    if (typeof v === "string") n += v.length >> 3;
    if (v === null || typeof v !== "object") continue;
    if (seen.has(v)) continue;
    seen.add(v);
    if (ArrayBuffer.isView(v)) n += v.byteLength >> 3;
    else if (Array.isArray(v)) stack.push(...v);
    else if (v instanceof Map) { for (const [k, x] of v) stack.push(k, x); }
    else if (v instanceof Set) stack.push(...v);
    else for (const [k, x] of Object.entries(v)) stack.push(k, x);
  }
  return n;
}

/** One input: random bytes, random CBOR, a mutation of either or of a protocol message, or a hostile item. */
function nextBody(rng: Rng, hostile: Array<[string, Uint8Array]>): Uint8Array {
  const roll = rng.int(100);
  if (roll < 15) return rng.bytes(rng.chance(0.8) ? rng.int(64) : rng.int(1024));
  if (roll < 40) return new Uint8Array(randomItem(rng, rng.pick([16, 128, 1024])));
  if (roll < 65) return mutate(rng, new Uint8Array(randomItem(rng, rng.pick([16, 128, 1024]))));
  if (roll < 90) return mutate(rng, validEnvelope(rng));
  const [, bytes] = rng.pick(hostile);
  return bytes.byteLength < 4096 && rng.chance(0.5) ? mutate(rng, bytes) : bytes;
}

/** Decodes `body` with `decode`; returns the value or the error, and checks the error's type. */
function attempt(what: string, body: Uint8Array, decode: (b: Uint8Array) => unknown): { ok: boolean; value?: unknown } {
  try {
    return { ok: true, value: decode(body) };
  } catch (err) {
    if (!(err instanceof ProtocolError)) {
      const { name, message } = err as Error;
      assert.fail(`${what} threw ${name}: ${message} for ${body.byteLength} bytes: ${hex(body)}`);
    }
    return { ok: false };
  }
}

function hex(body: Uint8Array): string {
  return Array.from(body.subarray(0, 48), (b) => b.toString(16).padStart(2, "0")).join(" ");
}

test("scanCbor, decodeCbor and decodeEnvelope decode or throw ProtocolError, fast and within a size bound, on fuzzed input", () => {
  const count = fuzzCount(20_000);
  const rng = new Rng(fuzzSeed);
  const hostile = [...hugeDeclarations(), ...deepNesting(MAX_CBOR_DEPTH + 1), ...deepNesting(10_000), ...amplifiers()];
  const rssBefore = process.memoryUsage().rss;
  let decoded = 0;
  let refused = 0;
  let slowest = 0;
  let maxRatio = 0;
  for (let i = 0; i < count; i++) {
    const body = nextBody(rng, hostile);
    const started = performance.now();
    const scanned = attempt("scanCbor", body, (b) => scanCbor(b));
    const value = attempt("decodeCbor", body, decodeCbor);
    const envelope = attempt("decodeEnvelope", body, decodeEnvelope);
    let ms = performance.now() - started;
    if (ms >= slowMs(body.byteLength)) {
      // A garbage collection can land in any input: only a second slow run is the input's doing.
      const again = performance.now();
      attempt("decodeCbor", body, decodeCbor);
      attempt("decodeEnvelope", body, decodeEnvelope);
      ms = Math.min(ms, performance.now() - again);
    }
    slowest = Math.max(slowest, ms);
    assert.ok(ms < slowMs(body.byteLength), `input ${i} took ${ms.toFixed(0)} ms: ${hex(body)}`);
    // The scan runs first in both decoders: what it refuses, they refuse.
    if (!scanned.ok) assert.ok(!value.ok && !envelope.ok, `scan refused but a decoder took input ${i}: ${hex(body)}`);
    // The two decoders differ in options (copied or viewed byte strings), so a typed-array tag over the
    // wrong item may fail in one and not the other; each outcome is checked on its own.
    for (const { value: v } of [value, envelope].filter((r) => r.ok)) {
      const limit = 16 + ELEMENTS_PER_BYTE * body.byteLength;
      const n = elements(v, limit);
      maxRatio = Math.max(maxRatio, n / body.byteLength);
      assert.ok(n <= limit, `input ${i} of ${body.byteLength} bytes decoded to over ${limit} elements: ${hex(body)}`);
    }
    if (value.ok) decoded++;
    else refused++;
  }
  const grown = process.memoryUsage().rss - rssBefore;
  console.log(
    `cbor fuzz (${currentRuntime}, seed ${fuzzSeed}): ${count} inputs tried, ${decoded} decoded, ${refused} refused; ` +
      `slowest ${slowest.toFixed(1)} ms, at most ${maxRatio.toFixed(2)} elements per byte, ` +
      `rss ${signed(grown)} (bound ${RSS_BOUND / MiB} MiB)`,
  );
  assert.ok(decoded > count / 20 && refused > count / 20, "the inputs reach both outcomes");
  assert.ok(grown < RSS_BOUND, `rss grew by ${(grown / MiB).toFixed(1)} MiB`);
});

test("Hostile CBOR items are refused with ProtocolError before they are built", () => {
  const cases = [...hugeDeclarations(), ...deepNesting(MAX_CBOR_DEPTH + 1), ...deepNesting(100_000), ...amplifiers()];
  const rssBefore = process.memoryUsage().rss;
  for (const [what, body] of cases) {
    const started = performance.now();
    for (const decode of [decodeCbor, decodeEnvelope]) {
      assert.throws(() => decode(body), ProtocolError, what);
    }
    const ms = performance.now() - started;
    assert.ok(ms < slowMs(body.byteLength), `${what} took ${ms.toFixed(0)} ms`);
  }
  const grown = process.memoryUsage().rss - rssBefore;
  console.log(`hostile items (${currentRuntime}): ${cases.length} refused, rss ${signed(grown)}`);
  assert.ok(grown < RSS_BOUND, `rss grew by ${(grown / MiB).toFixed(1)} MiB`);
});

test("Nesting up to the depth limit still decodes", () => {
  for (const [what, body] of deepNesting(MAX_CBOR_DEPTH - 1).slice(0, 5)) {
    assert.doesNotThrow(() => decodeCbor(body), what);
  }
});

/** A random value cbor-x can decode (it has no indefinite-length strings, for one). */
function randomValue(rng: Rng): unknown {
  for (let tries = 0; tries < 20; tries++) {
    try {
      return decodeCbor(new Uint8Array(randomItem(rng, 64)));
    } catch {
      // Try another.
    }
  }
  return { fallback: [1, "two"] };
}

/** Decodes `chunks` with a FrameDecoderStream: the values it gave before it ended, and its error if any. */
async function decodeStream(
  chunks: Uint8Array[],
  maxFrameBytes?: number,
): Promise<{ values: unknown[]; error?: unknown }> {
  const reader = ReadableStream.from(chunks).pipeThrough(new FrameDecoderStream({ maxFrameBytes })).getReader();
  const values: unknown[] = [];
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return { values };
      values.push(value);
    }
  } catch (error) {
    return { values, error };
  }
}

test("FrameDecoderStream gives the frames before the first bad one and errors with FrameTooLargeError or ProtocolError, however the bytes are split", async () => {
  const count = fuzzCount(5_000, 0.25);
  const rng = new Rng(fuzzSeed ^ 0x5eed);
  const hostile = [...hugeDeclarations().filter(([, b]) => b.byteLength < 4096), ...deepNesting(300), ...amplifiers()];
  const rssBefore = process.memoryUsage().rss;
  const outcomes = { ended: 0, tooLarge: 0, protocol: 0 };
  let frames = 0;
  for (let i = 0; i < count; i++) {
    const maxFrameBytes = rng.pick([undefined, 64 * 1024, 1 + rng.int(200)]);
    const limit = maxFrameBytes ?? 64 * MiB;
    const parts: Uint8Array[] = [];
    // Values of the good frames before the first frame that may fail.
    const prefix: unknown[] = [];
    let allGood = true;
    const frameCount = rng.range(1, 6);
    for (let n = 0; n < frameCount; n++) {
      const roll = rng.int(10);
      if (roll < 4) {
        const body = encodeCbor(randomValue(rng));
        parts.push(frame(body));
        if (body.byteLength > limit) allGood = false;
        else if (allGood) prefix.push(decodeCbor(body));
        continue;
      }
      allGood = false;
      if (roll < 6) parts.push(frame(nextBody(rng, hostile)));
      else if (roll < 7) {
        // A header declaring more than maxFrameBytes, or more than the stream holds.
        const declared = rng.pick([limit + 1, 0xffffffff, 2 ** 31, 64 * MiB + 1, rng.int(100)]);
        parts.push(frame(rng.bytes(rng.int(16)), declared));
      } else parts.push(mutate(rng, frame(validEnvelope(rng))));
    }
    frames += frameCount;
    if (rng.chance(0.2)) {
      parts.push(rng.bytes(rng.range(1, 7)));
      allGood = false;
    }
    const bytes = concat(parts);
    const { values, error } = await decodeStream(splitChunks(rng, bytes), maxFrameBytes);
    if (error === undefined) outcomes.ended++;
    else if (error instanceof FrameTooLargeError) outcomes.tooLarge++;
    else if (error instanceof ProtocolError) outcomes.protocol++;
    else assert.fail(`stream ${i} errored with ${(error as Error)?.name}: ${(error as Error)?.message}: ${hex(bytes)}`);
    // Mutations may make frames of their own, but each takes 5 bytes at least.
    assert.ok(
      values.length <= bytes.byteLength / 5,
      `stream ${i} gave ${values.length} values from ${bytes.byteLength} bytes`,
    );
    if (allGood) {
      assert.equal(error, undefined, `stream ${i} of good frames errored: ${hex(bytes)}`);
      assert.deepEqual(values, prefix, `stream ${i}`);
    } else {
      // An error discards values still queued in the stream, so only a prefix of them is certain.
      const n = Math.min(values.length, prefix.length);
      assert.deepEqual(values.slice(0, n), prefix.slice(0, n), `stream ${i}`);
    }
  }
  const grown = process.memoryUsage().rss - rssBefore;
  console.log(
    `frame stream fuzz (${currentRuntime}, seed ${fuzzSeed}): ${count} streams of ${frames} frames tried; ` +
      `${outcomes.ended} ended, ${outcomes.tooLarge} FrameTooLargeError, ${outcomes.protocol} ProtocolError; ` +
      `rss ${signed(grown)} (bound ${RSS_BOUND / MiB} MiB)`,
  );
  assert.ok(outcomes.ended > 0 && outcomes.tooLarge > 0 && outcomes.protocol > 0, "every outcome was reached");
  assert.ok(grown < RSS_BOUND, `rss grew by ${(grown / MiB).toFixed(1)} MiB`);
});

test("A header declaring up to maxFrameBytes allocates nothing until the body arrives", async () => {
  // Array buffers count in `external` as soon as they are allocated, resident or not (rss would miss an
  // eager `new Uint8Array(64 MiB)` that is never written). Eight parsers each waiting for a 64 MiB body.
  const externalBefore = process.memoryUsage().external;
  const parsers = Array.from({ length: 8 }, () => {
    const parser = new FrameParser();
    parser.push(frame([0xa1, 0x61, 0x6b], 64 * MiB), () => assert.fail("no frame is complete"));
    return parser;
  });
  const grown = process.memoryUsage().external - externalBefore;
  assert.deepEqual(parsers.map((p) => p.buffered), Array(8).fill(7), "each holds the header and 3 body bytes");
  assert.ok(grown < 8 * MiB, `8 parsers waiting for 64 MiB bodies hold ${(grown / MiB).toFixed(1)} MiB of buffers`);
  for (let i = 0; i < 20; i++) {
    // Through the stream: 64 MiB declared, 3 bytes sent, then the stream ends.
    const { values, error } = await decodeStream([frame([0xa1, 0x61, 0x6b], 64 * MiB)]);
    assert.equal(values.length, 0);
    assert.ok(error instanceof ProtocolError, String(error));
    assert.match(error.message, /ended inside a frame/);
  }
});
