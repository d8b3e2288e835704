import { decodeCbor } from "../codec/cbor.ts";
import type { PeerCounters } from "./peer_counters.ts";
import type { AlertContext, AlertHandler, SubscribeOptions } from "./peer_types.ts";
import { Subscription, type SubscriptionMessage } from "./subscription.ts";

/** The alert name that matches every alert in `on()` (when no handler is named) and `subscribe()`. */
const ANY_ALERT = "*";

/** Checks an alert name. */
export function textAlertName(name: unknown): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError(`Invalid alert name: expected a non-empty string, got ${JSON.stringify(name)}`);
  }
  return name;
}

/** What {@linkcode AlertHandlers} needs from its peer. */
export interface AlertHandlersHost {
  /** OS process id of peer `id`, -1 when unknown. */
  pidOf(id: number): number;
  /** Sends alert `name` back to `to` (an {@linkcode AlertContext.reply}). */
  reply(to: number, name: string, data: unknown): void;
  /** Reports an error as the peer's `error` event. */
  error(err: unknown): void;
}

/**
 * A peer's alert handlers (`on()`, `"*"` for alerts with none of their own)
 * and subscriptions (`subscribe()`): delivers each incoming alert to them.
 */
export class AlertHandlers {
  readonly #host: AlertHandlersHost;
  readonly #counters: PeerCounters;
  readonly #handlers = new Map<string, AlertHandler>();
  readonly #subscribers = new Map<string, Set<Subscription>>();

  constructor(host: AlertHandlersHost, counters: PeerCounters) {
    this.#host = host;
    this.#counters = counters;
  }

  /** Sets (or with `null`/undefined removes) the handler of alert `name`. */
  set(name: string, handler: AlertHandler | null | undefined): void {
    textAlertName(name);
    if (handler === null || handler === undefined) {
      this.#handlers.delete(name);
      return;
    }
    if (typeof handler !== "function") {
      throw new TypeError(`Invalid handler for alert ${name}: expected a function, got ${typeof handler}`);
    }
    this.#handlers.set(name, handler);
  }

  /** A stream of alert `name` (`"*"`: every alert); `ended` ends it at once (closed peer). */
  subscribe(name: string, options: SubscribeOptions, ended: boolean): ReadableStream<SubscriptionMessage> {
    textAlertName(name);
    const limit = options.bufferSize ?? 1024;
    if (!Number.isSafeInteger(limit) || limit <= 0) {
      throw new RangeError(`Invalid bufferSize: expected a positive integer, got ${limit}`);
    }
    let set = this.#subscribers.get(name);
    if (!set) this.#subscribers.set(name, set = new Set());
    const subscription: Subscription = new Subscription(limit, () => this.#counters.drop("subscriber_overflow"), () => {
      set!.delete(subscription);
      if (set!.size === 0 && this.#subscribers.get(name) === set) this.#subscribers.delete(name);
    });
    set.add(subscription);
    if (ended) subscription.end();
    return subscription.stream;
  }

  /** Delivers alert `name` from `from` with CBOR data `d`. */
  deliver(from: number, name: string, d: Uint8Array): void {
    this.#counters.alertsReceived++;
    // "*" catches alerts that have no handler, and subscribes to every alert.
    const handler = this.#handlers.get(name) ?? this.#handlers.get(ANY_ALERT);
    const named = this.#subscribers.get(name);
    const any = name === ANY_ALERT ? undefined : this.#subscribers.get(ANY_ALERT);
    if (!handler && !named && !any) {
      this.#counters.drop("no_handler");
      return;
    }
    let data: unknown;
    try {
      data = decodeCbor(d);
    } catch (err) {
      this.#counters.drop("bad_payload");
      this.#host.error(err);
      return;
    }
    if (named) { for (const s of named) s.push({ data, sender: from, name }); }
    if (any) { for (const s of any) s.push({ data, sender: from, name }); }
    if (handler) {
      const host = this.#host;
      const ctx: AlertContext = {
        name,
        sender: from,
        senderPid: host.pidOf(from),
        reply: (replyName, replyData) => host.reply(from, replyName, replyData),
      };
      try {
        const result = handler(data, ctx);
        if (result instanceof Promise) result.catch((err) => host.error(err));
      } catch (err) {
        host.error(err);
      }
    }
  }

  /** Ends every subscription stream (the peer closed). */
  endAll(): void {
    for (const set of this.#subscribers.values()) for (const s of set) s.end();
    this.#subscribers.clear();
  }
}
