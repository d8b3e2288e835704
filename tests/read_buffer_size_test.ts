import { test } from "node:test";
import assert from "node:assert/strict";
import {
  FREE_READ_BUFFER_BYTES,
  grantedReadBufferBytes,
  LARGE_READ_BUFFER_BUDGET_BYTES,
  ReadBufferSize,
} from "../src/transport/read_buffer_size.ts";
import { connect, serve } from "../mod.ts";
import { currentRuntime, tempDir, until } from "./_helpers.ts";

/** Feeds `reads` (bytes each read returned) and gives the sizes asked for before each and after the last. */
function sizesFor(reads: number[]): number[] {
  const size = new ReadBufferSize();
  const asked = [size.bytes];
  for (const n of reads) {
    size.record(n);
    asked.push(size.bytes);
  }
  size.release();
  return asked;
}

test("A connection's read buffer starts at 128 B, so an idle peer that only said hello holds 128 B", () => {
  assert.deepEqual(sizesFor([120, 40, 40, 40]), [128, 128, 128, 128, 128]);
});

test("A read that fills the buffer moves two sizes up at once, to at most 256 KiB", () => {
  assert.deepEqual(
    sizesFor([128, 512, 2048, 8192, 32768, 131072, 262144, 262144]),
    [128, 512, 2048, 8192, 32768, 131072, 262144, 262144, 262144],
  );
});

test("The buffer shrinks one size after two reads in a row that fit the size below, and not after one", () => {
  assert.deepEqual(
    sizesFor([128, 8192, 8192, 100, 5000, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100]),
    [128, 512, 2048, 8192, 8192, 8192, 8192, 4096, 4096, 2048, 2048, 1024, 1024, 512, 512, 256, 256, 128],
  );
});

for (const [payload, settled] of [[1024, 2048], [10 * 1024, 16384], [100 * 1024, 128 * 1024]]) {
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
    size.release();
  });
}

test("Read buffers over 16 KiB come from a budget of 8 MiB shared by the process, given back when a connection ends", () => {
  const before = grantedReadBufferBytes();
  /** Reads that fill the buffer each time: messages larger than any buffer. */
  const flood = (size: ReadBufferSize) => {
    for (let i = 0; i < 12; i++) size.record(size.bytes);
  };
  const largest = 256 * 1024;
  const fit = Math.floor((LARGE_READ_BUFFER_BUDGET_BYTES - before) / (largest - FREE_READ_BUFFER_BYTES));
  const connections = Array.from({ length: fit + 10 }, () => new ReadBufferSize());
  for (const size of connections) flood(size);
  const sizes = connections.map((size) => size.bytes);
  assert.equal(sizes.filter((bytes) => bytes === largest).length, fit, "as many at 256 KiB as the budget holds");
  assert.ok(sizes.every((bytes) => bytes >= FREE_READ_BUFFER_BYTES), "every connection may read 16 KiB");
  assert.equal(sizes.at(-1), FREE_READ_BUFFER_BYTES, "once the budget is spent, 16 KiB at most");
  const held = sizes.reduce((sum, bytes) => sum + bytes - FREE_READ_BUFFER_BYTES, 0);
  assert.equal(grantedReadBufferBytes(), before + held);
  assert.ok(grantedReadBufferBytes() <= LARGE_READ_BUFFER_BUDGET_BYTES);

  // A connection that ends gives its share back, and one that reads large messages takes it.
  connections[0].release();
  const last = connections.at(-1)!;
  flood(last);
  assert.equal(last.bytes, largest);
  for (const size of connections) size.release();
  assert.equal(grantedReadBufferBytes(), before);
});

test("A Deno connection carrying 100 KiB messages reads into a larger buffer from the budget, and gives it back when it closes", async () => {
  const before = grantedReadBufferBytes();
  const dir = tempDir();
  const path = `${dir.path}/bus.sock`;
  const hub = await serve({ path });
  const peer = await connect({ path });
  try {
    const data = new Uint8Array(100 * 1024).fill(7);
    for (let i = 0; i < 20; i++) assert.deepEqual(await peer.request("/ipcbus/echo", data), data);
    // Both ends of the socket are in this process: the hub's read buffer and the peer's.
    // (A read may return part of a message that is still being written, so the sizes are not exact.)
    if (currentRuntime === "deno") assert.ok(grantedReadBufferBytes() > before, "no read buffer over 16 KiB");
    else assert.equal(grantedReadBufferBytes(), before, "Bun hands its chunks over: no read buffer of ours");
  } finally {
    await peer.close();
    await hub.close();
  }
  await until(5_000, "the read buffers given back", () => grantedReadBufferBytes() === before);
  dir.remove();
});

test("Large replies of one size, then a larger, a small and others, each reach the peer intact in a buffer of its own", async () => {
  const dir = tempDir();
  const path = `${dir.path}/bus.sock`;
  const hub = await serve({ path });
  const peer = await connect({ path });
  try {
    // On Deno, replies like the last one are read into fresh buffers and handed over without a copy: a buffer
    // handed over and then read into again would show here as an earlier reply's bytes changed.
    const sizes = [100, 100, 100, 100, 120, 100, 100, 0.1, 100, 100, 40, 40, 200, 200, 1, 100, 100].map((k) =>
      Math.round(k * 1024)
    );
    const sent = sizes.map((n, i) => new Uint8Array(n).map((_, j) => (i * 31 + j) & 0xff));
    const kept: Uint8Array[] = [];
    for (const data of sent) kept.push(await peer.request("/ipcbus/echo", data) as Uint8Array);
    kept.forEach((reply, i) => assert.deepEqual(reply, sent[i], `reply ${i} (${sizes[i]} B)`));
    for (const [i, reply] of kept.entries()) {
      if (sizes[i] < 4096) {
        assert.ok(reply.buffer.byteLength <= 8192, `reply ${i} (${sizes[i]} B) keeps a large buffer`);
      }
    }
  } finally {
    await peer.close();
    await hub.close();
    dir.remove();
  }
});
