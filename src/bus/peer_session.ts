import { wakeAll } from "../util/wake_all.ts";
import { ByteStringCbor, type CborData } from "../codec/byte_string_cbor.ts";
import { decodeCbor, encodeCbor, encodeCborTransient } from "../codec/cbor.ts";
import { ClosedError, FrameTooLargeError, IpcError, QueueFullError } from "../errors.ts";
import { randomHex } from "../util/random_hex.ts";
import { AlertHandlers, textAlertName } from "./alert_handlers.ts";
import { AwayQueue } from "./away_queue.ts";
import { checkHeaders, type MessageHeaders } from "./headers.ts";
import type { Answer, DeliveryPolicy, Link, LinkHandler, LinkWelcome, UndeliverableDetail } from "./link.ts";
import { emitError, hasListener } from "./peer_events.ts";
import { PendingRequests } from "./pending_requests.ts";
import { PeerCounters } from "./peer_counters.ts";
import type { PeerSettings, RequestOptions } from "./peer_types.ts";
import { PeerView } from "./peer_view.ts";
import { fromErrorRecord, systemError } from "./protocol.ts";
import { Responders } from "./responders.ts";

/**
 * The state of a {@linkcode Peer} under its facade, and what happens when its
 * link reports: the current link, the delivery policy, the parts (view,
 * alert handlers, responders, pending requests), and the calls queued while
 * between links. `Peer` keeps the public API; this keeps the machinery.
 */
export class PeerSession {
  readonly settings: PeerSettings;
  readonly events: EventTarget;
  id: number | undefined;
  link: Link | undefined;
  closing = false;
  closed = false;
  /** The far side said it is closing. */
  hubClosing = false;
  readonly counters = new PeerCounters();
  readonly pending = new PendingRequests();
  readonly policy: DeliveryPolicy | undefined;
  readonly view: PeerView;
  readonly alerts: AlertHandlers;
  readonly responders: Responders;
  /** With a delivery policy: calls made before the first link opened, replayed in order once it has. */
  outbox: Array<() => void> = [];
  /** Id of the member hosting the hub, as the last welcome said. */
  hubHost: number | undefined;
  readonly incarnation = randomHex(8);
  /** `drain()` began: no new requests either way, routes withdrawn. */
  draining = false;
  /** Sends made while between links, when the peer reconnects. */
  readonly away: AwayQueue;
  /** Settles once the peer is closed for good: undefined, or the error that ended it. */
  readonly closedPromise: Promise<Error | undefined>;
  #resolveClosed!: (reason: Error | undefined) => void;
  /** Aborts when the peer closes, to stop a reconnect in progress. */
  readonly #closeSignal = new AbortController();
  /** Requests being served whose answer is not yet queued, for `drain()`. */
  #serving = 0;
  #servedWaiters: Array<() => void> = [];

  constructor(settings: PeerSettings, events: EventTarget & { send(to: number, name: string, data: unknown): void }) {
    this.settings = settings;
    this.events = events;
    this.away = new AwayQueue({ maxMessages: settings.maxQueueMessages, maxBytes: settings.maxQueueBytes });
    this.closedPromise = new Promise((resolve) => (this.#resolveClosed = resolve));
    const delivery = settings.delivery;
    this.policy = delivery?.policy({
      selfId: () => this.id as number,
      link: () => this.link,
      undeliverable: (to, name, reason) => this.reportUndeliverable({ to, name, reason }),
      count: (reason) => this.counters.drop(reason),
    });
    this.view = new PeerView({
      selfId: () => this.id,
      connected: () => this.link !== undefined,
      closing: () => this.closing,
      dispatchEvent: (event) => events.dispatchEvent(event),
      listens: (type) => hasListener(events, type),
    }, this.policy && { policy: this.policy, graceMs: delivery!.graceMs });
    this.alerts = new AlertHandlers({
      pidOf: (id) => this.view.get(id)?.pid ?? -1,
      reply: (to, name, data) => events.send(to, name, data),
      error: (err, what) => this.emitError(err, what),
    }, this.counters);
    this.responders = new Responders(this.counters);
  }

  /** Opens `link` and carries the peer's messages over it from then on. */
  async attach(link: Link): Promise<void> {
    await link.open(this.handlerFor(link));
  }

  /** A signal that aborts when the peer closes. */
  get closeSignal(): AbortSignal {
    return this.#closeSignal.signal;
  }

  /**
   * Runs the handler of route `m.u` for request `m` (whose `d` is copied for
   * the handler unless `own`: see `Responders.serve`); calls `done` with its
   * answer, once, and returns whether it did before returning. While
   * draining, answers `ClosedError` instead.
   */
  serve(
    m: { f: number; u: string; d: Uint8Array; h?: MessageHeaders },
    own: boolean,
    done: (answer: Answer) => void,
  ): boolean {
    if (this.draining) {
      done({ error: systemError(new ClosedError(`Peer ${this.id} is draining: ${m.u} not served`)) });
      return true;
    }
    this.#serving++;
    return this.responders.serve(this.id, m, own, this.view.get(m.f)?.pid ?? -1, (answer) => {
      // The answer is queued before anything drain() does once this count is zero.
      done(answer);
      if (--this.#serving === 0) wakeAll(this.#servedWaiters);
    });
  }

  /** Resolves once no request is being served. */
  served(): Promise<void> {
    if (this.#serving === 0) return Promise.resolve();
    return new Promise((resolve) => this.#servedWaiters.push(resolve));
  }

  /** `link` opened: it carries this peer's messages from now on. */
  opened(link: Link, welcome: LinkWelcome): void {
    if (this.closing) {
      // Closed while this link was being opened (a reconnect in progress).
      void link.close();
      return;
    }
    this.id = welcome.id;
    this.hubHost = welcome.host;
    this.view.welcome(welcome.peers);
    this.link = link;
    this.hubClosing = false;
    if (this.responders.size > 0 || this.draining) this.announceRoutes();
    if (this.policy) {
      this.policy.onSessionStart(this.view.present);
      const outbox = this.outbox;
      this.outbox = [];
      for (const replay of outbox) replay();
    }
    this.away.replayAll();
    this.events.dispatchEvent(new CustomEvent("connect", { detail: { id: this.id } }));
  }

  /** What `link` reports, applied to this peer while `link` is its current one. */
  handlerFor(link: Link): LinkHandler {
    return {
      welcome: (welcome) => this.opened(link, welcome),
      alert: (from, _to, name, data, seq, headers) => {
        if (this.policy && seq !== undefined && !this.policy.accept(from, seq)) return;
        this.alerts.deliver(from, name, data, headers);
      },
      request: (from, id, route, data, headers) => {
        const m = headers === undefined ? { f: from, u: route, d: data } : { f: from, u: route, d: data, h: headers };
        this.serve(m, true, (answer) => {
          if (this.link === link) link.answer(from, id, answer);
        });
      },
      answer: (id, answer) => this.settle(id, answer),
      join: (info) => this.view.join(info),
      leave: (id, reason) => this.view.leave(id, reason),
      undeliverable: (detail, sequenced) => {
        if (this.policy && sequenced && detail.reason === "queue_full" && detail.to !== undefined) {
          // Kept until acknowledged: it is sent again when the hub says there is room.
          this.counters.drop("resend_queue_full");
          return;
        }
        this.reportUndeliverable(detail);
      },
      room: (id) => this.policy?.onPresent(id),
      ack: (from, ack) => this.policy?.onAck(from, ack),
      drop: (reason) => this.counters.drop(reason),
      error: (err) => this.emitError(err, "The hub reported an error"),
      closing: () => {
        this.hubClosing = true;
      },
      lost: (reason, error) => {
        if (this.link !== link) return;
        this.lose(
          this.closing
            ? new ClosedError("Peer is closed")
            : error ?? new ClosedError(`Connection to the hub lost: ${reason}`),
          reason,
        );
      },
    };
  }

  /**
   * Ends the current link: pending requests reject, `disconnect` fires. A
   * peer that neither reconnects nor has a delivery policy (which waits for
   * its channel's next hub) is then closed for good, with `error`.
   */
  lose(error: IpcError, reason: string): void {
    const link = this.link;
    this.link = undefined;
    this.pending.rejectAll(() => error);
    this.view.present.clear();
    if (this.policy) {
      this.policy.onSessionLost();
      if (this.closing) this.policy.close();
      else this.view.restartGrace();
    }
    const reconnecting = !this.closing && (this.policy !== undefined || this.settings.reconnects === true);
    if (link) this.events.dispatchEvent(new CustomEvent("disconnect", { detail: { reason, reconnecting } }));
    if (this.closing) this.alerts.endAll();
    else if (!reconnecting) this.end(error);
  }

  /**
   * Closes the peer for good without a link: what waits is settled with
   * `error`, subscriptions end, `closed` resolves with `error` (undefined
   * for an orderly close).
   */
  end(error: Error | undefined): void {
    if (this.closed) return;
    this.closing = true;
    this.closed = true;
    this.#closeSignal.abort(error ?? new ClosedError("Peer is closed"));
    const reason = error ?? new ClosedError("Peer is closed");
    this.pending.rejectAll(() => reason);
    this.away.abandonAll(reason);
    this.policy?.close();
    this.view.close();
    this.alerts.endAll();
    this.#resolveClosed(error);
  }

  settle(id: number, answer: Answer): void {
    let settled: boolean;
    if ("data" in answer) {
      let value: unknown;
      try {
        value = decodeCbor(answer.data, true);
      } catch (err) {
        settled = this.pending.settle(id, err);
        if (!settled) this.counters.drop("late_response");
        return;
      }
      settled = this.pending.resolve(id, value, answer.headers);
    } else settled = this.pending.settle(id, fromErrorRecord(answer.error));
    if (!settled) this.counters.drop("late_response");
  }

  reportUndeliverable(detail: UndeliverableDetail): void {
    this.counters.drop(`undeliverable_${detail.reason}`, detail.count);
    this.events.dispatchEvent(new CustomEvent("undeliverable", { detail }));
  }

  /** `send()` (`to` set) and `broadcast()`: over the link, by the delivery policy, or queued while reconnecting. */
  sendAlert(to: number | string | undefined, name: string, data: unknown, headers: MessageHeaders | undefined): void {
    if (this.policy) return this.sendReliably(to, name, data, headers);
    const link = this.usableOrReconnecting();
    textAlertName(name);
    const dest = to === undefined ? undefined : this.view.resolve(to);
    // Queued while reconnecting it must stay as it is; sent now it may be transient.
    const d = this.encodeData(data, name, link !== undefined);
    if (link) {
      // A broadcast is never refused for one busy peer: the hub refuses it for that peer alone.
      if (dest !== undefined) link.checkRoom(dest, name);
      link.alert(dest, name, d, undefined, headers);
    } else {
      const reportAs = (reason: string) =>
        this.reportUndeliverable({ ...(dest === undefined ? {} : { to: dest }), name, reason });
      this.away.push({
        bytes: d.byteLength,
        replay: () => {
          try {
            // Checked again: the destination may not have come back to the new hub.
            if (dest !== undefined) this.view.resolve(dest);
            const now = this.usable();
            if (dest !== undefined) now.checkRoom(dest, name);
            now.alert(dest, name, d, undefined, headers);
          } catch (err) {
            reportAs(err instanceof IpcError ? err.code : "invalid");
          }
        },
        abandon: () => reportAs("closed"),
      }, name);
    }
    this.counters.alertsSent++;
  }

  /** `request()` (`withHeaders` false) and `requestReply()`. */
  request(route: string, data: unknown, options: RequestOptions, withHeaders: boolean): Promise<unknown> {
    try {
      const link = this.policy ? this.usableOrAway() : this.usableOrReconnecting();
      if (typeof route !== "string" || route.length === 0) {
        throw new TypeError(`Invalid route: expected a non-empty string, got ${JSON.stringify(route)}`);
      }
      const timeout = options.timeout ?? this.settings.requestTimeout;
      if (!(timeout > 0)) throw new RangeError(`Invalid timeout: expected a positive number, got ${timeout}`);
      const headers = checkHeaders(options.headers);
      options.signal?.throwIfAborted();
      // Queued for later (no link yet) it must stay as it is; sent now it may be transient.
      const d = this.encodeData(data, route, link !== undefined);
      const add = (to: number | undefined) => this.pending.add(route, to, timeout, options.signal, withHeaders);
      if (!link && this.id === undefined) {
        // Not yet joined: no view to check `to` against; resolve it on replay.
        this.enqueue(route);
        const { id, promise } = add(undefined);
        this.outbox.push(() => this.sendRequest(id, route, options.to, d, timeout, headers));
        return promise;
      }
      const to = options.to === undefined ? undefined : this.view.resolve(options.to);
      let sent: { id: number; promise: Promise<unknown> };
      if (link) {
        sent = add(to);
        this.sendRequest(sent.id, route, to, d, timeout, headers);
      } else if (this.policy) {
        this.enqueue(route);
        sent = add(to);
        const id = sent.id;
        this.outbox.push(() => this.sendRequest(id, route, to, d, timeout, headers));
      } else {
        let id = 0;
        // Queued first, so that a full queue throws before a pending entry exists.
        this.away.push({
          bytes: d.byteLength,
          replay: () => this.sendRequest(id, route, to, d, timeout, headers),
          abandon: () => {}, // its pending entry is rejected with the same error
        }, route);
        sent = add(to);
        id = sent.id;
      }
      this.counters.requestsSent++;
      return sent.promise;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  sendReliably(
    to: number | string | undefined,
    name: string,
    data: unknown,
    headers: MessageHeaders | undefined,
  ): void {
    this.usableOrAway();
    textAlertName(name);
    const d = this.encodeData(data, name);
    if (d.byteLength + 64 + name.length * 3 > this.settings.maxFrameBytes) {
      throw new FrameTooLargeError(
        `Cannot send ${name}: ${d.byteLength} bytes of data exceed maxFrameBytes ${this.settings.maxFrameBytes}`,
      );
    }
    if (this.id === undefined) {
      // Before the first handshake there is no view: check the destination on replay.
      this.enqueue(name);
      this.outbox.push(() => {
        try {
          this.sendReliably(to, name, data, headers);
        } catch (err) {
          const reason = err instanceof IpcError ? err.code : "invalid";
          this.reportUndeliverable({ ...(typeof to === "number" ? { to } : {}), name, reason });
        }
      });
      return;
    }
    if (to === undefined) {
      this.link?.checkRoom(undefined, name);
      this.policy!.broadcast(this.view.ids(), name, d, headers);
    } else {
      const dest = this.view.resolve(to);
      this.link?.checkRoom(dest, name);
      this.policy!.send(dest, name, d, headers);
    }
    this.counters.alertsSent++;
  }

  enqueue(what: string): void {
    const limit = this.settings.delivery!.queueLimit;
    if (this.outbox.length >= limit) {
      throw new QueueFullError(`Cannot queue ${what}: ${limit} calls wait for the channel to connect (queueLimit)`);
    }
  }

  /** With a delivery policy, a peer may call while between links; the link is undefined then. */
  usableOrAway(): Link | undefined {
    if (this.closing || this.closed) throw new ClosedError("Peer is closed");
    if (this.draining) throw new ClosedError("Peer is draining: it takes no new messages");
    return this.link;
  }

  sendRequest(
    id: number,
    route: string,
    to: number | string | undefined,
    d: CborData,
    timeout: number,
    headers?: MessageHeaders,
  ): void {
    try {
      const dest = to === undefined ? undefined : this.view.resolve(to);
      const m = { id, to: dest, route, data: d, timeout };
      this.usable().request(headers === undefined ? m : { ...m, headers });
    } catch (err) {
      this.pending.settle(id, err);
    }
  }

  /**
   * The link to send over now, or undefined when the peer reconnects and is
   * between links (the caller queues in `away` then).
   *
   * @throws {ClosedError} when the peer is closed or draining, the hub is
   * closing, or the link is gone for good.
   */
  usableOrReconnecting(): Link | undefined {
    const away = !this.link || this.hubClosing; // a hub that said `close` is about to go: queue for the next
    if (!away || !this.settings.reconnects || this.id === undefined) return this.usable();
    if (this.closing || this.closed || this.draining) return this.usable();
    return undefined;
  }

  usable(): Link {
    if (this.closing || this.closed) throw new ClosedError("Peer is closed");
    if (this.draining) throw new ClosedError("Peer is draining: it takes no new messages");
    if (this.hubClosing) throw new ClosedError("The hub is closing");
    const link = this.link;
    if (!link) throw new ClosedError("Peer is not connected to a hub");
    return link;
  }

  /**
   * The CBOR of `data`. With `now`, the caller hands it to the link at once
   * (a link copies what it is given before returning): a `Uint8Array` then
   * goes as a `ByteStringCbor`, written into the frame straight from the
   * user's array, and anything else through one reused buffer (see
   * `encodeCborTransient`).
   */
  encodeData(data: unknown, what: string): Uint8Array;
  encodeData(data: unknown, what: string, now: boolean): CborData;
  encodeData(data: unknown, what: string, now = false): CborData {
    // Bytes go into the frame straight from the user's array: one copy.
    if (now && data instanceof Uint8Array && data.byteLength < 0x100000000) return new ByteStringCbor(data);
    try {
      return now ? encodeCborTransient(data) : encodeCbor(data);
    } catch (cause) {
      // The codec's own typed errors (DataError, naming the bad value's path) pass as they are.
      if (cause instanceof IpcError) throw cause;
      throw new TypeError(`Cannot encode data of ${what}: ${(cause as Error)?.message ?? cause}`, { cause });
    }
  }

  announceRoutes(): void {
    const link = this.link;
    if (!link || this.closing) return;
    link.routes(this.draining ? [] : this.responders.patterns());
  }

  emitError(err: unknown, what: string): void {
    emitError(this.events, err, what);
  }
}
