import { ChannelPeer } from "../channel/channel.ts";
import type { AlertContext } from "../bus/peer.ts";
import type { CliArgs } from "./cli_args.ts";
import { errorLine, ExitCode, UsageError } from "./exit_code.ts";
import { anyBusAddress, describeAddress, joinBus } from "./join_bus.ts";
import { toJson } from "./json_value.ts";
import { print, printError, waitForSignal } from "./terminal.ts";

/**
 * `ipcbus listen [alert...]`: one JSON line `{time, sender, name, data}` per
 * alert received (every alert when none is named), until Ctrl-C (exit 0) or
 * the hub goes away (exit 3).
 *
 * @param args The parsed command line.
 * @returns The exit status.
 */
export async function listenCommand(args: CliArgs): Promise<number> {
  // No names: every alert, through the catch-all handler "*".
  const names = args.positionals.length > 0 ? args.positionals : ["*"];
  if (names.includes("")) throw new UsageError("Invalid <alert>: expected a non-empty string", "listen");
  const address = anyBusAddress(args.options, "listen");
  const signals = waitForSignal();
  try {
    const peer = await joinBus(address, args.options.name);
    const lost = new Promise<string>((resolve) => {
      if (peer instanceof ChannelPeer) {
        // A channel member rides out hub failovers; it gives up (and reports an error) only when no new hub comes.
        peer.addEventListener("error", (e) => {
          const err = e.detail;
          if (peer.connected) printError(errorLine(err));
          else resolve(err instanceof Error ? err.message : String(err));
        });
      } else {
        peer.addEventListener("disconnect", (e) => resolve(e.detail.reason));
        peer.addEventListener("error", (e) => printError(errorLine(e.detail)));
      }
    });
    const onAlert = (data: unknown, ctx: AlertContext) => {
      print(toJson({ time: new Date().toISOString(), sender: ctx.sender, name: ctx.name, data }));
    };
    for (const name of names) peer.on(name, onAlert);
    const what = names[0] === "*" ? "every alert" : names.join(", ");
    printError(`listening for ${what} as peer ${peer.id} on ${describeAddress(address)} (Ctrl-C to stop)`);
    const outcome = await Promise.race([signals.received.then(() => undefined), lost]);
    await peer.close();
    if (outcome === undefined) return ExitCode.Ok;
    printError(`ipcbus: Lost the hub at ${describeAddress(address)}: ${outcome}`);
    return ExitCode.Connect;
  } finally {
    signals.dispose();
  }
}
