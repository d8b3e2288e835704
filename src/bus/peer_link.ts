import { IpcError } from "../errors.ts";
import type { Connection } from "../transport/connection.ts";
import { type FrameHandlers, FrameReceiver } from "./frame_receiver.ts";
import { FrameWriter, type QueueLimits } from "./frame_writer.ts";
import { encodeMessage, Kind, type PeerInfo, wireError } from "./protocol.ts";

/**
 * A destination with frames queued that took nothing for this long is
 * stalled: broadcasters stop waiting for it. (The bar: a frozen peer
 * holds a broadcaster's `flush()` at most 250 ms.)
 */
const STALL_MS = 100;

/** What a link's read loop needs to know. */
export interface LinkReadSettings {
  maxFrameBytes: number;
  handshakeTimeout: number;
  slowConsumerTimeout: number;
}

/** What the hub hears from the read loops of its links: one object for all of them. */
export interface LinkEvents {
  /** A frame from `link`: a body that is not `own` is valid only during the call. */
  frame(link: PeerLink, body: Uint8Array, own: boolean): void;
  /** `link`'s own queue has no room: it is not read until it has. */
  full(link: PeerLink): void;
  /** A link broke the protocol; it is told why and hung up on. */
  error(err: IpcError): void;
  /** `link`'s reading ended, for `reason`: the last event of the link. */
  ended(link: PeerLink, reason: string): void;
}

/** The hub's side of one peer's connection: its writer and what it said in its hello. */
export class PeerLink implements FrameHandlers {
  readonly conn: Connection;
  readonly writer: FrameWriter;
  info: PeerInfo | undefined;
  dropOldest = false;
  isHost = false;
  /** Set when the handshake was refused: the connection is closing and nothing more from it is read. */
  refused = false;
  /** Senders told this peer's queue is full, to be told when room returns. Made when first needed. */
  toldBusy: Set<number> | undefined;
  /**
   * Destinations of this peer's broadcasts whose queues filled past a quarter: it is not read until they drain or
   * stall. Made when first needed: most peers never broadcast into a full queue, and an idle peer should cost little.
   */
  slowing: Set<PeerLink> | undefined;
  /** Broadcasts refused for a destination and not yet reported to this peer: destination id → count and last name. */
  unreported: Map<number, { count: number; name: string }> | undefined;
  /** Whether the others were told this peer joined (on a large bus announcements are batched). */
  announced = true;
  /** Set once the hub is done with it: it left, or was cut loose as a slow consumer. */
  gone = false;
  /** Cut loose: settles once it was given its last frame (or could not be); it is not read until then. */
  goodbye: Promise<void> | undefined;
  /** Set by the hub for its own peer's link (the in-memory one). */
  isHubPeer = false;
  /** Made when first waited on: most links never are. */
  #drainWaiters: Array<() => void> | undefined;
  #goodbyeTimer: ReturnType<typeof setTimeout> | undefined;
  #settings: LinkReadSettings | undefined;
  #events: LinkEvents | undefined;
  #receiver: FrameReceiver | undefined;
  #handshake: ReturnType<typeof setTimeout> | undefined;
  #waiting = false;
  #reason = "closed";

  /** @param limits Of the peer's queue at the hub: one object for every link. */
  constructor(conn: Connection, limits: QueueLimits) {
    this.conn = conn;
    this.writer = new FrameWriter(conn, limits);
  }

  /** The peer's id (after its hello). */
  get id(): number {
    return this.info!.id;
  }

  /** The hub is done with this peer (it left, or was cut loose): whoever waits for it stops. */
  leave(): void {
    this.gone = true;
    this.wakeDrainWaiters();
  }

  /** Wakes those waiting for a write to this peer: one completed, or it is gone. */
  wakeDrainWaiters(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = undefined;
    if (waiters) { for (const wake of waiters) wake(); }
  }

  /** Resolves after the next completed write to this peer, when it is gone, or after `ms`. */
  nextWrite(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      (this.#drainWaiters ??= []).push(done);
    });
  }

  /** Whether frames are queued for this peer and it took none for STALL_MS. */
  get stalled(): boolean {
    return this.writer.messages > 0 && performance.now() - this.writer.progressAt >= STALL_MS;
  }

  /**
   * Paces this peer's broadcasts by `dest`, a destination of one: from a
   * quarter of its queue on (busy/room wait for half), this peer is read no
   * more until `dest` drains or stalls (see untilDrained). The margin left is
   * for a peer that is only slow but was taken for stalled on a loaded
   * machine (tests/load/).
   */
  paceBy(dest: PeerLink): void {
    if (!dest.writer.belowLowWater && !dest.stalled) (this.slowing ??= new Set()).add(dest);
  }

  /** Waits until this peer's own queue has room again, or it is gone (cut loose); then paces its broadcasts. */
  async untilRoom(ms: number): Promise<void> {
    while (!this.writer.hasRoom() && !this.writer.failed && !this.gone) await this.nextWrite(ms);
    if (this.slowing?.size) await this.untilDrained();
  }

  /**
   * Broadcasts are paced by their slowest live destination: this peer is not
   * read while a destination of its broadcasts is past a quarter of its
   * queue and still takes frames. One that took nothing for STALL_MS (frozen,
   * or not reading) is not waited for: what it cannot take is refused for it
   * alone.
   */
  async untilDrained(): Promise<void> {
    for (const dest of this.slowing ?? []) {
      while (!dest.gone && !this.gone && !dest.writer.belowLowWater) {
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
    this.slowing?.clear();
  }

  /**
   * Cut loose as a slow consumer: what is queued for it goes, `last` (the
   * frame saying why) is queued instead. It is not read until that frame is
   * written (its writes wait in its socket), at most `timeout` ms; one that
   * never reads is then closed. One that read it gets the end of the stream,
   * and what it still sends is read and ignored until it closes (at most
   * `timeout` more): closing at once failed the writes of a peer waking up
   * (an answer it had to send), and that failure closed its side before it
   * read why (tests/load/slow_consumer_test.ts, Bun).
   */
  cutLoose(last: Uint8Array, timeout: number): void {
    this.refused = true;
    this.writer.discardQueued();
    this.writer.push(last);
    this.goodbye = this.writer.close(timeout).then(() => {
      if (this.writer.failed) return void this.conn.close();
      this.#goodbyeTimer = setTimeout(() => void this.conn.close(), timeout);
    });
  }

  /**
   * Reads the peer's frames into `events.frame` (a body that is not `own` is
   * valid only during the call) until the connection ends, then calls
   * `events.ended` with the reason. After each frame it applies the hub's
   * flow control (`events.full` says the peer's own queue has no room). A
   * connection without a hello after `handshakeTimeout` ms is closed. An
   * `IpcError` (a protocol violation) goes to `events.error` and is told to
   * the peer before hanging up. The link is its reader's handler itself
   * ({@linkcode frame}, {@linkcode end}), and `events` is one object for the
   * whole hub: no closure per connection (issue 13: an idle peer's cost).
   */
  read(settings: LinkReadSettings, events: LinkEvents): void {
    this.#settings = settings;
    this.#events = events;
    this.#handshake = setTimeout(PeerLink.#handshakeExpired, settings.handshakeTimeout, this);
    // The hub copies what it forwards into the destination's queue: large frames are lent, not given.
    this.#receiver = new FrameReceiver(this.conn, settings.maxFrameBytes, this, true);
  }

  static #handshakeExpired(link: PeerLink): void {
    if (link.info) return;
    link.#reason = "no handshake";
    void link.conn.close();
  }

  /** A frame from the peer (see {@linkcode FrameHandlers}), then the hub's flow control. */
  frame(body: Uint8Array, own: boolean): void {
    this.#events!.frame(this, body, own);
    if (this.#handshake !== undefined && this.info) {
      // Welcomed: the timer would hold the link (and, on Bun, a timer object) for the whole wait.
      clearTimeout(this.#handshake);
      this.#handshake = undefined;
    }
    if (this.#waiting) return;
    let wait: Promise<void> | undefined;
    if (this.gone) wait = this.goodbye ?? Promise.resolve();
    else if (!this.writer.hasRoom()) {
      // Found by tests/fuzz/: frames the hub answers (unknown kinds, alerts to nobody, refusals) grew the
      // sender's own queue without bound, as replies bypass the limits. Dropping the peer once its queue
      // passed twice them also dropped busy peers that do read (tests/load/: a full-speed broadcaster
      // gets a refusal per full destination): so stop reading a peer while its own queue is past its
      // limits, which bounds it to the limits plus one chunk's replies. If it reads nothing for
      // slowConsumer.timeout, the hub cuts it loose.
      this.#events!.full(this);
      wait = this.untilRoom(this.#settings!.slowConsumerTimeout);
    } else if (this.slowing?.size) wait = this.untilDrained();
    if (!wait) return;
    this.#waiting = true;
    const receiver = this.#receiver!;
    receiver.pause();
    wait.then(() => {
      this.#waiting = false;
      receiver.resume();
    }, (err) => receiver.stop(err));
  }

  /** The reading ended (see {@linkcode FrameHandlers}): the hub hears why once the offender was told. */
  async end(error?: unknown): Promise<void> {
    clearTimeout(this.#handshake);
    clearTimeout(this.#goodbyeTimer);
    if (error !== undefined) {
      this.#reason = error instanceof Error ? error.message : String(error);
      if (error instanceof IpcError) {
        this.#events!.error(error);
        // Tell the offender why before hanging up; everyone else carries on.
        this.writer.push(encodeMessage({ k: Kind.Error, e: wireError(error) }));
        await this.writer.close(200);
      }
    }
    this.#events!.ended(this, this.#reason);
  }
}
