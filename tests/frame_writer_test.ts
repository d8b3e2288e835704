/**
 * FrameWriter, the outgoing queue of every connection: over a WritableStream
 * whose writes are held until the test lets them go, as a peer that stopped
 * reading holds the hub's.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { FrameWriter } from "../src/bus/frame_writer.ts";
import { frameBytes, FrameParser } from "../src/codec/frame_parser.ts";

/**
 * A sink that records each write (a copy, and the buffer written from) and completes it only when `release()` is
 * called.
 */
function heldSink(): {
  writable: WritableStream<Uint8Array>;
  writes: Uint8Array[];
  from: ArrayBufferLike[];
  release(): void;
} {
  const writes: Uint8Array[] = [];
  const from: ArrayBufferLike[] = [];
  let pending: Array<() => void> = [];
  const writable = new WritableStream<Uint8Array>({
    write: (chunk) =>
      new Promise<void>((resolve) => {
        writes.push(chunk.slice());
        from.push(chunk.buffer);
        pending.push(resolve);
      }),
  });
  return {
    writable,
    writes,
    from,
    release: () => {
      const wake = pending;
      pending = [];
      for (const resolve of wake) resolve();
    },
  };
}

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

test("FrameWriter hands at most half of either limit to one write, so a full queue still has frames to drop", async () => {
  const sink = heldSink();
  const writer = new FrameWriter(sink.writable, { maxMessages: 10, maxBytes: 1 << 20 });
  const body = new Uint8Array([1, 2, 3]);
  for (let i = 0; i < 10; i++) writer.push(body, true);
  assert.equal(writer.hasRoom(), false);
  await turn();
  assert.equal(sink.writes.length, 1, "one write under way, held");
  const frames: Uint8Array[] = [];
  new FrameParser().push(sink.writes[0], (f) => frames.push(f));
  assert.equal(frames.length, 5, "the write took half of maxMessages");
  assert.equal(writer.messages, 10, "the other half is queued");
  for (let i = 0; i < 5; i++) assert.equal(writer.dropOldest(), true, `queued frame ${i} can be dropped`);
  assert.equal(writer.dropOldest(), false, "what the write took cannot");
  assert.equal(writer.messages, 5);
  sink.release();
  await writer.idle();
  assert.equal(writer.framesOut, 5);
});

test("FrameWriter writes the rest of a split batch, in order, once the first write completes", async () => {
  const sink = heldSink();
  const writer = new FrameWriter(sink.writable, { maxMessages: 4, maxBytes: 1 << 20 });
  for (let i = 0; i < 6; i++) writer.push(new Uint8Array([i]));
  await turn();
  for (let round = 0; round < 10 && writer.messages > 0; round++) {
    sink.release();
    await turn();
  }
  await writer.idle();
  const seen: number[] = [];
  const parser = new FrameParser();
  for (const chunk of sink.writes) parser.push(chunk, (f) => seen.push(f[0]));
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5]);
  assert.ok(sink.writes.length >= 3, `${sink.writes.length} writes of at most 2 frames`);
});

test("FrameWriter queues a burst in batches no larger than one write, and writes each frame once, in order", async () => {
  // A sender flat out queues a whole queue before its first write: 20 000 frames of 100 B (2 MB) here. Its batch
  // used to double up to 4 MiB (a copy of the queue at each step, and garbage once written); now a batch stops at
  // what one write takes (256 KiB) and the next frames start another.
  const writes: Uint8Array[] = [];
  let largestBatch = 0;
  let release: () => void = () => {};
  const writable = new WritableStream<Uint8Array>({
    write: (chunk) => {
      largestBatch = Math.max(largestBatch, chunk.buffer.byteLength);
      writes.push(chunk.slice());
      return new Promise<void>((resolve) => (release = resolve));
    },
  });
  const writer = new FrameWriter(writable, { maxMessages: 100_000, maxBytes: 64 << 20 });
  const body = new Uint8Array(100);
  for (let i = 0; i < 20_000; i++) {
    new DataView(body.buffer).setUint32(0, i);
    writer.push(body);
  }
  assert.equal(writer.messages, 20_000);
  for (let round = 0; round < 200 && writer.messages > 0; round++) {
    release();
    await turn();
  }
  await writer.idle();
  assert.ok(largestBatch <= 256 * 1024, `written from a batch of ${largestBatch} B`);
  const seen: number[] = [];
  const parser = new FrameParser();
  for (const chunk of writes) {
    assert.ok(chunk.byteLength <= 256 * 1024, `one write of ${chunk.byteLength} B`);
    parser.push(chunk, (f) => seen.push(new DataView(f.buffer, f.byteOffset).getUint32(0)));
  }
  assert.equal(seen.length, 20_000);
  assert.ok(seen.every((n, i) => n === i), "every frame once, in order");
});

test("FrameWriter.discardQueued keeps the batch a write under way still reads out of the pool", async () => {
  // A connection cut loose drops what it queued while a write is still under way; when that write took only the
  // first frames of a batch, the rest of the same batch is what gets dropped, and giving it back to the pool let
  // another connection's frames overwrite the bytes still being written.
  const writes: Uint8Array[] = [];
  let release: () => void = () => {};
  const writable = new WritableStream<Uint8Array>({
    write: (chunk) => {
      writes.push(chunk); // the bytes under way themselves, not a copy
      return new Promise<void>((resolve) => (release = resolve));
    },
  });
  const writer = new FrameWriter(writable, { maxMessages: 4, maxBytes: 1 << 20 });
  for (let i = 0; i < 4; i++) writer.push(new Uint8Array([i, i, i]));
  await turn();
  assert.equal(writes.length, 1, "one write under way, of the first 2 frames");
  const underWay = writes[0].slice();
  writer.discardQueued();
  // Other connections take batches from the shared pool, more than it holds, and fill them.
  const others = Array.from(
    { length: 20 },
    () => new FrameWriter(new WritableStream(), { maxMessages: 10, maxBytes: 1 << 20 }),
  );
  for (const other of others) other.push(new Uint8Array(32).fill(0xee));
  assert.deepEqual(writes[0], underWay, "the bytes under way are unchanged");
  release();
  await writer.idle();
  for (const other of others) await other.idle();
});

test("FrameWriter records when it last made progress: a completed write, or the first frame after idling", async () => {
  const sink = heldSink();
  const writer = new FrameWriter(sink.writable, { maxMessages: 100, maxBytes: 1 << 20 });
  const before = performance.now();
  writer.push(new Uint8Array([1]));
  assert.ok(writer.progressAt >= before, "set when the first frame came");
  const queuedAt = writer.progressAt;
  await turn();
  writer.push(new Uint8Array([2]));
  assert.equal(writer.progressAt, queuedAt, "not moved by frames queued behind a held write");
  sink.release();
  await turn();
  assert.ok(writer.progressAt > queuedAt, "moved when the write completed");
  sink.release();
  await writer.idle();
});

/** Lets the held writes go until `writer` is idle; returns the frame bodies written, in order. */
async function writtenFrames(sink: ReturnType<typeof heldSink>, writer: FrameWriter): Promise<number[][]> {
  for (let round = 0; round < 20 && writer.messages > 0; round++) {
    await turn();
    sink.release();
  }
  await writer.idle();
  const frames: number[][] = [];
  const parser = new FrameParser();
  for (const chunk of sink.writes) parser.push(chunk, (f) => frames.push([...f]));
  return frames;
}

test("FrameWriter.pushShared writes a frame shared by many writers as it is, in order with what waits before it", async () => {
  const shared = frameBytes(new Uint8Array([7, 7, 7]));
  const before = shared.slice();
  const idle = heldSink();
  const busy = heldSink();
  const idleWriter = new FrameWriter(idle.writable, { maxMessages: 10, maxBytes: 1 << 20 });
  const busyWriter = new FrameWriter(busy.writable, { maxMessages: 10, maxBytes: 1 << 20 });
  // An idle writer takes the shared frame as its own write; a writer with frames waiting writes it after them.
  idleWriter.pushShared(shared);
  idleWriter.push(new Uint8Array([1]));
  busyWriter.push(new Uint8Array([2]));
  busyWriter.pushShared(shared);
  assert.equal(idleWriter.messages, 2);
  assert.equal(busyWriter.messages, 2);
  assert.deepEqual(await writtenFrames(idle, idleWriter), [[7, 7, 7], [1]]);
  assert.deepEqual(await writtenFrames(busy, busyWriter), [[2], [7, 7, 7]]);
  assert.deepEqual(shared, before, "the shared frame is never changed");
  assert.equal(idleWriter.framesOut + busyWriter.framesOut, 4);
});

/** `frames` frame bodies of `bodyBytes`, each behind its header, one after another in one buffer, as the hub's broadcasts. */
function sharedFrames(frames: number, bodyBytes: number, fill: number): { buffer: Uint8Array; ends: number[] } {
  const buffer = new Uint8Array(frames * (4 + bodyBytes));
  const ends: number[] = [];
  for (let i = 0; i < frames; i++) {
    buffer.set(frameBytes(new Uint8Array(bodyBytes).fill(fill + i)), i * (4 + bodyBytes));
    ends.push((i + 1) * (4 + bodyBytes));
  }
  return { buffer, ends };
}

test("FrameWriter.pushShared writes shared frames that follow one another in one buffer with one write, from that buffer", async () => {
  const { buffer, ends } = sharedFrames(3, 5, 1);
  const before = buffer.slice();
  const sink = heldSink();
  const writer = new FrameWriter(sink.writable, { maxMessages: 100, maxBytes: 1 << 20 });
  writer.push(new Uint8Array([9]));
  for (let i = 0; i < 3; i++) writer.pushShared(buffer, i === 0 ? 0 : ends[i - 1], ends[i]);
  writer.push(new Uint8Array([8]));
  assert.equal(writer.messages, 5);
  assert.equal(writer.bytes, 4 + 1 + 3 * 9 + 4 + 1);
  const frames = await writtenFrames(sink, writer);
  assert.deepEqual(frames, [[9], [1, 1, 1, 1, 1], [2, 2, 2, 2, 2], [3, 3, 3, 3, 3], [8]]);
  // What was queued before goes first, in a write of its own; the three shared frames in one, from their buffer.
  assert.equal(sink.writes.length, 3);
  assert.deepEqual(sink.writes[1], before);
  assert.equal(sink.from[1], buffer.buffer, "written from the shared buffer, not copied");
  assert.deepEqual(buffer, before, "the shared buffer is never changed");
  assert.equal(writer.framesOut, 5);
});

test("FrameWriter.pushShared keeps shared buffers alive in proportion to what it queued; beyond that it copies, in order", async () => {
  const sink = heldSink();
  const writer = new FrameWriter(sink.writable, { maxMessages: 1000, maxBytes: 1 << 22 });
  // A peer that takes one frame of 3 B from each 64 KiB buffer, as one that took one broadcast in hundreds: the first
  // goes to the transport, whose write is held; two more buffers may wait (128 KiB of slack); the rest is copied.
  const sparse = [1, 2, 3, 4, 5].map((fill) => {
    const buffer = new Uint8Array(64 * 1024);
    buffer.set(frameBytes(new Uint8Array(3).fill(fill * 10)));
    return buffer;
  });
  writer.pushShared(sparse[0], 0, 7);
  await turn();
  assert.equal(sink.writes.length, 1);
  for (const buffer of sparse.slice(1)) writer.pushShared(buffer, 0, 7);
  // A peer that takes every frame of each buffer keeps alive no more than what it queued: every run is shared.
  const dense = [6, 7, 8, 9].map((fill) => sharedFrames(500, 100, fill * 10));
  for (const { buffer, ends } of dense) {
    ends.forEach((end, i) => writer.pushShared(buffer, i === 0 ? 0 : ends[i - 1], end));
  }
  assert.equal(writer.messages, 5 + 4 * 500);
  const frames = await writtenFrames(sink, writer);
  const expected = [10, 20, 30, 40, 50].map((fill) => [fill, fill, fill]);
  for (const fill of [6, 7, 8, 9]) {
    for (let i = 0; i < 500; i++) expected.push(new Array(100).fill((fill * 10 + i) & 0xff));
  }
  assert.deepEqual(frames, expected);
  const sparseBuffers: ArrayBufferLike[] = sparse.map((b) => b.buffer);
  assert.deepEqual(sink.from.slice(0, 3), sparseBuffers.slice(0, 3));
  assert.ok(!sparseBuffers.includes(sink.from[3]), "the last two sparse frames are copied, into one batch");
  assert.deepEqual(sink.from.slice(4), dense.map(({ buffer }) => buffer.buffer), "each dense buffer in one write");
});

test("FrameWriter.pushShared: a shared frame that does not follow the last one in its buffer starts a run of its own", async () => {
  const { buffer, ends } = sharedFrames(3, 2, 1);
  const sink = heldSink();
  const writer = new FrameWriter(sink.writable, { maxMessages: 100, maxBytes: 1 << 20 });
  // Frames 0 and 2 of the buffer: not adjacent, so frame 1, which this writer did not take, is not written.
  writer.pushShared(buffer, 0, ends[0]);
  writer.pushShared(buffer, ends[1], ends[2]);
  const frames = await writtenFrames(sink, writer);
  assert.deepEqual(frames, [[1, 1], [3, 3]]);
  assert.equal(sink.writes.length, 2);
});

test("FrameWriter.pushShared: a shared run larger than one write goes out in pieces from its buffer, each frame once, in order", async () => {
  const { buffer, ends } = sharedFrames(10, 100, 1);
  const sink = heldSink();
  // One write takes at most half of maxBytes: 600 B, five frames of 104 B.
  const writer = new FrameWriter(sink.writable, { maxMessages: 100, maxBytes: 1200 });
  ends.forEach((end, i) => writer.pushShared(buffer, i === 0 ? 0 : ends[i - 1], end));
  const frames = await writtenFrames(sink, writer);
  assert.deepEqual(frames, Array.from({ length: 10 }, (_, i) => new Array(100).fill(1 + i)));
  assert.deepEqual(sink.writes.map((w) => w.byteLength), [520, 520]);
  assert.deepEqual(sink.from, [buffer.buffer, buffer.buffer], "both pieces written from the shared buffer");
  assert.equal(writer.framesOut, 10);
  assert.equal(writer.messages, 0);
});
