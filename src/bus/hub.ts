import { decodeEnvelope } from "../codec/cbor.ts";
import type { Connection, Listener } from "../transport/connection.ts";
import { memoryConnectionPair } from "../transport/memory.ts";
import { canOpenFile, isOutOfFiles } from "../transport/out_of_files.ts";
import {
  ClosedError,
  ErrorCode,
  IpcError,
  NoResponderError,
  NoSuchPeerError,
  PeerLeftError,
  ProtocolError,
  QueueFullError,
  SlowConsumerError,
} from "../errors.ts";
import { type FastEnvelope, readEnvelope } from "./fast_envelope.ts";
import { admitHello } from "./hub_handshake.ts";
import { BUS_DEFAULTS, type HubSettings, type HubStats, type SocketWatch } from "./hub_settings.ts";
import { InFlightRequests } from "./in_flight_requests.ts";
import { PeerLink } from "./peer_link.ts";
import { BroadcastRefusals } from "./broadcast_refusals.ts";
import { MemberAnnouncements } from "./member_announcements.ts";
import { SlowConsumerWatch } from "./slow_consumer_watch.ts";
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
  wireError,
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
    slowConsumers: 0,
    dropped: {} as Record<string, number>,
  };
  #framesOutClosed = 0;
  #bytesOutClosed = 0;
  readonly #slowConsumers: SlowConsumerWatch;
  readonly #refusals = new BroadcastRefusals();
  readonly #announcements = new MemberAnnouncements(this.#links);
  /** Peers cut loose as slow consumers that took their last frame: the timer that closes them if they do not. */
  readonly #goodbyes = new Map<PeerLink, ReturnType<typeof setTimeout>>();
  /** Whether the process was found out of file descriptors and has not accepted since. */
  #outOfFiles = false;
  #retryAccept: (() => void) | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;

  /** @internal Use `serve()`. */
  constructor(listener: Listener | undefined, settings: HubSettings, peerSettings: PeerSettings) {
    super();
    this.#listener = listener;
    this.#settings = settings;
    this.#slowConsumers = new SlowConsumerWatch(
      settings.slowConsumerTimeout ?? BUS_DEFAULTS.slowConsumerTimeout,
      (link, idleMs) => this.#cutLoose(link, idleMs),
    );
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
    // Bun's accept loop retries in silence when the process is out of descriptors: look on each tick.
    if (this.#outOfFiles) this.#outOfFiles = !canOpenFile();
    else if (!canOpenFile()) this.#onOutOfFiles(undefined);
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

  /**
   * Accepts until the listener closes. Out of file descriptors, accepting
   * fails (Deno) or stalls (Bun) while the peers connected are served as
   * ever: report it once, then try again, less and less often.
   */
  async #acceptLoop(listener: Listener): Promise<void> {
    let retryMs = ACCEPT_RETRY_MS;
    while (!this.#closing) {
      try {
        for await (const conn of listener) {
          this.#outOfFiles = false;
          retryMs = ACCEPT_RETRY_MS;
          this.accept(conn);
        }
        return;
      } catch (err) {
        if (this.#closing) return;
        if (!isOutOfFiles(err)) {
          this.#stats.errors++;
          this.dispatchEvent(new CustomEvent("error", { detail: err }));
          return;
        }
        this.#onOutOfFiles(err);
        await new Promise<void>((resolve) => {
          this.#retryAccept = resolve;
          this.#retryTimer = setTimeout(resolve, retryMs);
        });
        retryMs = Math.min(retryMs * 2, MAX_ACCEPT_RETRY_MS);
      }
    }
  }

  /** Reports, once until the hub accepts again, that the process has no file descriptor left for new peers. */
  #onOutOfFiles(cause: unknown): void {
    if (this.#outOfFiles) return;
    this.#outOfFiles = true;
    this.#stats.errors++;
    const err = new IpcError(
      `Cannot accept new peers: the hub's process has no file descriptor left (EMFILE); the ${this.stats().peers} peers connected are served, new ones wait until descriptors are freed`,
      { code: ErrorCode.TooManyOpenFiles, ...(cause === undefined ? {} : { cause }) },
    );
    this.dispatchEvent(new CustomEvent("error", { detail: err }));
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
    const reason = await link.read(this.#settings, {
      frame: (body) => {
        this.#stats.framesIn++;
        this.#stats.bytesIn += body.byteLength + 4;
        this.#onFrame(link, body, isHubPeer);
      },
      chunk: () => {
        if (link.gone) return link.goodbye;
        // Found by tests/fuzz/: frames the hub answers (unknown kinds, alerts to nobody, refusals) grew the
        // sender's own queue without bound, as replies bypass the limits. Dropping the peer once its queue
        // passed twice them also dropped busy peers that do read (tests/load/: a full-speed broadcaster
        // gets a refusal per full destination): so stop reading a peer while its own queue is past its
        // limits, which bounds it to the limits plus one chunk's replies. If it reads nothing for
        // slowConsumer.timeout, the sweep cuts it loose.
        if (!link.writer.hasRoom()) return this.#untilRoom(link);
        if (link.slowing.size > 0) return this.#untilDrained(link);
      },
      error: (err) => {
        this.#stats.errors++;
        this.dispatchEvent(new CustomEvent("error", { detail: err }));
      },
    });
    this.#open.delete(link);
    clearTimeout(this.#goodbyes.get(link));
    this.#goodbyes.delete(link);
    await link.conn.close();
    if (!link.gone) this.#onGone(link, reason, true);
  }

  /** Waits until `link`'s own queue is back under its limits, then paces its broadcasts. */
  async #untilRoom(link: PeerLink): Promise<void> {
    this.#markFull(link);
    while (!link.writer.hasRoom() && !link.writer.failed && !link.gone) {
      await link.nextWrite(this.#slowConsumers.timeout);
    }
    if (link.slowing.size > 0) await this.#untilDrained(link);
  }

  /**
   * Broadcasts are paced by their slowest live destination: `link` is not
   * read while a destination of its broadcasts is past a quarter of its
   * queue and still takes frames. One that took nothing for STALL_MS
   * (frozen, or not reading) is not waited for: what it cannot take is
   * refused for it alone.
   */
  async #untilDrained(link: PeerLink): Promise<void> {
    for (const dest of link.slowing) {
      while (!dest.gone && !link.gone && !dest.writer.belowLowWater) {
        const idle = performance.now() - dest.writer.progressAt;
        if (idle < STALL_MS) await dest.nextWrite(STALL_MS - idle + 1);
        else {
          // A hub that was itself descheduled sees its timers before the writes that completed
          // meanwhile: give those a turn before taking the peer for stalled.
          await new Promise((resolve) => setTimeout(resolve, 0));
          if (performance.now() - dest.writer.progressAt >= STALL_MS) break;
        }
      }
    }
    link.slowing.clear();
  }

  /** Whether `link` has frames queued and took none for STALL_MS. */
  #stalled(link: PeerLink): boolean {
    return link.writer.messages > 0 && performance.now() - link.writer.progressAt >= STALL_MS;
  }

  /** Notes that `link`'s queue has no room, for the slow-consumer sweep to watch. */
  #markFull(link: PeerLink): void {
    // The hub's own peer and a channel's hosting member live in this process: never cut loose.
    if (link.gone || link.isHost || link.info?.id === 0 && this.#settings.ownPeer !== false) return;
    this.#slowConsumers.watch(link);
  }

  #cutLoose(link: PeerLink, idleMs: number): void {
    this.#stats.slowConsumers++;
    const err = new SlowConsumerError(
      `Peer ${link.info?.id} was disconnected as a slow consumer: its queue at the hub was full (${link.writer.messages} frames, ${link.writer.bytes} bytes) and took nothing for ${
        Math.round(idleMs)
      } ms (slowConsumer.timeout ${this.#slowConsumers.timeout} ms)`,
    );
    this.dispatchEvent(new CustomEvent("error", { detail: err }));
    // What was queued for it goes; the frame saying why is written once it reads again (it may be frozen).
    link.refused = true;
    link.writer.discardQueued();
    link.writer.push(encodeMessage({ k: Kind.Error, e: wireError(err) }));
    this.#onGone(link, ErrorCode.SlowConsumer, false);
    // The hub reads nothing more from it until that frame is written (its writes wait in its socket), at most
    // slowConsumer.timeout; a peer that never reads is then closed. One that read it gets the end of the stream,
    // and what it still sends is read and ignored until it closes (at most as long again): closing at once
    // failed the writes of a peer waking up (an answer it had to send), and that failure closed its side before
    // it read why (tests/load/slow_consumer_test.ts, Bun).
    const timeout = this.#slowConsumers.timeout;
    link.goodbye = link.writer.close(timeout).then(() => {
      if (link.writer.failed) return void link.conn.close();
      this.#goodbyes.set(link, setTimeout(() => void link.conn.close(), timeout));
    });
  }

  #onFrame(link: PeerLink, body: Uint8Array, isHubPeer: boolean): void {
    // Found by tests/fuzz/: a hello pipelined behind a refused one was welcomed, and what followed it routed.
    if (link.refused) return;
    // Nobody may hear from a peer before hearing that it joined.
    if (!link.announced) this.#announcements.flush();
    // Alerts are most of the traffic: route them on a hand-read envelope.
    const fast = link.info ? readEnvelope(body) : undefined;
    if (fast) {
      if (fast.k === "a") return this.#onAlert(link, body, this.#from(link, fast as AlertFields));
      if (fast.k === "q") return this.#onRequest(link, body, this.#from(link, fast as Request));
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
        return this.#onRequest(link, body, this.#from(link, asRequest(m)));
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
    this.#announcements.announce({ join: info }, { joining: link, now: this.#closing });
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
    // Plain broadcasts are paced by reading their sender (#untilDrained), not by busy/room, so that a
    // destination that stalls holds nobody back. Numbered ones (channels) are resent on room: kept as they were.
    const paced = isBroadcast && m.s === undefined;
    if (!writer.hasRoom()) {
      this.#markFull(dest);
      if (isBroadcast && dest.dropOldest && writer.dropOldest()) this.#drop("drop_oldest");
      else {
        this.#drop("queue_full");
        if (paced) return this.#refusals.refuse(from, dest.id, m.n);
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
    if (dest.dropOldest || from === dest) return;
    if (paced) {
      // Paced from a quarter on (busy/room wait for half): what is left is the margin for a peer that is
      // only slow, not frozen, but was taken for stalled on a loaded machine (tests/load/).
      if (!writer.belowLowWater && !this.#stalled(dest)) from.slowing.add(dest);
    } else if (writer.aboveHighWater && !dest.toldBusy.has(from.id)) {
      dest.toldBusy.add(from.id);
      from.writer.push(encodeMessage({ k: Kind.Busy, id: dest.id }));
    }
  }

  #onWritten(link: PeerLink): void {
    link.wakeDrainWaiters();
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

  #onRequest(from: PeerLink, body: Uint8Array, m: Request): void {
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
    if (!dest.writer.hasRoom()) {
      this.#markFull(dest);
      this.#drop("queue_full");
      return this.#fail(from, m, new QueueFullError(`Cannot route ${m.u}: the queue of peer ${dest.id} is full`));
    }
    const entry = this.#inFlight.add(from.id, m.r, dest.id, m.u, m.w);
    if (dest.id === 0 && this.#settings.ownPeer !== false) {
      // The hub's own handlers run here by a direct call: no round trip
      // through its in-memory connection, which cost two stream hops a way.
      void this.peer.serve(m).then((answer) => {
        if (this.#inFlight.get(from.id, m.r) !== entry) return; // answered with an error meanwhile (closing)
        this.#inFlight.forget(from.id, m.r);
        this.#stats.responses++;
        writeAnswer(from.writer, 0, m, this.#settings.maxFrameBytes, answer);
        if (this.#closing && this.#inFlight.size === 0) this.#wakeDrained?.();
      });
      return;
    }
    dest.writer.push(body);
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

  /** Forgets `link` and tells the others; `abort` drops what is queued for it (false: a last frame is on its way). */
  #onGone(link: PeerLink, reason: string, abort: boolean): void {
    link.gone = true;
    this.#framesOutClosed += link.writer.framesOut;
    this.#bytesOutClosed += link.writer.bytesOut;
    if (abort) link.writer.abort();
    link.wakeDrainWaiters();
    this.#slowConsumers.forget(link);
    this.#refusals.forget(link);
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
        this.#closing ? new ClosedError(`Cannot answer ${entry.route}: the hub is closing`) : new PeerLeftError(
          reason === ErrorCode.SlowConsumer
            ? `Peer ${info.id} was disconnected as a slow consumer before answering ${entry.route}`
            : `Peer ${info.id} left before answering ${entry.route}`,
        ),
      );
    });
    for (const other of this.#links.values()) {
      if (other.toldBusy.delete(info.id)) this.#onWritten(other);
    }
    this.#announcements.announce({ leave: info.id, reason }, { now: this.#closing });
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
    clearTimeout(this.#retryTimer);
    this.#retryAccept?.();
    this.#announcements.flush();
    await this.#listener?.close();
    const closing = encodeMessage({ k: Kind.Close, reason: "hub closing" });
    for (const link of this.#links.values()) if (link.id !== 0) link.writer.push(closing);
    if (this.#inFlight.size > 0) {
      await waitAtMost(new Promise<void>((resolve) => (this.#wakeDrained = resolve)), timeout);
    }
    await this.peer.close();
    // A connection still in its handshake is in #open only; without this it would outlive close().
    // Nor would a peer cut loose as a slow consumer, still being given its last frame.
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

/** First wait before accepting again after the process ran out of file descriptors; it doubles up to the next. */
const ACCEPT_RETRY_MS = 50;
const MAX_ACCEPT_RETRY_MS = 1000;
/**
 * A destination with frames queued that took nothing for this long is
 * stalled: broadcasters stop waiting for it. (The bar: a frozen peer
 * holds a broadcaster's `flush()` at most 250 ms.)
 */
const STALL_MS = 100;
