import { FrameParser } from "../codec/frame_parser.ts";
import { IpcError } from "../errors.ts";
import type { Connection } from "../transport/connection.ts";
import { FrameWriter } from "./frame_writer.ts";
import { encodeMessage, Kind, type PeerInfo, wireError } from "./protocol.ts";
import type { RouteMatcher } from "./route_pattern.ts";

/** The hub's side of one peer's connection: its writer, what it said in its hello, the routes it serves. */
export class PeerLink {
  readonly conn: Connection;
  readonly writer: FrameWriter;
  info: PeerInfo | undefined;
  patterns: RouteMatcher[] = [];
  dropOldest = false;
  isHost = false;
  /** Set when the handshake was refused: the connection is closing and nothing more from it is read. */
  refused = false;
  /** Senders told this peer's queue is full, to be told when room returns. */
  readonly toldBusy = new Set<number>();
  /** Destinations of this peer's broadcasts whose queues filled past a quarter: it is not read until they drain or stall. */
  readonly slowing = new Set<PeerLink>();
  /** Broadcasts refused for a destination and not yet reported to this peer: destination id → count and last name. */
  unreported: Map<number, { count: number; name: string }> | undefined;
  /** Whether the others were told this peer joined (on a large bus announcements are batched). */
  announced = true;
  /** Set once the hub is done with it: it left, or was cut loose as a slow consumer. */
  gone = false;
  /** Cut loose: settles once it was given its last frame (or could not be); it is not read until then. */
  goodbye: Promise<void> | undefined;
  #drainWaiters: Array<() => void> = [];

  constructor(conn: Connection, limits: { maxQueueMessages: number; maxQueueBytes: number }) {
    this.conn = conn;
    this.writer = new FrameWriter(conn.writable, {
      maxMessages: limits.maxQueueMessages,
      maxBytes: limits.maxQueueBytes,
    });
  }

  /** The peer's id (after its hello). */
  get id(): number {
    return this.info!.id;
  }

  /** Wakes those waiting for a write to this peer: one completed, or it is gone. */
  wakeDrainWaiters(): void {
    if (this.#drainWaiters.length > 0) { for (const wake of this.#drainWaiters.splice(0)) wake(); }
  }

  /** Resolves after the next completed write to this peer, when it is gone, or after `ms`. */
  nextWrite(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#drainWaiters.push(done);
    });
  }

  /** Whether one of the peer's `handle()` patterns matches `route`. */
  handles(route: string): boolean {
    for (const p of this.patterns) if (p.matches(route)) return true;
    return false;
  }

  /**
   * Reads the peer's frames into `on.frame` until the connection ends, and
   * resolves with the reason. After each chunk
   * it awaits `on.chunk()`, the hub's flow control. A connection without a
   * hello after `handshakeTimeout` ms is closed. An `IpcError` (a protocol
   * violation) goes to `on.error` and is told to the peer before hanging up.
   */
  async read(
    settings: { maxFrameBytes: number; handshakeTimeout: number },
    on: { frame(body: Uint8Array): void; chunk(): Promise<void> | undefined; error(err: IpcError): void },
  ): Promise<string> {
    const reader = this.conn.readable.getReader();
    const parser = new FrameParser(settings.maxFrameBytes);
    let reason = "closed";
    const handshake = setTimeout(() => {
      if (!this.info) {
        reason = "no handshake";
        void this.conn.close();
      }
    }, settings.handshakeTimeout);
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value, (body) => on.frame(body));
        const paused = on.chunk();
        if (paused) await paused;
      }
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
      if (err instanceof IpcError) {
        on.error(err);
        // Tell the offender why before hanging up; everyone else carries on.
        this.writer.push(encodeMessage({ k: Kind.Error, e: wireError(err) }));
        await this.writer.close(200);
      }
    } finally {
      clearTimeout(handshake);
      reader.releaseLock();
    }
    return reason;
  }
}
