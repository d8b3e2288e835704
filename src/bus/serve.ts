import { listen } from "../transport/listen.ts";
import { positiveInteger } from "../codec/frame_encoder_stream.ts";
import { checkMaxFrameBytes } from "../codec/frame_parser.ts";
import { EncodedAnswer } from "./encoded_answer.ts";
import { BUS_DEFAULTS, Hub, type SocketWatch } from "./hub.ts";
import { socketInode } from "../transport/socket_path.ts";
import type { Peer } from "./peer.ts";

/** Limits on a queue of frames waiting for one slow peer. */
export interface QueueOptions {
  /**
   * Frames queued for one connection, at most.
   *
   * @default {16384}
   */
  maxQueueMessages?: number;
  /**
   * Bytes queued for one connection, at most.
   *
   * @default {4194304}
   */
  maxQueueBytes?: number;
  /**
   * Largest frame body accepted or sent.
   *
   * @default {67108864}
   */
  maxFrameBytes?: number;
}

/** Options of {@linkcode serve}. */
export interface ServeOptions extends QueueOptions {
  /** Socket file path, at most 107 bytes. */
  path: string;
  /**
   * Socket file permission bits; `0o660` lets the file's group connect.
   *
   * @default {0o600}
   */
  mode?: number;
  /**
   * Default for `Hub.close()`'s timeout, in ms.
   *
   * @default {2000}
   */
  closeTimeout?: number;
  /** Shared secret every peer must present in its handshake. */
  auth?: { token: string };
  /**
   * Default request timeout of the hub's own peer, in ms.
   *
   * @default {10000}
   */
  requestTimeout?: number;
}

/**
 * Starts a hub on a Unix socket. Serves the built-in routes `/ipcbus/echo`,
 * `/ipcbus/delay` (`{ delay: ms }`) and `/ipcbus/stats`.
 *
 * @param options Socket path, mode, limits, auth.
 * @returns The running hub.
 * @throws {AddressInUseError} when a live hub serves the path.
 *
 * @example
 * ```ts
 * import { serve } from "@ipcbus/ipcbus";
 * const hub = await serve({ path: "/tmp/app.sock" });
 * hub.peer.on("hello", (data, ctx) => ctx.reply("hi", data));
 * ```
 */
export async function serve(options: ServeOptions): Promise<Hub> {
  if (options === null || typeof options !== "object" || typeof options.path !== "string") {
    throw new TypeError("Invalid options: serve() needs { path }");
  }
  const limits = queueLimits(options);
  const listener = await listen(options.path, { mode: options.mode ?? 0o600 });
  const hub = new Hub(listener, {
    ...limits,
    handshakeTimeout: BUS_DEFAULTS.handshakeTimeout,
    closeTimeout: options.closeTimeout ?? 2000,
    socketWatch: watchSocket(options.path, options.mode ?? 0o600),
    ...(options.auth ? { token: authToken(options.auth) } : {}),
  }, {
    ...limits,
    requestTimeout: options.requestTimeout ?? BUS_DEFAULTS.requestTimeout,
    dropOldestBroadcasts: false,
  });
  try {
    await hub.start();
  } catch (err) {
    await hub.close({ timeout: 0 });
    throw err;
  }
  addBuiltinRoutes(hub.peer, hub);
  return hub;
}

/** Watches the socket file at `path` once a second, and binds a new one if it is deleted. */
export function watchSocket(path: string, mode: number): SocketWatch {
  let inode = socketInode(path);
  return {
    intervalMs: 1000,
    isBound: () => socketInode(path) === inode,
    relisten: async () => {
      const listener = await listen(path, { mode });
      inode = socketInode(path);
      return listener;
    },
  };
}

/** Checks and fills in queue and frame limits. */
export function queueLimits(
  options: QueueOptions,
): { maxQueueMessages: number; maxQueueBytes: number; maxFrameBytes: number } {
  return {
    maxQueueMessages: positiveInteger("maxQueueMessages", options.maxQueueMessages ?? BUS_DEFAULTS.maxQueueMessages),
    maxQueueBytes: positiveInteger("maxQueueBytes", options.maxQueueBytes ?? BUS_DEFAULTS.maxQueueBytes),
    maxFrameBytes: checkMaxFrameBytes(options.maxFrameBytes ?? BUS_DEFAULTS.maxFrameBytes),
  };
}

/** Checks an `auth` option. */
export function authToken(auth: { token: string }): string {
  if (typeof auth?.token !== "string" || auth.token.length === 0) {
    throw new TypeError("Invalid auth option: expected { token: non-empty string }");
  }
  return auth.token;
}

/** The built-in routes every hub serves, and the patterns to remove them. */
export const BUILTIN_ROUTES = ["/ipcbus/echo", "/ipcbus/delay", "/ipcbus/stats"] as const;

/** Serves `/ipcbus/echo`, `/ipcbus/delay` and `/ipcbus/stats` (of `hub`) from `peer`. */
export function addBuiltinRoutes(peer: Peer, hub: Hub): void {
  // The payload's own bytes go back, so the echo is byte-identical whatever CBOR the requester wrote.
  peer.handle("/ipcbus/echo", ({ payload }) => new EncodedAnswer(payload));
  peer.handle("/ipcbus/delay", async ({ data }) => {
    const delay = (data as { delay?: unknown })?.delay;
    if (typeof delay !== "number" || !(delay >= 0) || delay > 600_000) {
      throw new RangeError(`Invalid delay: expected { delay: ms } with 0 <= ms <= 600000, got ${JSON.stringify(data)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    return { delay };
  });
  peer.handle("/ipcbus/stats", () => hub.stats());
}
