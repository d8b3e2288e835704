/**
 * The ipcbus demo: a channel of four worker processes (two on Deno, two on
 * Bun) exchanging numbered alerts and broadcasts; midway the process hosting
 * the hub is killed with SIGKILL, another member takes over, and at the end
 * every message between live workers is accounted for.
 *
 * Run it: npm ci && npm run demo
 *   (or: deno run -A examples/demo.ts [--seconds 8] [--kills 1])
 * Exits 0 only if nothing was lost, duplicated or reordered.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { addCounts, type DeliveryCount, NO_DELIVERIES } from "./delivery_ledger.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const args = (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const seconds = option("seconds", 8);
const kills = option("kills", 1);
const bin = (name: string) => join(root, "node_modules", ".bin", name);
const hasBun = existsSync(bin("bun"));

interface Worker {
  name: string;
  runtime: "deno" | "bun";
  child: ChildProcess;
  id?: number;
  isHub: boolean;
  alive: boolean;
  progress: { sent: number; received: number };
  /** Alerts this worker's channel reported undeliverable (a member left its view before acknowledging). */
  undeliverable: number;
  /** The same, by `<destination id>:<reason>`. */
  undeliverableTo: Record<string, number>;
  waiters: Array<(line: Record<string, unknown>) => boolean>;
}

const dir = mkdtempSync(join(tmpdir(), "ipcbus-demo-"));
const workers: Worker[] = [];
const failovers: number[] = [];
let lastKill: number | undefined;

function start(name: string, runtime: "deno" | "bun"): Worker {
  const script = join(root, "examples", "demo_worker.ts");
  const argv = runtime === "deno" ? ["run", "-A", script, dir, name] : [script, dir, name];
  const child = spawn(bin(runtime), argv, { stdio: ["pipe", "pipe", "inherit"] });
  const w: Worker = {
    name,
    runtime,
    child,
    isHub: false,
    alive: true,
    progress: { sent: 0, received: 0 },
    undeliverable: 0,
    undeliverableTo: {},
    waiters: [],
  };
  let partial = "";
  child.stdout!.on("data", (chunk: Uint8Array) => {
    partial += new TextDecoder().decode(chunk);
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const text of lines) {
      if (!text.startsWith("{")) continue;
      const line = JSON.parse(text);
      onLine(w, line);
      w.waiters = w.waiters.filter((test) => !test(line));
    }
  });
  child.on("exit", () => (w.alive = false));
  workers.push(w);
  return w;
}

function onLine(w: Worker, line: Record<string, unknown>): void {
  if (line.ev === "ready") {
    w.id = line.id as number;
    w.isHub = line.isHub as boolean;
  } else if (line.ev === "progress") {
    w.progress = { sent: line.sent as number, received: line.received as number };
    w.isHub = line.isHub as boolean;
  } else if (line.ev === "hubchange") {
    w.isHub = line.isHub as boolean;
    if (lastKill !== undefined) {
      failovers.push((line.t as number) - lastKill);
      console.log(
        `  worker ${w.name} (id ${w.id}) sees the new hub: member ${line.hubId}, ${
          (line.t as number) - lastKill
        } ms after the kill`,
      );
      lastKill = undefined;
    }
  } else if (line.ev === "undeliverable") {
    w.undeliverable++;
    const key = `${line.to}:${line.reason}`;
    w.undeliverableTo[key] = (w.undeliverableTo[key] ?? 0) + 1;
  } else if (line.ev === "error") console.log(`  worker ${w.name}: error ${line.message}`);
}

function waitFor(w: Worker, ev: string, ms: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${w.name} did not report ${ev} within ${ms} ms`)), ms);
    w.waiters.push((line) => {
      if (line.ev !== ev) return false;
      clearTimeout(timer);
      resolve(line);
      return true;
    });
    w.child.once("exit", () => reject(new Error(`worker ${w.name} exited before ${ev}`)));
  });
}

const send = (w: Worker, cmd: Record<string, unknown>) => w.child.stdin!.write(JSON.stringify(cmd) + "\n");
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function table(rows: Array<Record<string, string | number>>): void {
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padStart(width[i])).join("  ");
  console.log(line(cols));
  for (const r of rows) console.log(line(cols.map((c) => String(r[c]))));
}

let exitCode = 1;
let ticker: ReturnType<typeof setInterval> | undefined;
try {
  console.log(
    `ipcbus demo: channel "demo" in ${dir}, 4 workers (${hasBun ? "2 Deno + 2 Bun" : "4 Deno: Bun not found"})`,
  );
  const plan: Array<"deno" | "bun"> = ["deno", "bun", "deno", "bun"].map((r) =>
    (hasBun ? r : "deno") as "deno" | "bun"
  );
  const first = plan.map((runtime, i) => start(`w${i + 1}`, runtime));
  await Promise.all(first.map((w) => waitFor(w, "ready", 20_000)));
  for (const w of first) console.log(`  ${w.name} on ${w.runtime}: id ${w.id}${w.isHub ? " (hosts the hub)" : ""}`);
  const startedAt = Date.now();
  ticker = setInterval(() => {
    const live = workers.filter((w) => w.alive);
    console.log(
      "  live: " +
        live.map((w) =>
          w.id === undefined
            ? `${w.name} joining`
            : `${w.name}#${w.id}${w.isHub ? "*" : ""} sent ${w.progress.sent} got ${w.progress.received}`
        ).join(" | "),
    );
  }, 1000);
  let spawned = first.length;
  for (let k = 0; k < kills; k++) {
    await pause((seconds * 1000) / (kills + 1));
    const hub = workers.find((w) => w.alive && w.isHub);
    if (!hub) throw new Error("no live worker hosts the hub");
    console.log(`  SIGKILL ${hub.name} (id ${hub.id}, pid ${hub.child.pid}), which hosts the hub`);
    lastKill = Date.now();
    hub.child.kill("SIGKILL");
    hub.alive = false;
    const replacement = start(`w${++spawned}`, hub.runtime);
    await waitFor(replacement, "ready", 20_000);
    console.log(`  ${replacement.name} on ${replacement.runtime} joins as id ${replacement.id}`);
  }
  await pause((seconds * 1000) / (kills + 1));
  clearInterval(ticker);
  const elapsed = (Date.now() - startedAt) / 1000;

  const live = workers.filter((w) => w.alive);
  const stopped = await Promise.all(live.map((w) => {
    const done = waitFor(w, "stopped", 20_000);
    send(w, { cmd: "stop" });
    return done;
  }));
  const liveIds = new Set(live.map((w) => w.id!));
  const sent = new Map<number, Record<string, number>>();
  for (const s of stopped) sent.set(s.id as number, s.sentTo as Record<string, number>);
  const reports = await Promise.all(live.map((w) => {
    const expect: Record<string, number> = {};
    // Every live sender, those that sent this worker nothing too: whatever arrives from them is unexpected.
    for (const [from, to] of sent) if (from !== w.id) expect[from] = to[String(w.id)] ?? 0;
    const done = waitFor(w, "report", 20_000);
    send(w, { cmd: "report", expect, waitMs: 10_000 });
    return done;
  }));

  let total = 0;
  let all = NO_DELIVERIES;
  const rows = [];
  for (const r of reports) {
    const me = r.id as number;
    const counts = r.counts as Record<string, DeliveryCount>;
    if (!r.complete) {
      const missing = Object.entries(counts).filter(([, c]) => c.lost > 0).map(([from, c]) =>
        `${c.lost} from id ${from}`
      );
      console.log(`  worker id ${me}: messages still missing after waiting 10 s for them: ${missing.join(", ")}`);
    }
    let rowSent = 0;
    let row = NO_DELIVERIES;
    for (const [from, to] of sent) {
      if (!liveIds.has(from) || from === me) continue;
      // Each sender numbers its messages to this receiver from 1, from when it first saw it.
      rowSent += to[String(me)] ?? 0;
      row = addCounts(row, counts[String(from)] ?? NO_DELIVERIES);
    }
    const w = live.find((x) => x.id === me)!;
    rows.push({
      worker: w.name,
      runtime: w.runtime,
      id: me,
      "sent to it": rowSent,
      delivered: row.delivered,
      lost: row.lost,
      duplicated: row.duplicated,
      reordered: row.reordered,
    });
    total += rowSent;
    all = addCounts(all, row);
  }
  const { delivered, lost, duplicated, reordered, unexpected } = all;
  console.log("\nSummary (messages between workers alive at the end):");
  table(rows);
  const failover = failovers.length ? `${Math.max(...failovers)} ms (worst of ${failovers.length})` : "n/a";
  console.log(
    `\nmessages sent ${total}, delivered ${delivered}, lost ${lost}, duplicated ${duplicated}, reordered ${reordered}, unexpected ${unexpected}`,
  );
  console.log(
    `failover time ${failover}; throughput ${Math.round(delivered / elapsed)} messages/s over ${
      elapsed.toFixed(1)
    } s; ` +
      `reported undeliverable (to killed workers too) ${live.reduce((sum, w) => sum + w.undeliverable, 0)}`,
  );
  for (const w of live) {
    if (w.undeliverable > 0) {
      console.log(`  ${w.name} (id ${w.id}) was told undeliverable: ${JSON.stringify(w.undeliverableTo)}`);
    }
  }
  const exact = delivered === total && lost === 0 && duplicated === 0 && reordered === 0 && unexpected === 0;
  exitCode = exact && total > 0 && failovers.length === kills ? 0 : 1;
  console.log(exitCode === 0 ? "OK: lost 0, duplicated 0" : "FAILED: messages were lost, duplicated or reordered");
  await Promise.all(live.map((w) => {
    const closed = waitFor(w, "closed", 10_000).catch(() => {});
    send(w, { cmd: "exit" });
    return closed;
  }));
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
} finally {
  clearInterval(ticker);
  for (const w of workers) if (w.alive) w.child.kill("SIGKILL");
  const left = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".sock")) : [];
  rmSync(dir, { recursive: true, force: true });
  if (left.length > 0) console.log(`removed leftover socket files: ${left.join(", ")}`);
}
(globalThis as unknown as { process: { exit(code: number): never } }).process.exit(exitCode);
