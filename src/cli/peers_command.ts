import type { PeerInfo } from "../bus/protocol.ts";
import type { CliArgs } from "./cli_args.ts";
import { expectArguments } from "./command_data.ts";
import { ExitCode } from "./exit_code.ts";
import { anyBusAddress, joinBus } from "./join_bus.ts";
import { toJson } from "./json_value.ts";
import { formatDuration, formatTable } from "./table.ts";
import { print } from "./terminal.ts";

/**
 * `ipcbus peers [--json]`: the peers connected to the hub, this command's
 * own short-lived peer left out.
 *
 * @param args The parsed command line.
 * @returns The exit status.
 */
export async function peersCommand(args: CliArgs): Promise<number> {
  expectArguments("peers", args.positionals, []);
  const address = anyBusAddress(args.options, "peers");
  const peer = await joinBus(address, args.options.name);
  let peers: PeerInfo[];
  try {
    peers = (await peer.peers()).filter((p) => p.id !== peer.id);
  } finally {
    await peer.close();
  }
  // `inc` tells restarts apart inside the bus; it means nothing to a reader.
  const shown = peers.map(({ inc: _inc, ...info }) => info);
  if (args.options.json) {
    print(toJson(shown));
    return ExitCode.Ok;
  }
  const now = Date.now();
  const rows = shown.map((p) => [
    String(p.id),
    p.name ?? (p.id === 0 ? "(hub)" : ""),
    String(p.pid),
    p.runtime,
    formatDuration(now - p.since),
  ]);
  const columns = [
    { title: "ID", right: true },
    { title: "NAME" },
    { title: "PID", right: true },
    { title: "RUNTIME" },
    { title: "CONNECTED", right: true },
  ];
  for (const line of formatTable(columns, rows)) print(line);
  return ExitCode.Ok;
}
