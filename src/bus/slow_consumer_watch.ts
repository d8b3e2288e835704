import { ErrorCode, IpcError } from "../errors.ts";
import { BUS_DEFAULTS } from "./hub_settings.ts";
import type { PeerLink } from "./peer_link.ts";

/**
 * Watches peers whose queue at the hub has no room, and reports each that
 * took nothing for `timeout` ms, as NATS does with slow consumers: the hub
 * stops holding frames for a peer that does not read. Queues are looked at
 * every quarter of the timeout (at most every second), and only while some
 * peer is watched.
 */
export class SlowConsumerWatch {
  readonly timeout: number;
  readonly #cut: (link: PeerLink, err: IpcError) => void;
  readonly #full = new Set<PeerLink>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param timeout Milliseconds without a write to a full queue before its peer is cut loose
   * (default `BUS_DEFAULTS.slowConsumerTimeout`).
   * @param cut Called once for each peer to cut loose, with the error (code `slow_consumer`) saying why.
   */
  constructor(timeout: number | undefined, cut: (link: PeerLink, err: IpcError) => void) {
    this.timeout = timeout ?? BUS_DEFAULTS.slowConsumerTimeout;
    this.#cut = cut;
  }

  /** Watches `link`, whose queue has no room. */
  watch(link: PeerLink): void {
    // The hub's own peer (id 0) and a channel's hosting member live in the hub's process: never cut loose.
    if (link.gone || link.isHost || link.info?.id === 0) return;
    this.#full.add(link);
    this.#timer ??= setInterval(() => this.#sweep(), Math.max(10, Math.min(1000, this.timeout / 4)));
  }

  /** Stops the timer (the hub closed). */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#full.clear();
  }

  #sweep(): void {
    const now = performance.now();
    for (const link of this.#full) {
      if (link.gone || link.writer.failed || link.writer.hasRoom()) this.#full.delete(link);
      else if (now - link.writer.progressAt > this.timeout) {
        this.#full.delete(link);
        const { messages, bytes, progressAt } = link.writer;
        this.#cut(
          link,
          new IpcError(
            `Peer ${link.info?.id} was disconnected as a slow consumer: its queue at the hub was full (${messages} frames, ${bytes} bytes) and took nothing for ${
              Math.round(now - progressAt)
            } ms (slowConsumer.timeout ${this.timeout} ms)`,
            { code: ErrorCode.SlowConsumer },
          ),
        );
      }
    }
    if (this.#full.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
