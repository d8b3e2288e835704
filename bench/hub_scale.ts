/**
 * The hub at scale: a hub in its own process, N peers connected one after
 * another from this process, and three figures per N:
 *
 * - **memory per idle peer**: the hub's RSS (`VmRSS` of `/proc/<pid>/status`)
 *   once the N peers are connected and idle, minus its RSS before the first,
 *   over N. Both readings are taken after a garbage collection in the hub
 *   (`gc()` with `--expose-gc` on Deno, `Bun.gc(true)` on Bun) and a settle
 *   of 300 ms, so that garbage of the joins does not count as memory per peer.
 *   With `--idle <s>`, the hub's RSS is read again after `s` seconds in which
 *   nothing is sent, from `/proc` alone (no GC asked for, no request): what
 *   an idle hub holds once V8's memory reducer has run (bench/README.md).
 *   With `--named`, each peer connects with a name (`worker-<i>`), which
 *   every `welcome` lists too (a welcome of 1 000 named peers is over 64 KiB).
 *   With `--channel`, the hub is a channel's: its process is a member of
 *   channel `scale` (role `hub`) hosting it, which keeps the channel's files
 *   (the members file, and with `--named` the names' ids) as peers come and
 *   go; the peers connect to its socket as plain peers, as the CLI's
 *   one-shot commands do.
 *   With `--floor`, the same reading is taken of a bare server of the hub's
 *   runtime (`raw_deno.ts` / `raw_bun.ts` in role `hold`) as N plain
 *   connections are made to it one after another, each kept idle with a
 *   small read pending: the runtime's own cost per connection, which every
 *   hub of that runtime pays too. With `--more <k>`, k further batches of N
 *   peers join after the fan-out, and the RSS per peer of each batch is
 *   read the same way: what a peer costs a hub whose code is already
 *   optimized and whose heaps have grown for the first N, without the
 *   process's one-off costs that the first reading divides among N.
 * - **sequential joins**: wall time from the first `connect()` until the N-th
 *   resolved and the first peer's view holds all N (the announcements arrived).
 * - **broadcast fan-out**: one peer broadcasts 100 B alerts (`QueueFullError`
 *   → `await flush()`, then go on); deliveries = broadcasts × N (every peer of
 *   this process counts; the hub's own peer does not); the rate is deliveries
 *   over the time from the first broadcast to the last delivery; also per
 *   second of the hub's CPU time, which the receivers' process does not bound,
 *   and the receivers' process's CPU time per delivery (it runs the
 *   broadcaster and all N receivers on one thread: the end-to-end bound).
 *   `--deliveries <n>` sets how many deliveries a run aims at (default 1 000 000).
 *
 * Usage (the client runtime is the one running this file):
 * ```sh
 * node_modules/.bin/deno run -A bench/hub_scale.ts [--hub deno,bun] [--peers 10,100,1000]
 * node_modules/.bin/bun bench/hub_scale.ts [--hub deno,bun] [--peers 10,100,1000] [--idle 40] [--named] [--channel]
 *   [--floor] [--more 2] [--deliveries 3000000]
 * ```
 * Prints progress on stderr, one JSON line per (hub, N) and then a Markdown
 * table on stdout. `hub <path>` is the hub child's own mode.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { connect as dial, type Socket } from "node:net";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { setImmediate } from "node:timers";
import { fileURLToPath } from "node:url";
import { channel, ChannelRole, connect, type Peer, QueueFullError, serve } from "../mod.ts";
import { argValue, cpuMicros, rssBytes, settledUsage } from "./_measure.mjs";

type Runtime = "deno" | "bun";
const self: Runtime = "Bun" in globalThis ? "bun" : "deno";
const root = fileURLToPath(new URL("../", import.meta.url));
const script = fileURLToPath(import.meta.url);
/** Every wait is capped. */
const WAIT_MS = 120_000;
const PAYLOAD = new Uint8Array(100).fill(7);
/**
 * Deliveries aimed at per fan-out run (`--deliveries`): broadcasts = this /
 * N, at least 20. A million by default: at 100 000 (100 broadcasts to 1 000
 * peers, a third of a second) the JIT's warm-up was most of what was
 * measured, and it is still part of a million's (bench/README.md).
 */
const FANOUT_DELIVERIES = Number(argValue("deliveries", "1000000"));
if (!Number.isSafeInteger(FANOUT_DELIVERIES) || FANOUT_DELIVERIES < 1) {
  throw new TypeError(`--deliveries takes a positive integer, not ${argValue("deliveries", "")}`);
}
const named = process.argv.includes("--named");
const onChannel = process.argv.includes("--channel");
const floor = process.argv.includes("--floor");
const more = Number(argValue("more", "0"));
if (!Number.isSafeInteger(more) || more < 0) throw new TypeError(`--more takes a count, not ${argValue("more", "")}`);

if (process.argv[2] === "hub") await runHub(process.argv[3]);
else await main();

/** The hub child: serves, offers `/bench/usage` (RSS after a GC, CPU time), exits when stdin closes. */
/** The hub child: a hub at `path`, or with `--channel` a channel member hosting the hub, in `path`'s directory. */
async function runHub(path: string): Promise<void> {
  let peer: Peer;
  let close: () => Promise<void>;
  if (onChannel) {
    const member = channel("scale", { dir: dirname(path), role: ChannelRole.Hub });
    await member.ready;
    [peer, path, close] = [member, member.path, () => member.close()];
  } else {
    const hub = await serve({ path });
    [peer, close] = [hub.peer, () => hub.close({ timeout: 200 })];
  }
  peer.handle("/bench/usage", async () => ({ ...await settledUsage(), cpuMs: (await cpuMicros(process.pid))! / 1000 }));
  process.stdin.on("data", () => {});
  process.stdin.on("end", async () => {
    await close();
    process.exit(0);
  });
  console.log(JSON.stringify({ ev: "ready", pid: process.pid, path }));
}

function loadAverage(): number {
  return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Resolves when `check` holds, re-checked every 5 ms; fails after `ms` or when `child` exits. */
async function until(what: string, check: () => boolean, child?: ChildProcess, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (child && child.exitCode !== null) {
      throw new Error(`The child exited (${child.exitCode}) while waiting for ${what}`);
    }
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** What a child prints on stdout, one JSON object a line. */
interface ChildEvent {
  ev: string;
  pid?: number;
  /** The hub's socket path (a channel's is in its directory). */
  path?: string;
  held?: number;
  rss?: number;
}

/** Starts `file` with `args` on `runtime` (Deno with `gc()` exposed); each JSON line it prints lands in `events`. */
function startChild(runtime: Runtime, file: string, args: string[]): { child: ChildProcess; events: ChildEvent[] } {
  const argv = runtime === "deno" ? ["run", "-A", "--v8-flags=--expose-gc", file, ...args] : [file, ...args];
  const child = spawn(join(root, "node_modules", ".bin", runtime), argv, {
    cwd: root,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const events: ChildEvent[] = [];
  let out = "";
  child.stdout!.on("data", (chunk: Uint8Array) => {
    out += new TextDecoder().decode(chunk);
    const lines = out.split("\n");
    out = lines.pop()!;
    for (const line of lines) if (line.startsWith("{")) events.push(JSON.parse(line));
  });
  return { child, events };
}

/** Starts the hub child; resolves with its pid and the socket path its peers connect to. */
async function startHub(runtime: Runtime, path: string): Promise<{ child: ChildProcess; pid: number; path: string }> {
  const { child, events } = startChild(runtime, script, ["hub", path, ...(onChannel ? ["--channel"] : [])]);
  await until("the hub to be ready", () => events.length > 0, child);
  return { child, pid: events[0].pid!, path: events[0].path! };
}

interface Figures {
  hub: Runtime;
  client: Runtime;
  peers: number;
  /** Whether each peer connected with a name (`--named`). */
  named: boolean;
  /** Whether the hub was a channel's (`--channel`). */
  channel: boolean;
  rssBefore: number;
  rssAfter: number;
  bytesPerPeer: number;
  /** With `--idle`: RSS per peer after that many seconds of quiet, read from /proc without a GC. */
  bytesPerPeerIdle?: number;
  /** With `--floor`: the same RSS reading of a bare server of the hub's runtime, per idle connection. */
  floorBytesPerConnection?: number;
  /** With `--more <k>`: RSS per peer of each of k further batches of N peers, joined after the fan-out. */
  bytesPerFurtherPeer?: number[];
  /** JS heap used plus external (ArrayBuffer) memory per peer, from `process.memoryUsage()`: the part of RSS the hub's own objects hold. */
  heapPerPeer: number;
  joinMs: number;
  /** CPU time the hub spent over the joins (the RSS probe's 300 ms of settling included, nearly idle). */
  hubJoinCpuMs: number;
  /** CPU time this process (the N peers) spent over the joins. */
  clientJoinCpuMs: number;
  /** 1-minute load average at the end: the machine is shared. */
  loadAverage: number;
  broadcasts: number;
  deliveries: number;
  fanoutMs: number;
  deliveriesPerSecond: number;
  /** CPU time this process (the broadcaster and the N receivers) spent over the fan-out. */
  clientFanoutCpuMs: number;
  /**
   * Deliveries per second of the hub's CPU time over the fan-out: what the
   * hub itself could route, where the rate above is bound by the N receivers
   * sharing this one process (CPU time in 10 ms ticks; the usage probe's
   * 300 ms of settling, nearly idle, included).
   */
  hubDeliveriesPerCpuSecond: number;
}

async function measure(hubRuntime: Runtime, n: number): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), "ipcbus-scale-"));
  const { child, pid, path } = await startHub(hubRuntime, `${dir}/bus.sock`);
  const peers: Peer[] = [];
  try {
    // A probe that is not counted in N: it asks the hub for its RSS.
    const probe = await connect({ path });
    peers.push(probe);
    const usage = async () =>
      await probe.request("/bench/usage", null, { timeout: WAIT_MS }) as { rss: number; heap: number; cpuMs: number };
    const before = await usage();

    const start = performance.now();
    const cpuStart = process.cpuUsage();
    const joined: Peer[] = [];
    for (let i = 0; i < n; i++) {
      const peer = await connect({ path, timeout: WAIT_MS, ...(named ? { name: `worker-${i}` } : {}) });
      joined.push(peer);
      peers.push(peer);
    }
    const first = joined[0];
    // N peers, the probe and the hub's own peer.
    let viewSize = 0;
    await until(`the first peer to see ${n} peers`, () => {
      void first.peers().then((list) => (viewSize = list.length));
      return viewSize >= n + 2;
    }, child);
    const joinMs = performance.now() - start;
    const cpu = process.cpuUsage(cpuStart);
    const after = await usage();
    const idleSeconds = Number(argValue("idle", "0"));
    let rssIdle: number | undefined;
    if (idleSeconds > 0) {
      // The measurement is the quiet itself: nothing is sent while it lasts.
      await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
      rssIdle = await rssBytes(pid);
    }

    let received = 0;
    for (const peer of joined) peer.on("t", () => void received++);
    const broadcasts = Math.max(20, Math.ceil(FANOUT_DELIVERIES / n));
    const expected = broadcasts * n;
    const hubBefore = await usage();
    const fanStart = performance.now();
    const fanCpu = process.cpuUsage();
    for (let sent = 0; sent < broadcasts;) {
      try {
        first.broadcast("t", PAYLOAD);
        sent++;
      } catch (err) {
        if (!(err instanceof QueueFullError)) throw err;
        await first.flush();
      }
      // A macrotask turn now and then lets the sockets be read (setTimeout(0) costs 1-2 ms a turn).
      if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await until(`${expected} deliveries`, () => received >= expected, child);
    const fanoutMs = performance.now() - fanStart;
    const fanCpuUsed = process.cpuUsage(fanCpu);
    const hubAfter = await usage();

    // `--more`: further batches of N peers join the warm hub, each batch's RSS per peer read on its own.
    const bytesPerFurtherPeer: number[] = [];
    let rssBefore = hubAfter.rss;
    for (let batch = 0; batch < more; batch++) {
      for (let i = 0; i < n; i++) peers.push(await connect({ path, timeout: WAIT_MS }));
      const { rss } = await usage();
      bytesPerFurtherPeer.push(Math.round((rss - rssBefore) / n));
      rssBefore = rss;
    }
    return {
      hub: hubRuntime,
      client: self,
      peers: n,
      named,
      channel: onChannel,
      rssBefore: before.rss,
      rssAfter: after.rss,
      bytesPerPeer: Math.round((after.rss - before.rss) / n),
      ...(rssIdle === undefined ? {} : { bytesPerPeerIdle: Math.round((rssIdle - before.rss) / n) }),
      heapPerPeer: Math.round((after.heap - before.heap) / n),
      joinMs: Math.round(joinMs),
      hubJoinCpuMs: after.cpuMs - before.cpuMs,
      clientJoinCpuMs: Math.round((cpu.user + cpu.system) / 1000),
      loadAverage: loadAverage(),
      broadcasts,
      deliveries: received,
      fanoutMs: Math.round(fanoutMs),
      deliveriesPerSecond: Math.round(received / fanoutMs * 1000),
      clientFanoutCpuMs: Math.round((fanCpuUsed.user + fanCpuUsed.system) / 1000),
      hubDeliveriesPerCpuSecond: Math.round(received / Math.max(10, hubAfter.cpuMs - hubBefore.cpuMs) * 1000),
      ...(more > 0 ? { bytesPerFurtherPeer } : {}),
    };
  } finally {
    await Promise.all(peers.map((p) => p.close().catch(() => {})));
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `--floor`: the same reading of a bare server of `runtime` (`raw_<runtime>.ts
 * hold`) holding `n` idle connections, each with a small read pending, dialed
 * one after another from this process with `node:net`: the runtime's own cost
 * of an idle connection, which a hub of that runtime pays too. Returns bytes
 * per connection.
 */
async function measureFloor(runtime: Runtime, n: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "ipcbus-floor-"));
  const path = `${dir}/hold.sock`;
  const { child, events } = startChild(runtime, join(root, "bench", `raw_${runtime}.ts`), ["hold", path]);
  const rssHolding = async (held: number): Promise<number> => {
    // The server may not have accepted the last connections yet: ask again until it holds them all.
    for (let asked = 0; asked < 100; asked++) {
      const seen = events.length;
      child.stdin!.write("\n");
      await until("the bare server's memory reading", () => events.length > seen, child);
      const usage = events[events.length - 1];
      if (usage.held === held) return usage.rss!;
    }
    throw new Error(`The bare server never held ${held} connections`);
  };
  const sockets: Socket[] = [];
  try {
    await until("the bare server to listen", () => events.length > 0, child);
    const before = await rssHolding(0);
    for (let i = 0; i < n; i++) {
      sockets.push(
        await new Promise<Socket>((resolve, reject) => {
          const socket = dial(path, () => resolve(socket));
          socket.once("error", reject);
        }),
      );
    }
    return Math.round((await rssHolding(n) - before) / n);
  } finally {
    for (const socket of sockets) socket.destroy();
    await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Closes `child`'s stdin, which ends it, and waits for it to exit (killing it after 5 s). */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.on("exit", resolve));
  child.stdin!.end();
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

async function main(): Promise<void> {
  const hubs = argValue("hub", "deno,bun").split(",") as Runtime[];
  const sizes = argValue("peers", "10,100,1000").split(",").map(Number);
  const rows: Figures[] = [];
  for (const hub of hubs) {
    for (const n of sizes) {
      log(`${hub} hub, ${self} client, ${n} peers…`);
      const figures = await measure(hub, n);
      if (floor) figures.floorBytesPerConnection = await measureFloor(hub, n);
      console.log(JSON.stringify(figures));
      rows.push(figures);
    }
  }
  const kib = (bytes: number) => (bytes / 1024).toFixed(1);
  console.log(
    `\n| hub | client | peers | hub RSS (heap + external) per idle peer | sequential joins (CPU: hub, client) | broadcast fan-out (100 B): end to end, per hub CPU second; client CPU per delivery | load |`,
  );
  console.log(`| --- | --- | --- | --- | --- | --- | --- |`);
  for (const r of rows) {
    console.log(
      `| ${r.hub} | ${r.client} | ${r.peers}${r.named ? " (named)" : ""}${r.channel ? " (channel)" : ""} | ${
        kib(r.bytesPerPeer)
      } KiB (${kib(r.heapPerPeer)} KiB)${
        r.bytesPerPeerIdle === undefined ? "" : `; ${kib(r.bytesPerPeerIdle)} KiB after ${argValue("idle", "0")} s idle`
      }${
        r.bytesPerFurtherPeer === undefined
          ? ""
          : `; then ${r.bytesPerFurtherPeer.map((bytes) => `${kib(bytes)}`).join(", ")} KiB per further peer`
      }${
        r.floorBytesPerConnection === undefined
          ? ""
          : `; bare ${r.hub} server ${kib(r.floorBytesPerConnection)} KiB per connection`
      } | ${r.joinMs} ms (${r.hubJoinCpuMs} ms, ${r.clientJoinCpuMs} ms) | ${
        (r.deliveriesPerSecond / 1e6).toFixed(2)
      } M/s, ${(r.hubDeliveriesPerCpuSecond / 1e6).toFixed(2)} M/s; ${
        (r.clientFanoutCpuMs * 1000 / r.deliveries).toFixed(2)
      } µs | ${r.loadAverage} |`,
    );
  }
  process.exit(0);
}
