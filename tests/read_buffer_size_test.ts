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

test("A connection's read buffer starts at 512 B, so an idle peer that only said hello holds 512 B", () => {
  assert.deepEqual(sizesFor([120, 40, 40, 40]), [512, 512, 512, 512, 512]);
});

test("A read that fills the buffer moves two sizes up at once, to at most 8 KiB", () => {
  assert.deepEqual(sizesFor([512, 2048, 8192, 8192]), [512, 2048, 8192, 8192, 8192]);
});

test("The buffer shrinks one size after two reads in a row that fit the size below, and not after one", () => {
  assert.deepEqual(
    sizesFor([8192, 8192, 100, 5000, 100, 100, 100, 100, 100, 100, 100, 100]),
    [512, 2048, 8192, 8192, 8192, 8192, 4096, 4096, 2048, 2048, 1024, 1024, 512],
  );
});

test("1 KiB messages settle the buffer at 2 KiB, where each one is read whole by one read", () => {
  const size = new ReadBufferSize();
  const frame = 1024 + 40;
  let filled = 0;
  for (let i = 0; i < 100; i++) {
    let left = frame;
    while (left > 0) {
      const n = Math.min(left, size.bytes);
      size.record(n);
      left -= n;
      if (i >= 10 && n === frame) continue;
      if (i >= 10) filled++;
    }
  }
  assert.equal(size.bytes, 2048);
  assert.equal(filled, 0, "no message after the first ten needed a second read");
});
