import type { Command } from "./cli_args.ts";

/** The bus options; `channel` describes --channel, which the hub command uses differently. */
const busOptions = (channel: string) =>
  `Bus options (one of --path or --channel):
  --path P         the hub's socket file
  --channel NAME   ${channel}
  --dir DIR        the channel's directory (default $XDG_RUNTIME_DIR/ipcbus or <tmp>/ipcbus-<uid>)
  --name NAME      join under this peer name (unique among live peers)
  --token T        the hub's auth token (--path only; or set IPCBUS_TOKEN); a channel's
                   token is read from its token file, when it has one
  --debug          print stack traces with errors
  -h, --help       show this help`;

const BUS_OPTIONS = busOptions(
  "a self-hosting channel, joined as a client (never hosts); fails at once\n                   when the channel has neither a socket nor a lock file in its directory",
);

const NATS_OPTIONS = `Over NATS (in place of --path; send, broadcast, request, listen and peers):
  --nats URL[,URL] NATS server(s), e.g. nats://127.0.0.1:4222 (JetStream on)
  --bus NAME       the bus on those servers (default ipcbus)
  --token T        NATS auth token (or set IPCBUS_TOKEN)`;

const DATA = `Data is JSON: the [json] argument, or stdin when it is absent and stdin is not
a terminal (empty stdin means no data). Values received are printed as JSON:
byte strings as base64 strings, bigints as decimal strings, Maps as objects.`;

const EXIT_CODES = `Exit codes:
  0  ok
  1  other error
  2  usage error (unknown subcommand or option, bad value)
  3  cannot connect: no hub at the path or channel, handshake refused, hub gone
  4  timeout: no answer within --timeout
  5  no responder: no peer handles the route
  6  remote error: the handler threw
  7  auth error: the hub refused the token
  8  no such peer: the destination is not connected`;

const TEXT: Record<Command | "main", string> = {
  main: `ipcbus: messaging between processes over Unix domain sockets

Usage: ipcbus <subcommand> [arguments] [options]

Subcommands:
  hub                               run a hub in the foreground, logging joins and leaves
  send <to> <alert> [json]          send one alert to a peer (id or name)
  broadcast <alert> [json]          send one alert to every peer
  request <route> [json]            make a request and print the response as JSON
  listen [alert...]                 print each alert received (all by default) as one JSON line
  peers                             list the connected peers
  stats                             show the hub's counters
  bench                             measure request latency and alert throughput
  help [subcommand]                 show help

Run: deno run -A jsr:@ipcbus/ipcbus/cli <subcommand> …   or   bunx ipcbus <subcommand> …

${BUS_OPTIONS}

${EXIT_CODES}`,
  hub: `Usage: ipcbus hub (--path P [--mode 660] [--token T] | --channel NAME [--auth]) [--json]

Runs a hub in the foreground and prints one line per join and leave (errors go
to stderr). Ctrl-C or SIGTERM closes it gracefully (requests in flight finish,
the socket file is removed) and exits 0; a second Ctrl-C exits at once (130).

The first line, once serving, is "ipcbus hub ready on <path> (pid N, <runtime>)";
with --json every line is a JSON object {time, event, ...}.

  --mode BITS      socket file permissions, octal (default 600; 660 lets the group in) (--path only)
  --token T        require this auth token from every peer (--path only; or IPCBUS_TOKEN)
  --channel NAME   host channel NAME (fails if another process hosts it), with the
                   built-in routes /ipcbus/echo, /ipcbus/delay and /ipcbus/stats
  --name NAME      the hosting member's name (--channel only)
  --auth           require a token (--channel only): the host writes <dir>/<NAME>.token,
                   mode 600, and only processes that can read it may join
  --json           print JSON lines

${busOptions("see above: the channel this process hosts")}`,
  send: `Usage: ipcbus send <to> <alert> [json] (--path P | --channel NAME | --nats URL [--bus NAME])

Sends alert <alert> to peer <to> (an id, or a peer name) and exits once the hub
has routed it. Exits 8 when <to> is not connected.

${DATA}

${BUS_OPTIONS}

${NATS_OPTIONS}`,
  broadcast: `Usage: ipcbus broadcast <alert> [json] (--path P | --channel NAME | --nats URL [--bus NAME])

Sends alert <alert> to every connected peer and exits once the hub has routed it.

${DATA}

${BUS_OPTIONS}

${NATS_OPTIONS}`,
  request:
    `Usage: ipcbus request <route> [json] [--to ID] [--timeout MS] (--path P | --channel NAME | --nats URL [--bus NAME])

Asks a peer to serve <route> and prints the response as JSON (indented on a
terminal, one line otherwise). A hub started with serve() or "ipcbus hub"
serves /ipcbus/echo, /ipcbus/delay ({"delay": ms}) and /ipcbus/stats.

  --to ID          ask this peer (id or name); by default the hub picks one
  --timeout MS     give up after MS milliseconds (default 10000): exit 4

Exits 4 on timeout, 5 when nobody handles the route, 6 when the handler threw
(the error's class and message are printed), 8 when --to is not connected.

${DATA}

${BUS_OPTIONS}

${NATS_OPTIONS}`,
  listen: `Usage: ipcbus listen [alert...] (--path P | --channel NAME | --nats URL [--bus NAME])

Joins the bus and prints each alert named on the command line, or every alert
when none is named, as one JSON line
{"time": ISO 8601, "sender": peer id, "name": alert, "data": value}, for piping
into jq. Ctrl-C stops it (exit 0); losing the hub exits 3. A status line goes to
stderr once listening.

${BUS_OPTIONS}

${NATS_OPTIONS}`,
  peers: `Usage: ipcbus peers (--path P | --channel NAME | --nats URL [--bus NAME]) [--json]

Lists the peers connected to the hub (this command's own peer left out): id,
name, OS pid, runtime and time connected. Id 0 is the hub's own peer (a bus over
NATS has none).

  --json           print the list as a JSON array of {id, name, pid, runtime, since}

${BUS_OPTIONS}

${NATS_OPTIONS}`,
  stats: `Usage: ipcbus stats (--path P | --channel NAME) [--json]

Shows the hub's counters (peers, frames and bytes each way, alerts, requests,
drops by reason, uptime), fetched with a request to /ipcbus/stats.

  --json           print the counters as one JSON object

${BUS_OPTIONS}`,
  bench: `Usage: ipcbus bench [--path P | --channel NAME] [--requests N] [--alerts N] [--size BYTES] [--json]

Measures round trips of /ipcbus/echo requests, one at a time (p50, p90, p99,
max), then the throughput of alerts a peer sends to itself through the hub.
Runs against the hub at --path or --channel, or a fresh in-process hub when
neither is given. A progress line goes to stderr while it runs.

  --requests N     round trips to time (default 2000)
  --alerts N       alerts to send (default 20000)
  --size BYTES     bytes of data per request and alert (default 64)
  --json           print the results as one JSON object (times in ms)

${BUS_OPTIONS}`,
  help: `Usage: ipcbus help [subcommand]

Shows the help of ipcbus, or of one subcommand.`,
};

/**
 * The help text of a subcommand, or of `ipcbus` itself.
 *
 * @param command The subcommand; undefined for the overview.
 * @returns The text, without a trailing newline.
 */
export function helpText(command?: Command): string {
  return TEXT[command ?? "main"];
}
