import { type CliArgs, type Command, COMMANDS, parseCliArgs } from "./cli_args.ts";
import { benchCommand } from "./bench_command.ts";
import { errorDetail, errorLine, ExitCode, exitCodeOf, UsageError } from "./exit_code.ts";
import { helpText } from "./help.ts";
import { hubCommand } from "./hub_command.ts";
import { listenCommand } from "./listen_command.ts";
import { peersCommand } from "./peers_command.ts";
import { requestCommand } from "./request_command.ts";
import { broadcastCommand, sendCommand } from "./send_command.ts";
import { statsCommand } from "./stats_command.ts";
import { print, printError } from "./terminal.ts";

const RUN: Record<Exclude<Command, "help">, (args: CliArgs) => Promise<number>> = {
  hub: hubCommand,
  send: sendCommand,
  broadcast: broadcastCommand,
  request: requestCommand,
  listen: listenCommand,
  peers: peersCommand,
  stats: statsCommand,
  bench: benchCommand,
};

/**
 * Runs the `ipcbus` command line: parses `args`, runs the subcommand, prints
 * its output on stdout and any error as one line on stderr (`ipcbus:
 * <message>`, with stack traces under `--debug`), and returns the exit
 * status without exiting, so it can be called from a script or a test.
 * Long-running subcommands (`hub`, `listen`) return after SIGINT or SIGTERM.
 *
 * Exit statuses ({@linkcode ExitCode}): 0 ok, 1 other error, 2 usage error,
 * 3 cannot connect (no hub, handshake refused, hub gone), 4 timeout, 5 no
 * responder, 6 remote error (the handler threw), 7 auth error, 8 no such peer.
 *
 * @param args The arguments after the program name, e.g. `["peers", "--path", "/tmp/app.sock"]`.
 * @returns The exit status.
 *
 * @example Asking a hub for its counters
 * ```ts
 * import { main } from "@ipcbus/ipcbus/cli";
 * const status = await main(["stats", "--path", "/tmp/app.sock", "--json"]);
 * console.log(status === 0 ? "printed the stats" : `failed with exit status ${status}`);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let debug = args.includes("--debug");
  try {
    const { command, positionals, options } = parseCliArgs(args);
    debug = options.debug;
    if (command === undefined) {
      if (options.help) {
        print(helpText());
        return ExitCode.Ok;
      }
      printError(helpText());
      return ExitCode.Usage;
    }
    if (command === "help") return showHelp(positionals);
    if (options.help) {
      print(helpText(command));
      return ExitCode.Ok;
    }
    return await RUN[command]({ command, positionals, options });
  } catch (err) {
    printError(errorLine(err));
    if (debug) printError(errorDetail(err));
    return exitCodeOf(err);
  }
}

function showHelp(positionals: string[]): number {
  const [topic, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError("Too many arguments: help takes [subcommand]", "help");
  if (topic !== undefined && !(COMMANDS as readonly string[]).includes(topic)) {
    throw new UsageError(`Unknown subcommand ${JSON.stringify(topic)}`);
  }
  print(helpText(topic as Command | undefined));
  return ExitCode.Ok;
}
