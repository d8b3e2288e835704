// Small payloads handed to users share 8 KiB slabs, as Node's Buffer pool, on
// Deno, and are fresh buffers on Bun: either way each must be a correct copy
// that no other payload's bytes overlap.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeCbor, encodeCbor } from "../src/codec/cbor.ts";
import { keptBytes, POOLED_BELOW, pooledCopy, setSmallCopies, type SmallCopies } from "../src/util/pooled_copy.ts";
import { runtime } from "../src/transport/runtime.ts";

/** Runs `body` with small copies made `how`, then as before (bun test runs every file in one process). */
function withSmallCopies(how: SmallCopies, body: () => void): void {
  const before = setSmallCopies(how);
  try {
    body();
  } finally {
    setSmallCopies(before);
  }
}

test("small copies go into slabs on Deno and are fresh buffers on Bun", () => {
  const copy = pooledCopy(new Uint8Array(100).fill(1));
  assert.equal(copy.buffer.byteLength, runtime === "bun" ? 100 : 8192);
});

test("fresh small copies are plain buffers of their own, also from a Node Buffer", () => {
  withSmallCopies("fresh", () => {
    const sources: Uint8Array[] = [new Uint8Array(100).fill(5), new Uint8Array(POOLED_BELOW - 1).fill(6)];
    if (typeof globalThis.Buffer === "function") sources.push(globalThis.Buffer.alloc(33, 7));
    for (const source of sources) {
      const copy = pooledCopy(source.subarray(1));
      assert.equal(copy.constructor, Uint8Array);
      assert.equal(copy.buffer.byteLength, source.byteLength - 1);
      assert.deepEqual([...copy], [...source.subarray(1)]);
      source.fill(0);
      assert.ok(copy.every((b) => b !== 0), "the copy outlives its source");
    }
  });
});

test("pooledCopy copies small payloads into one shared slab, 8-byte aligned and never overlapping", () =>
  withSmallCopies("slab", () => {
    const sources = Array.from({ length: 40 }, (_, i) => new Uint8Array(1 + ((i * 37) % 200)).fill(i + 1));
    const copies = sources.map((s) => pooledCopy(s));
    const slabs = new Set(copies.map((c) => c.buffer));
    assert.ok(slabs.size < copies.length / 4, `${copies.length} copies in ${slabs.size} slabs`);
    for (const slab of slabs) assert.equal(slab.byteLength, 8192);
    for (const c of copies) assert.equal(c.byteOffset % 8, 0);
    // Writing every copy in full leaves every other copy as it was.
    copies.forEach((c, i) => c.fill(200 + (i % 50)));
    copies.forEach((c, i) => assert.deepEqual(c, new Uint8Array(c.byteLength).fill(200 + (i % 50)), `copy ${i}`));
    for (const [i, s] of sources.entries()) {
      assert.deepEqual(s, new Uint8Array(s.byteLength).fill(i + 1), "source kept");
    }
  }));

test("pooledCopy gives a payload of 4 KiB or more, and an empty one, a buffer of its own", () =>
  withSmallCopies("slab", () => {
    for (const n of [POOLED_BELOW, POOLED_BELOW + 1, 100_000, 0]) {
      const copy = pooledCopy(new Uint8Array(n).fill(3));
      assert.equal(copy.buffer.byteLength, n);
      assert.deepEqual(copy, new Uint8Array(n).fill(3));
    }
    assert.equal(pooledCopy(new Uint8Array(POOLED_BELOW - 1)).buffer.byteLength, 8192);
  }));

test("a large copy, also of a view into a Node Buffer, is a plain buffer of exactly its bytes", () => {
  const n = 100_000;
  const whole: Uint8Array = typeof globalThis.Buffer === "function"
    ? globalThis.Buffer.alloc(n + 16, 9)
    : new Uint8Array(n + 16).fill(9);
  whole[8] = 1;
  const copy = pooledCopy(whole.subarray(8, 8 + n));
  assert.equal(copy.constructor, Uint8Array);
  assert.equal(copy.byteOffset, 0);
  assert.equal(copy.buffer.byteLength, n);
  assert.equal(copy[0], 1);
  whole.fill(0);
  assert.ok(copy.subarray(1).every((b) => b === 9), "the copy outlives its source");
});

test("pooledCopy starts a new slab when a user transferred the last one away", () =>
  withSmallCopies("slab", () => {
    const first = pooledCopy(new Uint8Array([1, 2, 3]));
    const slab = first.buffer as ArrayBuffer;
    structuredClone(slab, { transfer: [slab] });
    assert.equal(first.byteLength, 0, "the transfer detached the slab");
    const next = pooledCopy(new Uint8Array([4, 5, 6]));
    assert.deepEqual(next, new Uint8Array([4, 5, 6]));
    assert.notEqual(next.buffer, first.buffer);
  }));

test("pooledCopy and keptBytes hand out plain Uint8Arrays, also from a Node Buffer", () => {
  const fromBuffer = typeof globalThis.Buffer === "function"
    ? globalThis.Buffer.from([7, 8, 9])
    : new Uint8Array([7, 8, 9]);
  for (const out of [pooledCopy(fromBuffer), keptBytes(fromBuffer, false), keptBytes(fromBuffer, true)]) {
    assert.equal(out.constructor, Uint8Array);
    assert.deepEqual([...out], [7, 8, 9]);
  }
  assert.equal(keptBytes(fromBuffer, true).buffer, fromBuffer.buffer, "own bytes are viewed, not copied");
});

test("a small byte string decoded from a read buffer is a slab copy that outlives the buffer", () =>
  withSmallCopies("slab", () => {
    const read = new Uint8Array(encodeCbor(new Uint8Array(100).fill(9)));
    const payload = decodeCbor(read) as Uint8Array;
    read.fill(0);
    assert.deepEqual(payload, new Uint8Array(100).fill(9));
    assert.equal(payload.buffer.byteLength, 8192);
  }));
