/**
 * One worker of the cluster demo (examples/demo_cluster.ts): joins a bus
 * over NATS, broadcasts `tick`s, sends `note`s to the other workers by
 * name, asks them for `/square`s, and counts everything. Prints JSON lines:
 * `ready`, `going` once the `go` command came and every worker is in view,
 * `progress` every 500 ms, `stopped` after the `stop` command on stdin (no
 * more sending), `final` after `finish` (counts received), then closes and
 * exits.
 *
 * Arguments: servers (comma-separated), bus, name, the other workers' names (comma-separated).
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { connect, type PeerInfo } from "../nats.ts";

const [servers, bus, name, others] = process.argv.slice(2);
const peers = others.split(",");
const print = (event: Record<string, unknown>) => console.log(JSON.stringify({ name, ...event }));

const counts = {
  broadcastsSent: 0,
  notesSent: 0,
  ticksReceived: 0,
  notesReceived: 0,
  requestsOk: 0,
  requestErrors: {} as Record<string, number>,
  refused: {} as Record<string, number>,
  undeliverable: 0,
  joins: 0,
  leaves: 0,
};
const bump = (table: Record<string, number>, key: string) => (table[key] = (table[key] ?? 0) + 1);

const peer = await connect({ servers: servers.split(","), bus, name, requestTimeout: 2000 });
peer.handle("/square", ({ data }) => (data as number) ** 2);
peer.on("tick", () => void counts.ticksReceived++);
peer.on("note", () => void counts.notesReceived++);
peer.addEventListener("undeliverable", () => void counts.undeliverable++);
peer.addEventListener("peerjoin", () => void counts.joins++);
peer.addEventListener("peerleave", (e) => {
  counts.leaves++;
  print({ ev: "peerleave", peer: (e as CustomEvent<PeerInfo & { reason: string }>).detail });
});
print({ ev: "ready", id: peer.id, pid: process.pid, runtime: "Bun" in globalThis ? "bun" : "deno" });

let sending = false;
let n = 0;
const work = setInterval(() => {
  if (!sending) return;
  n++;
  try {
    peer.broadcast("tick", n);
    counts.broadcastsSent++;
  } catch (err) {
    bump(counts.refused, (err as Error).name);
  }
  try {
    peer.send(peers[n % peers.length], "note", n);
    counts.notesSent++;
  } catch (err) {
    bump(counts.refused, (err as Error).name);
  }
  if (n % 4 === 0) {
    peer.request("/square", n).then(
      () => void counts.requestsOk++,
      (err) => bump(counts.requestErrors, (err as Error).name),
    );
  }
}, 25);
const progress = setInterval(() => print({ ev: "progress", ...counts }), 500);
let finishing = false;

createInterface({ input: process.stdin }).on("line", async (line) => {
  if (line === "go") {
    // Start when every worker is in view, so that each broadcast has all four recipients.
    const deadline = Date.now() + 5000;
    while ((await peer.peers()).length < peers.length + 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    sending = true;
    print({ ev: "going" });
  } else if (line === "stop") {
    sending = false;
    clearInterval(work);
    await peer.flush();
    print({ ev: "stopped", ...counts });
  } else if (line === "finish") {
    finishing = true;
    clearInterval(progress);
    print({ ev: "final", ...counts });
    await peer.close();
    process.exit(0);
  }
}).on("close", () => {
  // Stdin closed without "finish": the demo is gone (killed, or given up on by a test), so do not run on as an orphan.
  if (!finishing) process.exit(1);
});
