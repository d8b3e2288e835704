import { dial } from "../transport/listen.ts";
import { BUS_DEFAULTS } from "../bus/hub_settings.ts";
import { Peer } from "../bus/peer.ts";
import { authToken, queueLimits, type QueueOptions } from "../bus/queue_options.ts";

/** Options of {@linkcode connect}. */
export interface ConnectOptions extends QueueOptions {
  /** The hub's socket path. */
  path: string;
  /** A name other peers can send to; unique among live peers. */
  name?: string;
  /**
   * Milliseconds to wait for the connection and handshake.
   *
   * @default {5000}
   */
  timeout?: number;
  /**
   * Default timeout of `request()`, in ms.
   *
   * @default {10000}
   */
  requestTimeout?: number;
  /** The hub's shared secret, if it requires one. */
  auth?: { token: string };
  /**
   * When this peer falls behind, the hub drops the oldest broadcasts queued
   * for it (counted) instead of refusing new ones.
   *
   * @default {false}
   */
  dropOldestBroadcasts?: boolean;
}

/**
 * Connects a peer to the hub at `options.path`.
 *
 * @param options Path, name, timeouts, limits, auth.
 * @returns The connected peer, with its id assigned.
 * @throws {ConnectError} when no hub answers at the path.
 * @throws {AuthError} when the hub refuses the token.
 * @throws {TimeoutError} when the handshake takes longer than `timeout`.
 *
 * @example
 * ```ts
 * import { connect } from "@ipcbus/ipcbus";
 * const peer = await connect({ path: "/tmp/app.sock", name: "worker-a" });
 * console.log(peer.id);
 * ```
 */
export async function connect(options: ConnectOptions): Promise<Peer> {
  if (options === null || typeof options !== "object" || typeof options.path !== "string") {
    throw new TypeError("Invalid options: connect() needs { path }");
  }
  // The same rule as the hub's (protocol.ts): 1 to 256 characters, refused here before any connection.
  if (
    options.name !== undefined &&
    (typeof options.name !== "string" || options.name.length === 0 || options.name.length > 256)
  ) {
    throw new TypeError(`Invalid name: expected a string of 1 to 256 characters, got ${JSON.stringify(options.name)}`);
  }
  const timeout = options.timeout ?? BUS_DEFAULTS.connectTimeout;
  const peer = new Peer({
    ...queueLimits(options),
    requestTimeout: options.requestTimeout ?? BUS_DEFAULTS.requestTimeout,
    dropOldestBroadcasts: options.dropOldestBroadcasts === true,
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(options.auth ? { token: authToken(options.auth) } : {}),
  });
  const deadline = Date.now() + timeout;
  const conn = await dial(options.path, { timeout });
  // One budget for dial and handshake together.
  await peer.attach(conn, Math.max(1, deadline - Date.now()));
  return peer;
}
