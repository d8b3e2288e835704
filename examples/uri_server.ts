/**
 * The pixl-ipc server on ipcbus: a hub that serves request routes by exact
 * name, by prefix and by RegExp, next to the hub's built-in `/ipcbus/echo`,
 * `/ipcbus/delay` and `/ipcbus/stats`. Every request is printed, and the
 * hub's stats each time a client leaves. Ask it with examples/uri_client.ts.
 *
 * Run it:  deno run -A examples/uri_server.ts /tmp/uri.sock
 *     or:  bun examples/uri_server.ts /tmp/uri.sock
 *
 * --once  exit after the first client leaves
 *
 * @module
 */
import process from "node:process";
import { type PeerInfo, type RequestContext, serve } from "../mod.ts";

const [path, ...flags] = process.argv.slice(2);
if (!path) {
  console.error("Usage: uri_server.ts <socket> [--once]");
  process.exit(2);
}
const log = (line: string) => console.log(line);
const show = ({ route, sender, senderPid, data }: RequestContext) =>
  log(`server: ${route} from peer ${sender} (pid ${senderPid}) data ${JSON.stringify(data) ?? "none"}`);

const hub = await serve({ path });

// The first registered pattern that matches a route serves it: exact routes go before prefixes.
hub.peer.handle("/myapp/test", (req) => {
  show(req);
  return { code: 0, description: "exact route /myapp/test", youSent: req.data };
});
hub.peer.handle("/myapp/*", (req) => {
  show(req);
  return { code: 0, description: "prefix /myapp/*", route: req.route };
});
hub.peer.handle(/^\/users\/(\d+)$/, (req) => {
  show(req);
  const id = Number(req.route.split("/")[2]);
  // A handler that throws answers with the error: the caller gets a RemoteError.
  if (id === 0) throw new RangeError("There is no user 0");
  return { id, name: `user-${id}` };
});

hub.peer.addEventListener("peerjoin", (e) => {
  const info = (e as CustomEvent<PeerInfo>).detail;
  log(`server: client ${info.name ?? info.id} joined (peer ${info.id}, pid ${info.pid})`);
});
hub.peer.addEventListener("peerleave", (e) => {
  const info = (e as CustomEvent<PeerInfo>).detail;
  const { peers, requests, responses, dropped } = hub.stats();
  log(`server: client ${info.name ?? info.id} left`);
  log(`server: stats ${JSON.stringify({ peers, requests, responses, dropped })}`);
  if (flags.includes("--once")) void stop();
});

const stop = async () => {
  await hub.close();
  log("server: closed");
};
process.once("SIGINT", () => void stop().then(() => process.exit(0)));
process.once("SIGTERM", () => void stop().then(() => process.exit(0)));

log(`server: listening on ${path}`);
