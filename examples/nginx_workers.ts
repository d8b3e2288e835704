/**
 * The ngx.ipc worker example on ipcbus. A master process serves the hub and
 * starts worker processes. Every worker answers `hello` alerts with a reply,
 * printing who sent them (peer id and OS pid); each worker looks up the next
 * worker by its OS pid through `peers()` and says hello to it; the first
 * worker broadcasts `reload`, which reaches every worker, itself included.
 *
 * Run it:  deno run -A examples/nginx_workers.ts master /tmp/ngx.sock --workers 3
 *     or:  bun examples/nginx_workers.ts master /tmp/ngx.sock --workers 3
 *
 * --once      stop after one round (workers report back, then all exit 0)
 * --no-spawn  start no workers: run `… nginx_workers.ts worker /tmp/ngx.sock` by hand, --workers times
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { connect, type PeerInfo, serve } from "../mod.ts";

const [mode, path, ...flags] = process.argv.slice(2);
const workerCount = flags.includes("--workers") ? Number(flags[flags.indexOf("--workers") + 1]) : 3;
const log = (line: string) => console.log(line);

if (mode === "master" && path) await master();
else if (mode === "worker" && path) await worker();
else {
  console.error("Usage: nginx_workers.ts master <socket> [--workers N] [--once] [--no-spawn]");
  console.error("       nginx_workers.ts worker <socket>");
  process.exit(2);
}

async function master(): Promise<void> {
  const hub = await serve({ path });
  log(`master ${process.pid}: hub on ${path}, waiting for ${workerCount} workers`);
  const children: ChildProcess[] = [];
  const ready = new Set<number>();
  const done = new Set<number>();

  const shutdown = async () => {
    // Closing the hub disconnects the workers, and a worker exits when that happens.
    await hub.close();
    await Promise.all(
      children.map((child) =>
        child.exitCode === null && child.signalCode === null
          ? new Promise((resolve) => child.once("exit", resolve))
          : undefined
      ),
    );
    log(`master ${process.pid}: hub closed, all workers gone`);
  };
  const onSignal = () => void shutdown().then(() => process.exit(0));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  hub.peer.addEventListener("peerjoin", (e) => {
    const info = (e as CustomEvent<PeerInfo>).detail;
    log(`master: worker pid ${info.pid} joined as peer ${info.id} (${info.runtime})`);
  });
  hub.peer.addEventListener("peerleave", (e) => {
    const info = (e as CustomEvent<PeerInfo>).detail;
    log(`master: worker pid ${info.pid} (peer ${info.id}) left`);
  });
  hub.peer.on("reload", (data, ctx) => log(`master: reload ${JSON.stringify(data)} from pid ${ctx.senderPid}`));
  // Workers say `ready` once their handlers are registered; then the round starts.
  hub.peer.on("ready", (_data, ctx) => {
    ready.add(ctx.sender);
    if (ready.size === workerCount) {
      const pids = hub.peers.map((p) => p.pid);
      log(`master: all ${workerCount} workers ready, pids ${pids.join(", ")}`);
      hub.peer.broadcast("start", { pids });
    }
  });
  hub.peer.on("done", (_data, ctx) => {
    done.add(ctx.sender);
    if (done.size < workerCount) return;
    log(`master: all ${workerCount} workers got a hello, a reply and the broadcast`);
    if (flags.includes("--once")) void shutdown();
  });

  if (!flags.includes("--no-spawn")) {
    // Same file, same runtime: process.execPath is the deno or bun binary.
    const runtimeArgs = "Deno" in globalThis ? ["run", "-A"] : [];
    for (let i = 0; i < workerCount; i++) {
      const args = [...runtimeArgs, fileURLToPath(import.meta.url), "worker", path];
      children.push(spawn(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] }));
    }
  }
}

async function worker(): Promise<void> {
  const me = `worker ${process.pid}`;
  const peer = await connect({ path, name: `worker-${process.pid}` });
  const got = new Set<string>();
  const check = (what: string) => {
    got.add(what);
    if (got.size === 3) peer.send(0, "done");
  };

  peer.on("hello", (data, ctx) => {
    log(`${me}: hello ${JSON.stringify(data)} from peer ${ctx.sender}, pid ${ctx.senderPid}`);
    ctx.reply("hello_reply", { text: `hi back from ${process.pid}` });
    check("hello");
  });
  peer.on("hello_reply", (data, ctx) => {
    log(`${me}: reply ${JSON.stringify(data)} from peer ${ctx.sender}, pid ${ctx.senderPid}`);
    check("reply");
  });
  peer.on("reload", (data, ctx) => {
    log(`${me}: reload ${JSON.stringify(data)} from pid ${ctx.senderPid}${ctx.sender === peer.id ? " (my own)" : ""}`);
    check("reload");
  });
  peer.on("start", async (data) => {
    const { pids } = data as { pids: number[] };
    const targetPid = pids[(pids.indexOf(process.pid) + 1) % pids.length];
    // ngx.ipc addresses workers by OS pid: find the peer that has it.
    const target = (await peer.peers()).find((p) => p.pid === targetPid)!;
    log(`${me}: sending hello to pid ${targetPid} (peer ${target.id})`);
    peer.send(target.id, "hello", { text: `hello from ${process.pid}` });
    if (pids[0] === process.pid) peer.broadcast("reload", { version: 2 });
  });

  let leaving: Promise<void> | undefined;
  const leave = () => leaving ??= peer.close().then(() => log(`${me}: left`));
  peer.addEventListener("disconnect", () => void leave());
  process.once("SIGINT", () => void leave().then(() => process.exit(0)));
  process.once("SIGTERM", () => void leave().then(() => process.exit(0)));

  log(`${me}: connected as peer ${peer.id}`);
  peer.send(0, "ready");
}
