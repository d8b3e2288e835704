import { DeadlineTimer } from "./deadline_timer.ts";

/** A request the hub forwarded and has not seen answered. */
export interface InFlight {
  requester: number;
  rid: number;
  responder: number;
  route: string;
  /** Id of its expiry in the deadline timer. */
  expiry: number;
}

/** How long the hub remembers a request whose envelope gives no timeout (`w`). */
const DEFAULT_REQUEST_MEMORY_MS = 10 * 60_000;
/** Slack past the requester's own timeout before the hub forgets the request. */
const REQUEST_MEMORY_SLACK_MS = 1000;

/**
 * The hub's table of forwarded requests, by requester and request id. A
 * responder that never answers must not keep its entry forever: each entry
 * expires a little after the requester's own timeout, so the table is
 * bounded by the request rate.
 */
export class InFlightRequests {
  readonly #entries = new Map<string, InFlight>();
  readonly #expiryKeys = new Map<number, string>();
  readonly #expiry: DeadlineTimer;
  #nextExpiry = 1;

  /** `onExpired(dropped)` runs after each expiry; `dropped` says an entry was still there. */
  constructor(onExpired: (dropped: boolean) => void) {
    this.#expiry = new DeadlineTimer((n) => {
      const key = this.#expiryKeys.get(n);
      this.#expiryKeys.delete(n);
      onExpired(key !== undefined && this.#entries.delete(key));
    });
  }

  /** Requests remembered. */
  get size(): number {
    return this.#entries.size;
  }

  /** Remembers request `rid` of `requester`, forwarded to `responder`, for `wait` ms (the requester's timeout) and the slack. */
  add(requester: number, rid: number, responder: number, route: string, wait: number | undefined): InFlight {
    const key = `${requester}:${rid}`;
    this.#forgetKey(key);
    const expiry = this.#nextExpiry++;
    this.#expiryKeys.set(expiry, key);
    this.#expiry.add(expiry, (wait ?? DEFAULT_REQUEST_MEMORY_MS - REQUEST_MEMORY_SLACK_MS) + REQUEST_MEMORY_SLACK_MS);
    const entry: InFlight = { requester, rid, responder, route, expiry };
    this.#entries.set(key, entry);
    return entry;
  }

  /** Request `rid` of `requester`, if remembered. */
  get(requester: number, rid: number): InFlight | undefined {
    return this.#entries.get(`${requester}:${rid}`);
  }

  /** Forgets request `rid` of `requester` with its expiry. */
  forget(requester: number, rid: number): void {
    this.#forgetKey(`${requester}:${rid}`);
  }

  /** Forgets `entry` if it is still the one remembered for its request; returns whether it was. */
  settle(entry: InFlight): boolean {
    const key = `${entry.requester}:${entry.rid}`;
    if (this.#entries.get(key) !== entry) return false;
    this.#forgetKey(key);
    return true;
  }

  /** Peer `id` left: forgets its requests, and those it was to answer, each passed to `orphaned` first. */
  peerGone(id: number, orphaned: (entry: InFlight) => void): void {
    for (const entry of this.#entries.values()) {
      if (entry.responder === id) {
        this.forget(entry.requester, entry.rid);
        orphaned(entry);
      } else if (entry.requester === id) this.forget(entry.requester, entry.rid);
    }
  }

  /** Forgets everything. */
  clear(): void {
    this.#expiry.clear();
    this.#expiryKeys.clear();
    this.#entries.clear();
  }

  #forgetKey(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#expiry.cancel(entry.expiry);
    this.#expiryKeys.delete(entry.expiry);
  }
}
