import { QueueFullError } from "../errors.ts";

/** One call made while the peer was between links. */
interface AwayCall {
  /** Bytes of data it carries, counted against the byte limit. */
  bytes: number;
  /** Sends it over the new link. */
  replay(): void;
  /** The peer gave up reconnecting: report it as lost. */
  abandon(err: unknown): void;
}

/**
 * The sends of a peer that reconnects (`connect()`'s `reconnect`), queued
 * while it is between links and replayed in call order on the next one.
 * Bounded like the outgoing queue it stands in for: past `maxMessages` calls
 * or `maxBytes` of data, `QueueFullError`.
 */
export class AwayQueue {
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  #calls: AwayCall[] = [];
  #bytes = 0;

  constructor(limits: { maxMessages: number; maxBytes: number }) {
    this.#maxMessages = limits.maxMessages;
    this.#maxBytes = limits.maxBytes;
  }

  /** Calls waiting. */
  get messages(): number {
    return this.#calls.length;
  }

  /** Bytes of data waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Queues `call`; `what` names it in the error.
   *
   * @throws {QueueFullError} when the queue is at either limit.
   */
  push(call: AwayCall, what: string): void {
    if (this.#calls.length >= this.#maxMessages || this.#bytes + call.bytes > this.#maxBytes) {
      throw new QueueFullError(
        `Cannot queue ${what} while reconnecting: ${this.#calls.length} messages, ${this.#bytes} bytes wait (maxQueueMessages ${this.#maxMessages}, maxQueueBytes ${this.#maxBytes})`,
      );
    }
    this.#calls.push(call);
    this.#bytes += call.bytes;
  }

  /** Replays every call in order, emptying the queue first so that a replay may queue again. */
  replayAll(): void {
    for (const call of this.#take()) call.replay();
  }

  /** Abandons every call with `err`. */
  abandonAll(err: unknown): void {
    for (const call of this.#take()) call.abandon(err);
  }

  #take(): AwayCall[] {
    const calls = this.#calls;
    this.#calls = [];
    this.#bytes = 0;
    return calls;
  }
}
