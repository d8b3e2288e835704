/**
 * The bus over NATS against bare nats.js (`@nats-io/transport-node`) in the
 * same run, on one nats-server started here: request/reply with 1 KiB and
 * 100 KiB payloads (sequential, median round trip) and one-way alerts of
 * 100 B (throughput), each as a ratio ipcbus / bare. Both sides of each
 * pair run in this process, on separate NATS connections, so the two are
 * measured the same way. Round trips alternate bare and ipcbus call by
 * call, alert runs alternate run by run.
 *
 * Run: `node_modules/.bin/deno run -A bench/nats_compare.ts` or
 * `node_modules/.bin/bun bench/nats_compare.ts` (about 40 s each; `--quick`
 * for a smoke test). Needs nats-server. The Markdown table goes to stdout.
 *
 * @module
 */
import process from "node:process";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { connect, type Peer } from "../nats.ts";
import { startNats } from "../tests/_nats_servers.ts";

const quick = process.argv.includes("--quick");
const RUNS = quick ? 2 : 5;
const REQUESTS = { sizes: [1024, 100 * 1024], iterations: quick ? 100 : 400, warmup: 50 };
const ALERTS = { bytes: 100, count: quick ? 10_000 : 50_000 };
const runtime = "Bun" in globalThis
  ? `Bun ${(globalThis as { Bun?: { version: string } }).Bun!.version}`
  : `Deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const payload = (bytes: number) => new Uint8Array(bytes).map((_, i) => i & 0xff);

/**
 * Median round trips in µs of `iterations` sequential calls of `bare` and of
 * `bus`, interleaved call by call so that both meet the same machine noise.
 */
async function latency(
  bare: () => Promise<unknown>,
  bus: () => Promise<unknown>,
  iterations: number,
): Promise<[number, number]> {
  for (let i = 0; i < REQUESTS.warmup; i++) await Promise.all([bare(), bus()]);
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < iterations; i++) {
    for (const [k, call] of [bare, bus].entries()) {
      const start = performance.now();
      await call();
      times[k].push((performance.now() - start) * 1000);
    }
  }
  return [median(times[0]), median(times[1])];
}

/** Messages per second: `send(i)` for `count` messages until `received()` reaches `count`. */
async function throughput(
  send: (i: number) => void | Promise<void>,
  received: () => number,
  count: number,
): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    await send(i);
    if (i % 1000 === 999) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const deadline = Date.now() + 60_000;
  while (received() < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
  return count / ((performance.now() - start) / 1000);
}

const nats = await startNats();
const servers = nats.urls;
const rows: string[] = [];
try {
  // Bare nats.js: a responder echoing on a subject, a requester, a counting subscriber.
  const bareServer: NatsConnection = await natsConnect({ servers });
  const bareClient: NatsConnection = await natsConnect({ servers });
  bareServer.subscribe("bench.echo", { callback: (_, msg) => void msg.respond(msg.data) });
  let bareReceived = 0;
  bareServer.subscribe("bench.alerts", { callback: () => void bareReceived++ });
  await bareServer.flush();

  // ipcbus over NATS: the same shape.
  const server: Peer = await connect({ servers, bus: "bench" });
  const client: Peer = await connect({ servers, bus: "bench" });
  server.handle("/echo", ({ data }) => data);
  let busReceived = 0;
  server.on("alert", () => void busReceived++);
  for (let i = 0; i < 100; i++) {
    try {
      await client.request("/echo", 1);
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  for (const bytes of REQUESTS.sizes) {
    const data = payload(bytes);
    const bare: number[] = [];
    const bus: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const [b, i] = await latency(
        () => bareClient.request("bench.echo", data, { timeout: 5000 }),
        () => client.request("/echo", data, { timeout: 5000 }),
        REQUESTS.iterations,
      );
      bare.push(b);
      bus.push(i);
      process.stderr.write(`request ${bytes} B run ${run + 1}/${RUNS}\n`);
    }
    const b = median(bare);
    const i = median(bus);
    rows.push(
      `| request/reply ${bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`} (median round trip) | ${
        b.toFixed(0)
      } µs | ${i.toFixed(0)} µs | ${(i / b).toFixed(2)}× |`,
    );
  }

  const alert = payload(ALERTS.bytes);
  const bareRates: number[] = [];
  const busRates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    bareReceived = 0;
    bareRates.push(await throughput(() => bareClient.publish("bench.alerts", alert), () => bareReceived, ALERTS.count));
    busReceived = 0;
    busRates.push(
      await throughput(
        async () => {
          for (;;) {
            try {
              return client.send(server.id, "alert", alert);
            } catch (err) {
              if ((err as Error).name !== "QueueFullError") throw err;
              await client.flush();
            }
          }
        },
        () => busReceived,
        ALERTS.count,
      ),
    );
    process.stderr.write(`alerts run ${run + 1}/${RUNS}\n`);
  }
  const b = median(bareRates);
  const i = median(busRates);
  rows.push(
    `| alerts ${ALERTS.bytes} B, one way (messages/s) | ${(b / 1000).toFixed(0)} k/s | ${(i / 1000).toFixed(0)} k/s | ${
      (b / i).toFixed(2)
    }× |`,
  );

  await client.close();
  await server.close();
  await bareClient.close();
  await bareServer.close();
} finally {
  await nats.stop();
}

console.log(`\nipcbus over NATS vs bare nats.js, ${runtime}, one nats-server on loopback, ${RUNS} runs (medians)\n`);
console.log("| measure | bare nats.js | ipcbus over NATS | ratio (cost) |");
console.log("| --- | --- | --- | --- |");
for (const row of rows) console.log(row);
process.exit(0);
