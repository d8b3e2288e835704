import { TimeoutError } from "../errors.ts";
import { wakeAll } from "../util/wake_all.ts";
import { DeadlineTimer } from "./deadline_timer.ts";
import type { MessageHeaders } from "./headers.ts";
import { reply } from "./reply.ts";

interface Entry {
  resolve(value: unknown): void;
  reject(err: unknown): void;
  timeout: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  route: string;
  to: number | undefined;
  /** `requestReply()`: resolve with the data and the headers. */
  withHeaders: boolean;
}

/**
 * Outstanding requests by id. Every exit — response, error, timeout, abort,
 * close — goes through {@linkcode PendingRequests.settle}, which clears the
 * timer and the abort listener together.
 */
export class PendingRequests {
  readonly #entries = new Map<number, Entry>();
  readonly #deadlines = new DeadlineTimer((id) => {
    const entry = this.#entries.get(id);
    if (entry) this.settle(id, new TimeoutError(`Request ${entry.route} timed out after ${entry.timeout} ms`));
  });
  #nextId = 1;
  #idleWaiters: Array<() => void> = [];

  /** Requests outstanding. */
  get size(): number {
    return this.#entries.size;
  }

  /** Registers a request; `send(id)` puts it on the wire. */
  add(
    route: string,
    to: number | undefined,
    timeout: number,
    signal?: AbortSignal,
    withHeaders = false,
  ): { id: number; promise: Promise<unknown> } {
    const id = this.#nextId++;
    const promise = new Promise<unknown>((resolve, reject) => {
      const entry: Entry = { resolve, reject, timeout, signal, onAbort: undefined, route, to, withHeaders };
      if (signal) {
        entry.onAbort = () => this.settle(id, signal.reason);
        signal.addEventListener("abort", entry.onAbort, { once: true });
      }
      this.#entries.set(id, entry);
      this.#deadlines.add(id, timeout);
    });
    return { id, promise };
  }

  /** The route of request `id`, if it is outstanding. */
  route(id: number): string | undefined {
    return this.#entries.get(id)?.route;
  }

  /**
   * Settles request `id`: resolves with `value`, or rejects when `isError`.
   * Returns false when the request is no longer outstanding (a late answer).
   */
  settle(id: number, error: unknown, value?: unknown, isError = true): boolean {
    const entry = this.#entries.get(id);
    if (!entry) return false;
    this.#entries.delete(id);
    this.#deadlines.cancel(id);
    if (entry.onAbort) entry.signal!.removeEventListener("abort", entry.onAbort);
    if (isError) entry.reject(error);
    else entry.resolve(value);
    if (this.#entries.size === 0) wakeAll(this.#idleWaiters);
    return true;
  }

  /**
   * Resolves request `id` with `value`, or with `{ data, headers }` when it
   * was made by `requestReply()`. Returns false for a late answer.
   */
  resolve(id: number, value: unknown, headers?: MessageHeaders): boolean {
    const entry = this.#entries.get(id);
    return this.settle(id, undefined, entry?.withHeaders ? reply(value, { headers }) : value, false);
  }

  /** Resolves once no request is outstanding (for `drain()`). */
  idle(): Promise<void> {
    if (this.#entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Rejects every outstanding request (optionally only those sent to `to`) with `makeError(route)`. */
  rejectAll(makeError: (route: string) => unknown, to?: number): void {
    for (const [id, entry] of [...this.#entries]) {
      if (to === undefined || entry.to === to) this.settle(id, makeError(entry.route));
    }
    // Nothing left to time: stop the timer now rather than when it next fires.
    if (this.#entries.size === 0) this.#deadlines.clear();
  }
}
