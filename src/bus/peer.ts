import type { Connection } from "../transport/connection.ts";
import { keptBytes } from "../util/copy_bytes.ts";
import { processId, runtime } from "../transport/runtime.ts";
import { ClosedError } from "../errors.ts";
import { waitAtMost } from "../util/with_timeout.ts";
import { textAlertName } from "./alert_handlers.ts";
import { HubLink } from "./hub_link.ts";
import type { Answer, Link } from "./link.ts";
import type {
  AlertHandler,
  PeerSettings,
  PeerStats,
  RequestHandler,
  RequestOptions,
  SubscribeOptions,
} from "./peer_types.ts";
import { PeerSession } from "./peer_session.ts";
import type { PeerInfo } from "./protocol.ts";
import type { RoutePattern } from "./route_pattern.ts";
import type { SubscriptionMessage } from "./subscription.ts";

export type {
  AlertContext,
  AlertHandler,
  PeerSettings,
  PeerStats,
  RequestContext,
  RequestHandler,
  RequestOptions,
  SubscribeOptions,
} from "./peer_types.ts";
export type { UndeliverableDetail } from "./link.ts";

/** How long `close()` of a peer with a delivery policy waits for its alerts to be acknowledged. */
const CLOSE_ACK_TIMEOUT_MS = 2000;

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
  readonly #s: PeerSession;

  /** @internal Peers are made by `connect()`, `serve()` and `channel()`. */
  constructor(settings: PeerSettings) {
    super();
    this.#s = new PeerSession(settings, this);
  }

  /** This peer's id (0 for the hub's own peer); undefined until connected. */
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
    this.#s.alerts.set(name, handler);
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
    if (this.#s.policy) return this.#s.sendReliably(to, name, data);
    const link = this.#s.usable();
    textAlertName(name);
    const dest = this.#s.view.resolve(to);
    link.checkRoom(dest, name);
    link.alert(dest, name, this.#s.encodeData(data, name, true));
    this.#s.counters.alertsSent++;
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
    if (this.#s.policy) return this.#s.sendReliably(undefined, name, data);
    const link = this.#s.usable();
    textAlertName(name);
    link.checkRoom(undefined, name);
    link.alert(undefined, name, this.#s.encodeData(data, name, true));
    this.#s.counters.alertsSent++;
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
    this.#s.responders.set(pattern, handler);
    this.#s.announceRoutes();
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
      const link = this.#s.policy ? this.#s.usableOrAway() : this.#s.usable();
      if (typeof route !== "string" || route.length === 0) {
        throw new TypeError(`Invalid route: expected a non-empty string, got ${JSON.stringify(route)}`);
      }
      const timeout = options.timeout ?? this.#s.settings.requestTimeout;
      if (!(timeout > 0)) throw new RangeError(`Invalid timeout: expected a positive number, got ${timeout}`);
      options.signal?.throwIfAborted();
      // Queued for later (no link yet) it must stay as it is; sent now it may be transient.
      const d = this.#s.encodeData(data, route, link !== undefined);
      if (!link && this.#s.id === undefined) {
        // Not yet joined: no view to check `to` against; resolve it on replay.
        this.#s.enqueue(route);
        const { id, promise } = this.#s.pending.add(route, undefined, timeout, options.signal);
        this.#s.outbox.push(() => this.#s.sendRequest(id, route, options.to, d, timeout));
        return promise;
      }
      const to = options.to === undefined ? undefined : this.#s.view.resolve(options.to);
      const { id, promise } = this.#s.pending.add(route, to, timeout, options.signal);
      if (link) this.#s.sendRequest(id, route, to, d, timeout);
      else {
        this.#s.enqueue(route);
        this.#s.outbox.push(() => this.#s.sendRequest(id, route, to, d, timeout));
      }
      this.#s.counters.requestsSent++;
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
    return this.#s.alerts.subscribe(name, options, this.#s.closed);
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
    const queued = this.#s.link?.queued();
    return {
      alertsSent: c.alertsSent,
      alertsReceived: c.alertsReceived,
      requestsSent: c.requestsSent,
      requestsServed: c.requestsServed,
      dropped: { ...c.dropped },
      pendingRequests: this.#s.pending.size,
      queuedMessages: queued?.messages ?? 0,
      queuedBytes: queued?.bytes ?? 0,
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
    if (this.#s.closing) return;
    this.#s.closing = true;
    if (this.#s.policy && this.#s.link) {
      // Give what was sent a bounded chance to be acknowledged, so a member
      // that sends and then leaves does not take its last alerts with it.
      await waitAtMost(this.#s.policy.acknowledged(), CLOSE_ACK_TIMEOUT_MS);
    }
    await this.#s.link?.close();
    this.#s.view.close();
    this.#s.lose(new ClosedError("Peer is closed"), "closed");
    this.#s.closed = true;
  }

  // ---- links ------------------------------------------------------------------

  /**
   * Runs the handshake with a hub over `conn` and starts reading. Resolves
   * once the hub has assigned an id. Used by `connect()`, the hub and channels.
   * @internal
   */
  attach(conn: Connection, timeout: number): Promise<void> {
    const s = this.#s.settings;
    // A reconnecting peer asks for its id back; the hub's own peer (0) gets 0 without asking.
    const id = this.#s.id || s.requestedId;
    return this.attachLink(
      new HubLink(conn, {
        maxQueueMessages: s.maxQueueMessages,
        maxQueueBytes: s.maxQueueBytes,
        maxFrameBytes: s.maxFrameBytes,
        timeout,
        hello: {
          pid: processId,
          runtime: runtime ?? "unknown",
          ...(s.name === undefined ? {} : { name: s.name }),
          ...(id ? { id } : {}),
          inc: this.#s.incarnation,
          ...(s.token === undefined ? {} : { token: s.token }),
          ...(s.dropOldestBroadcasts ? { dropOldest: true } : {}),
        },
      }),
    );
  }

  /**
   * Opens `link` and carries this peer's messages over it from then on.
   * @internal
   */
  attachLink(link: Link): Promise<void> {
    return this.#s.attach(link);
  }

  /**
   * Runs the handler of route `m.u` for request `m` and calls `done` with
   * its answer, once: at once if the handler returns a value (then it
   * returns true). `m.d` is kept unless `own` is false (a view into a read
   * buffer: copied). The hub calls this directly for its own peer, without
   * a round trip through a connection.
   * @internal
   */
  serve(m: { f: number; u: string; d: Uint8Array }, own: boolean, done: (answer: Answer) => void): boolean {
    return this.#s.serve({ f: m.f, u: m.u, d: keptBytes(m.d, own) }, done);
  }

  /** @internal The peers in view, those away during a failover included. */
  viewSnapshot(): PeerInfo[] {
    return this.#s.view.list();
  }

  /** @internal Id of the member hosting the hub, from the last welcome. */
  get hubHost(): number | undefined {
    return this.#s.hubHost;
  }
}
