/**
 * go-ipc's groupecho on ipcbus: many producers, one consumer, elected by a
 * lock. Every process joins channel "group"; the one holding the channel's
 * lock hosts the hub and is the consumer, serving route `/group/echo`; the
 * others are producers and send it numbered requests. Kill any process —
 * the consumer too — and the group carries on: another member takes the
 * lock, hosts the hub, and becomes the consumer.
 *
 * Run it (in 3 terminals):  deno run -A examples/group_echo.ts /tmp/group
 *                      or:  bun examples/group_echo.ts /tmp/group
 *
 * --interval MS  time between a producer's requests (default 500)
 *
 * @module
 */
import process from "node:process";
import { channel, IpcError } from "../mod.ts";

const [dir, ...flags] = process.argv.slice(2);
if (!dir) {
  console.error("Usage: group_echo.ts <channel dir> [--interval MS]");
  process.exit(2);
}
const interval = flags.includes("--interval") ? Number(flags[flags.indexOf("--interval") + 1]) : 500;
const log = (line: string) => console.log(line);

const ch = channel("group", { dir });
let role: "consumer" | "producer" | undefined;

/** The member hosting the hub is the consumer; `hubchange` tells every member when that changes. */
function takeRole(): void {
  const next = ch.isHub ? "consumer" : "producer";
  if (next === role) return;
  role = next;
  log(`member ${ch.id} (pid ${process.pid}) is ${role === "consumer" ? "the consumer" : "a producer"} now`);
  if (role === "consumer") {
    ch.handle("/group/echo", ({ data, sender }) => {
      log(`consumer ${ch.id}: echo ${JSON.stringify(data)} from producer ${sender}`);
      return { ...(data as object), consumer: ch.id };
    });
  } else ch.handle("/group/echo", null);
}
ch.addEventListener("hubchange", takeRole);

let n = 1;
let busy = false;
async function produce(): Promise<void> {
  if (role !== "producer" || busy) return;
  busy = true;
  try {
    const echo = await ch.request("/group/echo", { from: ch.id, n }, { timeout: 2000 }) as { consumer: number };
    log(`producer ${ch.id}: echo #${n} answered by consumer ${echo.consumer}`);
    n++;
  } catch (err) {
    // While the consumer changes, a request can fail: the hub went away, or nobody serves the route yet.
    if (!(err instanceof IpcError)) throw err;
    log(`producer ${ch.id}: echo #${n} failed with ${err.name}; retrying`);
  } finally {
    busy = false;
  }
}

await ch.ready;
takeRole();
const timer = setInterval(produce, interval);

const leave = async () => {
  clearInterval(timer);
  await ch.close();
  log(`member ${ch.id}: left the group`);
  process.exit(0);
};
process.once("SIGINT", leave);
process.once("SIGTERM", leave);
