/**
 * The NATS cluster demo: a three-server NATS cluster on loopback, four
 * workers (two on Deno, two on Bun) spread over it, broadcasting, sending
 * to each other by name and making requests; live counts every second;
 * midway one server is killed with SIGKILL, its workers reconnect to the
 * others and carry on. At the end, a summary of what was delivered and what
 * was lost or reported undeliverable (delivery over NATS is at most once).
 *
 * Run it: deno task demo:cluster   (or: deno run -A examples/demo_cluster.ts [--seconds 12])
 * Needs nats-server (apt-get install nats-server). Exits 0 when every worker
 * kept working after the kill and exited cleanly.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { startNats } from "../tests/_nats_servers.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const args = process.argv.slice(2);
const at = args.indexOf("--seconds");
const seconds = at >= 0 ? Number(args[at + 1]) : 12;
const bin = (name: string) => join(root, "node_modules", ".bin", name);

type Counts = Record<string, number | Record<string, number>>;

interface Worker {
  name: string;
  runtime: "deno" | "bun";
  server: number;
  child: ChildProcess;
  last: Record<string, Record<string, unknown>>;
  exited: Promise<number | null>;
}

const nats = await startNats({ servers: 3 });
const workers: Worker[] = [];
const names = ["w1", "w2", "w3", "w4"];

function start(name: string, runtime: "deno" | "bun", server: number): Worker {
  const script = join(root, "examples", "demo_cluster_worker.ts");
  const rest = [nats.urls[server], "demo", name, names.filter((n) => n !== name).join(",")];
  const argv = runtime === "deno" ? ["run", "-A", script, ...rest] : [script, ...rest];
  const child = spawn(bin(runtime), argv, { cwd: root, stdio: ["pipe", "pipe", "inherit"] });
  const w: Worker = {
    name,
    runtime,
    server,
    child,
    last: {},
    exited: new Promise((resolve) => child.once("exit", (code) => resolve(code))),
  };
  let partial = "";
  child.stdout!.on("data", (chunk: Uint8Array) => {
    partial += new TextDecoder().decode(chunk);
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      try {
        const event = JSON.parse(line);
        w.last[event.ev] = event;
        if (event.ev === "peerleave") {
          console.log(`  ${name} saw peer ${event.peer.id} (${event.peer.name}) leave: ${event.peer.reason}`);
        }
      } catch {
        // A runtime warning, not one of ours.
      }
    }
  });
  return w;
}

/** Waits until every worker printed event `ev`, at most `ms`. */
async function all(ev: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (workers.some((w) => !w.last[ev])) {
    const dead = workers.find((w) => w.child.exitCode !== null || w.child.signalCode !== null);
    if (dead) throw new Error(`worker ${dead.name} exited before ${ev}`);
    if (Date.now() > deadline) throw new Error(`not every worker reached ${ev} within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const num = (c: Record<string, unknown> | undefined, key: string) => (c?.[key] as number | undefined) ?? 0;
let ok = true;

try {
  console.log(
    `ipcbus over NATS: cluster of 3 servers (${nats.servers.map((s) => `${s.name} pid ${s.pid}`).join(", ")})`,
  );
  const layout: Array<["deno" | "bun", number]> = [["deno", 0], ["bun", 1], ["deno", 2], ["bun", 1]];
  layout.forEach(([runtime, server], i) => workers.push(start(names[i], runtime, server)));
  await all("ready", 30_000);
  for (const w of workers) {
    console.log(`  ${w.name}: ${w.runtime}, peer id ${w.last.ready.id}, on server n${w.server + 1}`);
  }
  for (const w of workers) w.child.stdin!.write("go\n");
  await all("going", 10_000);
  const killAt = Math.floor(seconds / 2);
  let afterKill: number[] = [];
  for (let t = 1; t <= seconds; t++) {
    await sleep(1000);
    const line = workers.map((w) => {
      const p = w.last.progress;
      return `${w.name} sent ${num(p, "broadcastsSent") + num(p, "notesSent")} recv ${
        num(p, "ticksReceived") + num(p, "notesReceived")
      } req ${num(p, "requestsOk")}`;
    });
    console.log(`t=${String(t).padStart(2)}s  ${line.join(" | ")}`);
    if (t === killAt) {
      const victim = nats.servers[1];
      console.log(`  killing NATS server ${victim.name} (pid ${victim.pid}) with SIGKILL: w2 and w4 lose their server`);
      await victim.kill("SIGKILL");
      afterKill = workers.map((w) => num(w.last.progress, "requestsOk"));
    }
  }
  for (const w of workers) w.child.stdin!.write("stop\n");
  await all("stopped", 10_000);
  // Let what is in flight land before counting.
  await sleep(1000);
  for (const w of workers) w.child.stdin!.write("finish\n");
  await all("final", 10_000);

  const finals = workers.map((w) => w.last.final as Counts);
  const total = (key: string) => finals.reduce((sum, c) => sum + (c[key] as number), 0);
  const broadcasts = total("broadcastsSent");
  const expectedTicks = broadcasts * workers.length;
  const ticks = total("ticksReceived");
  const notes = total("notesSent");
  const notesIn = total("notesReceived");
  console.log("\nSummary");
  for (const [i, w] of workers.entries()) {
    const c = finals[i];
    console.log(
      `  ${w.name} (${w.runtime}, n${
        w.server + 1
      }): ${c.broadcastsSent} broadcasts and ${c.notesSent} notes sent, ${c.ticksReceived} ticks and ${c.notesReceived} notes received, ${c.requestsOk} requests answered, failed ${
        JSON.stringify(c.requestErrors)
      }, refused ${JSON.stringify(c.refused)}, ${c.undeliverable} reported undeliverable`,
    );
  }
  console.log(`  broadcasts: ${ticks} of ${expectedTicks} deliveries (${expectedTicks - ticks} lost)`);
  console.log(`  notes: ${notesIn} of ${notes} delivered (${notes - notesIn} lost)`);
  console.log(`  reported undeliverable: ${total("undeliverable")}`);
  console.log(
    "  (at-most-once: what was in flight through the killed server, or sent to a worker while it reconnected, is lost)",
  );
  const stalled = workers.filter((w, i) => num(w.last.final, "requestsOk") <= afterKill[i]);
  if (stalled.length > 0) {
    ok = false;
    console.log(`  FAILED: no request answered after the kill for ${stalled.map((w) => w.name).join(", ")}`);
  }
  const codes = await Promise.all(workers.map((w) => w.exited));
  if (codes.some((code) => code !== 0)) {
    ok = false;
    console.log(`  FAILED: worker exit codes ${codes.join(", ")}`);
  }
} catch (err) {
  ok = false;
  console.error(`demo failed: ${(err as Error).message}`);
} finally {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
  await nats.stop();
}
console.log(ok ? "\ndemo ok" : "\ndemo FAILED");
process.exit(ok ? 0 : 1);
