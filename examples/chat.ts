/**
 * luatalk on ipcbus: a tiny terminal chat. The server is a hub that prints
 * who comes and goes and what they say; each client reads lines from stdin,
 * broadcasts them, and prints everyone else's as `<nick> text`. End a
 * client's input (Ctrl-D) to leave.
 *
 * Run it:  deno run -A examples/chat.ts server /tmp/chat.sock
 *          deno run -A examples/chat.ts client /tmp/chat.sock alice   (one per terminal)
 *     or:  bun examples/chat.ts server /tmp/chat.sock
 *          bun examples/chat.ts client /tmp/chat.sock alice
 *
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { connect, IpcError, type PeerInfo, serve } from "../mod.ts";

const [mode, path, nick] = process.argv.slice(2);
const log = (line: string) => console.log(line);

if (mode === "server" && path) await server();
else if (mode === "client" && path && nick) await client();
else {
  console.error("Usage: chat.ts server <socket>");
  console.error("       chat.ts client <socket> <nick>");
  process.exit(2);
}

async function server(): Promise<void> {
  const hub = await serve({ path });
  const nickOf = (id: number) => hub.peers.find((p) => p.id === id)?.name ?? `peer ${id}`;
  hub.peer.addEventListener("peerjoin", (e) => {
    const info = (e as CustomEvent<PeerInfo>).detail;
    log(`* ${info.name} joined (peer ${info.id}, pid ${info.pid})`);
  });
  hub.peer.addEventListener("peerleave", (e) => log(`* ${(e as CustomEvent<PeerInfo>).detail.name} left`));
  hub.peer.on("say", (data, ctx) => log(`<${nickOf(ctx.sender)}> ${(data as { text: string }).text}`));

  const stop = () => void hub.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  log(`chat server on ${path}`);
}

async function client(): Promise<void> {
  const peer = await connect({ path, name: nick }).catch((err) => {
    if (err instanceof IpcError && err.code === "name_taken") {
      console.error(`The nick ${nick} is taken; pick another`);
      process.exit(1);
    }
    throw err;
  });
  const nicks = new Map<number, string>();
  peer.addEventListener("peerjoin", (e) => {
    const info = (e as CustomEvent<PeerInfo>).detail;
    nicks.set(info.id, info.name!);
    log(`* ${info.name} joined`);
  });
  peer.addEventListener("peerleave", (e) => {
    const info = (e as CustomEvent<PeerInfo>).detail;
    nicks.delete(info.id);
    if (info.id !== 0) log(`* ${info.name} left`);
  });
  peer.on("say", (data, ctx) => {
    // A broadcast reaches its sender too; the terminal already shows what we typed.
    if (ctx.sender !== peer.id) log(`<${nicks.get(ctx.sender) ?? ctx.sender}> ${(data as { text: string }).text}`);
  });
  // The hub's own peer (id 0) has no nick: it is not a chatter.
  for (const p of await peer.peers()) if (p.id !== 0) nicks.set(p.id, p.name!);
  const others = [...nicks.values()].filter((name) => name !== nick);
  log(`* you are ${nick}; here: ${others.length > 0 ? others.join(", ") : "nobody else yet"}`);

  // Not a readline terminal: the terminal echoes and edits the line, Ctrl-C is SIGINT, Ctrl-D ends the input.
  const input = createInterface({ input: process.stdin, terminal: false });
  let leaving = false;
  const leave = () => {
    leaving = true;
    input.close();
  };
  peer.addEventListener("disconnect", () => {
    if (!leaving) log("* the server went away");
    leave();
  });
  process.once("SIGINT", leave);
  process.once("SIGTERM", leave);

  for await (const text of input) {
    if (text.trim() !== "" && peer.connected) peer.broadcast("say", { text });
  }
  leaving = true;
  await peer.close();
  log("* you left");
  // Stdin may still be open (the server went away, or a signal came): do not wait for it.
  process.exit(0);
}
