/**
 * The pixl-ipc client on ipcbus: asks examples/uri_server.ts for an exact
 * route, a prefix route and a RegExp route, one whose handler throws, the
 * built-in echo and delay, one request that times out and one that nobody
 * serves, then prints the hub's stats and leaves.
 *
 * Run it (with the server running):  deno run -A examples/uri_client.ts /tmp/uri.sock
 *                                or:  bun examples/uri_client.ts /tmp/uri.sock
 *
 * @module
 */
import process from "node:process";
import { connect, type HubStats, IpcError, RemoteError, type RequestOptions } from "../mod.ts";

const [path] = process.argv.slice(2);
if (!path) {
  console.error("Usage: uri_client.ts <socket>");
  process.exit(2);
}
const log = (line: string) => console.log(line);

const peer = await connect({ path, name: "uri-client" });
const leave = () => void peer.close().then(() => process.exit(0));
process.once("SIGINT", leave);
process.once("SIGTERM", leave);
log(`client: connected as peer ${peer.id}`);

async function ask(route: string, data?: unknown, options?: RequestOptions): Promise<void> {
  const started = Date.now();
  try {
    const response = await peer.request(route, data, options);
    log(`client: ${route} -> ${JSON.stringify(response)} (${Date.now() - started} ms)`);
  } catch (err) {
    // Every failure is an IpcError subclass with a stable code: TimeoutError, NoResponderError, RemoteError …
    if (!(err instanceof IpcError)) throw err;
    const thrown = err instanceof RemoteError ? `, the handler threw ${err.remoteName}` : "";
    log(`client: ${route} -> ${err.name} [${err.code}${thrown}] ${err.message} (${Date.now() - started} ms)`);
  }
}

await ask("/myapp/test", { hello: "there" });
await ask("/myapp/something/else", [1, 2, 3]);
await ask("/users/42");
await ask("/users/0");
await ask("/ipcbus/echo", { ping: "pong", n: [1, 2] });
await ask("/ipcbus/delay", { delay: 100 });
await ask("/ipcbus/delay", { delay: 500 }, { timeout: 100 });
await ask("/nobody/serves/this");

const stats = await peer.request("/ipcbus/stats") as HubStats;
log(`client: /ipcbus/stats -> peers ${stats.peers}, requests ${stats.requests}, responses ${stats.responses}`);
log(`client: full stats ${JSON.stringify(stats)}`);
await peer.close();
log("client: done");
