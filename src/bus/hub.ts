import { decodeEnvelope } from "../codec/cbor.ts";
import type { Connection, Listener } from "../transport/connection.ts";
import { memoryConnectionPair } from "../transport/memory.ts";
import {
  ClosedError,
  ErrorCode,
  IpcError,
  NoResponderError,
  NoSuchPeerError,
  PeerLeftError,
  ProtocolError,
  QueueFullError,
} from "../errors.ts";
import { type FastEnvelope, readEnvelope } from "./fast_envelope.ts";
import { admitHello } from "./hub_handshake.ts";
import { hubCounters, type HubSettings, type HubStats } from "./hub_settings.ts";
import { type InFlight, InFlightRequests } from "./in_flight_requests.ts";
import { type LinkEvents, PeerLink } from "./peer_link.ts";
import { HubListener } from "./hub_listener.ts";
import { BroadcastArena } from "./broadcast_arena.ts";
import { BroadcastRefusals } from "./broadcast_refusals.ts";
import { MemberAnnouncements } from "./member_announcements.ts";
import { WelcomeRoster } from "./welcome_roster.ts";
import { LowestFreeId } from "./lowest_free_id.ts";
import { SlowConsumerWatch } from "./slow_consumer_watch.ts";
import { waitAtMost } from "../util/with_timeout.ts";
import { makePeer, Peer, type PeerSettings } from "./peer.ts";
import { attachPeer, servePeer } from "./attach_peer.ts";
import { writeAnswer } from "./write_answer.ts";
import {
  asAck,
  asAlert,
  asEnvelope,
  asHello,
  asPatterns,
  asReply,
  asRequest,
  clip,
  compileReceivedRoutes,
  encodeMessage,
  type Hello,
  Kind,
  type PeerInfo,
  type Request,
  systemError,
  wireError,
} from "./protocol.ts";
import { RouteTable } from "./route_table.ts";

type AlertFields = Pick<FastEnvelope, "f" | "t" | "s"> & { n: string }; // what the hub reads of an alert to route it

/** What the next `Hub` is made of: only {@linkcode makeHub} (for `serve()` and `channel()`) constructs hubs. */
let nextHub: { listener: Listener | undefined; settings: HubSettings; peerSettings: PeerSettings } | undefined;
const notMadeHere = (): never => {
  throw new TypeError("Hubs are made by serve() and channel(), not with new Hub()");
};

/** Connects the hub's own peer, then starts accepting. Not exported by `mod.ts`, as the two below. */
export let startHub: (hub: Hub) => Promise<void>;
/** Serves one more connection on `hub`, not from its listener: a channel's hosting member's own. */
export let acceptConnection: (hub: Hub, conn: Connection, role?: { host?: boolean }) => void;

/**
 * Routes frames between peers. Made by `serve()`; its own peer is
 * {@linkcode Hub.peer}, id 0.
 *
 * @example
 * ```ts
 * import { serve } from "@ipcbus/ipcbus";
 * const hub = await serve({ path: "/tmp/app.sock" });
 * hub.peer.handle("/time", () => Date.now());
 * console.log(hub.stats().peers);
 * await hub.close();
 * ```
 */
export class Hub extends EventTarget {
  readonly #made = nextHub ?? notMadeHere();
  /** The hub process's own peer, id 0. */
  readonly peer: Peer = makePeer({ ...this.#made.peerSettings, id: 0 }, () => new Peer());
  readonly #settings: HubSettings = this.#made.settings;
  readonly #listener = new HubListener(this.#made.listener, {
    accept: (conn: Connection) => this.#accept(conn),
    peers: () => this.peers.length,
    error: (err, counted) => this.#error(err, counted),
  });
  readonly #links = new Map<number, PeerLink>();
  readonly #ids = new LowestFreeId(this.#links);
  /** Every link's `handle()` patterns, by route. */
  readonly #routes = new RouteTable<PeerLink>();
  /** Every connection being served, those still in their handshake included: close() ends them all. */
  readonly #open = new Set<PeerLink>();
  readonly #byName = new Map<string, number>();
  readonly #inFlight = new InFlightRequests((expired) => {
    if (expired) this.#drop("request_expired");
    if (this.#closing && this.#inFlight.size === 0) this.#wakeDrained?.();
  });
  readonly #started = Date.now();
  #rr = 0;
  #closing = false;
  #closed: Promise<void> | undefined;
  #wakeDrained: (() => void) | undefined;
  readonly #stats = hubCounters();
  #framesOutClosed = 0;
  #bytesOutClosed = 0;
  readonly #slowConsumers = new SlowConsumerWatch(this.#settings.slowConsumerTimeout, (l, e) => this.#cutLoose(l, e));
  // What every link's reading and writer need: one object each for all links (a copy or closure per link cost every idle peer).
  readonly #readSettings = { ...this.#settings, slowConsumerTimeout: this.#slowConsumers.timeout };
  readonly #queueLimits = { maxMessages: this.#settings.maxQueueMessages, maxBytes: this.#settings.maxQueueBytes };
  readonly #linkEvents: LinkEvents = {
    frame: (link, body, own) => this.#onFrame(link, body, own),
    full: (link) => this.#slowConsumers.watch(link),
    error: (err) => this.#error(err, true),
    ended: (link, reason) => void this.#linkEnded(link, reason),
  };
  readonly #refusals = new BroadcastRefusals();
  readonly #announcements = new MemberAnnouncements(this.#links);
  readonly #broadcasts = new BroadcastArena();
  readonly #roster = new WelcomeRoster();

  /** The socket path, if the hub listens on one. */
  get path(): string | undefined {
    return this.#listener?.path;
  }

  /** The peers connected right now, the hub's own peer not included. */
  get peers(): PeerInfo[] {
    return [...this.#links.values()].filter((l) => l.id !== 0).map((l) => l.info!).sort((a, b) => a.id - b.id);
  }

  static {
    startHub = (hub) => hub.#start();
    acceptConnection = (hub, conn, role = {}) => hub.#accept(conn, role);
  }

  /** Connects the hub's own peer, then starts accepting. */
  async #start(): Promise<void> {
    if (this.#settings.ownPeer !== false) {
      const [hubSide, peerSide] = memoryConnectionPair();
      this.#accept(hubSide, { hubPeer: true });
      await attachPeer(this.peer, peerSide, this.#settings.handshakeTimeout);
    }
    this.#listener.start(this.#settings.socketWatch);
  }

  /** Serves one connection: handshake, then routing until it ends. */
  #accept(conn: Connection, role: { hubPeer?: boolean; host?: boolean } = {}): void {
    const link = new PeerLink(conn, this.#queueLimits);
    link.isHost = role.host === true;
    link.isHubPeer = role.hubPeer === true;
    this.#open.add(link);
    link.read(this.#readSettings, this.#linkEvents);
  }

  #hostId: number | undefined; // the peer hosting this hub: 0, or the channel member that runs it

  async #linkEnded(link: PeerLink, reason: string): Promise<void> {
    this.#open.delete(link);
    await link.conn.close();
    if (!link.gone) this.#onGone(link, reason, true);
  }

  /** An `error` event; `counted` ones also go into `stats().errors`. */
  #error(err: unknown, counted: boolean): void {
    if (counted) this.#stats.errors++;
    this.dispatchEvent(new CustomEvent("error", { detail: err }));
  }

  #cutLoose(link: PeerLink, err: IpcError): void {
    this.#stats.slowConsumers++;
    this.#error(err, false);
    link.cutLoose(encodeMessage({ k: Kind.Error, e: wireError(err) }), this.#slowConsumers.timeout);
    this.#onGone(link, ErrorCode.SlowConsumer, false);
  }

  #onFrame(link: PeerLink, body: Uint8Array, own: boolean): void {
    this.#stats.framesIn++;
    this.#stats.bytesIn += body.byteLength + 4;
    // Found by tests/fuzz/: a hello pipelined behind a refused one was welcomed, and what followed it routed.
    if (link.refused) return;
    // Nobody may hear from a peer before hearing that it joined.
    if (!link.announced) this.#announcements.flush();
    // Alerts are most of the traffic: route them on a hand-read envelope.
    const fast = link.info ? readEnvelope(body) : undefined;
    if (fast) {
      if (fast.k === "a") return this.#onAlert(link, body, this.#from(link, fast as AlertFields));
      if (fast.k === "q") return this.#onRequest(link, body, this.#from(link, fast as Request), own);
      return this.#onReply(link, body, this.#from(link, fast as { f: number; t: number; r: number }));
    }
    const m = asEnvelope(decodeEnvelope(body));
    if (!link.info) {
      if (m.k !== Kind.Hello) throw new ProtocolError(`Expected a hello first, got ${m.k}`);
      return this.#onHello(link, asHello(m));
    }
    switch (m.k) {
      case Kind.Alert:
        return this.#onAlert(link, body, this.#from(link, asAlert(m) as AlertFields));
      case Kind.Request:
        return this.#onRequest(link, body, this.#from(link, asRequest(m)), own);
      case Kind.Response:
      case Kind.ErrorResponse:
        return this.#onReply(link, body, this.#from(link, asReply(m)));
      case Kind.Handle:
        return this.#routes.set(link, compileReceivedRoutes(asPatterns(m)));
      case Kind.Ack:
        // Channels: acknowledgements of reliably delivered alerts go to the peer they are for.
        return void this.#links.get(this.#from(link, asAck(m)).t)?.writer.push(body);
      case Kind.Bye:
        // A graceful leave: the read loop ends when the peer closes its side.
        return;
      case Kind.Hello:
        throw new ProtocolError("Handshake sent twice");
      default:
        this.#stats.errors++;
        link.writer.push(encodeMessage({
          k: Kind.Error,
          e: systemError(new ProtocolError(`Unknown message kind ${clip(JSON.stringify(m.k), 40)}; ignored`)),
        }));
    }
  }

  #from<T extends { f: number }>(link: PeerLink, m: T): T {
    if (m.f !== link.id) throw new ProtocolError(`Peer ${link.id} sent a frame claiming to be from peer ${m.f}`);
    return m;
  }

  #onHello(link: PeerLink, hello: Hello): void {
    const { isHubPeer } = link;
    const refuse = (err: IpcError) => {
      link.refused = true;
      link.writer.push(encodeMessage({ k: Kind.Refuse, e: systemError(err) }));
      void link.writer.close(200).then(() => link.conn.close());
    };
    const verdict = admitHello(hello, {
      isHubPeer,
      token: this.#settings.token,
      closing: this.#closing,
      nameHolder: (name) => this.#byName.get(name),
      ids: this.#ids,
      assignId: this.#settings.assignId,
    });
    if (verdict instanceof IpcError) return refuse(verdict);
    const id = verdict;
    const info: PeerInfo = {
      id,
      pid: hello.pid,
      runtime: hello.runtime,
      since: Date.now(),
      ...(hello.name === undefined ? {} : { name: hello.name }),
      ...(hello.inc === undefined ? {} : { inc: hello.inc }),
    };
    if (isHubPeer || link.isHost) this.#hostId = id;
    link.info = info;
    link.dropOldest = hello.dropOldest === true;
    this.#announcements.announce({ join: info }, { joining: link, now: this.#closing });
    this.#links.set(id, link);
    if (info.name !== undefined) this.#byName.set(info.name, id);
    if (!isHubPeer) this.#stats.peersJoined++;
    this.#roster.add(info);
    this.#roster.welcome(link.writer, id, this.#hostId);
    link.writer.onWritten = () => this.#onWritten(link);
  }

  #onAlert(from: PeerLink, body: Uint8Array, m: AlertFields): void {
    this.#stats.alerts++;
    if (m.t === undefined) {
      // Copied once, for every destination to write from.
      this.#broadcasts.add(body);
      for (const dest of this.#links.values()) this.#deliver(from, dest, body, m, this.#broadcasts);
      return;
    }
    const dest = this.#links.get(m.t);
    if (!dest) this.#undeliverable(from, m, "no_such_peer");
    else this.#deliver(from, dest, body, m);
  }

  /** Queues an alert for `dest`; a broadcast comes with the arena holding its frame. */
  #deliver(from: PeerLink, dest: PeerLink, body: Uint8Array, m: AlertFields, shared?: BroadcastArena): void {
    const writer = dest.writer;
    // Plain broadcasts are paced by reading their sender (PeerLink.paceBy), not by busy/room: a destination that
    // stalls holds nobody back. Numbered ones (channels) are resent on room, so busy/room it is for them.
    const paced = shared !== undefined && m.s === undefined;
    if (!writer.hasRoom()) {
      this.#slowConsumers.watch(dest);
      if (shared && dest.dropOldest && writer.dropOldest()) this.#drop("drop_oldest");
      else {
        this.#drop("queue_full");
        if (paced) return this.#refusals.refuse(from, dest.id, m.n);
        this.#undeliverable(from, m, "queue_full", dest.id);
        // The sender marks dest busy on this report, so it must hear `room` later even if none of its frames was
        // queued for dest, its own copy of a broadcast included (else flush() never resolves; tests/load/).
        (dest.toldBusy ??= new Set()).add(from.id);
        return;
      }
    }
    // A broadcast that may be dropped is copied into the batch, where dropOldest() can find it.
    if (shared && !dest.dropOldest) writer.pushShared(shared.bytes, shared.start, shared.end);
    else writer.push(body, shared !== undefined && dest.dropOldest);
    if (dest.dropOldest || from === dest) return;
    if (paced) from.paceBy(dest);
    else if (writer.aboveHighWater && !dest.toldBusy?.has(from.id)) {
      (dest.toldBusy ??= new Set()).add(from.id);
      from.writer.push(encodeMessage({ k: Kind.Busy, id: dest.id }));
    }
  }

  #onWritten(link: PeerLink): void {
    link.wakeDrainWaiters();
    if (!link.toldBusy?.size || !link.writer.belowLowWater) return;
    const room = encodeMessage({ k: Kind.Room, id: link.id });
    for (const id of link.toldBusy) this.#links.get(id)?.writer.push(room);
    link.toldBusy.clear();
  }

  #undeliverable(from: PeerLink, m: AlertFields, reason: string, to = m.t): void {
    const about = { ...(to === undefined ? {} : { t: to }), ...(m.s === undefined ? {} : { s: m.s }) };
    from.writer.push(encodeMessage({ k: Kind.Undeliverable, n: m.n, reason, ...about }));
  }

  #onRequest(from: PeerLink, body: Uint8Array, m: Request, own: boolean): void {
    this.#stats.requests++;
    // Reports about what it sent before come before the answer to this request.
    if (from.unreported) this.#refusals.report(from);
    if (this.#closing) return this.#fail(from, m, new ClosedError(`Cannot route ${m.u}: the hub is closing`));
    let dest: PeerLink | undefined;
    if (m.t !== undefined) {
      dest = this.#links.get(m.t);
      if (!dest) return this.#fail(from, m, new NoSuchPeerError(`No peer with id ${m.t} is connected`));
    } else {
      dest = this.#responderFor(m.u);
      if (!dest) return this.#fail(from, m, new NoResponderError(`No handler for route ${m.u}`));
    }
    if (dest.id === 0 && this.#settings.ownPeer !== false) return this.#serveOwn(from, m, own);
    if (!dest.writer.hasRoom()) {
      this.#slowConsumers.watch(dest);
      this.#drop("queue_full");
      return this.#fail(from, m, new QueueFullError(`Cannot route ${m.u}: the queue of peer ${dest.id} is full`));
    }
    this.#inFlight.add(from.id, m.r, dest.id, m.u, m.w);
    dest.writer.push(body);
  }

  /** Own handlers run by a direct call: answered within it when they return a value, remembered while a promise runs. */
  #serveOwn(from: PeerLink, m: Request, own: boolean): void {
    let entry: InFlight | undefined;
    const answered = servePeer(this.peer, m, own, (answer) => {
      if (entry && !this.#inFlight.settle(entry)) return; // answered with an error meanwhile (closing)
      this.#stats.responses++;
      writeAnswer(from.writer, 0, m, this.#settings.maxFrameBytes, answer);
      if (this.#closing && this.#inFlight.size === 0) this.#wakeDrained?.();
    });
    if (!answered) entry = this.#inFlight.add(from.id, m.r, 0, m.u, m.w);
  }

  #responderFor(route: string): PeerLink | undefined {
    const candidates = this.#routes.match(route);
    if (candidates.length === 0) return undefined;
    const own = this.#links.get(0);
    if (own !== undefined && candidates.includes(own)) return own;
    return candidates[this.#rr++ % candidates.length];
  }

  #fail(to: PeerLink, m: { r: number; f: number }, err: IpcError): void {
    to.writer.push(encodeMessage({ k: Kind.ErrorResponse, f: 0, t: m.f, r: m.r, e: systemError(err) }));
  }

  #onReply(from: PeerLink, body: Uint8Array, m: { t: number; r: number }): void {
    const entry = this.#inFlight.get(m.t, m.r);
    if (!entry || entry.responder !== from.id) {
      this.#drop("unexpected_response");
      return;
    }
    this.#inFlight.forget(m.t, m.r);
    this.#stats.responses++;
    const requester = this.#links.get(m.t);
    if (requester) requester.writer.push(body);
    else this.#drop("requester_left");
    if (this.#closing && this.#inFlight.size === 0) this.#wakeDrained?.();
  }

  /** Forgets `link` and tells the others; `abort` drops what is queued for it (false: a last frame is on its way). */
  #onGone(link: PeerLink, reason: string, abort: boolean): void {
    link.leave();
    this.#framesOutClosed += link.writer.framesOut;
    this.#bytesOutClosed += link.writer.bytesOut;
    if (abort) link.writer.abort();
    const info = link.info;
    if (!info || this.#links.get(info.id) !== link) return;
    this.#ids.release(info.id);
    this.#routes.remove(link);
    this.#roster.remove(info.id);
    if (info.name !== undefined && this.#byName.get(info.name) === info.id) this.#byName.delete(info.name);
    if (info.id !== 0) this.#stats.peersLeft++;
    const gone = reason === ErrorCode.SlowConsumer ? "was disconnected as a slow consumer" : "left";
    this.#inFlight.peerGone(info.id, (entry) => {
      const requester = this.#links.get(entry.requester);
      if (!requester) return;
      // While the hub closes, responders go because of the close: the requester is told ClosedError, as promised.
      this.#fail(
        requester,
        { r: entry.rid, f: entry.requester },
        this.#closing
          ? new ClosedError(`Cannot answer ${entry.route}: the hub is closing`)
          : new PeerLeftError(`Peer ${info.id} ${gone} before answering ${entry.route}`),
      );
    });
    for (const other of this.#links.values()) {
      if (other.toldBusy?.delete(info.id)) this.#onWritten(other);
    }
    this.#announcements.announce({ leave: info.id, reason }, { now: this.#closing });
    if (this.#closing && this.#inFlight.size === 0) this.#wakeDrained?.();
  }

  #drop(reason: string): void {
    this.#stats.dropped[reason] = (this.#stats.dropped[reason] ?? 0) + 1;
  }

  /**
   * The hub's counters.
   *
   * @returns A snapshot: peers, handlers, frames and bytes each way, alerts,
   * requests, responses, errors, drops by reason, uptime.
   *
   * @example
   * ```ts
   * import { serve } from "@ipcbus/ipcbus";
   * const hub = await serve({ path: "/tmp/app.sock" });
   * const { peers, requests, dropped } = hub.stats();
   * ```
   */
  stats(): HubStats {
    let [framesOut, bytesOut] = [this.#framesOutClosed, this.#bytesOutClosed];
    for (const link of this.#links.values()) {
      framesOut += link.writer.framesOut;
      bytesOut += link.writer.bytesOut;
    }
    return {
      ...this.#stats,
      dropped: { ...this.#stats.dropped },
      peers: this.#links.size - (this.#links.has(0) ? 1 : 0),
      handlers: this.#routes.size,
      framesOut,
      bytesOut,
      inFlightRequests: this.#inFlight.size,
      uptimeMs: Date.now() - this.#started,
      socketRebinds: this.#listener.rebinds,
    };
  }

  /**
   * Closes gracefully: stops accepting, tells peers it is closing, lets
   * requests in flight finish for up to `timeout` ms, then closes every
   * connection and removes the socket file.
   *
   * @param options `timeout` in ms (default: `serve()`'s `closeTimeout`, 2000).
   *
   * @example
   * ```ts
   * import { serve } from "@ipcbus/ipcbus";
   * const hub = await serve({ path: "/tmp/app.sock" });
   * await hub.close({ timeout: 500 });
   * ```
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    this.#closed ??= this.#close(options.timeout ?? this.#settings.closeTimeout);
    return this.#closed;
  }

  async #close(timeout: number): Promise<void> {
    this.#closing = true;
    this.#announcements.flush();
    await this.#listener.close();
    const closing = encodeMessage({ k: Kind.Close, reason: "hub closing" });
    for (const link of this.#links.values()) if (link.id !== 0) link.writer.push(closing);
    if (this.#inFlight.size > 0) {
      await waitAtMost(new Promise<void>((resolve) => (this.#wakeDrained = resolve)), timeout);
    }
    await this.peer.close();
    // A connection still in its handshake, or a slow consumer being given its last frame, is in #open only.
    for (const link of this.#open) if (!link.info || link.gone) void link.conn.close();
    this.#slowConsumers.close();
    this.#refusals.close();
    const links = [...this.#links.values()];
    await Promise.all(links.map(async (link) => {
      await link.writer.close(Math.min(timeout, 500));
      await link.conn.close();
    }));
    // Requests still remembered are moot once every connection is closed.
    this.#inFlight.clear();
  }
}

/** Makes a hub on `listener` (none: connections come through `acceptConnection` only). */
export function makeHub(listener: Listener | undefined, settings: HubSettings, peerSettings: PeerSettings): Hub {
  nextHub = { listener, settings, peerSettings };
  try {
    return new Hub();
  } finally {
    nextHub = undefined;
  }
}
