/**
 * The ipcbus side of compare.ts, on Deno or Bun, through the public API only.
 *
 * Roles (argument 1), each with the hub's socket path (argument 2) and a JSON
 * spec (argument 3):
 * - `hub`: `serve()`; its own peer answers `/ipcbus/echo`;
 * - `receiver`: a peer named `spec.name` counting alerts `t`; `start` resets
 *   the count and `end` is answered with a `done` alert carrying it; with
 *   `spec.echo` it also answers `/bench/echo`;
 * - `latency`: sequential requests to `spec.route`, one outstanding;
 * - `cpu`: sequential requests of `spec.bytes` to `/ipcbus/echo`, reporting
 *   the CPU this process and the hub (`spec.serverPid`) spent per request in
 *   two windows of `spec.count` (`measureCpu`);
 * - `pipelined`: requests to `/ipcbus/echo` with `spec.window` outstanding;
 * - `alerts`: alerts `t` to the receivers named in `spec.to`, or broadcast
 *   when `spec.broadcast`, as fast as the peer lets it (a full queue throws
 *   `QueueFullError`, then `flush()`); also the memory test, with one
 *   large round and its peak RSS. Each round reports how many alerts it
 *   sent, how many the receivers got, and how many the hub refused and
 *   reported `undeliverable` (a receiver's queue there was full).
 *
 * @module
 */
import process from "node:process";
import { connect, type Peer, QueueFullError, serve, type UndeliverableDetail } from "../mod.ts";
import { maxRssBytes, measureCpu, measureLatency, measureThroughput, report, withTimeout } from "./_measure.mjs";

const [role, path, specJson] = process.argv.slice(2);
const spec = JSON.parse(specJson ?? "{}");

const payloadOf = (bytes: number) => new Uint8Array(bytes).fill(7);

async function hub(): Promise<void> {
  await serve({ path });
  report({ ev: "ready", pid: process.pid });
}

async function receiver(): Promise<void> {
  const peer = await connect({ path, name: spec.name });
  if (spec.echo) {
    peer.handle("/bench/echo", ({ data }) => data);
    // The route is announced asynchronously: a round trip through the hub orders it before "ready".
    await peer.request("/ipcbus/echo", null);
  }
  let count = 0;
  peer.on({
    t: () => void count++,
    start: () => void (count = 0),
    end: (_data, ctx) => {
      const received = count;
      count = 0;
      // `done` must not be lost to a full queue: retry after flush.
      void retry(peer, () => ctx.reply("done", received));
    },
  });
  report({ ev: "ready" });
}

async function latency(): Promise<void> {
  const peer = await connect({ path });
  const results = await measureLatency(
    (data: Uint8Array) => peer.request(spec.route, data, { timeout: 30_000 }),
    payloadOf,
    spec,
  );
  report({ ev: "result", results });
  await peer.close();
}

async function cpu(): Promise<void> {
  const peer = await connect({ path });
  const result = await measureCpu(
    (data: Uint8Array) => peer.request("/ipcbus/echo", data, { timeout: 30_000 }),
    payloadOf(spec.bytes),
    spec,
  );
  report({ ev: "result", cpu: result });
  await peer.close();
}

async function pipelined(): Promise<void> {
  const peer = await connect({ path });
  const data = payloadOf(spec.bytes);
  const runs = await measureThroughput(async () => {
    const start = performance.now();
    let done = 0;
    const worker = async () => {
      while (performance.now() - start < spec.runMs && done < spec.maxCount) {
        await peer.request("/ipcbus/echo", data, { timeout: 30_000 });
        done++;
      }
    };
    await Promise.all(Array.from({ length: spec.window }, worker));
    return { count: done, seconds: (performance.now() - start) / 1000 };
  }, spec.runs);
  report({ ev: "result", runs });
  await peer.close();
}

/** Runs `send` until it does not throw QueueFullError, flushing in between. */
async function retry(peer: Peer, send: () => void): Promise<void> {
  while (true) {
    try {
      return send();
    } catch (err) {
      if (!(err instanceof QueueFullError)) throw err;
      await peer.flush();
    }
  }
}

async function alerts(): Promise<void> {
  const peer = await connect({ path });
  const idleRss = await maxRssBytes();
  const targets: string[] = spec.to ?? [];
  const expected = spec.broadcast ? spec.receivers : targets.length;
  const data = payloadOf(spec.payloadBytes);
  let answers: number[] = [];
  let allDone: () => void = () => {};
  peer.on("done", (count) => {
    answers.push(count as number);
    if (answers.length === expected) allDone();
  });
  const sendTo = spec.broadcast
    ? (name: string, d?: unknown) => peer.broadcast(name, d)
    : (name: string, d?: unknown) => {
      for (const to of targets) peer.send(to, name, d);
    };
  let flushes = 0;
  /** Alerts of this round the hub refused (a receiver's queue there was full) and reported undeliverable. */
  let refused = 0;
  // A receiver's queue at the hub may be full when `end` arrives: the hub then
  // reports it undeliverable, and we send it again to that receiver alone.
  peer.addEventListener("undeliverable", (e) => {
    const { name, to, count } = (e as CustomEvent<UndeliverableDetail>).detail;
    if (name === "t") refused += count ?? 1;
    if (name === "end" && to !== undefined) void retry(peer, () => peer.send(to, "end"));
  });

  const round = async (count: number) => {
    answers = [];
    refused = 0;
    const done = new Promise<void>((resolve) => (allDone = resolve));
    const start = performance.now();
    await retry(peer, () => sendTo("start"));
    let sent = 0;
    while (sent < count) {
      try {
        // Checked every 1024 sends: the run is bounded in time as well as count.
        const stop = Math.min(count, sent + 1024);
        for (; sent < stop; sent++) sendTo("t", data);
        if (performance.now() - start > spec.runMs) break;
      } catch (err) {
        if (!(err instanceof QueueFullError)) throw err;
        flushes++;
        await peer.flush();
      }
    }
    await retry(peer, () => sendTo("end"));
    await withTimeout(done, 60_000, "the receivers' done alerts");
    const seconds = (performance.now() - start) / 1000;
    return { count: answers.reduce((a, b) => a + b, 0), seconds, sent: sent * expected, refused };
  };

  if (spec.memory) {
    const run = await round(spec.count);
    report({ ev: "result", runs: [run], idleRss, maxRss: await maxRssBytes(), flushes, dropped: peer.stats().dropped });
  } else {
    const runs = await measureThroughput(() => round(spec.count), spec.runs);
    report({ ev: "result", runs, flushes, dropped: peer.stats().dropped });
  }
  await peer.close();
}

const roles: Record<string, () => Promise<void>> = { hub, receiver, latency, cpu, pipelined, alerts };
const run = roles[role];
if (!run) throw new TypeError(`Unknown role ${role}: expected one of ${Object.keys(roles).join(", ")}`);
await run();
if (role !== "hub" && role !== "receiver") process.exit(0);
