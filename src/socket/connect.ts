import { dial } from "../transport/listen.ts";
import { AuthError, IdTakenError } from "../errors.ts";
import { attachPeer } from "../bus/attach_peer.ts";
import { BUS_DEFAULTS } from "../bus/hub_settings.ts";
import { makePeer, Peer, peerSession } from "../bus/peer.ts";
import type { ReconnectDetail } from "../bus/peer_events.ts";
import { authToken, queueLimits, type QueueOptions } from "../bus/queue_options.ts";
import { type ReconnectOptions, ReconnectPolicy } from "../bus/reconnect_policy.ts";

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
  /**
   * Join the hub again when the connection is lost: `true` for the
   * defaults, or `{ maxAttempts, delay, maxDelay }`. Meanwhile sends are
   * queued (within `maxQueueMessages`/`maxQueueBytes`), the peer asks for
   * its old id back, and its routes are announced again. Events:
   * `disconnect` (`reconnecting: true`), then `connect` and `reconnect`.
   *
   * @default {false}
   */
  reconnect?: boolean | ReconnectOptions;
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
  const policy = ReconnectPolicy.from(options.reconnect);
  const peer = makePeer({
    ...queueLimits(options),
    requestTimeout: options.requestTimeout ?? BUS_DEFAULTS.requestTimeout,
    dropOldestBroadcasts: options.dropOldestBroadcasts === true,
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(options.auth ? { token: authToken(options.auth) } : {}),
    ...(policy ? { reconnects: true } : {}),
  }, () => new Peer());
  await join(peer, options.path, timeout, true);
  if (policy) {
    peer.addEventListener("disconnect", (e) => {
      if (e.detail.reconnecting) void rejoin(peer, options.path, timeout, policy);
    });
  }
  return peer;
}

/** Dials `path` and runs the handshake, within one budget of `timeout` ms. */
async function join(peer: Peer, path: string, timeout: number, askId: boolean): Promise<void> {
  const deadline = Date.now() + timeout;
  const conn = await dial(path, { timeout });
  await attachPeer(peer, conn, Math.max(1, deadline - Date.now()), askId);
}

/**
 * Joins the hub at `path` again after a loss, as `policy` says: the old id
 * first, any id if another peer holds it now. Gives up on an `AuthError`
 * (a retry cannot fix it) or after the last attempt, closing the peer with
 * that error; stops when the peer is closed meanwhile.
 */
async function rejoin(peer: Peer, path: string, timeout: number, policy: ReconnectPolicy): Promise<void> {
  const session = peerSession(peer);
  const previousId = peer.id;
  try {
    const attempts = await policy.run(async (n) => {
      try {
        await join(peer, path, timeout, true);
      } catch (err) {
        if (!(err instanceof IdTakenError)) throw err;
        await join(peer, path, timeout, false);
      }
      return n;
    }, { signal: session.closeSignal, isFatal: (err) => err instanceof AuthError });
    const detail: ReconnectDetail = { id: peer.id, previousId, attempts };
    peer.dispatchEvent(new CustomEvent("reconnect", { detail }));
  } catch (err) {
    if (!session.closeSignal.aborted) session.end(err instanceof Error ? err : new Error(String(err)));
  }
}
