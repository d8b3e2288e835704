/**
 * The hub's CPU per forwarded request: a requester and a responder peer (in
 * this process) talk through a hub in a child process, peer → hub → peer →
 * hub → peer, and the hub's utime + stime from /proc is divided by the round
 * trips. Large payloads show what the hub pays per frame it forwards.
 *
 * Usage (either runtime; the hub runs on the same one):
 *   node_modules/.bin/deno run -A bench/forward_cpu.ts [roundTrips=1000] [bytes=1048576]
 *   node_modules/.bin/bun bench/forward_cpu.ts [roundTrips=1000] [bytes=1048576]
 *
 * Prints one JSON line: `{ bytes, roundTrips, wallUs, hubCpuUs }` per round trip.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import process from "node:process";
import { connect, serve } from "../mod.ts";

const [first, second] = process.argv.slice(2);
if (first === "hub") {
  await serve({ path: second });
  console.log("ready");
  // Runs until the parent kills it.
  await new Promise(() => {});
}

const roundTrips = Number(first ?? 1000);
const bytes = Number(second ?? 1024 * 1024);
const dir = mkdtempSync(`${tmpdir()}/ipcbus-forward-`);
const path = `${dir}/hub.sock`;
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const self = new URL(import.meta.url).pathname;
const hub = spawn(process.execPath, [...(isDeno ? ["run", "-A"] : []), self, "hub", path], {
  stdio: ["ignore", "pipe", "inherit"],
});
try {
  await new Promise((resolve, reject) => {
    hub.stdout!.once("data", resolve);
    hub.once("exit", (code) => reject(new Error(`hub exited with ${code}`)));
  });
  const responder = await connect({ path, name: "responder" });
  responder.handle("/echo", ({ data }) => data);
  const requester = await connect({ path });
  const data = new Uint8Array(bytes);
  for (let i = 0; i < Math.min(200, roundTrips); i++) await requester.request("/echo", data);
  const hubTicks = () => {
    const fields = readFileSync(`/proc/${hub.pid}/stat`, "utf8").split(") ")[1].split(" ");
    return Number(fields[11]) + Number(fields[12]);
  };
  const ticks0 = hubTicks();
  const t0 = performance.now();
  for (let i = 0; i < roundTrips; i++) await requester.request("/echo", data);
  const wallUs = (performance.now() - t0) * 1000 / roundTrips;
  // Clock ticks of 10 ms (USER_HZ 100).
  const hubCpuUs = (hubTicks() - ticks0) * 10_000 / roundTrips;
  console.log(JSON.stringify({ bytes, roundTrips, wallUs: Math.round(wallUs), hubCpuUs: Math.round(hubCpuUs) }));
  await requester.close();
  await responder.close();
} finally {
  hub.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
