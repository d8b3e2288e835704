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
  readonly #cut: (link: PeerLink, idleMs: number) => void;
  readonly #full = new Set<PeerLink>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param timeout Milliseconds without a write to a full queue before its peer is cut loose.
   * @param cut Called once for each peer to cut loose, with how long its queue took nothing.
   */
  constructor(timeout: number, cut: (link: PeerLink, idleMs: number) => void) {
    this.timeout = timeout;
    this.#cut = cut;
  }

  /** Watches `link`, whose queue has no room. */
  watch(link: PeerLink): void {
    this.#full.add(link);
    this.#timer ??= setInterval(() => this.#sweep(), Math.max(10, Math.min(1000, this.timeout / 4)));
  }

  /** Stops watching `link` (it left). */
  forget(link: PeerLink): void {
    this.#full.delete(link);
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
        this.#cut(link, now - link.writer.progressAt);
      }
    }
    if (this.#full.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
