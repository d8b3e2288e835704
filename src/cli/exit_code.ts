import { ConnectError, ErrorCode, IpcError, RemoteError } from "../errors.ts";

/**
 * The exit statuses of the `ipcbus` command. Scripts can branch on them:
 * `ipcbus request /render '{}' || [ $? -eq 5 ] && echo "nobody serves /render"`.
 *
 * @example Telling a timeout from a missing hub
 * ```ts
 * import { ExitCode, main } from "@ipcbus/ipcbus/cli";
 * const status = await main(["request", "/ipcbus/echo", "1", "--path", "/tmp/app.sock"]);
 * if (status === ExitCode.Connect) console.log("no hub at /tmp/app.sock");
 * ```
 */
export const ExitCode = {
  /** Success. */
  Ok: 0,
  /** Any other failure. */
  Error: 1,
  /** Wrong arguments: unknown subcommand or option, missing or invalid value. */
  Usage: 2,
  /** No hub answers at the path or channel, it refused the handshake, or it went away. */
  Connect: 3,
  /** The request got no answer within `--timeout`. */
  Timeout: 4,
  /** No peer handles the requested route. */
  NoResponder: 5,
  /** The handler serving the request threw. */
  Remote: 6,
  /** The hub refused the auth token (missing or wrong `--token`). */
  Auth: 7,
  /** The destination peer of `send` or `request --to` is not connected. */
  NoSuchPeer: 8,
} as const;

/** One of the values of {@linkcode ExitCode}. */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode];

/** Wrong command-line arguments: exit status 2, and a hint to run `--help`. */
export class UsageError extends Error {
  /** Names the subcommand whose `--help` the message points to, if any. */
  readonly command: string | undefined;

  constructor(message: string, command?: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

const byCode: Record<string, ExitCode> = {
  [ErrorCode.Connect]: ExitCode.Connect,
  [ErrorCode.Timeout]: ExitCode.Timeout,
  [ErrorCode.NoResponder]: ExitCode.NoResponder,
  [ErrorCode.Remote]: ExitCode.Remote,
  [ErrorCode.Auth]: ExitCode.Auth,
  [ErrorCode.NoSuchPeer]: ExitCode.NoSuchPeer,
};

/** The exit status that reports `err`. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof UsageError) return ExitCode.Usage;
  if (err instanceof IpcError) return byCode[err.code] ?? ExitCode.Error;
  return ExitCode.Error;
}

/**
 * The one line that reports `err` on stderr: `ipcbus: <what failed>`. Bus
 * errors name their class, so a person sees a timeout is not a missing hub;
 * a remote error names the class the handler threw.
 */
export function errorLine(err: unknown): string {
  let text: string;
  if (err instanceof UsageError) {
    text = `${err.message} (run: ipcbus ${err.command ? `${err.command} ` : ""}--help)`;
  } else if (err instanceof RemoteError) {
    const code = err.remoteCode === undefined ? "" : ` [${err.remoteCode}]`;
    text = `RemoteError: the handler threw ${err.remoteName}${code}: ${err.message}`;
  } else if (err instanceof IpcError) text = `${err.name}: ${err.message}`;
  else if (err instanceof Error) text = err.name === "Error" ? err.message : `${err.name}: ${err.message}`;
  else text = String(err);
  return `ipcbus: ${text.replace(/\s*\n\s*/g, " ")}`;
}

/** The stack of `err` and of each `cause` under it, for `--debug`. */
export function errorDetail(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 8; depth++) {
    parts.push(depth === 0 ? stackOf(e) : `Caused by: ${stackOf(e)}`);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join("\n");
}

function stackOf(e: unknown): string {
  return e instanceof Error ? e.stack ?? `${e.name}: ${e.message}` : String(e);
}

/** Wraps a failure to join the bus so that it exits with {@linkcode ExitCode.Connect}, unless it is an auth refusal. */
export function joinError(err: unknown, where: string): unknown {
  if (!(err instanceof IpcError) || err.code === ErrorCode.Auth || err.code === ErrorCode.Connect) return err;
  return new ConnectError(`Cannot join the bus at ${where}: ${err.message}`, { cause: err });
}
