import { test } from "node:test";
import assert from "node:assert/strict";
import { ReadBufferSize } from "../src/transport/read_buffer_size.ts";

/** Feeds `reads` (bytes each read returned) and gives the sizes asked for before each and after the last. */
function sizesFor(reads: number[]): number[] {
  const size = new ReadBufferSize();
  const asked = [size.bytes];
  for (const n of reads) {
    size.record(n);
    asked.push(size.bytes);
  }
  return asked;
}

test("A connection's read buffer starts at 128 B, so an idle peer that only said hello holds 128 B", () => {
  assert.deepEqual(sizesFor([120, 40, 40, 40]), [128, 128, 128, 128, 128]);
});

test("A read that fills the buffer moves two sizes up at once, to at most 16 KiB", () => {
  assert.deepEqual(sizesFor([128, 512, 2048, 8192, 16384, 16384]), [128, 512, 2048, 8192, 16384, 16384, 16384]);
});

test("The buffer shrinks one size after two reads in a row that fit the size below, and not after one", () => {
  assert.deepEqual(
    sizesFor([128, 8192, 8192, 100, 5000, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100]),
    [128, 512, 2048, 8192, 8192, 8192, 8192, 4096, 4096, 2048, 2048, 1024, 1024, 512, 512, 256, 256, 128],
  );
});

for (const [payload, settled] of [[1024, 2048], [10 * 1024, 16384]]) {
  test(`${payload / 1024} KiB messages settle the buffer at ${settled / 1024} KiB, where one read takes each whole`, () => {
    const size = new ReadBufferSize();
    const frame = payload + 40;
    let split = 0;
    // As the Deno adapter reads: into its own buffer, and what a filled one left behind into a shared one, unrecorded.
    for (let i = 0; i < 100; i++) {
      const n = Math.min(frame, size.bytes);
      size.record(n);
      if (i >= 10 && n < frame) split++;
    }
    assert.equal(size.bytes, settled);
    assert.equal(split, 0, "a message after the first ten took more than one read");
  });
}
