/**
 * The Web Streams face of ipcbus, in one process:
 * 1. `subscribe()` gives a ReadableStream of alerts; it is piped through a
 *    TransformStream (uppercase, plus milliseconds since start) into a
 *    WritableStream that prints.
 * 2. Below the bus: `listen()`/`dial()` give byte streams, and
 *    FrameEncoderStream/FrameDecoderStream turn values into frames and back;
 *    a tiny server echoes what a client sends.
 *
 * Run it:  deno run -A examples/streams.ts
 *     or:  bun examples/streams.ts
 * (an optional argument is the directory for the two socket files; default: a fresh temp dir)
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  connect,
  type Connection,
  dial,
  FrameDecoderStream,
  FrameEncoderStream,
  listen,
  serve,
  type SubscriptionMessage,
} from "../mod.ts";

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), "ipcbus-streams-"));
const log = (line: string) => console.log(line);
const started = Date.now();
const cleanups: Array<() => Promise<void>> = [];
const cleanUp = async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  if (process.argv[2] === undefined) rmSync(dir, { recursive: true, force: true });
};
process.once("SIGINT", () => void cleanUp().then(() => process.exit(0)));
process.once("SIGTERM", () => void cleanUp().then(() => process.exit(0)));

// ---- 1. subscribe() → TransformStream → WritableStream -------------------------

const hub = await serve({ path: join(dir, "bus.sock") });
cleanups.push(() => hub.close());
const reader = await connect({ path: hub.path!, name: "reader" });
const writer = await connect({ path: hub.path!, name: "writer" });
cleanups.push(() => reader.close(), () => writer.close());

const words = ["web", "streams", "all", "the", "way"];
let printed = 0;
const shout = new TransformStream<SubscriptionMessage, string>({
  transform({ data, sender }, controller) {
    controller.enqueue(`+${Date.now() - started} ms  peer ${sender}: ${String(data).toUpperCase()}`);
  },
});
const printer = new WritableStream<string>({
  write(line) {
    log(`subscribe: ${line}`);
    // Closing the peer ends its subscriptions, and so the whole pipe.
    if (++printed === words.length) void reader.close();
  },
});
const piped = reader.subscribe("word").pipeThrough(shout).pipeTo(printer);
for (const word of words) writer.send("reader", "word", word);
await piped;
log(`subscribe: the pipe ended after ${printed} words`);

// ---- 2. listen()/dial() byte streams + frame streams -----------------------------

const listener = await listen(join(dir, "echo.sock"));
cleanups.push(() => listener.close());
const echoServer = (async () => {
  for await (const conn of listener) void echo(conn);
})();

/** Decodes each frame, answers `{ echo: value }`, and ends when the client does. */
async function echo(conn: Connection): Promise<void> {
  await conn.readable
    .pipeThrough(new FrameDecoderStream())
    .pipeThrough(
      new TransformStream({
        transform(value, controller) {
          log(`server: got ${JSON.stringify(value)}`);
          controller.enqueue({ echo: value });
        },
      }),
    )
    .pipeThrough(new FrameEncoderStream())
    .pipeTo(conn.writable);
  await conn.close();
}

const conn = await dial(listener.path);
const values = [1, "two", { three: [3] }, null];
// Send every value and end our half of the connection; read the echoes until the server ends its half.
const [, echoes] = await Promise.all([
  ReadableStream.from(values).pipeThrough(new FrameEncoderStream()).pipeTo(conn.writable),
  Array.fromAsync(conn.readable.pipeThrough(new FrameDecoderStream())),
]);
values.forEach((value, i) => log(`client: sent ${JSON.stringify(value)}, got back ${JSON.stringify(echoes[i])}`));
await conn.close();

await cleanUp();
await echoServer;
log("done");
