/**
 * The raw baseline on Bun: length-prefixed bytes over `Bun.listen` /
 * `Bun.connect`, no ipcbus code. Started by compare.ts; same roles, arguments
 * and output as raw_deno.ts.
 *
 * Deno type-checks the bench folder too, so the slice of Bun's API used here
 * is declared below and reached through `globalThis`.
 *
 * @module
 */
import { Encoder } from "cbor-x/encode";
import process from "node:process";
import { measureCpu, measureLatency, measureThroughput, report, reportUsageOnRequest } from "./_measure.mjs";
import { copyBody, FrameBatcher, FrameBuffer, HEADER_BYTES, makeFrame, readLength } from "./_raw_frames.ts";

interface BunSocket {
  data: RawConn | undefined;
  write(data: Uint8Array): number;
  end(): void;
}

interface BunSocketHandler {
  open?(socket: BunSocket): void;
  data(socket: BunSocket, data: Uint8Array): void;
  drain(socket: BunSocket): void;
  close(socket: BunSocket): void;
  error?(socket: BunSocket, error: Error): void;
}

interface BunApi {
  listen(options: { unix: string; socket: BunSocketHandler }): unknown;
  connect(options: { unix: string; socket: BunSocketHandler }): Promise<BunSocket>;
}

const bun = (globalThis as unknown as { Bun: BunApi }).Bun;

const [role, path, specJson] = process.argv.slice(2);
const spec = JSON.parse(specJson ?? "{}");
/** What the client roles do with each reply: nothing, or copy its body out (`spec.keep`). */
const onReply: (frame: Uint8Array) => void = spec.keep ? copyBody : () => {};
const cbor = new Encoder({ useRecords: false, tagUint8Array: false } as ConstructorParameters<typeof Encoder>[0]);

/** One socket: frames in through a callback, writes that wait for drain when the kernel is full. */
class RawConn {
  readonly socket: BunSocket;
  readonly buffer = new FrameBuffer();
  onFrame: (frame: Uint8Array) => void = () => {};
  /** Called after the frames of one data event were handed out. */
  onBurst: () => void = () => {};
  /** Called when the socket closes. */
  onClose: () => void = () => {};
  #pending: Uint8Array | undefined;
  #drained: (() => void) | undefined;

  constructor(socket: BunSocket) {
    this.socket = socket;
    socket.data = this;
  }

  onData(chunk: Uint8Array): void {
    this.buffer.append(chunk);
    this.buffer.drain(this.onFrame);
    this.onBurst();
  }

  /** Writes `bytes`; resolves at once when the kernel took them all, else on drain. */
  write(bytes: Uint8Array): Promise<void> | undefined {
    if (this.#pending) {
      // Only the echo server writes while a write waits: queue behind it.
      const joined = new Uint8Array(this.#pending.byteLength + bytes.byteLength);
      joined.set(this.#pending);
      joined.set(bytes, this.#pending.byteLength);
      this.#pending = joined;
      return new Promise((resolve) => (this.#drained = chain(this.#drained, resolve)));
    }
    const n = this.socket.write(bytes);
    if (n >= bytes.byteLength) return undefined;
    // Bun keeps none of what it did not take: hold a copy until drain.
    this.#pending = bytes.slice(Math.max(n, 0));
    return new Promise((resolve) => (this.#drained = chain(this.#drained, resolve)));
  }

  onDrain(): void {
    const pending = this.#pending;
    if (!pending) return;
    const n = this.socket.write(pending);
    if (n < pending.byteLength) {
      this.#pending = pending.subarray(Math.max(n, 0));
      return;
    }
    this.#pending = undefined;
    const drained = this.#drained;
    this.#drained = undefined;
    drained?.();
  }
}

function chain(first: (() => void) | undefined, next: () => void): () => void {
  return first ? () => (first(), next()) : next;
}

const handlers: BunSocketHandler = {
  data: (socket, data) => socket.data?.onData(data),
  drain: (socket) => socket.data?.onDrain(),
  close: (socket) => socket.data?.onClose(),
};

async function dial(to: string = path): Promise<RawConn> {
  const socket = await bun.connect({ unix: to, socket: { ...handlers, open: (s) => void new RawConn(s) } });
  return socket.data!;
}

/** Resolves with the next burst's frame count once at least one frame arrived; `each` sees every frame. */
function nextFrames(conn: RawConn, each: (frame: Uint8Array) => void = () => {}): Promise<number> {
  return new Promise((resolve) => {
    let frames = 0;
    conn.onFrame = (frame) => {
      frames++;
      each(frame);
    };
    conn.onBurst = () => {
      if (frames > 0) resolve(frames);
    };
  });
}

/** Listens on `path` and hands each connection to `serve`: what every server role does. */
function listenAndServe(serve: (conn: RawConn) => void): void {
  bun.listen({ unix: path, socket: { ...handlers, open: (socket) => serve(new RawConn(socket)) } });
  report({ ev: "ready", pid: process.pid });
}

/** The `hold` role: Bun reads every socket it holds, so a held socket needs no more than handlers that ignore it. */
function hold(): void {
  let held = 0;
  reportUsageOnRequest(() => held);
  bun.listen({
    unix: path,
    socket: { open: () => void held++, data: () => {}, drain: () => {}, close: () => void held-- },
  });
  report({ ev: "ready", pid: process.pid });
}

function serveEcho(conn: RawConn): void {
  // Frames are contiguous in the buffer: send each burst back with one write.
  let first: Uint8Array | undefined;
  let last: Uint8Array | undefined;
  conn.onFrame = (frame) => {
    first ??= frame;
    last = frame;
  };
  conn.onBurst = () => {
    if (!first) return;
    const end = last!.byteOffset + last!.byteLength;
    void conn.write(new Uint8Array(first.buffer, first.byteOffset, end - first.byteOffset));
    first = last = undefined;
  };
}

function serveRelay(client: RawConn): void {
  // Bytes go on as they come, frames or not (the cheapest relay); those that
  // come before the connection to the echo server is open wait for it.
  let upstream: RawConn | undefined;
  const early: Uint8Array[] = [];
  client.onData = (chunk) => void (upstream ? upstream.write(chunk) : early.push(chunk.slice()));
  client.onClose = () => upstream?.socket.end();
  dial(spec.to).then((up) => {
    up.onData = (chunk) => void client.write(chunk);
    up.onClose = () => client.socket.end();
    for (const chunk of early) void up.write(chunk);
    upstream = up;
  }, () => client.socket.end()); // No echo server: the client sees its connection end.
}

function serveSink(conn: RawConn): void {
  let count = 0;
  conn.onFrame = (frame) => {
    if (frame.byteLength > HEADER_BYTES) {
      cbor.decode(frame.subarray(HEADER_BYTES));
      count++;
      return;
    }
    const answer = makeFrame(4);
    new DataView(answer.buffer).setUint32(HEADER_BYTES, count);
    count = 0;
    void conn.write(answer);
  };
}

/** One ping-pong round trip on `conn`: a frame out, its echo back (handed to `onReply`). */
function pingPong(conn: RawConn): (frame: Uint8Array) => Promise<void> {
  return async (frame) => {
    const reply = nextFrames(conn, onReply);
    await conn.write(frame);
    await reply;
  };
}

async function latency(): Promise<void> {
  const conn = await dial();
  const results = await measureLatency(pingPong(conn), makeFrame, spec);
  report({ ev: "result", results });
  conn.socket.end();
}

async function cpu(): Promise<void> {
  const conn = await dial();
  const result = await measureCpu(pingPong(conn), makeFrame(spec.bytes), spec);
  report({ ev: "result", cpu: result });
  conn.socket.end();
}

async function pipelined(): Promise<void> {
  const conn = await dial();
  const frame = makeFrame(spec.bytes);
  const window = new Uint8Array(frame.byteLength * spec.window);
  for (let i = 0; i < spec.window; i++) window.set(frame, i * frame.byteLength);
  const runs = await measureThroughput(async () => {
    const start = performance.now();
    let sent = spec.window;
    let done = 0;
    let replies = nextFrames(conn);
    await conn.write(window);
    while (done < sent) {
      const k = await replies;
      replies = nextFrames(conn);
      done += k;
      if (performance.now() - start < spec.runMs && sent < spec.maxCount) {
        sent += k;
        await conn.write(window.subarray(0, k * frame.byteLength));
      }
    }
    return { count: done, seconds: (performance.now() - start) / 1000 };
  }, spec.runs);
  report({ ev: "result", runs });
  conn.socket.end();
}

async function source(): Promise<void> {
  const conn = await dial();
  const payload = new Uint8Array(spec.payloadBytes).fill(1);
  const runs = await measureThroughput(async () => {
    const start = performance.now();
    const batcher = new FrameBatcher(spec.batchBytes);
    for (let i = 0; i < spec.count; i++) {
      const full = batcher.add(cbor.encode(payload));
      if (full) {
        await conn.write(full);
        if (performance.now() - start > spec.runMs) break;
      }
    }
    batcher.add(new Uint8Array(0));
    let count = 0;
    const answer = new Promise<void>((resolve) => {
      conn.onFrame = (frame) => (count = readLength(frame, HEADER_BYTES));
      conn.onBurst = resolve;
    });
    await conn.write(batcher.take());
    await answer;
    return { count, seconds: (performance.now() - start) / 1000 };
  }, spec.runs);
  report({ ev: "result", runs });
  conn.socket.end();
}

switch (role) {
  case "echo-server":
    listenAndServe(serveEcho);
    break;
  case "relay":
    listenAndServe(serveRelay);
    break;
  case "sink":
    listenAndServe(serveSink);
    break;
  case "latency":
    await latency();
    process.exit(0);
    break;
  case "cpu":
    await cpu();
    process.exit(0);
    break;
  case "pipelined":
    await pipelined();
    process.exit(0);
    break;
  case "source":
    await source();
    process.exit(0);
    break;
  case "hold":
    hold();
    break;
  default:
    throw new TypeError(
      `Unknown role ${role}: expected echo-server, relay, sink, latency, cpu, pipelined, source or hold`,
    );
}
