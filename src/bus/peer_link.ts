import { IpcError, QueueFullError } from "../errors.ts";
import type { Connection } from "../transport/connection.ts";
import { waitAtMost } from "../util/with_timeout.ts";
import { FrameReceiver } from "./frame_receiver.ts";
import { FrameWriter } from "./frame_writer.ts";
import { encodeMessage, Kind, type PeerInfo, wireError } from "./protocol.ts";
import type { RouteMatcher } from "./route_pattern.ts";

/** A peer whose own queue is past its limits, and which reads none of it for this long, is dropped. */
const STALL_MS = 2_000;

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

  constructor(conn: Connection, limits: { maxQueueMessages: number; maxQueueBytes: number }) {
    this.conn = conn;
    this.writer = new FrameWriter(conn, {
      maxMessages: limits.maxQueueMessages,
      maxBytes: limits.maxQueueBytes,
    });
  }

  /** The peer's id (after its hello). */
  get id(): number {
    return this.info!.id;
  }

  /** Whether one of the peer's `handle()` patterns matches `route`. */
  handles(route: string): boolean {
    for (const p of this.patterns) if (p.matches(route)) return true;
    return false;
  }

  /**
   * Reads the peer's frames into `onFrame` (see {@linkcode FrameHandlers}:
   * a body that is not `own` is valid only during the call) until the
   * connection ends, and resolves with the reason. A connection without a
   * hello after `handshakeTimeout` ms is closed. An `IpcError` (a protocol
   * violation) goes to `onError` and is told to the peer before hanging up.
   */
  read(
    settings: { maxFrameBytes: number; handshakeTimeout: number },
    onFrame: (body: Uint8Array, own: boolean) => void,
    onError: (err: IpcError) => void,
  ): Promise<string> {
    let reason = "closed";
    const handshake = setTimeout(() => {
      if (!this.info) {
        reason = "no handshake";
        void this.conn.close();
      }
    }, settings.handshakeTimeout);
    let waiting = false;
    return new Promise((resolve) => {
      const receiver: FrameReceiver = new FrameReceiver(this.conn, settings.maxFrameBytes, {
        frame: (body, own) => {
          onFrame(body, own);
          // Found by tests/fuzz/: frames the hub answers (unknown kinds, alerts to nobody, refusals) grew the
          // sender's own queue without bound, as replies bypass the limits. Dropping the peer once its queue
          // passed twice them also dropped busy peers that do read (tests/load/: a full-speed broadcaster
          // gets a refusal per full destination): so stop reading a peer while its own queue is past its
          // limits, which bounds it to the limits plus one chunk's replies, and drop it only if it reads nothing.
          if (!waiting && !this.writer.hasRoom()) {
            waiting = true;
            receiver.pause();
            this.untilRead().then(() => {
              waiting = false;
              receiver.resume();
            }, (err) => receiver.stop(err));
          }
        },
        end: async (error) => {
          clearTimeout(handshake);
          if (error !== undefined) {
            reason = error instanceof Error ? error.message : String(error);
            if (error instanceof IpcError) {
              onError(error);
              // Tell the offender why before hanging up; everyone else carries on.
              this.writer.push(encodeMessage({ k: Kind.Error, e: wireError(error) }));
              await this.writer.close(200);
            }
          }
          resolve(reason);
        },
      });
    });
  }

  /**
   * Waits until the peer's own queue is back under its limits. Throws
   * QueueFullError if no write to it completes for STALL_MS: it does not read.
   */
  async untilRead(): Promise<void> {
    const writer = this.writer;
    while (!writer.hasRoom() && !writer.failed) {
      const before = writer.framesOut;
      await waitAtMost(writer.idle(), STALL_MS);
      if (writer.framesOut === before && !writer.hasRoom() && !writer.failed) {
        throw new QueueFullError(
          `Peer ${this.info?.id} does not read what it is sent: ${writer.messages} frames queued, none written for ${STALL_MS} ms`,
        );
      }
    }
  }
}
