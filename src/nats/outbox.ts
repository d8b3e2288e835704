import { wakeAll } from "../util/wake_all.ts";
import type { NatsConnection } from "@nats-io/transport-node";

/** The limits of an {@linkcode Outbox}. */
export interface OutboxLimits {
  maxQueueMessages: number;
  maxQueueBytes: number;
}

/**
 * Flow control over a NATS connection. The NATS client buffers whatever it
 * is given; this counts what was published and not yet confirmed by the
 * server (a flush, PING/PONG, after it), so a fast sender meets a bounded
 * queue (`hasRoom()` false) instead of unbounded memory, as on the local bus.
 * One flush is in flight at a time and confirms everything published before
 * it; one starts when a quarter of a limit is reached, or when `idle()` is awaited.
 */
export class Outbox {
  readonly #nc: NatsConnection;
  readonly #limits: OutboxLimits;
  #messages = 0;
  #bytes = 0;
  #flushing = false;
  #waiters: Array<() => void> = [];

  constructor(nc: NatsConnection, limits: OutboxLimits) {
    this.#nc = nc;
    this.#limits = limits;
  }

  /** Whether a message of `size` bytes fits. */
  hasRoom(size: number): boolean {
    return this.#messages < this.#limits.maxQueueMessages && this.#bytes + size <= this.#limits.maxQueueBytes;
  }

  /** Publishes `data` on `subject` (with a `reply` subject, if given) and counts it until the server confirms it. */
  publish(subject: string, data: Uint8Array, reply?: string): void {
    this.#nc.publish(subject, data, reply === undefined ? undefined : { reply });
    this.#messages++;
    this.#bytes += data.byteLength;
    // Confirming costs a PING/PONG: ask once a quarter of the limits is unconfirmed, or when flush() waits.
    if (this.#pastQuarter()) this.#startConfirm();
  }

  #pastQuarter(): boolean {
    return this.#messages * 4 >= this.#limits.maxQueueMessages || this.#bytes * 4 >= this.#limits.maxQueueBytes;
  }

  /** Messages and bytes not yet confirmed. */
  queued(): { messages: number; bytes: number } {
    return { messages: this.#messages, bytes: this.#bytes };
  }

  /** Resolves when everything published so far is confirmed (or the connection is gone). */
  idle(): Promise<void> {
    if (this.#messages === 0) return Promise.resolve();
    const idle = new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#startConfirm();
    return idle;
  }

  #startConfirm(): void {
    if (!this.#flushing) void this.#confirm();
  }

  async #confirm(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#messages > 0 && (this.#waiters.length > 0 || this.#pastQuarter())) {
        const messages = this.#messages;
        const bytes = this.#bytes;
        try {
          await this.#nc.flush();
        } catch {
          // Closed: what was not confirmed will not be, so stop counting it.
        }
        this.#messages -= messages;
        this.#bytes -= bytes;
        if (this.#nc.isClosed()) this.#messages = this.#bytes = 0;
      }
    } finally {
      this.#flushing = false;
      wakeAll(this.#waiters);
    }
  }
}
