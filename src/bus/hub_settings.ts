import { DEFAULT_MAX_FRAME_BYTES } from "../codec/frame_parser.ts";
import type { Listener } from "../transport/connection.ts";
import type { Hello } from "./protocol.ts";

/** The hub's counters, from {@linkcode Hub.stats}. */
export interface HubStats {
  /** Connected peers, the hub's own not counted. */
  peers: number;
  /** Route patterns registered by all peers, the hub's own included. */
  handlers: number;
  /** Peers that completed a handshake since start. */
  peersJoined: number;
  /** Peers that left since start. */
  peersLeft: number;
  /** Frames read from peers. */
  framesIn: number;
  /** Frames written to peers. */
  framesOut: number;
  /** Bytes read from peers, headers included. */
  bytesIn: number;
  /** Bytes written to peers, headers included. */
  bytesOut: number;
  /** Alerts routed (a broadcast counts once). */
  alerts: number;
  /** Requests routed or refused. */
  requests: number;
  /** Responses forwarded to their requester. */
  responses: number;
  /** Connections dropped for a protocol error, and failures to accept (out of file descriptors …). */
  errors: number;
  /** Peers disconnected as slow consumers (`slowConsumer.timeout`). */
  slowConsumers: number;
  /** Messages not delivered, by reason. */
  dropped: Record<string, number>;
  /** Times the socket file was found deleted and bound anew. */
  socketRebinds: number;
  /** Requests forwarded and not yet answered. */
  inFlightRequests: number;
  /** Milliseconds since the hub started. */
  uptimeMs: number;
}

/** Settings of a {@linkcode Hub}. */
export interface HubSettings {
  maxFrameBytes: number;
  maxQueueMessages: number;
  maxQueueBytes: number;
  handshakeTimeout: number;
  closeTimeout: number;
  /**
   * A peer whose queue has no room and took nothing for this long is
   * disconnected as a slow consumer (default `BUS_DEFAULTS.slowConsumerTimeout`).
   */
  slowConsumerTimeout?: number;
  token?: string;
  /** Checks that the socket file is still the hub's, and binds a new one if not. */
  socketWatch?: SocketWatch;
  /** Channels host no id-0 peer: the hosting member is an ordinary member. */
  ownPeer?: boolean;
  /**
   * Picks the id of a joining peer; the channel layer keeps names' ids across
   * restarts. `from`: the lowest id no live peer holds (every id below it is held).
   */
  assignId?: (hello: Hello, isFree: (id: number) => boolean, from: number) => number | undefined;
}

/** How the hub notices its socket file was deleted, and replaces it. */
export interface SocketWatch {
  intervalMs: number;
  isBound(): boolean;
  relisten(): Promise<Listener>;
}

/** Defaults shared by `serve()`, `connect()` and channels. */
export const BUS_DEFAULTS = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxQueueMessages: 16_384,
  maxQueueBytes: 4 * 1024 * 1024,
  requestTimeout: 10_000,
  connectTimeout: 5_000,
  handshakeTimeout: 10_000,
  slowConsumerTimeout: 10_000,
} as const;

/** The counters a hub starts with; `stats()` adds the ones it computes. */
export function hubCounters(): Pick<
  HubStats,
  | "peersJoined"
  | "peersLeft"
  | "framesIn"
  | "bytesIn"
  | "alerts"
  | "requests"
  | "responses"
  | "errors"
  | "slowConsumers"
  | "dropped"
> {
  return {
    peersJoined: 0,
    peersLeft: 0,
    framesIn: 0,
    bytesIn: 0,
    alerts: 0,
    requests: 0,
    responses: 0,
    errors: 0,
    slowConsumers: 0,
    dropped: {},
  };
}
