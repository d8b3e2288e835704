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
import type { HubSettings, HubStats, SocketWatch } from "./hub_settings.ts";
import { type InFlight, InFlightRequests } from "./in_flight_requests.ts";
import { PeerLink } from "./peer_link.ts";
import { waitAtMost } from "../util/with_timeout.ts";
import { Peer, type PeerSettings } from "./peer.ts";
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
  encodeMessage,
  type ErrorRecord,
  type Hello,
  Kind,
  type PeerInfo,
  PROTOCOL_VERSION,
  type Request,
  systemError,
} from "./protocol.ts";
import { compilePattern } from "./route_pattern.ts";

/** What the hub reads of an alert to route it. */
type AlertFields = Pick<FastEnvelope, "f" | "t" | "s"> & { n: string };

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
  /** The hub process's own peer, id 0. */
  readonly peer: Peer;
  #listener: Listener | undefined;
  #watchTimer: ReturnType<typeof setInterval> | undefined;
  #socketRebinds = 0;
  readonly #settings: HubSettings;
  readonly #links = new Map<number, PeerLink>();
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
  readonly #stats = {
    peersJoined: 0,
    peersLeft: 0,
    framesIn: 0,
    bytesIn: 0,
    alerts: 0,
    requests: 0,
    responses: 0,
    errors: 0,
    dropped: {} as Record<string, number>,
  };
  #framesOutClosed = 0;
  #bytesOutClosed = 0;

  /** @internal Use `serve()`. */
  constructor(listener: Listener | undefined, settings: HubSettings, peerSettings: PeerSettings) {
    super();
    this.#listener = listener;
    this.#settings = settings;
    this.peer = new Peer({ ...peerSettings, id: 0 });
  }

  /** The socket path, if the hub listens on one. */
  get path(): string | undefined {
    return this.#listener?.path;
  }

  /** The peers connected right now, the hub's own peer not included. */
  get peers(): PeerInfo[] {
    return [...this.#links.values()].filter((l) => l.id !== 0).map((l) => l.info!).sort((a, b) => a.id - b.id);
  }

  /** @internal Connects the hub's own peer, then starts accepting. */
  async start(): Promise<void> {
    if (this.#settings.ownPeer !== false) {
      const [hubSide, peerSide] = memoryConnectionPair();
      this.accept(hubSide, { hubPeer: true });
      await this.peer.attach(peerSide, this.#settings.handshakeTimeout);
    }
    if (this.#listener) void this.#acceptLoop(this.#listener);
    const watch = this.#settings.socketWatch;
    if (watch) this.#watchTimer = setInterval(() => void this.#checkSocket(watch), watch.intervalMs);
  }

  /**
   * A deleted socket file leaves the hub listening on an inode nobody can
   * reach: notice it, bind a new file, and say so through an `error` event.
   */
  async #checkSocket(watch: SocketWatch): Promise<void> {
    if (this.#closing || watch.isBound()) return;
    try {
      // Close the old listener first: the new file may get the deleted one's
      // inode number, and the old listener removes a file with its inode.
      await this.#listener?.close();
      const listener = await watch.relisten();
      if (this.#closing) return void await listener.close();
      this.#listener = listener;
      this.#socketRebinds++;
      void this.#acceptLoop(listener);
      this.dispatchEvent(
        new CustomEvent("error", {
          detail: new IpcError(`Socket file ${listener.path} was removed under the hub; bound a new one`, {
            code: ErrorCode.SocketLost,
          }),
        }),
      );
    } catch (err) {
      this.#stats.errors++;
      this.dispatchEvent(new CustomEvent("error", { detail: err }));
    }
  }

  async #acceptLoop(listener: Listener): Promise<void> {
    try {
      for await (const conn of listener) this.accept(conn);
    } catch (err) {
      if (!this.#closing) this.#stats.errors++;
      this.dispatchEvent(new CustomEvent("error", { detail: err }));
    }
  }

  /**
   * Serves one connection: handshake, then routing until it ends. Channels
   * use it to add connections that did not come from the listener.
   * @internal
   */
  accept(conn: Connection, role: { hubPeer?: boolean; host?: boolean } = {}): void {
    const link = new PeerLink(conn, this.#settings);
    link.writer.onError = () => void conn.close();
    link.isHost = role.host === true;
    this.#open.add(link);
    void this.#serveLink(link, role.hubPeer === true);
  }

  /** Id of the peer hosting this hub: 0, or the channel member that runs it. */
  #hostId: number | undefined;

  async #serveLink(link: PeerLink, isHubPeer: boolean): Promise<void> {
    const reason = await link.read(this.#settings, (body, own) => {
      this.#stats.framesIn++;
      this.#stats.bytesIn += body.byteLength + 4;
      this.#onFrame(link, body, isHubPeer, own);
    }, (err) => {
      this.#stats.errors++;
      this.dispatchEvent(new CustomEvent("error", { detail: err }));
    });
    this.#open.delete(link);
    await link.conn.close();
    this.#onGone(link, reason);
  }

  #onFrame(link: PeerLink, body: Uint8Array, isHubPeer: boolean, own: boolean): void {
    // Found by tests/fuzz/: a hello pipelined behind a refused one was welcomed, and what followed it routed.
    if (link.refused) return;
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
      this.#onHello(link, asHello(m), isHubPeer);
      return;
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
        link.patterns = asPatterns(m).map((p) => compilePattern(p));
        return;
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

  #onHello(link: PeerLink, hello: Hello, isHubPeer: boolean): void {
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
      isFree: (id) => !this.#links.has(id),
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
    const join = encodeMessage({ k: Kind.Join, peer: info });
    for (const other of this.#links.values()) other.writer.push(join);
    this.#links.set(id, link);
    if (info.name !== undefined) this.#byName.set(info.name, id);
    if (!isHubPeer) this.#stats.peersJoined++;
    link.writer.push(encodeMessage({
      k: Kind.Welcome,
      v: PROTOCOL_VERSION,
      id,
      ...(this.#hostId === undefined ? {} : { host: this.#hostId }),
      peers: [...this.#links.values()].map((l) => l.info!),
    }));
    link.writer.onWritten = () => this.#onWritten(link);
  }

  #onAlert(from: PeerLink, body: Uint8Array, m: AlertFields): void {
    this.#stats.alerts++;
    if (m.t === undefined) {
      for (const dest of this.#links.values()) this.#deliver(from, dest, body, m, true);
      return;
    }
    const dest = this.#links.get(m.t);
    if (!dest) this.#undeliverable(from, m, "no_such_peer");
    else this.#deliver(from, dest, body, m, false);
  }

  #deliver(from: PeerLink, dest: PeerLink, body: Uint8Array, m: AlertFields, isBroadcast: boolean): void {
    const writer = dest.writer;
    if (!writer.hasRoom()) {
      if (isBroadcast && dest.dropOldest && writer.dropOldest()) this.#drop("drop_oldest");
      else {
        this.#drop("queue_full");
        this.#undeliverable(from, m, "queue_full", dest.id);
        // The sender marks dest busy on this report, so it must hear `room` later even if
        // none of its frames was ever queued for dest (else its flush() never resolves).
        // That holds for its own copy of a broadcast too (dest === from, when its own queue
        // is full): skipping it left the sender busy with itself forever (tests/load/).
        dest.toldBusy.add(from.id);
        return;
      }
    }
    writer.push(body, isBroadcast);
    if (writer.aboveHighWater && !dest.dropOldest && !dest.toldBusy.has(from.id) && from !== dest) {
      dest.toldBusy.add(from.id);
      from.writer.push(encodeMessage({ k: Kind.Busy, id: dest.id }));
    }
  }

  #onWritten(link: PeerLink): void {
    if (link.toldBusy.size === 0 || !link.writer.belowLowWater) return;
    const room = encodeMessage({ k: Kind.Room, id: link.id });
    for (const id of link.toldBusy) this.#links.get(id)?.writer.push(room);
    link.toldBusy.clear();
  }

  #undeliverable(from: PeerLink, m: AlertFields, reason: string, to = m.t): void {
    from.writer.push(encodeMessage({
      k: Kind.Undeliverable,
      n: m.n,
      reason,
      ...(to === undefined ? {} : { t: to }),
      ...(m.s === undefined ? {} : { s: m.s }),
    }));
  }

  #onRequest(from: PeerLink, body: Uint8Array, m: Request, own: boolean): void {
    this.#stats.requests++;
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
      this.#drop("queue_full");
      return this.#fail(from, m, new QueueFullError(`Cannot route ${m.u}: the queue of peer ${dest.id} is full`));
    }
    this.#inFlight.add(from.id, m.r, dest.id, m.u, m.w);
    dest.writer.push(body);
  }

  /** Own handlers run by a direct call: answered within it when they return a value, remembered while a promise runs. */
  #serveOwn(from: PeerLink, m: Request, own: boolean): void {
    let entry: InFlight | undefined;
    const answered = this.peer.serve(m, own, (answer) => {
      if (entry && this.#inFlight.get(from.id, m.r) !== entry) return; // answered with an error meanwhile (closing)
      if (entry) this.#inFlight.forget(from.id, m.r);
      this.#stats.responses++;
      writeAnswer(from.writer, 0, m, this.#settings.maxFrameBytes, answer);
      if (this.#closing && this.#inFlight.size === 0) this.#wakeDrained?.();
    });
    if (!answered) entry = this.#inFlight.add(from.id, m.r, 0, m.u, m.w);
  }

  #responderFor(route: string): PeerLink | undefined {
    const own = this.#links.get(0);
    if (own?.handles(route)) return own;
    const candidates: PeerLink[] = [];
    for (const link of this.#links.values()) if (link !== own && link.handles(route)) candidates.push(link);
    if (candidates.length === 0) return undefined;
    return candidates[this.#rr++ % candidates.length];
  }

  #fail(to: PeerLink, m: { r: number; f: number }, err: IpcError): void {
    const e: ErrorRecord = systemError(err);
    to.writer.push(encodeMessage({ k: Kind.ErrorResponse, f: 0, t: m.f, r: m.r, e }));
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

  #onGone(link: PeerLink, reason: string): void {
    this.#framesOutClosed += link.writer.framesOut;
    this.#bytesOutClosed += link.writer.bytesOut;
    link.writer.abort();
    const info = link.info;
    if (!info || this.#links.get(info.id) !== link) return;
    this.#links.delete(info.id);
    if (info.name !== undefined && this.#byName.get(info.name) === info.id) this.#byName.delete(info.name);
    if (info.id !== 0) this.#stats.peersLeft++;
    this.#inFlight.peerGone(info.id, (entry) => {
      const requester = this.#links.get(entry.requester);
      if (!requester) return;
      // While the hub closes, responders (its own peer first) go because of the close, not on
      // their own: the requester is told ClosedError, as the spec promises for pending requests.
      this.#fail(
        requester,
        { r: entry.rid, f: entry.requester },
        this.#closing
          ? new ClosedError(`Cannot answer ${entry.route}: the hub is closing`)
          : new PeerLeftError(`Peer ${info.id} left before answering ${entry.route}`),
      );
    });
    for (const other of this.#links.values()) {
      if (other.toldBusy.delete(info.id)) this.#onWritten(other);
    }
    const leave = encodeMessage({ k: Kind.Leave, id: info.id, reason });
    for (const other of this.#links.values()) other.writer.push(leave);
    if (this.#closing && this.#inFlight.size === 0) this.#wakeDrained?.();
  }

  #wakeDrained: (() => void) | undefined;

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
    let framesOut = this.#framesOutClosed;
    let bytesOut = this.#bytesOutClosed;
    let handlers = 0;
    for (const link of this.#links.values()) {
      framesOut += link.writer.framesOut;
      bytesOut += link.writer.bytesOut;
      handlers += link.patterns.length;
    }
    return {
      ...this.#stats,
      dropped: { ...this.#stats.dropped },
      peers: this.#links.size - (this.#links.has(0) ? 1 : 0),
      handlers,
      framesOut,
      bytesOut,
      inFlightRequests: this.#inFlight.size,
      uptimeMs: Date.now() - this.#started,
      socketRebinds: this.#socketRebinds,
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
    clearInterval(this.#watchTimer);
    await this.#listener?.close();
    const closing = encodeMessage({ k: Kind.Close, reason: "hub closing" });
    for (const link of this.#links.values()) if (link.id !== 0) link.writer.push(closing);
    if (this.#inFlight.size > 0) {
      await waitAtMost(new Promise<void>((resolve) => (this.#wakeDrained = resolve)), timeout);
    }
    await this.peer.close();
    // A connection still in its handshake is in #open only; without this it would outlive close().
    for (const link of this.#open) if (!link.info) void link.conn.close();
    const links = [...this.#links.values()];
    await Promise.all(links.map(async (link) => {
      await link.writer.close(Math.min(timeout, 500));
      await link.conn.close();
    }));
    // Requests still remembered are moot once every connection is closed.
    this.#inFlight.clear();
  }
}
