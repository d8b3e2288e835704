import { test } from "node:test";
import assert from "node:assert/strict";
import {
  giveBackLargeBuffer,
  MAX_POOLED_BUFFER_BYTES,
  MAX_POOLED_BUFFERS,
  takeLargeBuffer,
} from "../src/codec/large_buffer_pool.ts";

/** Empties the process-wide pool: each take returns a pooled buffer while there is one. */
function drain(): void {
  for (let i = 0; i < MAX_POOLED_BUFFERS; i++) takeLargeBuffer(1);
}

test("A large buffer given back serves the next frame it holds, and a new one is made when none does", () => {
  drain();
  const first = takeLargeBuffer(512 * 1024);
  giveBackLargeBuffer(first.subarray(10, 20));
  assert.equal(takeLargeBuffer(300 * 1024).buffer, first.buffer, "the buffer given back (as a view) is taken again");
  const fresh = takeLargeBuffer(300 * 1024);
  assert.notEqual(fresh.buffer, first.buffer);
  assert.equal(fresh.byteLength, 300 * 1024);
});

test("A reader that wants a whole frame gets a pooled buffer that holds it, not a smaller one it would regrow", () => {
  drain();
  // What a hub's pool holds after 1 MiB echoes: its answers' frames, a little shorter than the requests.
  const answerSized = new Uint8Array(1_048_600);
  const requestSized = new Uint8Array(1_048_616);
  const small = new Uint8Array(300 * 1024);
  for (const buffer of [answerSized, requestSized, small]) giveBackLargeBuffer(buffer);
  // A Deno hub has read 16 KiB of a 1 048 616-byte request: it needs 256 KiB now and wants the whole.
  assert.equal(takeLargeBuffer(256 * 1024, 1_048_616), requestSized);
  // None holds the whole: the smallest that holds what is needed now.
  assert.equal(takeLargeBuffer(256 * 1024, 2 * 1024 * 1024), small);
  // Without a wish, the smallest that holds what is needed.
  assert.equal(takeLargeBuffer(256 * 1024), answerSized);
});

test(`The pool keeps at most ${MAX_POOLED_BUFFERS} buffers of at most ${MAX_POOLED_BUFFER_BYTES / 1024 / 1024} MiB, the largest ones`, () => {
  drain();
  const huge = new Uint8Array(MAX_POOLED_BUFFER_BYTES + 1);
  giveBackLargeBuffer(huge);
  assert.notEqual(takeLargeBuffer(MAX_POOLED_BUFFER_BYTES + 1), huge, "a buffer over the limit is not kept");
  const given = Array.from({ length: MAX_POOLED_BUFFERS + 1 }, (_, i) => new Uint8Array((i + 1) * 64 * 1024));
  for (const buffer of given) giveBackLargeBuffer(buffer);
  const taken = Array.from({ length: MAX_POOLED_BUFFERS + 1 }, () => takeLargeBuffer(1));
  // The smallest made way for a larger one; the last take found the pool empty.
  assert.deepEqual(taken.slice(0, MAX_POOLED_BUFFERS).map((b) => b.buffer), given.slice(1).map((b) => b.buffer));
  assert.equal(taken[MAX_POOLED_BUFFERS].byteLength, 1);
});
