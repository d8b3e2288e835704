/**
 * The raw baseline on Deno: length-prefixed bytes over `Deno.listen` /
 * `Deno.connect` with `read`/`write`, no ipcbus code. Started by compare.ts.
 *
 * Roles (argument 1), each with the socket path (argument 2) and a JSON spec
 * (argument 3) where it measures:
 * - `echo-server`: sends every complete frame back;
 * - `relay`: for each connection, dials the echo server at `spec.to` and
 *   copies bytes both ways as they come (no framing: the cheapest relay),
 *   the baseline of ipcbus's peer → hub → peer;
 * - `latency`: ping-pong round trips, one outstanding;
 * - `cpu`: ping-pong round trips of `spec.bytes`, reporting the CPU this
 *   process and the server (`spec.serverPid`) spent per round trip in two
 *   windows of `spec.count` (`measureCpu`);
 * - with `spec.keep`, `latency` and `cpu` copy each reply's body into a
 *   buffer of its own (`copyBody`), as a program that keeps them must;
 * - `pipelined`: requests with a window of frames outstanding;
 * - `sink`: counts frames, decoding each body with cbor-x; an empty frame
 *   ends a round and is answered with a frame holding the count;
 * - `source`: encodes values with cbor-x into batched frames and sends them;
 * - `hold`: keeps each connection open with a read of 128 B pending and
 *   does nothing else, reporting its memory on each line on stdin
 *   (`reportUsageOnRequest`): the runtime's own cost of an idle connection,
 *   which `hub_scale.ts --floor` sets beside a hub's.
 *
 * @module
 */
import { Encoder } from "cbor-x/encode";
import { measureCpu, measureLatency, measureThroughput, report, reportUsageOnRequest } from "./_measure.mjs";
import { copyBody, FrameBatcher, FrameBuffer, HEADER_BYTES, makeFrame, readLength } from "./_raw_frames.ts";

const [role, path, specJson] = Deno.args;
const spec = JSON.parse(specJson ?? "{}");
/** What the client roles do with each reply: nothing, or copy its body out (`spec.keep`). */
const onReply: (frame: Uint8Array) => void = spec.keep ? copyBody : () => {};
const cbor = new Encoder({ useRecords: false, tagUint8Array: false } as ConstructorParameters<typeof Encoder>[0]);

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.byteLength) offset += await conn.write(bytes.subarray(offset));
}

/** Reads until `drain` has seen at least one frame; returns how many frames it saw. */
async function readFrames(conn: Deno.Conn, buffer: FrameBuffer, onFrame: (frame: Uint8Array) => void): Promise<number> {
  let frames = 0;
  while (frames === 0) {
    const n = await conn.read(buffer.space(buffer.wanted()));
    if (n === null) throw new Error("Connection closed by the other side");
    buffer.commit(n);
    buffer.drain((frame) => {
      frames++;
      onFrame(frame);
    });
  }
  return frames;
}

async function serveEcho(conn: Deno.Conn): Promise<void> {
  const buffer = new FrameBuffer();
  try {
    while (true) {
      // Frames are contiguous in the buffer: send them all back with one write.
      let first: Uint8Array | undefined;
      let last: Uint8Array | undefined;
      await readFrames(conn, buffer, (frame) => {
        first ??= frame;
        last = frame;
      });
      const end = last!.byteOffset + last!.byteLength;
      await writeAll(conn, new Uint8Array(first!.buffer, first!.byteOffset, end - first!.byteOffset));
    }
  } catch {
    // The client left.
  } finally {
    conn.close();
  }
}

async function serveSink(conn: Deno.Conn): Promise<void> {
  const buffer = new FrameBuffer();
  let count = 0;
  let rounds = 0;
  const onFrame = (frame: Uint8Array) => {
    if (frame.byteLength === HEADER_BYTES) {
      rounds++;
      return;
    }
    cbor.decode(frame.subarray(HEADER_BYTES));
    count++;
  };
  try {
    while (true) {
      await readFrames(conn, buffer, onFrame);
      for (; rounds > 0; rounds--) {
        const answer = makeFrame(4);
        new DataView(answer.buffer).setUint32(HEADER_BYTES, count);
        count = 0;
        await writeAll(conn, answer);
      }
    }
  } catch {
    // The source left.
  } finally {
    conn.close();
  }
}

/** Bytes a relay reads at once, each way. */
const RELAY_BUFFER_BYTES = 256 * 1024;

/** Copies what `from` sends to `into` as it comes, until either side ends: one way of a relay. */
async function forward(from: Deno.Conn, into: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(RELAY_BUFFER_BYTES);
  try {
    while (true) {
      const n = await from.read(buffer);
      if (n === null) return;
      await writeAll(into, buffer.subarray(0, n));
    }
  } catch {
    // Either side left.
  }
}

async function serveRelay(conn: Deno.Conn): Promise<void> {
  let upstream: Deno.Conn;
  try {
    upstream = await Deno.connect({ transport: "unix", path: spec.to });
  } catch {
    // No echo server: the client sees its connection end.
    conn.close();
    return;
  }
  // When one way ends, closing both ends the other.
  await Promise.race([forward(conn, upstream), forward(upstream, conn)]);
  for (const end of [conn, upstream]) {
    try {
      end.close();
    } catch {
      // Already closed.
    }
  }
}

async function listenAndServe(serveConn: (conn: Deno.Conn) => Promise<void>): Promise<void> {
  const listener = Deno.listen({ transport: "unix", path });
  report({ ev: "ready", pid: Deno.pid });
  for await (const conn of listener) void serveConn(conn);
}

let held = 0;

async function holdConn(conn: Deno.Conn): Promise<void> {
  held++;
  const buffer = new Uint8Array(128);
  try {
    while ((await conn.read(buffer)) !== null);
  } catch {
    // Reset by the other side: the connection is gone either way.
  }
  held--;
  conn.close();
}

/** One ping-pong round trip on `conn`: a frame out, its echo back (handed to `onReply`). */
function pingPong(conn: Deno.Conn): (frame: Uint8Array) => Promise<void> {
  const buffer = new FrameBuffer();
  return async (frame) => {
    await writeAll(conn, frame);
    await readFrames(conn, buffer, onReply);
  };
}

async function latency(): Promise<void> {
  const conn = await Deno.connect({ transport: "unix", path });
  const results = await measureLatency(pingPong(conn), makeFrame, spec);
  report({ ev: "result", results });
  conn.close();
}

async function cpu(): Promise<void> {
  const conn = await Deno.connect({ transport: "unix", path });
  const result = await measureCpu(pingPong(conn), makeFrame(spec.bytes), spec);
  report({ ev: "result", cpu: result });
  conn.close();
}

async function pipelined(): Promise<void> {
  const conn = await Deno.connect({ transport: "unix", path });
  const buffer = new FrameBuffer();
  const frame = makeFrame(spec.bytes);
  const window = new Uint8Array(frame.byteLength * spec.window);
  for (let i = 0; i < spec.window; i++) window.set(frame, i * frame.byteLength);
  const runs = await measureThroughput(async () => {
    const start = performance.now();
    let sent = spec.window;
    let done = 0;
    await writeAll(conn, window);
    while (done < sent) {
      const k = await readFrames(conn, buffer, () => {});
      done += k;
      if (performance.now() - start < spec.runMs && sent < spec.maxCount) {
        sent += k;
        await writeAll(conn, window.subarray(0, k * frame.byteLength));
      }
    }
    return { count: done, seconds: (performance.now() - start) / 1000 };
  }, spec.runs);
  report({ ev: "result", runs });
  conn.close();
}

async function source(): Promise<void> {
  const conn = await Deno.connect({ transport: "unix", path });
  const buffer = new FrameBuffer();
  const payload = new Uint8Array(spec.payloadBytes).fill(1);
  const runs = await measureThroughput(async () => {
    const start = performance.now();
    const batcher = new FrameBatcher(spec.batchBytes);
    for (let i = 0; i < spec.count; i++) {
      const full = batcher.add(cbor.encode(payload));
      if (full) {
        await writeAll(conn, full);
        if (performance.now() - start > spec.runMs) break;
      }
    }
    batcher.add(new Uint8Array(0));
    await writeAll(conn, batcher.take());
    let count = 0;
    await readFrames(conn, buffer, (frame) => (count = readLength(frame, HEADER_BYTES)));
    return { count, seconds: (performance.now() - start) / 1000 };
  }, spec.runs);
  report({ ev: "result", runs });
  conn.close();
}

switch (role) {
  case "echo-server":
    await listenAndServe(serveEcho);
    break;
  case "sink":
    await listenAndServe(serveSink);
    break;
  case "relay":
    await listenAndServe(serveRelay);
    break;
  case "latency":
    await latency();
    break;
  case "cpu":
    await cpu();
    break;
  case "pipelined":
    await pipelined();
    break;
  case "source":
    await source();
    break;
  case "hold":
    reportUsageOnRequest(() => held);
    await listenAndServe(holdConn);
    break;
  default:
    throw new TypeError(
      `Unknown role ${role}: expected echo-server, relay, sink, latency, cpu, pipelined, source or hold`,
    );
}
