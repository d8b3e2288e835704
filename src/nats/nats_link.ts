import type { NatsConnection } from "@nats-io/transport-node";
import { encodeCbor } from "../codec/cbor.ts";
import {
  ClosedError,
  ConnectError,
  FrameTooLargeError,
  IpcError,
  NoResponderError,
  NoSuchPeerError,
  PeerLeftError,
  QueueFullError,
} from "../errors.ts";
import type { Answer, CborData, Link, LinkHandler, LinkWelcome, Sequence } from "../bus/link.ts";
import { envelopeWithHeaders, type MessageHeaders } from "../bus/headers.ts";
import { deliverEnvelope } from "../bus/deliver_envelope.ts";
import { envelopeBytes, type EnvelopeFields, writeEnvelope } from "../bus/fast_envelope.ts";
import { Kind, type PatternRecord, type PeerInfo, systemError, toErrorRecord } from "../bus/protocol.ts";
import { processId, runtime } from "../transport/runtime.ts";
import { randomHex } from "../util/random_hex.ts";
import { waitAtMost, withTimeout } from "../util/with_timeout.ts";
import { IdLease, LEASE_REFRESH_MS, LEASE_STALE_MS, leasedPeers } from "./id_lease.ts";
import { type BusSubjects, decodePresence, encodePresence, type Here, PresenceKind } from "./nats_protocol.ts";
import { dialNats, openBucket, retryJetStream } from "./dial_nats.ts";
import { Outbox } from "./outbox.ts";
import { ReturnAddresses, type Returned } from "./return_addresses.ts";
import { SentRequests } from "./sent_requests.ts";
import { type HeardChange, HEARTBEAT_MS, Presence, PRESENCE_TIMEOUT_MS } from "./presence.ts";

/** What a {@linkcode NatsLink} needs: where, which bus, who, limits. */
export interface NatsLinkSettings {
  servers: string[];
  subjects: BusSubjects;
  name?: string;
  auth?: { token: string } | { user: string; pass: string };
  /** Budget of `open()`: connection, bucket, id, first view. */
  connectTimeout: number;
  maxQueueMessages: number;
  maxQueueBytes: number;
  maxFrameBytes: number;
}

/** How often silent peers and forgotten requests are swept. */
const SWEEP_MS = 250;
/** How long `close()` waits for the NATS connection to drain. */
const DRAIN_TIMEOUT_MS = 2000;
/** Messages kept from before the welcome, at most; more are dropped (at most once). */
const MAX_EARLY = 1024;
/** Largest `w` a request carries: envelope integers stay within 4-byte CBOR heads. */
const MAX_WAIT_MS = 0x7fffffff;

/**
 * A {@linkcode Link} over NATS: a peer's inbox is a subject, broadcasts go
 * to one subject every peer subscribes to, ids are JetStream KV leases
 * ({@linkcode IdLease}) and membership is heartbeats ({@linkcode Presence}).
 * Delivery is core NATS: at most once. PROTOCOL.md's "NATS" section
 * describes the subjects and messages.
 */
export class NatsLink implements Link {
  readonly #settings: NatsLinkSettings;
  readonly #subjects: BusSubjects;
  readonly #presence = new Presence();
  readonly #sent = new SentRequests();
  readonly #returns = new ReturnAddresses();
  readonly #timers: Array<ReturnType<typeof setInterval>> = [];
  #nc: NatsConnection | undefined;
  #outbox: Outbox | undefined;
  #lease: IdLease | undefined;
  #handler: LinkHandler | undefined;
  /** What incoming envelopes go to: the handler, and answers also clear the sent request. */
  #deliver: Pick<LinkHandler, "alert" | "request" | "answer"> | undefined;
  #self: PeerInfo | undefined;
  #patterns: PatternRecord[] = [];
  #maxFrameBytes: number;
  /** Connections made to NATS so far: peers learn from a change that this one was away. */
  #connections = 1;
  #away = false;
  #closing = false;
  #refreshing = false;
  /** When the heartbeat and sweep timers last fired. */
  #lastBeat = Date.now();
  #lastSweep = Date.now();
  /** Wakes `open()` while it waits for the first view. */
  #heardWaiter: (() => void) | undefined;
  /** Messages that arrived before the welcome (peers that heard this one's first `here`), delivered after it. */
  #early: Uint8Array[] | undefined = [];

  constructor(settings: NatsLinkSettings) {
    this.#settings = settings;
    this.#subjects = settings.subjects;
    this.#maxFrameBytes = settings.maxFrameBytes;
  }

  async open(handler: LinkHandler): Promise<LinkWelcome> {
    const s = this.#settings;
    const deadline = Date.now() + s.connectTimeout;
    const nc = await dialNats({
      servers: s.servers,
      timeout: s.connectTimeout,
      name: `ipcbus ${s.subjects.bucket}${s.name === undefined ? "" : ` ${s.name}`}`,
      ...(s.auth === undefined ? {} : { auth: s.auth }),
    });
    this.#nc = nc;
    try {
      const welcome = await withTimeout(
        this.#join(nc, deadline),
        s.connectTimeout,
        () => `Cannot join bus ${s.subjects.bucket} over NATS within connectTimeout ${s.connectTimeout} ms`,
      );
      handler.welcome(welcome);
      this.#handler = handler;
      this.#deliver = {
        alert: (from, to, name, data, _seq, headers) => handler.alert(from, to, name, data, undefined, headers),
        request: (from, id, route, data, headers) => handler.request(from, id, route, data, headers),
        answer: (id, answer) => {
          this.#sent.answered(id);
          handler.answer(id, answer);
        },
      };
      const early = this.#early!;
      this.#early = undefined;
      for (const bytes of early) this.#onInbox(bytes);
      this.#watch(nc);
      return welcome;
    } catch (err) {
      this.#closing = true;
      this.#stopTimers();
      if (this.#lease) await waitAtMost(this.#lease.release(), DRAIN_TIMEOUT_MS);
      await nc.close().catch(() => {});
      throw err;
    }
  }

  async #join(nc: NatsConnection, deadline: number): Promise<LinkWelcome> {
    const s = this.#settings;
    this.#maxFrameBytes = Math.min(s.maxFrameBytes, nc.info?.max_payload ?? s.maxFrameBytes);
    this.#outbox = new Outbox(nc, s);
    const kv = await openBucket(nc, this.#subjects.bucket, deadline);
    const record = {
      pid: processId,
      runtime: runtime ?? "unknown",
      since: Date.now(),
      inc: randomHex(8),
      ...(s.name === undefined ? {} : { name: s.name }),
    };
    this.#lease = await retryJetStream(
      deadline,
      `claiming an id in bucket ${this.#subjects.bucket}`,
      () => IdLease.claim(kv, record),
    );
    const self: PeerInfo = { ...record, id: this.#lease.id };
    this.#self = self;
    nc.subscribe(this.#subjects.inbox(self.id), { callback: (_, msg) => this.#onInbox(msg.data) });
    nc.subscribe(this.#subjects.all, { callback: (_, msg) => this.#onInbox(msg.data) });
    nc.subscribe(this.#subjects.presence, { callback: (_, msg) => this.#onPresence(msg.data) });
    nc.subscribe(this.#subjects.returned(self.id, "*"), {
      callback: (_, msg) => this.#onReturned(msg.subject, msg.headers?.code),
    });
    await nc.flush();
    // Peers with a fresh lease are expected to answer the query; the rest are gone or about to be.
    const now = Date.now();
    const expected = (await retryJetStream(deadline, "listing the leases", () => leasedPeers(kv)))
      .filter((l) => l.info.id !== self.id && now - l.written < LEASE_STALE_MS)
      .map((l) => l.info.id);
    this.#presence.heard(this.#here(false), now);
    this.#outbox!.publish(this.#subjects.presence, encodePresence(this.#here(true)));
    const until = Math.min(deadline, Date.now() + PRESENCE_TIMEOUT_MS);
    while (expected.some((id) => !this.#presence.has(id)) && Date.now() < until) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, until - Date.now());
        this.#heardWaiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#heardWaiter = undefined;
    this.#lastBeat = this.#lastSweep = Date.now();
    this.#timers.push(
      setInterval(() => this.#beat(), HEARTBEAT_MS),
      setInterval(() => this.#sweep(), SWEEP_MS),
      setInterval(() => void this.#refreshLease(), LEASE_REFRESH_MS),
    );
    return { id: self.id, peers: this.#presence.infos() };
  }

  /** Follows the connection: away and back (reconnects), or gone for good. */
  #watch(nc: NatsConnection): void {
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === "disconnect") this.#onAway(status.server);
        else if (status.type === "reconnect") this.#onBack();
      }
    })().catch(() => {});
    void nc.closed().then((err) => this.#lose(err instanceof Error ? err.message : "NATS connection closed"));
  }

  /** The link is gone without `close()`: the connection closed for good, or the id was taken over. */
  #lose(reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#stopTimers();
    this.#failInFlight(() => new ClosedError(`The NATS link was lost before the answer: ${reason}`));
    this.#handler?.lost(reason);
    void this.#nc?.close().catch(() => {});
  }

  alert(to: number | undefined, name: string, data: CborData, _seq?: Sequence, headers?: MessageHeaders): void {
    const outbox = this.#usable();
    const fields: EnvelopeFields = [["f", this.#self!.id], ["t", to], ["n", name], ["d", data]];
    const bytes = this.#envelope("a", fields, `send ${name}`, headers);
    if (!outbox.hasRoom(bytes.byteLength)) throw this.#full(`send ${name}`);
    try {
      if (to === undefined) outbox.publish(this.#subjects.all, bytes);
      else outbox.publish(this.#subjects.inbox(to), bytes, this.#returnAddress({ alert: name, to }));
    } catch (err) {
      this.#handler?.undeliverable({ ...(to === undefined ? {} : { to }), name, reason: errorCode(err) }, false);
    }
  }

  checkRoom(_to: number | undefined, what: string): void {
    // NATS reports no destination full: only this peer's own queue can be.
    if (!this.#usable().hasRoom(0)) throw this.#full(`send ${what}`);
  }

  request(m: Parameters<Link["request"]>[0]): void {
    const outbox = this.#usable();
    const to = m.to ?? this.#presence.responder(m.route);
    if (to === undefined || !this.#presence.has(to)) {
      const error = to === undefined
        ? new NoResponderError(`No peer handles route ${m.route}`)
        : new NoSuchPeerError(`No peer with id ${to} is connected`);
      queueMicrotask(() => this.#handler?.answer(m.id, { error: systemError(error) }));
      return;
    }
    const w = Math.min(Math.ceil(m.timeout), MAX_WAIT_MS);
    const f = this.#self!.id;
    const fields: EnvelopeFields = [["f", f], ["t", to], ["r", m.id], ["u", m.route], ["w", w], ["d", m.data]];
    const bytes = this.#envelope("q", fields, `request ${m.route}`, m.headers);
    if (!outbox.hasRoom(bytes.byteLength)) throw this.#full(`request ${m.route}`);
    this.#sent.add(m.id, to, m.timeout);
    outbox.publish(this.#subjects.inbox(to), bytes, this.#returnAddress({ request: m.id, to }));
  }

  answer(to: number, id: number, answer: Answer): void {
    const outbox = this.#outbox;
    if (!outbox || this.#closing) return;
    const f = this.#self!.id;
    let bytes: Uint8Array;
    try {
      bytes = "data" in answer
        ? this.#envelope("p", [["f", f], ["t", to], ["r", id], ["d", answer.data]], "answer", answer.headers)
        : encodeCbor({ k: Kind.ErrorResponse, f, t: to, r: id, e: answer.error });
    } catch (err) {
      bytes = encodeCbor({ k: Kind.ErrorResponse, f, t: to, r: id, e: toErrorRecord(err) });
    }
    // Answers are not refused for a full queue: the requester asked for them, and they are bounded by its requests.
    outbox.publish(this.#subjects.inbox(to), bytes);
  }

  ack(): void {
    // Channels' exactly-once delivery is not offered over NATS: no policy sends acknowledgements here.
  }

  routes(patterns: PatternRecord[]): void {
    this.#patterns = patterns;
    // Said at once, so that peers can route to them before the next heartbeat.
    if (this.#self && !this.#closing) this.#heartbeat();
  }

  flush(): Promise<void> {
    return this.#outbox?.idle() ?? Promise.resolve();
  }

  queued(): { messages: number; bytes: number } {
    return this.#outbox?.queued() ?? { messages: 0, bytes: 0 };
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#stopTimers();
    this.#failInFlight(() => new ClosedError("Peer is closed"));
    const nc = this.#nc;
    const self = this.#self;
    if (!nc || !self || !this.#lease) return;
    const leave = encodePresence({ k: PresenceKind.Leave, id: self.id, inc: self.inc! });
    // If the connection is already going, the others notice the silence instead.
    if (!nc.isClosed()) nc.publish(this.#subjects.presence, leave);
    await waitAtMost(this.#lease.release(), DRAIN_TIMEOUT_MS);
    await waitAtMost(nc.drain(), DRAIN_TIMEOUT_MS);
    if (!nc.isClosed()) await nc.close().catch(() => {});
  }

  // ---- incoming -------------------------------------------------------------------

  #onInbox(bytes: Uint8Array): void {
    const h = this.#handler;
    if (!h) {
      if (this.#early && this.#early.length < MAX_EARLY) this.#early.push(bytes);
      return;
    }
    if (this.#closing) return;
    try {
      // Kinds this build does not know (from newer peers) come back undelivered: ignored.
      // nats.js hands each message's data as a view of the chunk it read, which it does not reuse: kept as it is.
      deliverEnvelope(bytes, this.#deliver!, true);
    } catch (err) {
      h.error(err);
    }
  }

  #onPresence(bytes: Uint8Array): void {
    if (this.#closing) return;
    const self = this.#self!;
    let m, change: HeardChange | undefined;
    try {
      m = decodePresence(bytes);
      if (m.k === PresenceKind.Here && m.peer.id !== self.id) change = this.#presence.heard(m, Date.now());
    } catch (err) {
      this.#handler?.error(err);
      return;
    }
    if (m.k === PresenceKind.Leave) {
      if (m.id !== self.id) this.#gone(m.id, "closed", m.inc);
      return;
    }
    if (change === undefined) return; // its own heartbeat
    if (m.q) this.#heartbeat();
    this.#heardWaiter?.();
    const h = this.#handler;
    if (!h) return;
    switch (change.type) {
      case "joined":
        return h.join(change.info);
      case "restarted":
        this.#failInFlightTo(change.old.id, "restarted");
        h.leave(change.old.id, "restarted");
        return h.join(change.info);
      case "reconnected":
        // It was away from NATS: what it was serving for this peer may be lost with its old connection.
        return this.#failInFlightTo(change.id, "lost its NATS connection");
    }
  }

  /** The server answered a directed message's reply subject: with 503, nobody subscribes to its destination. */
  #onReturned(subject: string, code: number | undefined): void {
    if (code !== 503) return;
    const message = this.#returns.take(Number(subject.slice(subject.lastIndexOf(".") + 1)));
    if (!message || !this.#handler) return;
    if ("alert" in message) {
      return this.#handler.undeliverable({ to: message.to, name: message.alert, reason: "peer_left" }, false);
    }
    this.#sent.answered(message.request);
    const error = new PeerLeftError(
      `Peer ${message.to} is not on the bus: request ${message.request} was not delivered`,
    );
    this.#handler.answer(message.request, { error: systemError(error) });
  }

  #returnAddress(message: Returned): string {
    return this.#subjects.returned(this.#self!.id, this.#returns.add(message));
  }

  #gone(id: number, reason: string, inc?: string): void {
    if (!this.#presence.remove(id, inc)) return;
    this.#failInFlightTo(id, "left");
    this.#handler?.leave(id, reason);
  }

  // ---- timers and connection state -------------------------------------------------

  #here(q: boolean): Here {
    return {
      k: PresenceKind.Here,
      peer: this.#self!,
      patterns: this.#patterns,
      c: this.#connections,
      ...(q ? { q } : {}),
    };
  }

  /**
   * The heartbeat timer. A beat far later than due means this process was
   * frozen (SIGSTOP, a debugger, swap) long enough for a peer of the same
   * name to take its id over: check the lease before saying `here` again.
   */
  #beat(): void {
    const now = Date.now();
    const late = now - this.#lastBeat > LEASE_STALE_MS;
    this.#lastBeat = now;
    if (late) void this.#refreshLease();
    else this.#heartbeat();
  }

  #heartbeat(): void {
    if (this.#closing) return;
    const here = this.#here(false);
    // This peer is in its own view, with its current routes: it may serve its own requests.
    this.#presence.heard(here, Date.now());
    if (this.#away) return;
    try {
      this.#outbox!.publish(this.#subjects.presence, encodePresence(here));
    } catch (err) {
      this.#handler?.error(err);
    }
  }

  #sweep(): void {
    const now = Date.now();
    // Frozen or away, this peer heard nobody: that says nothing about the others.
    const late = now - this.#lastSweep > PRESENCE_TIMEOUT_MS;
    this.#lastSweep = now;
    if (this.#away) return;
    if (late) this.#presence.forgive(now);
    for (const id of this.#presence.silent(now, this.#self!.id)) this.#gone(id, "silent");
    this.#sent.sweep(now);
  }

  async #refreshLease(): Promise<void> {
    if (this.#refreshing || this.#closing || this.#away) return;
    this.#refreshing = true;
    try {
      // Another peer of the same name holds the id now: carrying on would give the bus two peers with one id.
      if (!(await this.#lease!.refresh())) {
        this.#lose(`id ${this.#self!.id} was taken over: this peer was silent longer than ${LEASE_STALE_MS} ms`);
      }
    } finally {
      this.#refreshing = false;
    }
  }

  #onAway(server: string): void {
    this.#away = true;
    // Answers sent while this peer has no connection are lost with it.
    this.#failInFlight((rid) =>
      new ConnectError(`Lost the connection to NATS server ${server} before request ${rid} was answered`)
    );
  }

  #onBack(): void {
    this.#away = false;
    this.#connections++;
    this.#presence.forgive(Date.now());
    if (this.#closing) return;
    this.#outbox!.publish(this.#subjects.presence, encodePresence(this.#here(true)));
  }

  #failInFlightTo(id: number, what: string): void {
    for (const rid of this.#sent.take(id)) {
      const error = new PeerLeftError(`Peer ${id} ${what} before answering request ${rid}`);
      this.#handler?.answer(rid, { error: systemError(error) });
    }
  }

  #failInFlight(error: (rid: number) => IpcError): void {
    for (const rid of this.#sent.take()) this.#handler?.answer(rid, { error: systemError(error(rid)) });
  }

  #stopTimers(): void {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
  }

  // ---- helpers ----------------------------------------------------------------------

  #usable(): Outbox {
    if (this.#closing || !this.#outbox) throw new ClosedError("Peer is closed");
    return this.#outbox;
  }

  /**
   * Encodes an alert, request or response envelope in one buffer of its
   * exact size, as the hub link writes them (fast_envelope.ts).
   *
   * @throws {FrameTooLargeError} past the largest message.
   */
  #envelope(k: "a" | "q" | "p", fields: EnvelopeFields, what: string, headers?: MessageHeaders): Uint8Array {
    const withHeaders = headers === undefined ? undefined : envelopeWithHeaders(k, fields, headers);
    const size = withHeaders?.byteLength ?? envelopeBytes(fields);
    if (size > this.#maxFrameBytes) {
      throw new FrameTooLargeError(
        `Cannot ${what}: message of ${size} bytes exceeds maxFrameBytes ${this.#maxFrameBytes}`,
      );
    }
    if (withHeaders) return withHeaders;
    const buffer = new Uint8Array(size);
    writeEnvelope({ reserve: () => 0, buffer }, k, fields);
    return buffer;
  }

  #full(what: string): QueueFullError {
    const { messages, bytes } = this.#outbox!.queued();
    return new QueueFullError(
      `Cannot ${what}: outgoing queue is full (${messages} messages, ${bytes} bytes); await flush() and retry`,
    );
  }
}

function errorCode(err: unknown): string {
  return err instanceof IpcError ? err.code : "closed";
}
