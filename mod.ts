/**
 * ipcbus: messaging between processes on one machine over Unix domain
 * sockets, for Deno and Bun.
 *
 * @example Frames over a socket
 * ```ts
 * import { dial, FrameEncoderStream } from "@ipcbus/ipcbus";
 * const conn = await dial("/tmp/app.sock");
 * await ReadableStream.from([{ hello: "world" }]).pipeThrough(new FrameEncoderStream()).pipeTo(conn.writable);
 * ```
 *
 * @module
 */
export {
  AddressInUseError,
  AuthError,
  ClosedError,
  ConnectError,
  DataError,
  ErrorCode,
  FrameTooLargeError,
  HubExistsError,
  IdTakenError,
  IpcError,
  NameTakenError,
  NoResponderError,
  NoSuchPeerError,
  PeerLeftError,
  PermissionError,
  ProtocolError,
  QueueFullError,
  RemoteError,
  TimeoutError,
  UnsupportedRuntimeError,
} from "./src/errors.ts";
export type { DataErrorOptions, IpcErrorOptions, RemoteErrorOptions } from "./src/errors.ts";
export type { Connection, DialOptions, Listener, ListenOptions } from "./src/transport/connection.ts";
export { dial, listen } from "./src/transport/listen.ts";
export type { RuntimeName } from "./src/transport/runtime.ts";
export { memoryConnectionPair } from "./src/transport/memory.ts";
export { FrameEncoderStream } from "./src/codec/frame_encoder_stream.ts";
export type { FrameEncoderStreamOptions } from "./src/codec/frame_encoder_stream.ts";
export { FrameDecoderStream } from "./src/codec/frame_decoder_stream.ts";
export type { FrameDecoderStreamOptions } from "./src/codec/frame_decoder_stream.ts";
export { serve } from "./src/socket/serve.ts";
export type { ServeOptions } from "./src/socket/serve.ts";
export type { QueueOptions, SlowConsumerOptions } from "./src/bus/queue_options.ts";
export { connect } from "./src/socket/connect.ts";
export type { ConnectOptions } from "./src/socket/connect.ts";
export { Hub } from "./src/bus/hub.ts";
export type { HubStats } from "./src/bus/hub_settings.ts";
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
export type { ReconnectOptions } from "./src/bus/reconnect_policy.ts";
export type { MessageHeaders } from "./src/bus/headers.ts";
export { reply } from "./src/bus/reply.ts";
export type { Reply, ReplyOptions } from "./src/bus/reply.ts";
export type { PeerInfo } from "./src/bus/protocol.ts";
export type { RoutePattern } from "./src/bus/route_pattern.ts";
export type { SubscriptionMessage } from "./src/bus/subscription.ts";
export { channel, ChannelPeer, ChannelRole } from "./src/channel/channel.ts";
export type { ChannelEventMap, ChannelOptions, HubChangeDetail } from "./src/channel/channel.ts";
