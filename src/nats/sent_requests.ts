/** Requests are forgotten this long after their timeout (the facade has rejected them by then). */
const REQUEST_MEMORY_MS = 1000;

/**
 * The requests a NATS link sent and not yet saw answered, by the responder
 * it picked: NATS does not say when a responder dies, so the link fails
 * them itself when presence says the responder left. Entries are forgotten a
 * little after their timeout, so the table stays bounded by what is pending.
 */
export class SentRequests {
  readonly #byId = new Map<number, { to: number; forgetAt: number }>();

  /** Request `id` went to peer `to` and waits at most `timeout` ms. */
  add(id: number, to: number, timeout: number): void {
    this.#byId.set(id, { to, forgetAt: Date.now() + timeout + REQUEST_MEMORY_MS });
  }

  /** Request `id` was answered. */
  answered(id: number): void {
    this.#byId.delete(id);
  }

  /** Removes and returns the requests sent to peer `to` (every request when `to` is undefined). */
  take(to?: number): number[] {
    const taken: number[] = [];
    for (const [id, entry] of this.#byId) {
      if (to !== undefined && entry.to !== to) continue;
      this.#byId.delete(id);
      taken.push(id);
    }
    return taken;
  }

  /** Forgets the requests past their timeout. */
  sweep(now: number): void {
    for (const [id, entry] of this.#byId) if (entry.forgetAt < now) this.#byId.delete(id);
  }
}
