import { listen } from "../transport/listen.ts";
import { socketInode } from "../transport/socket_path.ts";
import { addBuiltinRoutes } from "../bus/builtin_routes.ts";
import { type Hub, makeHub, startHub } from "../bus/hub.ts";
import { BUS_DEFAULTS, type SocketWatch } from "../bus/hub_settings.ts";
import {
  authToken,
  queueLimits,
  type QueueOptions,
  type SlowConsumerOptions,
  slowConsumerTimeout,
} from "../bus/queue_options.ts";

/** Options of {@linkcode serve}. */
export interface ServeOptions extends QueueOptions, SlowConsumerOptions {
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
  const timeout = slowConsumerTimeout(options);
  const listener = await listen(options.path, { mode: options.mode ?? 0o600 });
  const hub = makeHub(listener, {
    slowConsumerTimeout: timeout,
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
    await startHub(hub);
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
