#!/usr/bin/env bun
/**
 * The `ipcbus` command: run a hub, send alerts, make requests, listen, list
 * peers, read a hub's counters and benchmark it, from a shell.
 *
 * Run it with Deno as `deno run -A jsr:@ipcbus/ipcbus/cli <subcommand> …`
 * (or `deno run -A cli.ts …` in a checkout), or with Bun as
 * `bunx ipcbus <subcommand> …` (or `bun cli.ts …`). The shebang is Bun's:
 * `bunx` runs a package's bin with the interpreter its shebang names, while
 * Deno ignores the line. `ipcbus --help` lists the subcommands and
 * `ipcbus <subcommand> --help` details one.
 *
 * Subcommands: `hub`, `send <to> <alert> [json]`, `broadcast <alert> [json]`,
 * `request <route> [json] [--to ID] [--timeout MS]`, `listen <alert>...`,
 * `peers`, `stats`, `bench`; each against `--path P` (a socket file) or
 * `--channel NAME` (a self-hosting channel, joined as a client so that a
 * one-shot command never hosts it; `--dir` sets the channel directory).
 * Data is JSON, from the argument or from stdin when it is absent and stdin
 * is not a terminal. Values received print as JSON: byte strings as base64
 * strings, bigints as decimal strings, Maps as objects.
 *
 * Errors are one line on stderr, `ipcbus: <message>` (stack traces with
 * `--debug`), and the exit status tells them apart:
 *
 * | Status | Meaning |
 * | --- | --- |
 * | 0 | ok |
 * | 1 | other error |
 * | 2 | usage error: unknown subcommand or option, missing or invalid value |
 * | 3 | cannot connect: no hub at the path or channel, handshake refused, or the hub went away |
 * | 4 | timeout: no answer within `--timeout` |
 * | 5 | no responder: no peer handles the route |
 * | 6 | remote error: the handler threw |
 * | 7 | auth error: the hub refused the token |
 * | 8 | no such peer: the destination is not connected |
 *
 * @example From a shell
 * ```sh
 * deno run -A jsr:@ipcbus/ipcbus/cli hub --path /tmp/app.sock &
 * bunx ipcbus request /ipcbus/echo '{"a":1}' --path /tmp/app.sock   # {"a":1}
 * bunx ipcbus request /nope --path /tmp/app.sock; echo $?             # 5
 * ```
 *
 * @example From TypeScript
 * ```ts
 * import { main } from "@ipcbus/ipcbus/cli";
 * const status = await main(["peers", "--path", "/tmp/app.sock"]);
 * ```
 *
 * @module
 */
import { main } from "./src/cli/main.ts";
import { argv, exit, exitQuietlyOnClosedStdout } from "./src/cli/terminal.ts";

export { main } from "./src/cli/main.ts";
export { ExitCode } from "./src/cli/exit_code.ts";

if (import.meta.main) {
  exitQuietlyOnClosedStdout();
  // Exit explicitly: a closed peer may leave timers behind that would hold the process for a while.
  await exit(await main(argv()));
}
