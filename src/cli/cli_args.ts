import { parseArgs } from "node:util";
import { UsageError } from "./exit_code.ts";

/** The subcommands of `ipcbus`. */
export const COMMANDS = ["hub", "send", "broadcast", "request", "listen", "peers", "stats", "bench", "help"] as const;

/** One of {@linkcode COMMANDS}. */
export type Command = typeof COMMANDS[number];

/** Options after parsing and checking. */
export interface CliOptions {
  path?: string;
  channel?: string;
  dir?: string;
  /** NATS server URLs (comma-separated on the command line). */
  nats?: string[];
  bus?: string;
  name?: string;
  token?: string;
  json: boolean;
  auth: boolean;
  debug: boolean;
  help: boolean;
  to?: number | string;
  timeout?: number;
  mode?: number;
  requests?: number;
  alerts?: number;
  size?: number;
}

/** The command line, parsed. */
export interface CliArgs {
  /** The subcommand; undefined when none was given. */
  command: Command | undefined;
  /** Arguments after the subcommand. */
  positionals: string[];
  options: CliOptions;
}

const OPTIONS = {
  path: { type: "string" },
  channel: { type: "string" },
  dir: { type: "string" },
  nats: { type: "string" },
  bus: { type: "string" },
  name: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean" },
  auth: { type: "boolean" },
  debug: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  to: { type: "string" },
  timeout: { type: "string" },
  mode: { type: "string" },
  requests: { type: "string" },
  alerts: { type: "string" },
  size: { type: "string" },
} as const;

type OptionName = keyof typeof OPTIONS;

const BUS = ["path", "channel", "dir", "name", "token", "debug", "help"] as const;
/** The subcommands that also reach a bus over NATS. */
const ANY_BUS = [...BUS, "nats", "bus"] as const;

/** Which options each subcommand takes. */
const ALLOWED: Record<Command, readonly OptionName[]> = {
  hub: [...BUS, "json", "mode", "auth"],
  send: ANY_BUS,
  broadcast: ANY_BUS,
  request: [...ANY_BUS, "to", "timeout"],
  listen: ANY_BUS,
  peers: [...ANY_BUS, "json"],
  stats: [...BUS, "json"],
  bench: [...BUS, "json", "requests", "alerts", "size"],
  help: ["help", "debug"],
};

/**
 * Parses the command line: the subcommand is the first positional argument,
 * options may come before or after it, `--` ends the options.
 *
 * @param args The arguments after the script name.
 * @returns The subcommand, its positional arguments and the options.
 * @throws {UsageError} for an unknown subcommand or option, a missing or invalid value.
 */
export function parseCliArgs(args: string[]): CliArgs {
  const wantsHelp = args.slice(0, args.includes("--") ? args.indexOf("--") : undefined)
    .some((a) => a === "--help" || a === "-h");
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    if (!wantsHelp) throw new UsageError(parseArgsMessage(err), commandIn(args));
    // `--help` wins over any other mistake on the line.
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: false });
  }
  const [first, ...positionals] = parsed.positionals;
  if (first !== undefined && !(COMMANDS as readonly string[]).includes(first)) {
    throw new UsageError(`Unknown subcommand ${JSON.stringify(first)}`);
  }
  const command = first as Command | undefined;
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const options: CliOptions = {
    json: values.json === true,
    auth: values.auth === true,
    debug: values.debug === true,
    help: wantsHelp,
  };
  if (wantsHelp) return { command, positionals, options };
  if (command !== undefined) {
    for (const key of Object.keys(values)) {
      if (values[key] !== undefined && !ALLOWED[command].includes(key as OptionName)) {
        throw new UsageError(`Option --${key} does not apply to ${command}`, command);
      }
    }
  }
  const text = (key: OptionName): string | undefined => {
    const value = values[key];
    if (typeof value !== "string") return undefined;
    if (value === "") throw new UsageError(`Invalid --${key}: expected a value, got an empty string`, command);
    return value;
  };
  const path = text("path");
  const channel = text("channel");
  const dir = text("dir");
  const name = text("name");
  const token = text("token");
  if (path !== undefined) options.path = path;
  if (channel !== undefined) options.channel = channel;
  if (dir !== undefined) options.dir = dir;
  if (name !== undefined) options.name = name;
  if (token !== undefined) options.token = token;
  const nats = text("nats");
  if (nats !== undefined) options.nats = nats.split(",").filter((url) => url !== "");
  const bus = text("bus");
  if (bus !== undefined) options.bus = bus;
  const to = text("to");
  if (to !== undefined) options.to = peerRef(to);
  const timeout = text("timeout");
  if (timeout !== undefined) options.timeout = integer("timeout", timeout, 1, command);
  const requests = text("requests");
  if (requests !== undefined) options.requests = integer("requests", requests, 1, command);
  const alerts = text("alerts");
  if (alerts !== undefined) options.alerts = integer("alerts", alerts, 1, command);
  const size = text("size");
  if (size !== undefined) options.size = integer("size", size, 0, command);
  const mode = text("mode");
  if (mode !== undefined) options.mode = fileMode(mode, command);
  return { command, positionals, options };
}

/** A peer given on the command line: an id when all digits, else a name. */
export function peerRef(text: string): number | string {
  return /^\d+$/.test(text) ? Number(text) : text;
}

function integer(key: string, text: string, min: number, command: Command | undefined): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`Invalid --${key} ${JSON.stringify(text)}: expected an integer >= ${min}`, command);
  }
  return n;
}

function fileMode(text: string, command: Command | undefined): number {
  const digits = text.replace(/^0o?/, "");
  if (!/^[0-7]{1,4}$/.test(digits)) {
    throw new UsageError(`Invalid --mode ${JSON.stringify(text)}: expected octal permission bits such as 660`, command);
  }
  return parseInt(digits, 8);
}

function commandIn(args: string[]): string | undefined {
  return args.find((a) => (COMMANDS as readonly string[]).includes(a));
}

/** node:util's messages carry advice about `--` that only confuses here; keep the first sentence. */
function parseArgsMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split(/\. (?=[A-Z])/)[0].replace(/\.$/, "");
}
