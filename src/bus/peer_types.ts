/**
 * The types a {@linkcode Peer}'s user meets: handler contexts, options,
 * stats, and the settings `connect()`, `serve()` and `channel()` build.
 *
 * @module
 */
import type { MessageHeaders } from "./headers.ts";
import type { DeliveryHost, DeliveryPolicy } from "./link.ts";
import type { Reply } from "./reply.ts";

/** What an alert handler receives besides the data. */
export interface AlertContext {
  /** The alert's name. */
  name: string;
  /** Id of the sending peer. */
  sender: number;
  /** OS process id of the sending peer. */
  senderPid: number;
  /** The alert's headers; empty when it had none. */
  headers: MessageHeaders;
  /** Sends an alert back to the sender. */
  reply(name: string, data?: unknown): void;
}

/**
 * Handles one named alert; `T` is the data's type as the sender promised it
 * (not checked at run time). A thrown error or a rejected promise goes to
 * the peer's `error` event.
 */
export type AlertHandler<T = unknown> = (data: T, ctx: AlertContext) => void | Promise<void>;

/** What a request handler receives; `Req` is the data's type as the requester promised it. */
export interface RequestContext<Req = unknown> {
  /** The route requested. */
  route: string;
  /** The request's data. */
  data: Req;
  /** The request's data as it arrived: the CBOR bytes the requester wrote (a view; do not modify it). */
  payload: Uint8Array;
  /** Id of the requesting peer. */
  sender: number;
  /** OS process id of the requesting peer. */
  senderPid: number;
  /** The request's headers; empty when it had none. */
  headers: MessageHeaders;
}

/**
 * Serves one route: returns the response (or `reply(data, { headers })` to
 * send headers with it), or throws to answer with an error. `Req` and `Res`
 * are the types of the request's and the response's data.
 */
export type RequestHandler<Req = unknown, Res = unknown> = (
  req: RequestContext<Req>,
) => Res | Reply<Res> | Promise<Res | Reply<Res>>;

/** Options of {@linkcode Peer.send} and {@linkcode Peer.broadcast}. */
export interface SendOptions {
  /** Text metadata sent with the alert, as `ctx.headers` at the receiver. */
  headers?: Readonly<Record<string, string>>;
}

/** Options of {@linkcode Peer.request}. */
export interface RequestOptions {
  /** Peer id or name to ask; without it the hub picks a peer that handles the route. */
  to?: number | string;
  /** Milliseconds before rejecting with `TimeoutError`; defaults to the peer's `requestTimeout`. */
  timeout?: number;
  /** Aborting rejects the request with the signal's reason. */
  signal?: AbortSignal;
  /** Text metadata sent with the request, as `req.headers` at the handler. */
  headers?: Readonly<Record<string, string>>;
}

/** Options of {@linkcode Peer.drain}. */
export interface DrainOptions {
  /**
   * Milliseconds to wait for the requests in flight; past it, what is left
   * is settled as `close()` does. Defaults to the peer's `requestTimeout`.
   */
  timeout?: number;
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
  /**
   * Someone (`connect()`'s `reconnect`) opens a new link after a loss: until
   * then calls are queued, within `maxQueueMessages`/`maxQueueBytes`, and a
   * loss does not end the peer.
   */
  reconnects?: boolean;
}
