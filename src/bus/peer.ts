import { ClosedError } from "../errors.ts";
import { waitAtMost } from "../util/with_timeout.ts";
import { checkHeaders } from "./headers.ts";
import { type PeerEventMap, TypedEventTarget } from "./peer_events.ts";
import type {
  AlertHandler,
  DrainOptions,
  PeerSettings,
  PeerStats,
  RequestHandler,
  RequestOptions,
  SendOptions,
  SubscribeOptions,
} from "./peer_types.ts";
import { PeerSession } from "./peer_session.ts";
import type { PeerInfo } from "./protocol.ts";
import type { Reply } from "./reply.ts";
import type { RoutePattern } from "./route_pattern.ts";
import type { SubscriptionMessage } from "./subscription.ts";

export type {
  AlertContext,
  AlertHandler,
  DrainOptions,
  PeerSettings,
  PeerStats,
  RequestContext,
  RequestHandler,
  RequestOptions,
  SendOptions,
  SubscribeOptions,
} from "./peer_types.ts";
export type { UndeliverableDetail } from "./link.ts";

/** How long `close()` of a peer with a delivery policy waits for its alerts to be acknowledged. */
const CLOSE_ACK_TIMEOUT_MS = 2000;

/** Settings of the next `Peer` constructed: peers are made by `connect()`, `serve()` and `channel()` only. */
let nextSettings: PeerSettings | undefined;
/** Reaches a peer's session from this module's functions, which the library uses and `mod.ts` does not export. */
let sessionOf: (peer: Peer) => PeerSession;

function takeSettings(): PeerSettings {
  const settings = nextSettings;
  nextSettings = undefined;
  if (!settings) throw new TypeError("Peers are made by connect(), serve() and channel(), not with new Peer()");
  return settings;
}

/**
 * One participant of the bus: sends named alerts to one peer or to all,
 * serves and makes requests. Events (typed by {@linkcode PeerEventMap}):
 * `connect`, `disconnect`, `reconnect`, `peerjoin`, `peerleave`,
 * `undeliverable`, `error`; event data is in `event.detail`.
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
export class Peer<M extends PeerEventMap = PeerEventMap> extends TypedEventTarget<M> {
  readonly #s: PeerSession = new PeerSession(takeSettings(), this);

  static {
    sessionOf = (peer) => peer.#s;
  }

  /**
   * This peer's id: 0 for the hub's own peer, 1, 2, 3 … for the others; a
   * new one if a reconnect could not get the old one back. Always set on the
   * peers `connect()` and `serve()` give, which resolve after the handshake;
   * a channel member has it once `ready` resolves (undefined before).
   */
  get id(): number {
    return this.#s.id as number;
  }

  /** The name given at connect, if any. */
  get name(): string | undefined {
    return this.#s.settings.name;
  }

  /** Whether the peer is connected to a hub. */
  get connected(): boolean {
    return this.#s.link !== undefined && !this.#s.closed;
  }

  /**
   * Settles once the peer is closed for good; never rejects. Resolves with
   * `undefined` after `close()` or `drain()`, or with the error that ended
   * the peer: a `ClosedError` when its connection was lost (and it does not
   * reconnect), the last attempt's error when reconnecting gave up.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * const err = await peer.closed;
   * if (err) console.error("the bus ended:", err.message);
   * ```
   */
  get closed(): Promise<Error | undefined> {
    return this.#s.closedPromise;
  }

  /**
   * Registers the handler of alert `name` (replacing any); `null` removes it.
   * `name` may be a pattern: `"jobs.*"` (one `.`-separated token),
   * `"jobs.>"` (one or more), `"*"` (every alert). One handler runs per
   * alert, the most specific: the exact name, else the matching pattern with
   * literal tokens before `*`, and `*` before `>` and `"*"`. `T` is the
   * data's type as senders promise it (not checked at run time). An error
   * the handler throws (or a promise it rejects) goes to the `error` event,
   * and is printed with `console.error` when nothing listens to it.
   *
   * @param name The alert name or pattern.
   * @param handler Called with the data and an {@linkcode AlertContext}.
   * @throws {TypeError} for a name that is not a non-empty string, a `>` that is not the last token, or a handler that is not a function.
   *
   * @example Names, patterns and typed data
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * peer.on("hello", (data, ctx) => console.log(data, "from", ctx.sender, ctx.senderPid));
   * peer.on<{ n: number }>("jobs.*", (job, ctx) => console.log(ctx.name, job.n));
   * ```
   */
  on<T = unknown>(name: string, handler: AlertHandler<T> | null): this;
  /**
   * Registers several handlers at once, by name or pattern; `null` removes one.
   *
   * @param handlers Alert names or patterns to handlers.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * peer.on({ reload: () => {}, stop: () => {} });
   * ```
   */
  on(handlers: Record<string, AlertHandler | null>): this;
  on<T>(name: string | Record<string, AlertHandler | null>, handler?: AlertHandler<T> | null): this {
    if (typeof name === "object" && name !== null) {
      for (const [key, fn] of Object.entries(name)) this.on(key, fn);
      return this;
    }
    // The handler's data type is the caller's promise; the table holds handlers of unknown data.
    this.#s.alerts.set(name, handler as AlertHandler | null | undefined);
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
   * Sends alert `name` to one peer, by id or by name. Returns at once. While
   * a peer with `reconnect` is between hubs, the alert is queued and sent
   * once it is back.
   *
   * @param to Peer id or peer name.
   * @param name Alert name.
   * @param data Any CBOR-encodable value.
   * @param options `headers`: text metadata for the receiver's `ctx.headers`.
   * @throws {NoSuchPeerError} when `to` is not a live peer in this peer's view.
   * @throws {QueueFullError} when the outgoing queue, or the destination's queue at the hub, is full.
   * @throws {ClosedError} when the peer is closed or draining.
   * @throws {DataError} when `data` holds a function, a symbol or a cycle.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * peer.send(2, "job", { n: 1 });
   * peer.send("worker-b", "job", { n: 2 }, { headers: { trace: "7f3a" } });
   * ```
   */
  send(to: number | string, name: string, data?: unknown, options?: SendOptions): void {
    this.#s.sendAlert(to, name, data, checkHeaders(options?.headers));
  }

  /**
   * Sends alert `name` to every connected peer, this one and the hub's
   * included, at most once each. Returns at once. The hub paces broadcasts
   * to the slowest peer that still reads; a peer whose queue at the hub is
   * full (one that stalled) misses them alone, and this peer gets
   * `undeliverable` events for it, several refusals in one (`count`).
   *
   * @param name Alert name.
   * @param data Any CBOR-encodable value.
   * @param options `headers`: text metadata for the receivers' `ctx.headers`.
   * @throws {QueueFullError} when the outgoing queue is full.
   * @throws {ClosedError} when the peer is closed or draining.
   * @throws {DataError} when `data` holds a function, a symbol or a cycle.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * peer.broadcast("reload", { version: 2 }, { headers: { reason: "deploy" } });
   * ```
   */
  broadcast(name: string, data?: unknown, options?: SendOptions): void {
    this.#s.sendAlert(undefined, name, data, checkHeaders(options?.headers));
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
    await this.#s.link?.flush();
    if (this.#s.policy && !this.#s.closed) {
      await this.#s.policy.room();
      await this.#s.link?.flush();
    }
  }

  /**
   * Serves requests whose route matches `pattern`: an exact route, a prefix
   * ending in `*`, or a RegExp. The handler's return value (or promise) is the
   * response, or `reply(data, { headers })` to answer with headers; a thrown
   * error reaches the caller as `RemoteError`. `null` removes the handler.
   * `Req` and `Res` type the request's and the response's data.
   *
   * A RegExp is matched in time linear in the route, by the hub as by this
   * peer, so another peer's route cannot stall the bus; patterns that need
   * backtracking are refused (PROTOCOL.md, section 8.1).
   *
   * @param pattern Route, `prefix*`, or RegExp.
   * @param handler Called with a {@linkcode RequestContext}.
   * @throws {TypeError} for an empty route, a handler that is not a function,
   * or a RegExp with backreferences, lookarounds, modifiers or flag `v`.
   * @throws {RangeError} for a RegExp whose repetitions expand beyond 2 000
   * instructions, or RegExp routes beyond 20 000 for this peer together.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * peer.handle<{ page: number }, { html: string }>("/render", ({ data }) => ({ html: `<p>${data.page}</p>` }));
   * peer.handle(/^\/users\/\d+$/, ({ route, headers }) => ({ route, trace: headers.trace }));
   * ```
   */
  handle<Req = unknown, Res = unknown>(pattern: RoutePattern, handler: RequestHandler<Req, Res> | null): this {
    // The types are the caller's promise; the table holds handlers of unknown data.
    this.#s.responders.set(pattern, handler as RequestHandler | null);
    this.#s.announceRoutes();
    return this;
  }

  /**
   * Asks a peer to serve `route`. Without `to`, the hub picks one whose
   * `handle()` pattern matches: the hub's own handlers first, then the other
   * peers round-robin. `Res` types the response (and `Req` the data), as
   * the responder promises them: nothing is checked at run time.
   *
   * @param route The route, e.g. `"/render"`.
   * @param data Any CBOR-encodable value.
   * @param options `to`, `timeout`, `signal`, `headers`.
   * @returns The response value.
   * @throws {NoResponderError} at once when no peer handles the route.
   * @throws {TimeoutError} after `timeout` ms without an answer.
   * @throws {RemoteError} when the handler threw.
   * @throws {PeerLeftError} when the serving peer left before answering.
   * @throws {ClosedError} when this peer closes first, or is draining.
   * @throws {DataError} when `data` holds a function, a symbol or a cycle.
   *
   * @example
   * ```ts
   * import { connect, TimeoutError } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * const page = await peer.request<string>("/render", { page: 3 }, { timeout: 1000 });
   * ```
   */
  request<Res = unknown, Req = unknown>(route: string, data?: Req, options: RequestOptions = {}): Promise<Res> {
    return this.#s.request(route, data, options, false) as Promise<Res>;
  }

  /**
   * Like {@linkcode Peer.request}, but resolves with the response and its
   * headers (those of a handler that answered with `reply(data, { headers })`).
   *
   * @param route The route, e.g. `"/render"`.
   * @param data Any CBOR-encodable value.
   * @param options `to`, `timeout`, `signal`, `headers`.
   * @returns `{ data, headers }`; `headers` is empty when the response had none.
   * @throws {NoResponderError} at once when no peer handles the route; and as `request()` does.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * const { data, headers } = await peer.requestReply<string>("/render", 3, { headers: { accept: "text/html" } });
   * console.log(headers["content-type"], data);
   * ```
   */
  requestReply<Res = unknown, Req = unknown>(
    route: string,
    data?: Req,
    options: RequestOptions = {},
  ): Promise<Reply<Res>> {
    return this.#s.request(route, data, options, true) as Promise<Reply<Res>>;
  }

  /**
   * Alert `name` as a stream, for `for await` consumers. `name` may be a
   * pattern, as in `on()`: `"jobs.*"`, `"jobs.>"`, `"*"` (every alert); every
   * matching subscription gets each alert. Cancelling the stream
   * unsubscribes. Alert handlers registered with `on()` still run. `T` is the
   * data's type as senders promise it.
   *
   * @param name Alert name or pattern.
   * @param options Buffer size for a slow consumer.
   * @returns A stream of `{ data, sender, name, headers }`.
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
  subscribe<T = unknown>(name: string, options: SubscribeOptions = {}): ReadableStream<SubscriptionMessage<T>> {
    return this.#s.alerts.subscribe(name, options, this.#s.closed) as ReadableStream<SubscriptionMessage<T>>;
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
    return Promise.resolve(this.#s.view.list().sort((a, b) => a.id - b.id));
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
    const c = this.#s.counters;
    const queued = this.#s.link?.queued() ?? { messages: this.#s.away.messages, bytes: this.#s.away.bytes };
    return {
      alertsSent: c.alertsSent,
      alertsReceived: c.alertsReceived,
      requestsSent: c.requestsSent,
      requestsServed: c.requestsServed,
      dropped: { ...c.dropped },
      pendingRequests: this.#s.pending.size,
      queuedMessages: queued.messages,
      queuedBytes: queued.bytes,
    };
  }

  /**
   * Leaves the bus: pending requests reject with `ClosedError`, the hub
   * tells the others this peer left. See {@linkcode Peer.drain} to finish
   * the requests in flight first.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * await peer.close();
   * ```
   */
  async close(): Promise<void> {
    const s = this.#s;
    if (s.closing) return;
    s.closing = true;
    if (s.policy && s.link) {
      // Give what was sent a bounded chance to be acknowledged, so a member
      // that sends and then leaves does not take its last alerts with it.
      await waitAtMost(s.policy.acknowledged(), CLOSE_ACK_TIMEOUT_MS);
    }
    await s.link?.close();
    s.lose(new ClosedError("Peer is closed"), "closed");
    s.end(undefined);
  }

  /**
   * Leaves politely: stops taking new requests (the hub stops routing them
   * here; one addressed to this peer is answered with `ClosedError`), waits
   * for the requests this peer serves to be answered and for those it awaits
   * to settle, then closes. `send`, `broadcast` and `request` throw
   * `ClosedError` from the call on; alerts keep arriving until the close.
   *
   * @param options `timeout`: how long to wait for the requests in flight
   * (default: the peer's `requestTimeout`); what is left then is settled as
   * `close()` does.
   *
   * @example
   * ```ts
   * import { connect } from "@ipcbus/ipcbus";
   * const peer = await connect({ path: "/tmp/app.sock" });
   * peer.handle("/work", async () => "done");
   * await peer.drain(); // answers what it is serving, then closes
   * ```
   */
  async drain(options: DrainOptions = {}): Promise<void> {
    const s = this.#s;
    const timeout = options.timeout ?? s.settings.requestTimeout;
    if (!(timeout >= 0)) throw new RangeError(`Invalid timeout: expected a number of at least 0, got ${timeout}`);
    if (!s.closing && !s.draining) {
      s.draining = true;
      s.announceRoutes();
      await waitAtMost(Promise.all([s.served(), s.pending.idle()]), timeout);
    }
    await this.close();
  }
}

/**
 * Makes a peer with `settings`: `make` calls the constructor of `Peer` or of
 * a subclass, whose construction takes them from here. The library's way to
 * make peers; `new Peer()` elsewhere throws.
 */
export function makePeer<P extends Peer>(settings: PeerSettings, make: () => P): P {
  nextSettings = settings;
  try {
    return make();
  } finally {
    nextSettings = undefined;
  }
}

/** A peer's session, for the library's own functions (`attach_peer.ts`, `connect()`). */
export function peerSession(peer: Peer): PeerSession {
  return sessionOf(peer);
}
