/** A directed message, as remembered to report it if the server says nobody received it. */
export type Returned = { alert: string; to: number } | { request: number; to: number };

/** Messages remembered, at most: a status about an older one finds nothing (reported without its name). */
const REMEMBERED = 4096;

/**
 * The return addresses of a NATS link's directed alerts and requests. Each
 * is published with a reply subject ending in a number from here; when the
 * destination has no subscription (its peer died, or is between servers),
 * the NATS server answers that subject with a 503 "no responders" status,
 * and the link looks up what the message was. Kept in a ring: no cleanup.
 */
export class ReturnAddresses {
  readonly #ring: Array<Returned | undefined> = new Array(REMEMBERED);
  #next = 0;

  /** Remembers `message`; returns the number for its reply subject. */
  add(message: Returned): number {
    const n = this.#next++;
    this.#ring[n % REMEMBERED] = message;
    return n;
  }

  /** What message `n` was, once, if it is still remembered. */
  take(n: number): Returned | undefined {
    if (!Number.isSafeInteger(n) || n < this.#next - REMEMBERED || n >= this.#next) return undefined;
    const message = this.#ring[n % REMEMBERED];
    this.#ring[n % REMEMBERED] = undefined;
    return message;
  }
}
