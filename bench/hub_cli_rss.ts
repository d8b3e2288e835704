/**
 * A hub's memory per idle peer as someone outside the hub reads it: the hub
 * is `ipcbus hub --path …` (cli.ts, its log going to /dev/null), started in a
 * fresh process of each runtime; N peers connect one after another from this
 * process; the hub's `VmRSS` is read from /proc a second after the first peer
 * connected and a second after the N-th, with no garbage collection asked for
 * (`bench/hub_scale.ts` asks for one before each reading, and serves the hub
 * from a script of its own). Prints, per run: (RSS after − RSS before) / N.
 *
 * Usage (the peers' runtime is the one running this file):
 * ```sh
 * ulimit -n 16384; node_modules/.bin/bun bench/hub_cli_rss.ts [--hub deno,bun] [--peers 1000] [--runs 3]
 * ```
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { connect, type Peer } from "../mod.ts";
import { argValue, rssBytes } from "./_measure.mjs";

type Runtime = "deno" | "bun";
const root = fileURLToPath(new URL("../", import.meta.url));
/** Every wait is capped. */
const WAIT_MS = 60_000;
/** How long the hub is left alone before each reading. */
const SETTLE_MS = 1000;

const hubs = argValue("hub", "deno,bun").split(",") as Runtime[];
const n = Number(argValue("peers", "1000"));
const runs = Number(argValue("runs", "3"));
for (const value of [n, runs]) {
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`--peers and --runs take counts, not ${value}`);
}

/** One run: a fresh CLI hub on `runtime`, N peers; resolves with the hub's RSS per peer in bytes. */
async function run(runtime: Runtime): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "ipcbus-cli-rss-"));
  const path = join(dir, "hub.sock");
  const argv = runtime === "deno" ? ["run", "-A", "cli.ts", "hub", "--path", path] : ["cli.ts", "hub", "--path", path];
  const hub = spawn(join(root, "node_modules", ".bin", runtime), argv, {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
  });
  const peers: Peer[] = [];
  try {
    const deadline = Date.now() + WAIT_MS;
    while (peers.length === 0) {
      if (hub.exitCode !== null) throw new Error(`The hub exited (${hub.exitCode})`);
      try {
        peers.push(await connect({ path, timeout: WAIT_MS }));
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const before = await rssBytes(hub.pid!);
    for (let i = 0; i < n; i++) peers.push(await connect({ path, timeout: WAIT_MS }));
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    return (await rssBytes(hub.pid!) - before) / n;
  } finally {
    await Promise.all(peers.map((peer) => peer.close()));
    hub.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: string[] = [];
for (const runtime of hubs) {
  const perPeer: string[] = [];
  for (let i = 0; i < runs; i++) {
    const bytes = await run(runtime);
    perPeer.push((bytes / 1024).toFixed(1));
    process.stderr.write(`${runtime} hub, ${n} peers: ${perPeer.at(-1)} KiB per idle peer\n`);
  }
  rows.push(`| ${runtime} | ${n} | ${perPeer.join(", ")} KiB |`);
}
console.log("| hub (`ipcbus hub`) | peers | RSS per idle peer, no GC asked for, one reading per run |");
console.log("| --- | --- | --- |");
for (const row of rows) console.log(row);
process.exit(0);
