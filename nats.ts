/**
 * The ipcbus bus over NATS: the same {@linkcode Peer} API (`send`,
 * `broadcast`, `request`, `handle`, `peers()` …) between processes on
 * several machines, carried by a NATS server or cluster with JetStream on.
 * A separate entry point, so that users of the Unix-socket bus never load
 * NATS code.
 *
 * What differs from the local bus: delivery is at most once (core NATS);
 * there is no peer 0 (ids start at 1); a peer that closes leaves every view
 * at once, one that dies leaves within about 2.5 s. PROTOCOL.md's "NATS"
 * section describes the subjects and messages.
 *
 * @example Requests across machines
 * ```ts
 * import { connect, NoResponderError } from "@ipcbus/ipcbus/nats";
 * const worker = await connect({ servers: "nats://10.0.0.1:4222", bus: "app", name: "renderer" });
 * worker.handle("/render", ({ data }) => ({ html: `<p>${data}</p>` }));
 *
 * const client = await connect({ servers: ["nats://10.0.0.2:4222", "nats://10.0.0.3:4222"], bus: "app" });
 * try {
 *   console.log(await client.request("/render", 3, { timeout: 1000 }));
 * } catch (err) {
 *   if (err instanceof NoResponderError) console.log("nobody renders");
 * }
 * client.send("renderer", "reload", { version: 2 });
 * ```
 *
 * @module
 */
export { connect } from "./src/nats/nats_connect.ts";
export type { NatsConnectOptions } from "./src/nats/nats_connect.ts";
export type { QueueOptions } from "./src/bus/queue_options.ts";
export { Peer } from "./src/bus/peer.ts";
export type {
  AlertContext,
  AlertHandler,
  DrainOptions,
  PeerStats,
  RequestContext,
  RequestHandler,
  RequestOptions,
  SendOptions,
  SubscribeOptions,
  UndeliverableDetail,
} from "./src/bus/peer.ts";
export { TypedEventTarget } from "./src/bus/peer_events.ts";
export type {
  ConnectDetail,
  DisconnectDetail,
  PeerEventMap,
  PeerLeaveDetail,
  PlainListener,
  ReconnectDetail,
  TypedListener,
} from "./src/bus/peer_events.ts";
export type { MessageHeaders } from "./src/bus/headers.ts";
export { reply } from "./src/bus/reply.ts";
export type { Reply, ReplyOptions } from "./src/bus/reply.ts";
export type { SubscriptionMessage } from "./src/bus/subscription.ts";
export type { PeerInfo } from "./src/bus/protocol.ts";
export type { RoutePattern } from "./src/bus/route_pattern.ts";
export {
  AuthError,
  ClosedError,
  ConnectError,
  ErrorCode,
  FrameTooLargeError,
  IpcError,
  NoResponderError,
  NoSuchPeerError,
  PeerLeftError,
  QueueFullError,
  RemoteError,
  TimeoutError,
} from "./src/errors.ts";
