import { BUS_DEFAULTS } from "../bus/hub_settings.ts";
import { makePeer, Peer } from "../bus/peer.ts";
import { attachPeerLink } from "../bus/attach_peer.ts";
import { queueLimits, type QueueOptions } from "../bus/queue_options.ts";
import { NatsLink } from "./nats_link.ts";
import { busSubjects, DEFAULT_BUS } from "./nats_protocol.ts";

/** Options of {@linkcode connect} (NATS). */
export interface NatsConnectOptions extends QueueOptions {
  /** NATS server URL(s), e.g. `"nats://127.0.0.1:4222"`; the client learns the rest of a cluster from them. */
  servers: string | string[];
  /**
   * The bus: peers on buses with different names never see each other's
   * traffic. 1–64 of `A-Z a-z 0-9 _ -`.
   *
   * @default {"ipcbus"}
   */
  bus?: string;
  /** A name other peers can send to; unique among live peers of the bus. */
  name?: string;
  /** Credentials passed to NATS. */
  auth?: { token: string } | { user: string; pass: string };
  /**
   * Default timeout of `request()`, in ms.
   *
   * @default {10000}
   */
  requestTimeout?: number;
  /**
   * Milliseconds for the connection, the id and the first view of the peers
   * together. Reclaiming the name of a peer that died without closing takes
   * about 3 s of it.
   *
   * @default {10000}
   */
  connectTimeout?: number;
}

/** A connect takes longer over NATS: a JetStream bucket, a lease and the first presence round. */
const NATS_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Connects a peer to a bus carried by NATS: the same {@linkcode Peer} as the
 * Unix-socket bus, across machines. Ids are unique positive integers across
 * the bus (there is no peer 0); delivery is at most once.
 *
 * @param options Servers, bus, name, auth, timeouts, limits.
 * @returns The connected peer, with its id assigned.
 * @throws {ConnectError} when no NATS server answers, or JetStream is off.
 * @throws {AuthError} when NATS refuses the credentials.
 * @throws {TimeoutError} when joining takes longer than `connectTimeout`.
 * @throws {IpcError} with code `name_taken` when a live peer of the bus has the name.
 *
 * @example Two workers on one bus
 * ```ts
 * import { connect } from "@ipcbus/ipcbus/nats";
 * const peer = await connect({ servers: "nats://127.0.0.1:4222", bus: "app", name: "worker-a" });
 * peer.handle("/render", ({ data }) => ({ html: `<p>${data}</p>` }));
 * peer.on("reload", (data, ctx) => console.log("reload from", ctx.sender, data));
 * peer.broadcast("reload", { version: 2 });
 * await peer.close();
 * ```
 */
export async function connect(options: NatsConnectOptions): Promise<Peer> {
  if (options === null || typeof options !== "object") {
    throw new TypeError("Invalid options: connect() needs { servers }");
  }
  const servers = typeof options.servers === "string" ? [options.servers] : options.servers;
  if (!Array.isArray(servers) || servers.length === 0 || servers.some((s) => typeof s !== "string" || s === "")) {
    throw new TypeError(`Invalid servers: expected a URL or a non-empty list of URLs, got ${JSON.stringify(servers)}`);
  }
  if (options.name !== undefined && (typeof options.name !== "string" || options.name.length === 0)) {
    throw new TypeError(`Invalid name: expected a non-empty string, got ${JSON.stringify(options.name)}`);
  }
  const subjects = busSubjects(options.bus ?? DEFAULT_BUS);
  const limits = queueLimits(options);
  const peer = makePeer({
    ...limits,
    requestTimeout: options.requestTimeout ?? BUS_DEFAULTS.requestTimeout,
    dropOldestBroadcasts: false,
    ...(options.name === undefined ? {} : { name: options.name }),
  }, () => new Peer());
  await attachPeerLink(
    peer,
    new NatsLink({
      servers,
      subjects,
      connectTimeout: options.connectTimeout ?? NATS_CONNECT_TIMEOUT_MS,
      ...limits,
      ...(options.name === undefined ? {} : { name: options.name }),
      ...(options.auth === undefined ? {} : { auth: options.auth }),
    }),
  );
  return peer;
}
