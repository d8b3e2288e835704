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
  // Rounded up to the next eighth of 256 KiB.
  assert.equal(fresh.byteLength, 320 * 1024);
});

test("Frames that each need a little more than the last reuse one buffer per eighth of their size", () => {
  drain();
  // A hub's welcomes on a bus growing one peer at a time: 50 B more each, from 70 000 B to 140 000 B.
  const made = new Set<ArrayBufferLike>();
  for (let bytes = 70_000; bytes <= 140_000; bytes += 50) {
    const buffer = takeLargeBuffer(bytes);
    assert.ok(buffer.byteLength >= bytes && buffer.byteLength <= bytes * 1.125, `${buffer.byteLength} for ${bytes}`);
    made.add(buffer.buffer);
    giveBackLargeBuffer(buffer.subarray(0, bytes));
  }
  // 72 KiB to 128 KiB in steps of 8 KiB, then 144 KiB (steps of 16 KiB above 128): 1 401 frames, 9 buffers.
  assert.equal(made.size, 9);
  // Above the pooled limit nothing is kept, so nothing is rounded up.
  assert.equal(takeLargeBuffer(MAX_POOLED_BUFFER_BYTES + 1).byteLength, MAX_POOLED_BUFFER_BYTES + 1);
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
