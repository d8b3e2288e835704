import { type IpcError, NoSuchPeerError, QueueFullError } from "../errors.ts";
import { errorFromCode } from "../error_from_code.ts";
import type { Peer, UndeliverableDetail } from "../bus/peer.ts";
import { type CliArgs, peerRef } from "./cli_args.ts";
import { commandData, expectArguments } from "./command_data.ts";
import { ExitCode } from "./exit_code.ts";
import { anyBusAddress, JOIN_TIMEOUT_MS, joinBus } from "./join_bus.ts";

/**
 * `ipcbus send <to> <alert> [json]`: one alert to one peer.
 *
 * @param args The parsed command line.
 * @returns The exit status.
 */
export async function sendCommand(args: CliArgs): Promise<number> {
  expectArguments("send", args.positionals, ["<to>", "<alert>", "[json]"]);
  const address = anyBusAddress(args.options, "send");
  const [to, alert, json] = args.positionals;
  const data = await commandData(json, "send");
  return await alertOnce(await joinBus(address, args.options.name), (peer) => peer.send(peerRef(to), alert, data));
}

/**
 * `ipcbus broadcast <alert> [json]`: one alert to every peer.
 *
 * @param args The parsed command line.
 * @returns The exit status.
 */
export async function broadcastCommand(args: CliArgs): Promise<number> {
  expectArguments("broadcast", args.positionals, ["<alert>", "[json]"]);
  const address = anyBusAddress(args.options, "broadcast");
  const [alert, json] = args.positionals;
  const data = await commandData(json, "broadcast");
  return await alertOnce(await joinBus(address, args.options.name), (peer) => peer.broadcast(alert, data));
}

/**
 * Sends, then waits until the hub has routed the alert before leaving: the
 * hub handles a peer's frames in order, so once a request sent after the
 * alert is answered (by anyone, even with "no responder"), any report that
 * the alert was undeliverable has arrived too.
 */
async function alertOnce(peer: Peer, sendIt: (peer: Peer) => void): Promise<number> {
  const undeliverable: UndeliverableDetail[] = [];
  peer.addEventListener("undeliverable", (e) => undeliverable.push((e as CustomEvent<UndeliverableDetail>).detail));
  try {
    sendIt(peer);
    await peer.request("/ipcbus/echo", null, { timeout: JOIN_TIMEOUT_MS }).catch(() => {});
    const failed = undeliverable[0];
    if (failed) throw undeliverableError(failed);
    return ExitCode.Ok;
  } finally {
    await peer.close();
  }
}

function undeliverableError(detail: UndeliverableDetail): IpcError {
  const what = `Alert ${detail.name ?? ""} was not delivered${detail.to === undefined ? "" : ` to peer ${detail.to}`}`;
  if (detail.reason === "no_such_peer") return new NoSuchPeerError(`${what}: the peer is not connected`);
  if (detail.reason === "queue_full") return new QueueFullError(`${what}: its queue at the hub is full`);
  return errorFromCode(detail.reason, `${what}: ${detail.reason}`);
}
