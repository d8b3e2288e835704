import type { CliArgs } from "./cli_args.ts";
import { expectArguments } from "./command_data.ts";
import { ExitCode } from "./exit_code.ts";
import { busAddress, joinBus } from "./join_bus.ts";
import { toJson } from "./json_value.ts";
import { formatDuration, formatTable } from "./table.ts";
import { print } from "./terminal.ts";

/**
 * `ipcbus stats [--json]`: the hub's counters, from a request to `/ipcbus/stats`.
 *
 * @param args The parsed command line.
 * @returns The exit status.
 */
export async function statsCommand(args: CliArgs): Promise<number> {
  expectArguments("stats", args.positionals, []);
  const address = busAddress(args.options, "stats")!;
  const peer = await joinBus(address, args.options.name);
  let stats: unknown;
  try {
    stats = await peer.request("/ipcbus/stats");
  } finally {
    await peer.close();
  }
  if (args.options.json) {
    print(toJson(stats));
    return ExitCode.Ok;
  }
  const rows = statsRows(stats);
  for (const line of formatTable([{ title: "COUNTER" }, { title: "VALUE", right: true }], rows)) print(line);
  return ExitCode.Ok;
}

/** The order people read the counters in; fields a newer hub adds come after. */
const ORDER = [
  "peers",
  "handlers",
  "peersJoined",
  "peersLeft",
  "alerts",
  "requests",
  "responses",
  "inFlightRequests",
  "framesIn",
  "framesOut",
  "bytesIn",
  "bytesOut",
  "errors",
  "dropped",
  "uptimeMs",
];

/** Flattens the counters into rows: `dropped.<reason>` per drop reason, the uptime as a duration. */
function statsRows(stats: unknown): string[][] {
  if (stats === null || typeof stats !== "object") return [["value", toJson(stats)]];
  const rows: string[][] = [];
  const number = (v: unknown) => typeof v === "number" ? v.toLocaleString("en-US") : toJson(v);
  const rank = (key: string) => {
    const i = ORDER.indexOf(key);
    return i === -1 ? ORDER.length : i;
  };
  const entries = Object.entries(stats).sort(([a], [b]) => rank(a) - rank(b));
  for (const [key, value] of entries) {
    if (key === "uptimeMs" && typeof value === "number") rows.push(["uptime", formatDuration(value)]);
    else if (key === "dropped" && value !== null && typeof value === "object") {
      const entries = Object.entries(value);
      if (entries.length === 0) rows.push(["dropped", "0"]);
      for (const [reason, count] of entries) rows.push([`dropped.${reason}`, number(count)]);
    } else rows.push([key, number(value)]);
  }
  return rows;
}
