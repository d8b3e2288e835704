/**
 * The types a {@linkcode Peer}'s user meets: handler contexts, options,
 * stats, and the settings `connect()`, `serve()` and `channel()` build.
 *
 * @module
 */
import type { DeliveryHost, DeliveryPolicy } from "./link.ts";

/** What an alert handler receives besides the data. */
export interface AlertContext {
  /** The alert's name. */
  name: string;
  /** Id of the sending peer. */
  sender: number;
  /** OS process id of the sending peer. */
  senderPid: number;
  /** Sends an alert back to the sender. */
  reply(name: string, data?: unknown): void;
}

/** Handles one named alert. */
export type AlertHandler = (data: unknown, ctx: AlertContext) => void | Promise<void>;

/** What a request handler receives. */
export interface RequestContext {
  /** The route requested. */
  route: string;
  /** The request's data. */
  data: unknown;
  /** The request's data as it arrived: the CBOR bytes the requester wrote (a view; do not modify it). */
  payload: Uint8Array;
  /** Id of the requesting peer. */
  sender: number;
  /** OS process id of the requesting peer. */
  senderPid: number;
}

/** Serves one route: returns the response, or throws to answer with an error. */
export type RequestHandler = (req: RequestContext) => unknown;

/** Options of {@linkcode Peer.request}. */
export interface RequestOptions {
  /** Peer id or name to ask; without it the hub picks a peer that handles the route. */
  to?: number | string;
  /** Milliseconds before rejecting with `TimeoutError`; defaults to the peer's `requestTimeout`. */
  timeout?: number;
  /** Aborting rejects the request with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of {@linkcode Peer.subscribe}. */
export interface SubscribeOptions {
  /**
   * Messages buffered for a slow consumer; past it the oldest is dropped
   * and counted in `stats().dropped.subscriber_overflow`.
   *
   * @default {1024}
   */
  bufferSize?: number;
}

/** A peer's own counters. */
export interface PeerStats {
  /** Alerts this peer sent. */
  alertsSent: number;
  /** Alerts this peer received. */
  alertsReceived: number;
  /** Requests this peer made. */
  requestsSent: number;
  /** Requests this peer served. */
  requestsServed: number;
  /** Requests awaiting an answer. */
  pendingRequests: number;
  /** Frames waiting to be written. */
  queuedMessages: number;
  /** Bytes waiting to be written. */
  queuedBytes: number;
  /** Messages dropped or refused, by reason. */
  dropped: Record<string, number>;
}

/** Internal settings of a {@linkcode Peer}, from `connect()`, `serve()` or `channel()`. */
export interface PeerSettings {
  name?: string;
  requestTimeout: number;
  maxQueueMessages: number;
  maxQueueBytes: number;
  maxFrameBytes: number;
  dropOldestBroadcasts: boolean;
  token?: string;
  /** Hub-internal: the hub's own peer asks for id 0. */
  id?: number;
  /** The id to ask the hub for at the first handshake. */
  requestedId?: number;
  /**
   * A delivery policy (channels: exactly-once alerts across hub failover),
   * with the calls queued while away (`queueLimit`) and how long members
   * that did not come back stay in view (`graceMs`).
   */
  delivery?: { policy: (host: DeliveryHost) => DeliveryPolicy; queueLimit: number; graceMs: number };
}
