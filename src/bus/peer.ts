import { decodeCbor, decodeEnvelope, encodeCbor } from "../codec/cbor.ts";
import { FrameParser } from "../codec/frame_parser.ts";
import type { Connection } from "../transport/connection.ts";
import {
  ClosedError,
  ConnectError,
  errorFromCode,
  FrameTooLargeError,
  IpcError,
  NoSuchPeerError,
  QueueFullError,
  RemoteError,
  TimeoutError,
} from "../errors.ts";
import { answerPayload } from "./encoded_answer.ts";
import { FrameWriter } from "./frame_writer.ts";
import { envelopeBytes, type EnvelopeFields, type FastEnvelope, readEnvelope, writeEnvelope } from "./fast_envelope.ts";
import { PendingRequests } from "./pending_requests.ts";
import {
  asAlert,
  asEnvelope,
  asErrorRecord,
  asReply,
  asRequest,
  type ErrorRecord,
  type Hello,
  Kind,
  type PeerInfo,
  PROTOCOL_VERSION,
  toErrorRecord,
} from "./protocol.ts";
import { compilePattern, patternKey, type RouteMatcher, type RoutePattern } from "./route_pattern.ts";
import { Subscription, type SubscriptionMessage } from "./subscription.ts";
import { runtime } from "../transport/listen.ts";
import { ReliableDelivery } from "../channel/reliable_delivery.ts";

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

/** Why a message accepted by `send`/`broadcast` did not reach its destination. */
export interface UndeliverableDetail {
  /** The intended destination (absent for a broadcast). */
  to?: number;
  /** The alert's name. */
  name?: string;
  /** `no_such_peer`, `queue_full`, `peer_left` … */
  reason: string;
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

/** Internal settings of a {@linkcode Peer}, from `connect()` or the hub. */
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
  /** Channel members: exactly-once alerts across hub failover, queueing while away. */
  reliable?: { queueLimit: number; graceMs: number };
}

interface Session {
  conn: Connection;
  writer: FrameWriter;
}

/** Largest `w` a request carries: envelope integers stay within 4-byte CBOR heads. */
const MAX_WAIT_MS = 0x7fffffff;

/** How long `close()` of a channel member waits for its alerts to be acknowledged. */
const CLOSE_ACK_TIMEOUT_MS = 2000;

/** The alert name that matches every alert in `on()` (when no handler is named) and `subscribe()`. */
const ANY_ALERT = "*";

const textAlertName = (name: unknown): string => {
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError(`Invalid alert name: expected a non-empty string, got ${JSON.stringify(name)}`);
  }
  return name;
};

/**
 * One participant of the bus: sends named alerts to one peer or to all,
 * serves and makes requests. Events: `peerjoin`, `peerleave` (detail
 * {@linkcode PeerInfo}), `connect`, `disconnect`, `undeliverable` (detail
 * {@linkcode UndeliverableDetail}), `error` (detail: the error).
 *
 * @example Alerts and requests
 * ```ts
 * import { connect } from "@ipcbus/ipcbus";
 * const peer = await connect({ path: "/tmp/app.sock", name: "worker-a" });
 * peer.on("hello", (data, ctx) => ctx.reply("hi", { from: peer.id }));
 * peer.broadcast("hello", { n: 1 });
 * const echoed = await peer.request("/ipcbus/echo", { ping: true });
 * await peer.close();
 * ```
 */
export class Peer extends EventTarget {
  readonly #settings: PeerSettings;
  #id: number | undefined;
  #session: Session | undefined;
  #closing = false;
  #closed = false;
  #hubClosing = false;
  readonly #view = new Map<number, PeerInfo>();
  readonly #byName = new Map<string, number>();
  readonly #alertHandlers = new Map<string, AlertHandler>();
  readonly #subscribers = new Map<string, Set<Subscription>>();
  readonly #routes = new Map<string, { matcher: RouteMatcher; handler: RequestHandler }>();
  readonly #pending = new PendingRequests();
  readonly #busy = new Set<number>();
  #roomWaiters: Array<() => void> = [];
  /** Reliable mode: members at the current hub (the view also keeps those away, for a grace period). */
  readonly #present = new Set<number>();
  readonly #reliable: ReliableDelivery | undefined;
  /** Reliable mode: calls made before the first handshake, replayed in order once it is done. */
  #outbox: Array<() => void> = [];
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Id of the member hosting the hub, as the welcome said. */
  #hubHost: number | undefined;
  readonly #incarnation = randomHex(8);
  readonly #stats = {
    alertsSent: 0,
    alertsReceived: 0,
    requestsSent: 0,
    requestsServed: 0,
    dropped: {} as Record<string, number>,
  };

  /** @internal Peers are made by `connect()`, `serve()` and `channel()`. */
  constructor(settings: PeerSettings) {
    super();
    this.#settings = settings;
    if (settings.reliable) {
      this.#reliable = new ReliableDelivery({
        selfId: () => this.#id as number,
        transmit: (frame) => this.#transmit(frame),
        undeliverable: (to, name, reason) => this.#reportUndeliverable({ to, name, reason }),
        count: (reason) => this.#drop(reason),
      }, settings.reliable.queueLimit);
    }
  }

  /** This peer's id (0 for the hub's own peer); undefined until connected. */
  get id(): number {
    return this.#id as number;
  }

  /** The name given at connect, if any. */
  get name(): string | undefined {
    return this.#settings.name;
  }

  /** Whether the peer is connected to a hub. */
  get connected(): boolean {
    return this.#session !== undefined && !this.#closed;
  }

  /**
   * Registers the handler of alert `name` (replacing any), or several at once
   * with an object; `null` removes one. The name `"*"` catches every alert
   * that has no handler of its own.
   *
   * @param name The alert name, or a map of names to handlers.
   * @param handler Called with the data and an {@linkcode AlertContext}.
   * @throws {TypeError} for a name that is not a non-empty string or a handler that is not a function.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * peer.on("hello", (data, ctx) => console.log(data, "from", ctx.sender, ctx.senderPid));
   * peer.on({ reload: () => {}, stop: () => {} });
   * ```
   */
  on(name: string | Record<string, AlertHandler | null>, handler?: AlertHandler | null): this {
    if (typeof name === "object" && name !== null) {
      for (const [key, fn] of Object.entries(name)) this.on(key, fn);
      return this;
    }
    textAlertName(name);
    if (handler === null || handler === undefined) {
      this.#alertHandlers.delete(name);
      return this;
    }
    if (typeof handler !== "function") {
      throw new TypeError(`Invalid handler for alert ${name}: expected a function, got ${typeof handler}`);
    }
    this.#alertHandlers.set(name, handler);
    return this;
  }

  /**
   * Removes the handler of alert `name`.
   *
   * @param name The alert name.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * peer.off("hello");
   * ```
   */
  off(name: string): this {
    return this.on(name, null);
  }

  /**
   * Sends alert `name` to one peer, by id or by name. Returns at once.
   *
   * @param to Peer id or peer name.
   * @param name Alert name.
   * @param data Any CBOR-encodable value.
   * @throws {NoSuchPeerError} when `to` is not a live peer in this peer's view.
   * @throws {QueueFullError} when the outgoing queue, or the destination's queue at the hub, is full.
   * @throws {ClosedError} when the peer is closed.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * peer.send(2, "job", { n: 1 });
   * peer.send("worker-b", "job", { n: 2 });
   * ```
   */
  send(to: number | string, name: string, data?: unknown): void {
    if (this.#reliable) return this.#sendReliably(to, name, data);
    const session = this.#usable();
    textAlertName(name);
    const dest = this.#resolve(to);
    if (this.#busy.has(dest)) {
      throw new QueueFullError(
        `Cannot send ${name} to peer ${dest}: its queue at the hub is full; await flush() and retry`,
      );
    }
    this.#pushAlert(session, dest, name, data);
  }

  /**
   * Sends alert `name` to every connected peer, this one and the hub's
   * included, exactly once each. Returns at once.
   *
   * @param name Alert name.
   * @param data Any CBOR-encodable value.
   * @throws {QueueFullError} when the outgoing queue is full, or a peer's queue at the hub is.
   * @throws {ClosedError} when the peer is closed.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * peer.broadcast("reload", { version: 2 });
   * ```
   */
  broadcast(name: string, data?: unknown): void {
    if (this.#reliable) return this.#sendReliably(undefined, name, data);
    const session = this.#usable();
    textAlertName(name);
    if (this.#busy.size > 0) {
      throw new QueueFullError(
        `Cannot broadcast ${name}: the queue at the hub of peer ${[...this.#busy][0]} is full; await flush() and retry`,
      );
    }
    this.#pushAlert(session, undefined, name, data);
  }

  /**
   * Resolves when everything sent so far has been written to the socket, and
   * every destination the hub reported full has room again.
   *
   * @returns A promise that resolves when the outgoing queue is empty.
   *
   * @example Sending fast without growing memory
   * ```ts
   * import { connect, QueueFullError } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * for (let i = 0; i < 100_000; i++) {
   *   try {
   *     peer.send(2, "tick", i);
   *   } catch (err) {
   *     if (!(err instanceof QueueFullError)) throw err;
   *     await peer.flush();
   *     i--;
   *   }
   * }
   * ```
   */
  async flush(): Promise<void> {
    const session = this.#session;
    if (session) await session.writer.idle();
    if (this.#reliable && !this.#closed) await this.#reliable.room();
    while (this.#busy.size > 0 && !this.#closed && this.#session) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
  }

  /**
   * Serves requests whose route matches `pattern`: an exact route, a prefix
   * ending in `*`, or a RegExp. The handler's return value (or promise) is the
   * response; a thrown error reaches the caller as `RemoteError`. `null`
   * removes the handler.
   *
   * @param pattern Route, `prefix*`, or RegExp.
   * @param handler Called with a {@linkcode RequestContext}.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * peer.handle("/render", ({ data }) => ({ html: `<p>${(data as { page: number }).page}</p>` }));
   * peer.handle(/^\/users\/\d+$/, ({ route }) => ({ route }));
   * ```
   */
  handle(pattern: RoutePattern, handler: RequestHandler | null): this {
    const matcher = compilePattern(pattern);
    const key = patternKey(matcher.record);
    if (handler === null) this.#routes.delete(key);
    else {
      if (typeof handler !== "function") {
        throw new TypeError(`Invalid handler for route ${String(pattern)}: expected a function`);
      }
      this.#routes.set(key, { matcher, handler });
    }
    this.#announceRoutes();
    return this;
  }

  /**
   * Asks a peer to serve `route`. Without `to`, the hub picks one whose
   * `handle()` pattern matches: the hub's own handlers first, then the other
   * peers round-robin.
   *
   * @param route The route, e.g. `"/render"`.
   * @param data Any CBOR-encodable value.
   * @param options `to`, `timeout`, `signal`.
   * @returns The response value.
   * @throws {NoResponderError} at once when no peer handles the route.
   * @throws {TimeoutError} after `timeout` ms without an answer.
   * @throws {RemoteError} when the handler threw.
   * @throws {PeerLeftError} when the serving peer left before answering.
   * @throws {ClosedError} when this peer closes first.
   *
   * @example
   * ```ts
   * import { connect, TimeoutError } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * const page = await peer.request("/render", { page: 3 }, { timeout: 1000 });
   * ```
   */
  request(route: string, data?: unknown, options: RequestOptions = {}): Promise<unknown> {
    try {
      const session = this.#reliable ? this.#usableOrAway() : this.#usable();
      if (typeof route !== "string" || route.length === 0) {
        throw new TypeError(`Invalid route: expected a non-empty string, got ${JSON.stringify(route)}`);
      }
      const timeout = options.timeout ?? this.#settings.requestTimeout;
      if (!(timeout > 0)) throw new RangeError(`Invalid timeout: expected a positive number, got ${timeout}`);
      options.signal?.throwIfAborted();
      const d = this.#encodeData(data, route);
      if (!session && this.#id === undefined) {
        // Not yet joined: no view to check `to` against; resolve it on replay.
        this.#enqueue(route);
        const { id, promise } = this.#pending.add(route, undefined, timeout, options.signal);
        this.#outbox.push(() => this.#sendRequest(id, route, options.to, d, timeout));
        return promise;
      }
      const to = options.to === undefined ? undefined : this.#resolve(options.to);
      const { id, promise } = this.#pending.add(route, to, timeout, options.signal);
      if (session) this.#sendRequest(id, route, to, d, timeout);
      else {
        this.#enqueue(route);
        this.#outbox.push(() => this.#sendRequest(id, route, to, d, timeout));
      }
      this.#stats.requestsSent++;
      return promise;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Alert `name` as a stream, for `for await` consumers; `"*"` streams every
   * alert. Cancelling the stream unsubscribes. Alert handlers registered with
   * `on()` still run.
   *
   * @param name Alert name.
   * @param options Buffer size for a slow consumer.
   * @returns A stream of `{ data, sender }`.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * for await (const { data, sender } of peer.subscribe("tick")) {
   *   console.log(sender, data);
   *   break;
   * }
   * ```
   */
  subscribe(name: string, options: SubscribeOptions = {}): ReadableStream<SubscriptionMessage> {
    textAlertName(name);
    const limit = options.bufferSize ?? 1024;
    if (!Number.isSafeInteger(limit) || limit <= 0) {
      throw new RangeError(`Invalid bufferSize: expected a positive integer, got ${limit}`);
    }
    let set = this.#subscribers.get(name);
    if (!set) this.#subscribers.set(name, set = new Set());
    const subscription: Subscription = new Subscription(limit, () => this.#drop("subscriber_overflow"), () => {
      set!.delete(subscription);
      if (set!.size === 0 && this.#subscribers.get(name) === set) this.#subscribers.delete(name);
    });
    set.add(subscription);
    if (this.#closed) subscription.end();
    return subscription.stream;
  }

  /**
   * The peers connected right now, as this peer knows them (itself and the
   * hub's own peer, id 0, included).
   *
   * @returns One {@linkcode PeerInfo} per peer, by id.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * const other = (await peer.peers()).find((p) => p.pid === 4242);
   * ```
   */
  peers(): Promise<PeerInfo[]> {
    return Promise.resolve([...this.#view.values()].sort((a, b) => a.id - b.id));
  }

  /**
   * This peer's counters: alerts, requests, queue depth and drops by reason.
   *
   * @returns A snapshot of the counters.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * console.log(peer.stats().dropped);
   * ```
   */
  stats(): PeerStats {
    return {
      ...this.#stats,
      dropped: { ...this.#stats.dropped },
      pendingRequests: this.#pending.size,
      queuedMessages: this.#session?.writer.messages ?? 0,
      queuedBytes: this.#session?.writer.bytes ?? 0,
    };
  }

  /**
   * Leaves the bus: pending requests reject with `ClosedError`, the hub
   * tells the others this peer left.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * await peer.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#reliable && this.#session) {
      // Give what was sent a bounded chance to be acknowledged, so a member
      // that sends and then leaves does not take its last alerts with it.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#reliable.acknowledged(),
        new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_ACK_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
    }
    const session = this.#session;
    if (session && !this.#hubClosing) {
      try {
        session.writer.push(encodeCbor({ k: Kind.Bye }));
      } catch {
        // Nothing to say goodbye over.
      }
    }
    if (session) await session.writer.close(1000);
    clearTimeout(this.#graceTimer);
    this.#lose(new ClosedError("Peer is closed"), "closed");
    this.#closed = true;
  }

  // ---- connection lifecycle -------------------------------------------------

  /**
   * Runs the handshake over `conn` and starts reading. Resolves once the hub
   * has assigned an id. Used by `connect()`, the hub and channels.
   * @internal
   */
  async attach(conn: Connection, timeout: number): Promise<void> {
    const writer = new FrameWriter(conn.writable, {
      maxMessages: this.#settings.maxQueueMessages,
      maxBytes: this.#settings.maxQueueBytes,
    });
    const hello: Hello = {
      k: Kind.Hello,
      v: PROTOCOL_VERSION,
      pid: pid(),
      runtime: runtime ?? "unknown",
      ...(this.#settings.name === undefined ? {} : { name: this.#settings.name }),
      // A reconnecting peer asks for its id back; the hub's own peer (0) gets 0 without asking.
      ...(this.#id ? { id: this.#id } : this.#settings.requestedId ? { id: this.#settings.requestedId } : {}),
      inc: this.#incarnation,
      ...(this.#settings.token === undefined ? {} : { token: this.#settings.token }),
      ...(this.#settings.dropOldestBroadcasts ? { dropOldest: true } : {}),
    };
    writer.push(encodeCbor(hello));
    const reader = conn.readable.getReader();
    const parser = new FrameParser(this.#settings.maxFrameBytes);
    const first = await this.#readWelcome(reader, parser, timeout).catch(async (err) => {
      writer.abort();
      await conn.close();
      throw err;
    });
    this.#id = first.id;
    this.#hubHost = first.host;
    const session: Session = { conn, writer };
    if (this.#reliable) this.#mergeView(first.peers);
    else {
      this.#view.clear();
      this.#byName.clear();
      for (const info of first.peers) this.#addToView(info);
    }
    writer.onWritten = undefined;
    writer.onError = () => void conn.close();
    this.#session = session;
    this.#hubClosing = false;
    if (this.#routes.size > 0) this.#announceRoutes();
    if (this.#reliable) {
      this.#reliable.onSessionStart(this.#present);
      const outbox = this.#outbox;
      this.#outbox = [];
      for (const replay of outbox) replay();
    }
    void this.#readLoop(session, reader, parser, first.rest);
    this.dispatchEvent(new CustomEvent("connect", { detail: { id: this.#id } }));
  }

  async #readWelcome(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    parser: FrameParser,
    timeout: number,
  ): Promise<{ id: number; host: number | undefined; peers: PeerInfo[]; rest: Uint8Array[] }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`No answer to the handshake within ${timeout} ms`)), timeout);
    });
    try {
      const frames: Uint8Array[] = [];
      while (frames.length === 0) {
        const { value, done } = await Promise.race([reader.read(), expired]);
        if (done) throw new ConnectError("The hub closed the connection during the handshake");
        parser.push(value, (body) => frames.push(body.slice()));
      }
      const m = asEnvelope(decodeEnvelope(frames[0]));
      if (m.k === Kind.Refuse || m.k === Kind.Error) {
        const e = asErrorRecord(m.e);
        throw errorFromCode(e.code ?? "ipc_error", e.message);
      }
      if (m.k !== Kind.Welcome || !Number.isSafeInteger(m.id) || !Array.isArray(m.peers)) {
        throw new ConnectError(`Unexpected answer to the handshake: ${String(m.k)}`);
      }
      const host = Number.isSafeInteger(m.host) ? m.host as number : undefined;
      return { id: m.id as number, host, peers: m.peers as PeerInfo[], rest: frames.slice(1) };
    } finally {
      clearTimeout(timer);
    }
  }

  async #readLoop(
    session: Session,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    parser: FrameParser,
    rest: Uint8Array[],
  ): Promise<void> {
    let reason = "hub closed the connection";
    const onFrame = (body: Uint8Array) => this.#onFrame(session, body);
    try {
      if (rest.length > 0) {
        // Frames that came in the same chunk as the welcome wait a macrotask,
        // so the caller of connect() can register handlers for them first.
        await new Promise((resolve) => setTimeout(resolve, 0));
        for (const body of rest) onFrame(body);
      }
      while (this.#session === session) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value, onFrame);
      }
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
      if (err instanceof IpcError) this.#emitError(err);
    }
    if (this.#session === session) {
      await session.conn.close();
      this.#lose(
        this.#closing ? new ClosedError("Peer is closed") : new ClosedError(`Connection to the hub lost: ${reason}`),
        reason,
      );
    }
  }

  /** Ends the current session: pending requests reject, `disconnect` fires. */
  #lose(error: ClosedError, reason: string): void {
    const session = this.#session;
    this.#session = undefined;
    if (session) void session.conn.close();
    this.#pending.rejectAll(() => error);
    this.#present.clear();
    if (this.#reliable) {
      this.#reliable.onSessionLost();
      if (this.#closing) this.#reliable.close();
      else this.#startGrace();
    }
    this.#busy.clear();
    for (const wake of this.#roomWaiters.splice(0)) wake();
    if (session) this.dispatchEvent(new CustomEvent("disconnect", { detail: { reason } }));
    if (this.#closing) {
      for (const set of this.#subscribers.values()) for (const s of set) s.end();
      this.#subscribers.clear();
    }
  }

  // ---- incoming frames -------------------------------------------------------

  #onFrame(session: Session, body: Uint8Array): void {
    const fast = readEnvelope(body);
    if (fast) {
      if (fast.k === "a") return this.#onAlert(fast as FastEnvelope & { n: string; d: Uint8Array });
      if (fast.k === "q") {
        return this.#onRequest(session, fast as FastEnvelope & { r: number; u: string; d: Uint8Array });
      }
      return this.#onReply({ k: Kind.Response, r: fast.r!, d: fast.d });
    }
    const m = asEnvelope(decodeEnvelope(body));
    switch (m.k) {
      case Kind.Alert:
        return this.#onAlert(asAlert(m));
      case Kind.Request:
        return this.#onRequest(session, asRequest(m));
      case Kind.Response:
      case Kind.ErrorResponse:
        return this.#onReply(asReply(m));
      case Kind.Join:
        return this.#onJoin(m.peer as PeerInfo);
      case Kind.Ack:
        this.#reliable?.onAck(m.f as number, m.s as number, m.g === true, m.skip === true);
        return;
      case Kind.Leave:
        return this.#onLeave(m.id as number, String(m.reason ?? "left"));
      case Kind.Undeliverable:
        return this.#onUndeliverable(m);
      case Kind.Busy:
        this.#busy.add(m.id as number);
        return;
      case Kind.Room:
        this.#busy.delete(m.id as number);
        this.#reliable?.onPresent(m.id as number);
        if (this.#busy.size === 0) { for (const wake of this.#roomWaiters.splice(0)) wake(); }
        return;
      case Kind.Error:
        this.#emitError(
          errorFromCode(String((m.e as ErrorRecord)?.code ?? "ipc_error"), String((m.e as ErrorRecord)?.message)),
        );
        return;
      case Kind.Close:
        this.#hubClosing = true;
        return;
      default:
        // Newer hubs may send kinds this build does not know: ignore them.
        this.#drop("unknown_kind");
    }
  }

  #onAlert(m: { f: number; t?: number; n: string; d: Uint8Array; s?: unknown }): void {
    if (this.#reliable && m.s !== undefined && !this.#reliable.accept(m.f, m.s)) return;
    this.#stats.alertsReceived++;
    // "*" catches alerts that have no handler, and subscribes to every alert.
    const handler = this.#alertHandlers.get(m.n) ?? this.#alertHandlers.get(ANY_ALERT);
    const named = this.#subscribers.get(m.n);
    const any = m.n === ANY_ALERT ? undefined : this.#subscribers.get(ANY_ALERT);
    if (!handler && !named && !any) {
      this.#drop("no_handler");
      return;
    }
    let data: unknown;
    try {
      data = decodeCbor(m.d);
    } catch (err) {
      this.#drop("bad_payload");
      this.#emitError(err);
      return;
    }
    if (named) { for (const s of named) s.push({ data, sender: m.f, name: m.n }); }
    if (any) { for (const s of any) s.push({ data, sender: m.f, name: m.n }); }
    if (handler) {
      const sender = m.f;
      const ctx: AlertContext = {
        name: m.n,
        sender,
        senderPid: this.#view.get(sender)?.pid ?? -1,
        reply: (name, replyData) => this.send(sender, name, replyData),
      };
      try {
        const result = handler(data, ctx);
        if (result instanceof Promise) result.catch((err) => this.#emitError(err));
      } catch (err) {
        this.#emitError(err);
      }
    }
  }

  #onRequest(session: Session, m: { f: number; r: number; u: string; d: Uint8Array }): void {
    void this.serve(m).then(({ result, error }) => {
      if (this.#session === session) {
        writeAnswer(session.writer, this.#id as number, m, this.#settings.maxFrameBytes, result, error);
      }
    });
  }

  /**
   * Runs the handler of route `m.u` for request `m`. Resolves to its result
   * or an error record; never rejects. The hub calls this directly for its
   * own peer, without a round trip through a connection.
   * @internal
   */
  serve(m: { f: number; u: string; d: Uint8Array }): Promise<{ result?: unknown; error?: ErrorRecord }> {
    let entry: { handler: RequestHandler } | undefined;
    for (const candidate of this.#routes.values()) {
      if (candidate.matcher.matches(m.u)) {
        entry = candidate;
        break;
      }
    }
    if (!entry) {
      return Promise.resolve({
        error: {
          name: "NoResponderError",
          message: `Peer ${this.#id} has no handler for route ${m.u}`,
          code: "no_handler_found",
          sys: true,
        },
      });
    }
    this.#stats.requestsServed++;
    const handler = entry.handler;
    return (async () => {
      try {
        const result = await handler({
          route: m.u,
          data: decodeCbor(m.d),
          payload: m.d,
          sender: m.f,
          senderPid: this.#view.get(m.f)?.pid ?? -1,
        });
        return { result };
      } catch (err) {
        return { error: toErrorRecord(err) };
      }
    })();
  }

  #onReply(m: { k: string; r: number; d?: Uint8Array; e?: ErrorRecord }): void {
    let settled: boolean;
    if (m.k === Kind.Response) {
      let value: unknown;
      try {
        value = decodeCbor(m.d!);
      } catch (err) {
        settled = this.#pending.settle(m.r, err);
        if (!settled) this.#drop("late_response");
        return;
      }
      settled = this.#pending.resolve(m.r, value);
    } else settled = this.#pending.settle(m.r, remoteError(m.e!));
    if (!settled) this.#drop("late_response");
  }

  #onLeave(id: number, reason: string): void {
    const info = this.#view.get(id);
    if (!info) return;
    this.#view.delete(id);
    if (info.name !== undefined && this.#byName.get(info.name) === id) this.#byName.delete(info.name);
    this.#present.delete(id);
    this.#reliable?.onGone(id, "peer_left");
    this.#busy.delete(id);
    if (this.#busy.size === 0) { for (const wake of this.#roomWaiters.splice(0)) wake(); }
    this.dispatchEvent(new CustomEvent("peerleave", { detail: { ...info, reason } }));
  }

  #onUndeliverable(m: Record<string, unknown>): void {
    const detail: UndeliverableDetail = { reason: String(m.reason) };
    if (typeof m.t === "number") detail.to = m.t;
    if (typeof m.n === "string") detail.name = m.n;
    if (detail.reason === "queue_full" && detail.to !== undefined) {
      this.#busy.add(detail.to);
      if (this.#reliable && m.s !== undefined) {
        // Kept until acknowledged: it is sent again when the hub says there is room.
        this.#drop("resend_queue_full");
        return;
      }
    }
    this.#reportUndeliverable(detail);
  }

  #reportUndeliverable(detail: UndeliverableDetail): void {
    this.#drop(`undeliverable_${detail.reason}`);
    this.dispatchEvent(new CustomEvent("undeliverable", { detail }));
  }

  // ---- reliable mode (channels) ---------------------------------------------------

  /** Members in the welcome are at the hub; members we knew and it lacks stay in view for the grace period. */
  #mergeView(peers: PeerInfo[]): void {
    for (const info of peers) {
      const known = this.#view.get(info.id);
      if (known && known.inc !== info.inc) this.#onLeave(info.id, "restarted");
      this.#reliable?.onMember(info.id, info.inc);
      this.#present.add(info.id);
      if (!this.#view.has(info.id)) {
        this.#addToView(info);
        if (info.id !== this.#id) this.dispatchEvent(new CustomEvent("peerjoin", { detail: info }));
      }
    }
    this.#startGrace();
  }

  #onJoin(info: PeerInfo): void {
    const known = this.#view.get(info.id);
    if (known && known.inc !== undefined && known.inc === info.inc) {
      // Back after a failover: no event, just resend what it missed.
      this.#present.add(info.id);
      this.#reliable?.onPresent(info.id);
      return;
    }
    if (known) this.#onLeave(info.id, "restarted");
    this.#reliable?.onMember(info.id, info.inc);
    this.#addToView(info);
    this.#present.add(info.id);
    this.#reliable?.onPresent(info.id);
    this.dispatchEvent(new CustomEvent("peerjoin", { detail: info }));
  }

  /** After the grace period, members that did not come back to the new hub leave the view. */
  #startGrace(): void {
    if (this.#graceTimer !== undefined || !this.#reliable) return;
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = undefined;
      if (this.#closing) return;
      if (!this.#session) return this.#startGrace();
      for (const id of [...this.#view.keys()]) {
        if (!this.#present.has(id) && id !== this.#id) this.#onLeave(id, "did not return after hub failover");
      }
    }, this.#settings.reliable!.graceMs);
  }

  #sendReliably(to: number | string | undefined, name: string, data: unknown): void {
    this.#usableOrAway();
    textAlertName(name);
    const d = this.#encodeData(data, name);
    if (d.byteLength + 64 + name.length * 3 > this.#settings.maxFrameBytes) {
      throw new FrameTooLargeError(
        `Cannot send ${name}: ${d.byteLength} bytes of data exceed maxFrameBytes ${this.#settings.maxFrameBytes}`,
      );
    }
    if (this.#id === undefined) {
      // Before the first handshake there is no view: check the destination on replay.
      this.#enqueue(name);
      this.#outbox.push(() => {
        try {
          this.#sendReliably(to, name, data);
        } catch (err) {
          const reason = err instanceof IpcError ? err.code : "invalid";
          this.#reportUndeliverable({ ...(typeof to === "number" ? { to } : {}), name, reason });
        }
      });
      return;
    }
    if (to === undefined) {
      if (this.#busy.size > 0) {
        throw new QueueFullError(
          `Cannot broadcast ${name}: the queue at the hub of peer ${
            [...this.#busy][0]
          } is full; await flush() and retry`,
        );
      }
      this.#reliable!.broadcast([...this.#view.keys()], name, d);
    } else {
      const dest = this.#resolve(to);
      if (this.#busy.has(dest)) {
        throw new QueueFullError(
          `Cannot send ${name} to peer ${dest}: its queue at the hub is full; await flush() and retry`,
        );
      }
      this.#reliable!.send(dest, name, d);
    }
    this.#stats.alertsSent++;
  }

  #enqueue(what: string): void {
    const limit = this.#settings.reliable!.queueLimit;
    if (this.#outbox.length >= limit) {
      throw new QueueFullError(`Cannot queue ${what}: ${limit} calls wait for the channel to connect (queueLimit)`);
    }
  }

  #sendRequest(id: number, route: string, to: number | string | undefined, d: Uint8Array, timeout: number): void {
    try {
      const dest = to === undefined ? undefined : this.#resolve(to);
      this.#pushFast(
        this.#usable(),
        "q",
        [["f", this.#id], ["t", dest], ["r", id], ["u", route], ["w", Math.min(Math.ceil(timeout), MAX_WAIT_MS)], [
          "d",
          d,
        ]],
        route,
        true,
      );
    } catch (err) {
      this.#pending.settle(id, err);
    }
  }

  #transmit(frame: Record<string, unknown>): void {
    const session = this.#session;
    // Reliable frames are kept until acknowledged and resent on the next
    // connection, so a full or missing connection only delays them.
    if (session) session.writer.push(encodeCbor(frame));
  }

  /** Channel members may call while between hubs; the session is undefined then. */
  #usableOrAway(): Session | undefined {
    if (this.#closing || this.#closed) throw new ClosedError("Peer is closed");
    return this.#session;
  }

  /** @internal The peers in view, those away during a failover included. */
  viewSnapshot(): PeerInfo[] {
    return [...this.#view.values()];
  }

  /** @internal Id of the member hosting the hub, from the last welcome. */
  get hubHost(): number | undefined {
    return this.#hubHost;
  }

  // ---- helpers ------------------------------------------------------------------

  #addToView(info: PeerInfo): void {
    this.#view.set(info.id, info);
    if (info.name !== undefined) this.#byName.set(info.name, info.id);
  }

  #usable(): Session {
    if (this.#closing || this.#closed) throw new ClosedError("Peer is closed");
    if (this.#hubClosing) throw new ClosedError("The hub is closing");
    const session = this.#session;
    if (!session) throw new ClosedError("Peer is not connected to a hub");
    return session;
  }

  #resolve(to: number | string): number {
    if (typeof to === "number") {
      if (!this.#view.has(to)) throw new NoSuchPeerError(`No peer with id ${to} is connected`);
      return to;
    }
    if (typeof to === "string") {
      const id = this.#byName.get(to);
      if (id === undefined) throw new NoSuchPeerError(`No peer named ${to} is connected`);
      return id;
    }
    throw new TypeError(`Invalid destination: expected a peer id or name, got ${typeof to}`);
  }

  #encodeData(data: unknown, what: string): Uint8Array {
    try {
      return encodeCbor(data);
    } catch (cause) {
      throw new TypeError(`Cannot encode data of ${what}: ${(cause as Error)?.message ?? cause}`, { cause });
    }
  }

  #pushAlert(session: Session, to: number | undefined, name: string, data: unknown): void {
    this.#pushFast(session, "a", [["f", this.#id], ["t", to], ["n", name], ["d", this.#encodeData(data, name)]], name);
    this.#stats.alertsSent++;
  }

  /** Queues an alert or request envelope written in place (see fast_envelope.ts), within the limits. */
  #pushFast(session: Session, kind: "a" | "q", fields: EnvelopeFields, what: string, isRequest = false): void {
    const size = envelopeBytes(fields);
    if (size > this.#settings.maxFrameBytes) {
      throw new FrameTooLargeError(
        `Cannot send ${what}: frame of ${size} bytes exceeds maxFrameBytes ${this.#settings.maxFrameBytes}`,
      );
    }
    if (!session.writer.hasRoom()) {
      throw new QueueFullError(
        `Cannot ${
          isRequest ? "request" : "send"
        } ${what}: outgoing queue is full (${session.writer.messages} messages, ${session.writer.bytes} bytes); await flush() and retry`,
      );
    }
    writeEnvelope(session.writer, kind, fields);
  }

  #announceRoutes(): void {
    const session = this.#session;
    if (!session || this.#closing) return;
    const patterns = [...this.#routes.values()].map((r) => r.matcher.record);
    session.writer.push(encodeCbor({ k: Kind.Handle, patterns }));
  }

  #drop(reason: string): void {
    this.#stats.dropped[reason] = (this.#stats.dropped[reason] ?? 0) + 1;
  }

  #emitError(err: unknown): void {
    this.dispatchEvent(new CustomEvent("error", { detail: err }));
  }
}

/** Errors the bus itself raised travel with `sys: true` and keep their class; a handler's become `RemoteError`. */
function remoteError(e: ErrorRecord): IpcError {
  if (e.sys) return errorFromCode(e.code ?? "ipc_error", e.message);
  return new RemoteError(e.message, { remoteName: e.name, ...(e.code === undefined ? {} : { remoteCode: e.code }) });
}

function pid(): number {
  return (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Queues the answer to request `m` on `writer`: a response envelope, or an
 * error response when `error` is set or the result does not fit a frame.
 * Answers are not refused for a full queue: the requester asked for them,
 * and their number is bounded by the requests outstanding.
 */
export function writeAnswer(
  writer: FrameWriter,
  from: number,
  m: { f: number; r: number },
  maxFrameBytes: number,
  result: unknown,
  error?: ErrorRecord,
): void {
  if (!error) {
    try {
      const fields: EnvelopeFields = [["f", from], ["t", m.f], ["r", m.r], ["d", answerPayload(result)]];
      if (envelopeBytes(fields) <= maxFrameBytes) {
        writeEnvelope(writer, "p", fields);
        return;
      }
      error = toErrorRecord(
        new FrameTooLargeError(
          `Response of ${envelopeBytes(fields)} bytes exceeds maxFrameBytes ${maxFrameBytes}`,
        ),
      );
    } catch (err) {
      error = toErrorRecord(err);
    }
  }
  const frame = { k: Kind.ErrorResponse, f: from, t: m.f, r: m.r, e: error };
  let body = encodeCbor(frame);
  if (body.byteLength > maxFrameBytes) {
    body = encodeCbor({
      k: Kind.ErrorResponse,
      f: from,
      t: m.f,
      r: m.r,
      e: toErrorRecord(
        new FrameTooLargeError(
          `Response of ${body.byteLength} bytes exceeds maxFrameBytes ${maxFrameBytes}`,
        ),
      ),
    });
  }
  writer.push(body);
}
