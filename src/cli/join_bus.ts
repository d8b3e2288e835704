import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { channel, ChannelRole } from "../channel/channel.ts";
import { channelFiles } from "../channel/channel_files.ts";
import { connect } from "../socket/connect.ts";
import { ConnectError } from "../errors.ts";
import type { Peer } from "../bus/peer.ts";
import type { CliOptions, Command } from "./cli_args.ts";
import { joinError, UsageError } from "./exit_code.ts";
import { env } from "./terminal.ts";

/** Milliseconds a one-shot command waits to reach a hub. */
export const JOIN_TIMEOUT_MS = 5000;

/** A bus on this machine, from `--path` or `--channel`/`--dir`. */
export type LocalAddress = { path: string; token?: string } | { channel: string; dir?: string };

/** Where the bus is: on this machine, or over NATS from `--nats`/`--bus`. */
export type BusAddress = LocalAddress | { nats: string[]; bus?: string; token?: string };

/**
 * The bus the options name.
 *
 * @param options Parsed options.
 * @param command The subcommand, for the usage hint.
 * @param required Whether the subcommand needs one (bench does not).
 * @returns The address, or undefined when none is given and none is required.
 * @throws {UsageError} when both or (if required) neither of `--path` and `--channel` is given,
 * or an option of one is given with the other.
 */
export function busAddress(options: CliOptions, command: Command, required = true): LocalAddress | undefined {
  if (options.path !== undefined && options.channel !== undefined) {
    throw new UsageError("Give --path or --channel, not both", command);
  }
  if (options.dir !== undefined && options.channel === undefined) {
    throw new UsageError("Option --dir needs --channel", command);
  }
  if (options.channel !== undefined) {
    if (options.token !== undefined) {
      throw new UsageError("Option --token needs --path: a channel's token is in its token file", command);
    }
    return { channel: options.channel, ...(options.dir === undefined ? {} : { dir: options.dir }) };
  }
  if (options.path !== undefined) {
    const token = options.token ?? env("IPCBUS_TOKEN");
    return { path: options.path, ...(token ? { token } : {}) };
  }
  if (required) throw new UsageError("No bus given: use --path P or --channel NAME", command);
  if (options.name !== undefined || options.token !== undefined) {
    throw new UsageError("Options --name and --token need --path or --channel", command);
  }
  return undefined;
}

/**
 * The bus the options name, over NATS (`--nats`, `--bus`) or on this machine.
 *
 * @param options Parsed options.
 * @param command The subcommand, for the usage hint.
 * @returns The address.
 * @throws {UsageError} when more or fewer than one of `--path`, `--channel` and `--nats` is given, or `--bus` without `--nats`.
 */
export function anyBusAddress(options: CliOptions, command: Command): BusAddress {
  if (options.bus !== undefined && options.nats === undefined) {
    throw new UsageError("Option --bus needs --nats", command);
  }
  if (options.nats === undefined) {
    if (options.path === undefined && options.channel === undefined) {
      throw new UsageError("No bus given: use --path P, --channel NAME or --nats URL", command);
    }
    return busAddress(options, command)!;
  }
  if (options.path !== undefined || options.channel !== undefined || options.dir !== undefined) {
    throw new UsageError("Give one of --path, --channel and --nats", command);
  }
  if (options.nats.length === 0) throw new UsageError("Invalid --nats: expected a server URL", command);
  const token = options.token ?? env("IPCBUS_TOKEN");
  return {
    nats: options.nats,
    ...(options.bus === undefined ? {} : { bus: options.bus }),
    ...(token ? { token } : {}),
  };
}

/** Describes an address for messages: the socket path, `channel NAME`, or `bus NAME at URL…`. */
export function describeAddress(address: BusAddress): string {
  if ("nats" in address) return `bus ${address.bus ?? "ipcbus"} at ${address.nats.join(",")}`;
  return "path" in address ? address.path : `channel ${address.channel}`;
}

/**
 * Joins the bus as a peer: `connect()` for a path, or a channel member with
 * role `client`, so that a one-shot command never ends up hosting the hub
 * (with `auth` when the channel has a token file).
 *
 * @param address Where the bus is.
 * @param name Peer name, if any.
 * @returns The connected peer.
 * @throws {ConnectError} when no hub answers within {@linkcode JOIN_TIMEOUT_MS}, or it refuses the handshake.
 * @throws {AuthError} when the hub refuses the token.
 */
export async function joinBus(address: BusAddress, name: string | undefined): Promise<Peer> {
  const where = describeAddress(address);
  if ("nats" in address) {
    // Loaded only when asked for: the local CLI never loads NATS code.
    const { connect: connectNats } = await import("../nats/nats_connect.ts");
    try {
      return await connectNats({
        servers: address.nats,
        connectTimeout: JOIN_TIMEOUT_MS,
        ...(address.bus === undefined ? {} : { bus: address.bus }),
        ...(name === undefined ? {} : { name }),
        ...(address.token === undefined ? {} : { auth: { token: address.token } }),
      });
    } catch (err) {
      throw err instanceof TypeError ? new UsageError(err.message) : joinError(err, where);
    }
  }
  if ("path" in address) {
    try {
      return await connect({
        path: address.path,
        timeout: JOIN_TIMEOUT_MS,
        ...(name === undefined ? {} : { name }),
        ...(address.token === undefined ? {} : { auth: { token: address.token } }),
      });
    } catch (err) {
      if (err instanceof ConnectError) {
        throw new ConnectError(`${err.message} (is a hub running? start one with: ipcbus hub --path ${address.path})`, {
          cause: err,
        });
      }
      throw joinError(err, where);
    }
  }
  const files = channelFiles(address.channel, address.dir);
  // No member has ever run there (or the last one cleaned up): waiting for a
  // hub that nobody will start would only delay the same answer.
  if (!existsSync(files.socket) && !existsSync(files.lock)) {
    throw new ConnectError(
      `Cannot join channel ${address.channel}: no socket or lock file in ${
        dirname(files.socket)
      } (is a member running? start one with: ipcbus hub --channel ${address.channel})`,
    );
  }
  let member;
  try {
    // A channel that requires auth has a token file beside its socket: present it when it is there.
    const auth = existsSync(files.token);
    member = channel(address.channel, {
      role: ChannelRole.Client,
      connectTimeout: JOIN_TIMEOUT_MS,
      auth,
      ...(address.dir === undefined ? {} : { dir: address.dir }),
      ...(name === undefined ? {} : { name }),
    });
  } catch (err) {
    // Only a bad channel name or directory gets here: the join itself happens in `ready`.
    throw err instanceof TypeError ? new UsageError(err.message) : err;
  }
  try {
    await member.ready;
  } catch (err) {
    await member.close();
    throw joinError(err, where);
  }
  return member;
}
