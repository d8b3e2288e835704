import { channel, ChannelRole } from "../channel/channel.ts";
import type { ChannelPeer } from "../channel/channel.ts";
import { serve } from "../socket/serve.ts";
import type { Peer } from "../bus/peer.ts";
import type { PeerInfo } from "../bus/protocol.ts";
import { runtime } from "../transport/runtime.ts";
import type { CliArgs } from "./cli_args.ts";
import { expectArguments } from "./command_data.ts";
import { errorLine, ExitCode, UsageError } from "./exit_code.ts";
import { busAddress } from "./join_bus.ts";
import { toJson } from "./json_value.ts";
import { exit, pid, waitForSignal } from "./terminal.ts";
import { LogLines } from "./log_lines.ts";

/** A second Ctrl-C while closing quits at once, as shells report a SIGINT death. */
const FORCED_EXIT = 130;
/** How long a closed hub waits for its last log lines to be written before it exits. */
const CLOSE_FLUSH_MS = 1000;

/**
 * `ipcbus hub`: runs a hub in the foreground and logs joins and leaves,
 * one line each, until SIGINT or SIGTERM closes it gracefully.
 *
 * @param args The parsed command line.
 * @returns The exit status.
 */
export async function hubCommand(args: CliArgs): Promise<number> {
  expectArguments("hub", args.positionals, []);
  const { options } = args;
  const address = busAddress(options, "hub")!;
  const log = new HubLog(options.json);
  const signals = waitForSignal();
  try {
    let close: () => Promise<void>;
    if ("path" in address) {
      if (options.name !== undefined) {
        throw new UsageError("Option --name needs --channel: a hub's own peer has no name", "hub");
      }
      if (options.auth) throw new UsageError("Option --auth needs --channel: give a hub at --path a --token", "hub");
      const hub = await serve({
        path: address.path,
        ...(options.mode === undefined ? {} : { mode: options.mode }),
        ...(address.token === undefined ? {} : { auth: { token: address.token } }),
      });
      log.follow(hub.peer);
      // The hub's own errors: connections dropped for bad frames, a deleted socket file rebound.
      log.errorsOf(hub);
      log.ready({ path: address.path });
      close = () => hub.close();
    } else {
      if (options.mode !== undefined) {
        throw new UsageError("Option --mode needs --path: channel sockets are 600", "hub");
      }
      const member = channel(address.channel, {
        role: ChannelRole.Hub,
        auth: options.auth,
        ...(address.dir === undefined ? {} : { dir: address.dir }),
        ...(options.name === undefined ? {} : { name: options.name }),
      });
      log.follow(member);
      try {
        await member.ready;
      } catch (err) {
        await member.close();
        throw err;
      }
      serveBuiltinRoutes(member);
      log.ready({ path: member.path, channel: address.channel, id: member.id });
      close = () => member.close();
    }
    const signal = await signals.received;
    signals.onRepeat(() => void exit(FORCED_EXIT));
    log.event("closing", { signal }, `closing (${signal}); a second Ctrl-C quits at once`);
    await close();
    log.event("closed", {}, "closed");
    // Bounded: a stdout that nobody reads must not keep the process from exiting.
    await log.flush(CLOSE_FLUSH_MS);
    return ExitCode.Ok;
  } finally {
    signals.dispose();
  }
}

/**
 * A channel's hub has no peer of its own to serve `/ipcbus/*`, so the member
 * hosting it serves them, and `stats` and `bench` work against the channel.
 */
function serveBuiltinRoutes(member: ChannelPeer): void {
  member.handle("/ipcbus/echo", ({ data }) => data);
  member.handle("/ipcbus/delay", async ({ data }) => {
    const delay = (data as { delay?: unknown } | null)?.delay;
    if (typeof delay !== "number" || !(delay >= 0) || delay > 600_000) {
      throw new RangeError(`Invalid delay: expected { delay: ms } with 0 <= ms <= 600000, got ${JSON.stringify(data)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    return { delay };
  });
  member.handle("/ipcbus/stats", () => {
    if (!member.hub) throw new Error(`This member no longer hosts the hub of channel ${member.channel}`);
    return member.hub.stats();
  });
}

/**
 * The hub's log: one line per event, for people or (`--json`) as JSON lines,
 * on stdout; errors on stderr. Neither ever holds the hub up (see LogLines).
 */
class HubLog {
  readonly #json: boolean;
  readonly #out: LogLines;
  readonly #err = new LogLines(
    2,
    (lines) => `${new Date().toISOString()} ipcbus: ${lines} error lines dropped: stderr was not read fast enough`,
    // Nowhere left to say it.
    () => {},
  );

  constructor(json: boolean) {
    this.#json = json;
    this.#out = new LogLines(
      1,
      (lines) =>
        this.#text("dropped", { lines }, `ipcbus: ${lines} log lines dropped: stdout was not read fast enough`),
      // The hub serves its peers whether or not anybody reads its log.
      (err) => {
        const code = (err as { code?: unknown } | null)?.code ?? errorLine(err);
        this.#err.write(
          `${new Date().toISOString()} ipcbus: stdout is gone (${code}); the hub goes on, without its log`,
        );
      },
    );
  }

  /** Waits, at most `ms`, for the lines still queued to be written. */
  async flush(ms: number): Promise<void> {
    await Promise.all([this.#out.flush(ms), this.#err.flush(ms)]);
  }

  errorsOf(target: EventTarget): void {
    target.addEventListener(
      "error",
      (e) => this.#err.write(`${new Date().toISOString()} ${errorLine((e as CustomEvent).detail)}`),
    );
  }

  follow(peer: Peer): void {
    peer.addEventListener("peerjoin", (e) => {
      const info = (e as CustomEvent<PeerInfo>).detail;
      this.event("join", { peer: publicInfo(info) }, `join   ${describePeer(info)}`);
    });
    peer.addEventListener("peerleave", (e) => {
      const { reason, ...info } = (e as CustomEvent<PeerInfo & { reason: string }>).detail;
      this.event("leave", { peer: publicInfo(info), reason }, `leave  ${describePeer(info)}: ${reason}`);
    });
    this.errorsOf(peer);
  }

  ready(where: { path: string; channel?: string; id?: number }): void {
    const on = where.channel === undefined
      ? where.path
      : `channel ${where.channel} at ${where.path} (member ${where.id})`;
    const fields = { ...where, pid, runtime: runtime ?? "unknown" };
    this.#out.write(
      this.#json
        ? this.#text("ready", fields, "")
        : `ipcbus hub ready on ${on} (pid ${pid}, ${fields.runtime}); Ctrl-C to stop`,
    );
  }

  event(event: string, fields: Record<string, unknown>, text: string): void {
    this.#out.write(this.#text(event, fields, text));
  }

  /** The line of an event: JSON with `--json`, else the time and `text`. */
  #text(event: string, fields: Record<string, unknown>, text: string): string {
    const time = new Date().toISOString();
    return this.#json ? toJson({ time, event, ...fields }) : `${time} ${text}`;
  }
}

function publicInfo({ inc: _inc, ...info }: PeerInfo): Omit<PeerInfo, "inc"> {
  return info;
}

function describePeer(info: PeerInfo): string {
  return `peer ${info.id}${
    info.name === undefined ? "" : ` ${JSON.stringify(info.name)}`
  } pid ${info.pid} ${info.runtime}`;
}
