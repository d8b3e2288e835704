import type { Command } from "./cli_args.ts";
import { UsageError } from "./exit_code.ts";
import { parseJsonData } from "./json_value.ts";
import { readStdin, stdinIsTty } from "./terminal.ts";

/**
 * The data of `send`, `broadcast` or `request`: the JSON argument if given,
 * else stdin when it is not a terminal, else no data.
 *
 * @param arg The optional `[json]` argument.
 * @param command The subcommand, for the usage hint.
 * @returns The parsed value; undefined for no data.
 * @throws {UsageError} when the text is not JSON.
 */
export async function commandData(arg: string | undefined, command: Command): Promise<unknown> {
  if (arg !== undefined) return parseJsonData(arg, "the command line", command);
  if (stdinIsTty()) return undefined;
  return parseJsonData(await readStdin(), "stdin", command);
}

/**
 * Checks the number of positional arguments.
 *
 * @param command The subcommand.
 * @param positionals Its arguments.
 * @param names The names of the required arguments, then of the optional ones in brackets.
 * @throws {UsageError} when some are missing or there are too many.
 */
export function expectArguments(command: Command, positionals: string[], names: string[]): void {
  const required = names.filter((n) => !n.startsWith("["));
  if (positionals.length < required.length) {
    const missing = required.slice(positionals.length).join(" ");
    throw new UsageError(`Missing ${missing}: ${command} takes ${names.join(" ")}`, command);
  }
  if (positionals.length > names.length) {
    throw new UsageError(
      `Too many arguments: ${command} takes ${names.join(" ")}, got ${positionals.length} (quote the JSON)`,
      command,
    );
  }
  for (const [i, value] of positionals.entries()) {
    if (value === "" && !names[i].startsWith("[")) {
      throw new UsageError(`Invalid ${names[i]}: expected a non-empty string`, command);
    }
  }
}
