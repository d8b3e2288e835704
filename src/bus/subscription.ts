import type { MessageHeaders } from "./headers.ts";

/** One alert as a subscription stream yields it; `T` is the data's type as the sender promised it. */
export interface SubscriptionMessage<T = unknown> {
  /** The alert's data. */
  data: T;
  /** Id of the peer that sent it. */
  sender: number;
  /** The alert's name (useful when subscribed to a pattern or `"*"`). */
  name: string;
  /** The alert's headers; empty when it had none. */
  headers: MessageHeaders;
}

/**
 * A bounded buffer behind one `subscribe()` stream. When the consumer falls
 * `limit` messages behind, the oldest buffered message is dropped and
 * counted: a live feed stays current instead of growing memory.
 */
export class Subscription {
  readonly stream: ReadableStream<SubscriptionMessage>;
  readonly #limit: number;
  readonly #onDrop: () => void;
  readonly #buffer: SubscriptionMessage[] = [];
  #waiting: ((message: SubscriptionMessage | null) => void) | undefined;
  #closed = false;

  constructor(limit: number, onDrop: () => void, onCancel: () => void) {
    this.#limit = limit;
    this.#onDrop = onDrop;
    this.stream = new ReadableStream<SubscriptionMessage>({
      pull: async (controller) => {
        const next = this.#buffer.shift() ??
          (this.#closed ? null : await new Promise<SubscriptionMessage | null>((resolve) => (this.#waiting = resolve)));
        if (next === null) controller.close();
        else controller.enqueue(next);
      },
      cancel: () => {
        this.#closed = true;
        onCancel();
      },
    }, { highWaterMark: 0 });
  }

  /** Offers one message to the consumer. */
  push(message: SubscriptionMessage): void {
    if (this.#closed) return;
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting(message);
      return;
    }
    if (this.#buffer.length >= this.#limit) {
      this.#buffer.shift();
      this.#onDrop();
    }
    this.#buffer.push(message);
  }

  /** Ends the stream after what is buffered. */
  end(): void {
    this.#closed = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.(null);
  }
}
