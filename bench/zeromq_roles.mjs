// zeromq (ipc:// transport) on Node, for compare.ts, with its normal socket
// API: Request/Reply for latency, Push/Pull for one-way throughput.
// Roles: `server <path>` binds Reply at ipc://<path>, Pull at <path>.pull and
// Push at <path>.done (an empty message ends a round: the count goes back on
// .done); `client <path> <spec>` measures latency at each size, then throughput.
import * as zmq from "zeromq";
import { measureLatency, measureThroughput, report, withTimeout } from "./_measure.mjs";

const [role, path, specJson] = process.argv.slice(2);
const spec = JSON.parse(specJson ?? "{}");

if (role === "server") {
  const reply = new zmq.Reply();
  const pull = new zmq.Pull();
  const done = new zmq.Push();
  await reply.bind(`ipc://${path}`);
  await pull.bind(`ipc://${path}.pull`);
  await done.bind(`ipc://${path}.done`);
  report({ ev: "ready" });
  void (async () => {
    for await (const [message] of reply) await reply.send(message);
  })();
  let count = 0;
  for await (const [message] of pull) {
    if (message.length > 0) count++;
    else {
      await done.send(String(count));
      count = 0;
    }
  }
} else if (role === "client") {
  const request = new zmq.Request();
  const push = new zmq.Push();
  const done = new zmq.Pull();
  request.connect(`ipc://${path}`);
  push.connect(`ipc://${path}.pull`);
  done.connect(`ipc://${path}.done`);
  const results = await measureLatency(
    async (payload) => {
      await request.send(payload);
      await request.receive();
    },
    (bytes) => Buffer.alloc(bytes, 7),
    spec.latency,
  );
  const data = Buffer.alloc(spec.throughput.payloadBytes, 7);
  const runs = await measureThroughput(async () => {
    const start = performance.now();
    for (let sent = 0; sent < spec.throughput.count; sent++) {
      await push.send(data);
      if (sent % 1024 === 1023 && performance.now() - start > spec.throughput.runMs) break;
    }
    await push.send(Buffer.alloc(0));
    const [count] = await withTimeout(done.receive(), 60_000, "zeromq done");
    return { count: Number(String(count)), seconds: (performance.now() - start) / 1000 };
  }, spec.throughput.runs);
  report({ ev: "result", results, runs });
  process.exit(0);
} else {
  throw new TypeError(`Unknown role ${role}: expected server or client`);
}
