// node-ipc on Node, for compare.ts: its normal event API over a Unix socket.
// Roles: `server <path>` answers `ping` with `pong` and counts `t` events
// until `end`, answered with `done`; `client <path> <spec>` measures
// request/reply latency at each size, then one-way throughput.
// Payloads are strings: node-ipc sends JSON.
import ipc from "node-ipc";
import { measureLatency, measureThroughput, report, withTimeout } from "./_measure.mjs";

const [role, path, specJson] = process.argv.slice(2);
const spec = JSON.parse(specJson ?? "{}");
ipc.config.silent = true;
ipc.config.maxRetries = 0;

if (role === "server") {
  ipc.config.id = "bench";
  ipc.serve(path, () => {
    let count = 0;
    ipc.server.on("ping", (data, socket) => ipc.server.emit(socket, "pong", data));
    ipc.server.on("t", () => void count++);
    ipc.server.on("end", (_data, socket) => {
      ipc.server.emit(socket, "done", count);
      count = 0;
    });
    report({ ev: "ready" });
  });
  ipc.server.start();
} else if (role === "client") {
  ipc.config.id = "client";
  await new Promise((resolve) => ipc.connectTo("bench", path, () => ipc.of.bench.on("connect", resolve)));
  const server = ipc.of.bench;
  let pong = () => {};
  let done = () => {};
  server.on("pong", () => pong());
  server.on("done", (count) => done(count));

  const results = await measureLatency(
    (payload) =>
      new Promise((resolve) => {
        pong = resolve;
        server.emit("ping", payload);
      }),
    (bytes) => "x".repeat(bytes),
    spec.latency,
  );
  const data = "x".repeat(spec.throughput.payloadBytes);
  const runs = await measureThroughput(async () => {
    const start = performance.now();
    const answered = new Promise((resolve) => (done = resolve));
    for (let sent = 0; sent < spec.throughput.count; sent++) {
      server.emit("t", data);
      // node-ipc has no backpressure: yield now and then so the socket drains, and bound the time.
      if (sent % 1024 === 1023) {
        await new Promise((resolve) => setImmediate(resolve));
        if (performance.now() - start > spec.throughput.runMs) break;
      }
    }
    server.emit("end");
    const count = await withTimeout(answered, 60_000, "node-ipc done");
    return { count, seconds: (performance.now() - start) / 1000 };
  }, spec.throughput.runs);
  report({ ev: "result", results, runs });
  process.exit(0);
} else {
  throw new TypeError(`Unknown role ${role}: expected server or client`);
}
