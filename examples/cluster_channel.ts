/**
 * The IPChannel example on ipcbus: start this same file several times. The
 * first process to join channel "cluster" hosts its hub inside itself, the
 * others connect to it; if the host dies, another member takes over. Each
 * member greets the next member by id and broadcasts a custom `news` alert.
 *
 * Run it (in 3 terminals):  deno run -A examples/cluster_channel.ts /tmp/cluster
 *                      or:  bun examples/cluster_channel.ts /tmp/cluster
 *
 * --count N  wait until N members are in, then exit once heard from the N-1 others
 *
 * @module
 */
import process from "node:process";
import { channel, type PeerInfo } from "../mod.ts";

const [dir, ...flags] = process.argv.slice(2);
if (!dir) {
  console.error("Usage: cluster_channel.ts <channel dir> [--count N]");
  process.exit(2);
}
const count = flags.includes("--count") ? Number(flags[flags.indexOf("--count") + 1]) : undefined;
const log = (line: string) => console.log(line);

const ch = channel("cluster", { dir });
const heard = new Set<number>();
let greeted = false;
let acted = false;
let heardAll = false;
let leaving = false;

ch.on("greet", (data, ctx) => {
  log(`member ${ch.id}: greet ${JSON.stringify(data)} from member ${ctx.sender}`);
  greeted = true;
  void maybeLeave();
});
ch.on("news", (data, ctx) => {
  if (ctx.sender === ch.id) return; // A broadcast reaches the sender too.
  log(`member ${ch.id}: news ${JSON.stringify(data)} from member ${ctx.sender}`);
  heard.add(ctx.sender);
  void maybeLeave();
});
ch.addEventListener("peerjoin", (e) => {
  const info = (e as CustomEvent<PeerInfo>).detail;
  log(`member ${ch.id}: member ${info.id} joined (pid ${info.pid}, ${info.runtime})`);
  void act();
});
ch.addEventListener("peerleave", (e) => {
  log(`member ${ch.id}: member ${(e as CustomEvent<PeerInfo>).detail.id} left`);
  void maybeLeave();
});
ch.addEventListener("hubchange", (e) => {
  const { hubId } = (e as CustomEvent<{ hubId: number }>).detail;
  log(`member ${ch.id}: the hub is hosted by member ${hubId}${ch.isHub ? " (this process)" : ""}`);
});

const leave = () => ch.close().then(() => log(`member ${ch.id}: left the channel`));
process.once("SIGINT", () => void leave().then(() => process.exit(0)));
process.once("SIGTERM", () => void leave().then(() => process.exit(0)));

await ch.ready;
log(`member ${ch.id} (pid ${process.pid}) joined channel cluster; hosting the hub: ${ch.isHub ? "yes" : "no"}`);
await act();

/** Once enough members are in: greet the next member by id, and broadcast news to all. */
async function act(): Promise<void> {
  const ids = (await ch.peers()).map((p) => p.id);
  if (acted || ids.length < (count ?? 1)) return;
  acted = true;
  const next = ids.find((id) => id > ch.id) ?? ids[0];
  if (next !== ch.id) {
    log(`member ${ch.id}: greeting member ${next}`);
    ch.send(next, "greet", { from: ch.id, pid: process.pid });
  }
  ch.broadcast("news", { from: ch.id, text: `member ${ch.id} is up` });
  await maybeLeave();
}

/** With --count: leave once done and heard from everyone; the host last, as the hub goes with it. */
async function maybeLeave(): Promise<void> {
  if (count === undefined || !acted || leaving || heard.size < count - 1 || (count > 1 && !greeted)) return;
  if (!heardAll) {
    heardAll = true;
    log(`member ${ch.id}: heard from all ${count - 1} others${ch.isHub ? "; hosting the hub, so leaving last" : ""}`);
  }
  // Closing the host closes the hub, dropping what it still had queued for the others.
  if (ch.isHub && (await ch.peers()).length > 1) return;
  if (leaving) return;
  leaving = true;
  await leave();
}
