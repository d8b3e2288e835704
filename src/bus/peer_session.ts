import { decodeCbor, encodeCbor, encodeCborTransient } from "../codec/cbor.ts";
import { ClosedError, FrameTooLargeError, IpcError, QueueFullError } from "../errors.ts";
import { randomHex } from "../util/random_hex.ts";
import { AlertHandlers, textAlertName } from "./alert_handlers.ts";
import type { Answer, DeliveryPolicy, Link, LinkHandler, LinkWelcome, UndeliverableDetail } from "./link.ts";
import { PendingRequests } from "./pending_requests.ts";
import { PeerCounters } from "./peer_counters.ts";
import type { PeerSettings } from "./peer_types.ts";
import { PeerView } from "./peer_view.ts";
import { fromErrorRecord } from "./protocol.ts";
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

  constructor(settings: PeerSettings, events: EventTarget & { send(to: number, name: string, data: unknown): void }) {
    this.settings = settings;
    this.events = events;
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
    }, this.policy && { policy: this.policy, graceMs: delivery!.graceMs });
    this.alerts = new AlertHandlers({
      pidOf: (id) => this.view.get(id)?.pid ?? -1,
      reply: (to, name, data) => events.send(to, name, data),
      error: (err) => this.emitError(err),
    }, this.counters);
    this.responders = new Responders(this.counters);
  }

  /** Opens `link` and carries the peer's messages over it from then on. */
  async attach(link: Link): Promise<void> {
    await link.open(this.handlerFor(link));
  }

  /** Runs the handler of route `m.u` for request `m` (whose `d` it may keep); calls `done` with its answer, once. */
  serve(m: { f: number; u: string; d: Uint8Array }, done: (answer: Answer) => void): boolean {
    return this.responders.serve(this.id, m, this.view.get(m.f)?.pid ?? -1, done);
  }

  /** `link` opened: it carries this peer's messages from now on. */
  opened(link: Link, welcome: LinkWelcome): void {
    this.id = welcome.id;
    this.hubHost = welcome.host;
    this.view.welcome(welcome.peers);
    this.link = link;
    this.hubClosing = false;
    if (this.responders.size > 0) this.announceRoutes();
    if (this.policy) {
      this.policy.onSessionStart(this.view.present);
      const outbox = this.outbox;
      this.outbox = [];
      for (const replay of outbox) replay();
    }
    this.events.dispatchEvent(new CustomEvent("connect", { detail: { id: this.id } }));
  }

  /** What `link` reports, applied to this peer while `link` is its current one. */
  handlerFor(link: Link): LinkHandler {
    return {
      welcome: (welcome) => this.opened(link, welcome),
      alert: (from, _to, name, data, seq) => {
        if (this.policy && seq !== undefined && !this.policy.accept(from, seq)) return;
        this.alerts.deliver(from, name, data);
      },
      request: (from, id, route, data) => {
        this.serve({ f: from, u: route, d: data }, (answer) => {
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
      error: (err) => this.emitError(err),
      closing: () => {
        this.hubClosing = true;
      },
      lost: (reason) => {
        if (this.link !== link) return;
        this.lose(
          this.closing ? new ClosedError("Peer is closed") : new ClosedError(`Connection to the hub lost: ${reason}`),
          reason,
        );
      },
    };
  }

  /** Ends the current link: pending requests reject, `disconnect` fires. */
  lose(error: ClosedError, reason: string): void {
    const link = this.link;
    this.link = undefined;
    this.pending.rejectAll(() => error);
    this.view.present.clear();
    if (this.policy) {
      this.policy.onSessionLost();
      if (this.closing) this.policy.close();
      else this.view.startGrace();
    }
    if (link) this.events.dispatchEvent(new CustomEvent("disconnect", { detail: { reason } }));
    if (this.closing) this.alerts.endAll();
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
      settled = this.pending.resolve(id, value);
    } else settled = this.pending.settle(id, fromErrorRecord(answer.error));
    if (!settled) this.counters.drop("late_response");
  }

  reportUndeliverable(detail: UndeliverableDetail): void {
    this.counters.drop(`undeliverable_${detail.reason}`);
    this.events.dispatchEvent(new CustomEvent("undeliverable", { detail }));
  }

  sendReliably(to: number | string | undefined, name: string, data: unknown): void {
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
          this.sendReliably(to, name, data);
        } catch (err) {
          const reason = err instanceof IpcError ? err.code : "invalid";
          this.reportUndeliverable({ ...(typeof to === "number" ? { to } : {}), name, reason });
        }
      });
      return;
    }
    if (to === undefined) {
      this.link?.checkRoom(undefined, name);
      this.policy!.broadcast(this.view.ids(), name, d);
    } else {
      const dest = this.view.resolve(to);
      this.link?.checkRoom(dest, name);
      this.policy!.send(dest, name, d);
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
    return this.link;
  }

  sendRequest(id: number, route: string, to: number | string | undefined, d: Uint8Array, timeout: number): void {
    try {
      const dest = to === undefined ? undefined : this.view.resolve(to);
      this.usable().request({ id, to: dest, route, data: d, timeout });
    } catch (err) {
      this.pending.settle(id, err);
    }
  }

  usable(): Link {
    if (this.closing || this.closed) throw new ClosedError("Peer is closed");
    if (this.hubClosing) throw new ClosedError("The hub is closing");
    const link = this.link;
    if (!link) throw new ClosedError("Peer is not connected to a hub");
    return link;
  }

  /**
   * The CBOR of `data`. With `now`, the caller hands it to the link before
   * anything else encodes (a link copies what it is given): bytes then go
   * through one reused buffer (see `encodeCborTransient`).
   */
  encodeData(data: unknown, what: string, now = false): Uint8Array {
    try {
      return now ? encodeCborTransient(data) : encodeCbor(data);
    } catch (cause) {
      throw new TypeError(`Cannot encode data of ${what}: ${(cause as Error)?.message ?? cause}`, { cause });
    }
  }

  announceRoutes(): void {
    const link = this.link;
    if (!link || this.closing) return;
    link.routes(this.responders.patterns());
  }

  emitError(err: unknown): void {
    this.events.dispatchEvent(new CustomEvent("error", { detail: err }));
  }
}
