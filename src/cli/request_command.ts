import type { CliArgs } from "./cli_args.ts";
import { commandData, expectArguments } from "./command_data.ts";
import { ExitCode } from "./exit_code.ts";
import { anyBusAddress, joinBus } from "./join_bus.ts";
import { toJson } from "./json_value.ts";
import { print, stdoutIsTty } from "./terminal.ts";

/**
 * `ipcbus request <route> [json] [--to ID] [--timeout MS]`: prints the
 * response as JSON; errors reach `main()` and become their exit status.
 *
 * @param args The parsed command line.
 * @returns The exit status.
 */
export async function requestCommand(args: CliArgs): Promise<number> {
  expectArguments("request", args.positionals, ["<route>", "[json]"]);
  const address = anyBusAddress(args.options, "request");
  const [route, json] = args.positionals;
  const data = await commandData(json, "request");
  const { to, timeout } = args.options;
  const peer = await joinBus(address, args.options.name);
  let response: unknown;
  try {
    response = await peer.request(route, data, {
      ...(to === undefined ? {} : { to }),
      ...(timeout === undefined ? {} : { timeout }),
    });
  } finally {
    await peer.close();
  }
  print(toJson(response, stdoutIsTty() ? 2 : 0));
  return ExitCode.Ok;
}
