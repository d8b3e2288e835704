/**
 * One worker of the demo (examples/demo.ts): joins the channel, sends
 * numbered alerts to every other member and broadcasts, and reports what it
 * sent and received as JSON lines on stdout. Commands arrive on stdin.
 *
 * Run by the demo: deno run -A examples/demo_worker.ts <dir> <name>
 */
import { channel, QueueFullError } from "../mod.ts";
import { type DeliveryCount, DeliveryLedger } from "./delivery_ledger.ts";

const [dir, name] = (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const out = (line: Record<string, unknown>) => console.log(JSON.stringify({ ...line, t: Date.now() }));

const ch = channel("demo", { dir, name, graceMs: 3000 });
const sentTo = new Map<number, number>();
const received = new DeliveryLedger();
let broadcastsSent = 0;
let sending = true;

// Both point-to-point and broadcast alerts carry a per-(sender → receiver) number.
ch.on("job", (data, ctx) => received.record(ctx.sender, (data as { seq: number }).seq));
ch.on("news", (data, ctx) => {
  const seqs = (data as { seqs: Record<string, number> }).seqs;
  const seq = seqs[String(ch.id)];
  if (seq !== undefined) received.record(ctx.sender, seq);
});
ch.addEventListener(
  "hubchange",
  (e) => out({ ev: "hubchange", hubId: e.detail.hubId, isHub: ch.isHub }),
);
ch.addEventListener("undeliverable", (e) => out({ ev: "undeliverable", ...e.detail }));
ch.addEventListener("error", (e) => out({ ev: "error", message: String((e.detail as Error)?.message) }));

await ch.ready;
out({
  ev: "ready",
  id: ch.id,
  isHub: ch.isHub,
  pid: (globalThis as unknown as { process: { pid: number } }).process.pid,
});

const next = (to: number) => {
  const n = (sentTo.get(to) ?? 0) + 1;
  sentTo.set(to, n);
  return n;
};

async function sendLoop(): Promise<void> {
  let round = 0;
  while (sending) {
    const members = (await ch.peers()).map((p) => p.id).filter((id) => id !== ch.id);
    try {
      for (const to of members) {
        ch.send(to, "job", { seq: (sentTo.get(to) ?? 0) + 1 });
        next(to);
      }
      if (++round % 10 === 0) {
        const all = (await ch.peers()).map((p) => p.id);
        const seqs: Record<string, number> = {};
        for (const to of all) if (to !== ch.id) seqs[to] = (sentTo.get(to) ?? 0) + 1;
        ch.broadcast("news", { seqs });
        for (const to of Object.keys(seqs)) next(Number(to));
        broadcastsSent++;
      }
    } catch (err) {
      if (!(err instanceof QueueFullError)) out({ ev: "error", message: (err as Error).message });
    }
    await ch.flush();
    // Yield to the event loop so acknowledgements and failover run between rounds.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
const loop = sendLoop();

const progress = setInterval(() => {
  const got = received.arrivals();
  let sent = 0;
  for (const n of sentTo.values()) sent += n;
  out({ ev: "progress", id: ch.id, isHub: ch.isHub, sent, received: got });
}, 500);

const lines = (async function* () {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (
    const chunk of (globalThis as unknown as { process: { stdin: AsyncIterable<Uint8Array> } }).process.stdin
  ) {
    buffer += decoder.decode(chunk);
    let at;
    while ((at = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, at);
      buffer = buffer.slice(at + 1);
    }
  }
})();

for await (const line of lines) {
  const cmd = JSON.parse(line) as { cmd: string; expect?: Record<string, number>; waitMs?: number };
  if (cmd.cmd === "stop") {
    sending = false;
    await loop;
    await ch.flush();
    out({ ev: "stopped", id: ch.id, sentTo: Object.fromEntries(sentTo), broadcastsSent });
  } else if (cmd.cmd === "report") {
    // Wait (bounded) until what the senders say they sent has arrived.
    const deadline = Date.now() + (cmd.waitMs ?? 10_000);
    const expect = Object.entries(cmd.expect ?? {}).map(([from, n]) => [Number(from), n] as const);
    const complete = () => expect.every(([from, n]) => received.count(from, n).lost === 0);
    while (!complete() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const counts: Record<string, DeliveryCount> = {};
    for (const [from, n] of expect) counts[from] = received.count(from, n);
    out({ ev: "report", id: ch.id, counts, complete: complete() });
  } else if (cmd.cmd === "exit") {
    break;
  }
}
// An exit command, or stdin closed because the demo is gone (killed, or given up on by a test): leave either way,
// rather than run on as an orphan that keeps the channel alive.
sending = false;
clearInterval(progress);
await loop;
await ch.close();
out({ ev: "closed", id: ch.id });
