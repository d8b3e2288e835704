import { decodeCbor } from "../codec/cbor.ts";
import { AlertTable } from "./alert_table.ts";
import { type MessageHeaders, NO_HEADERS } from "./headers.ts";
import type { PeerCounters } from "./peer_counters.ts";
import type { AlertContext, AlertHandler, SubscribeOptions } from "./peer_types.ts";
import { Subscription, type SubscriptionMessage } from "./subscription.ts";

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
  /** Reports an error as the peer's `error` event; `what` says what happened, for when nobody listens. */
  error(err: unknown, what: string): void;
}

/**
 * A peer's alert handlers (`on()`) and subscriptions (`subscribe()`), by
 * exact name or name pattern (`alert_pattern.ts`): delivers each incoming
 * alert to the most specific handler and to every matching subscription.
 */
export class AlertHandlers {
  readonly #host: AlertHandlersHost;
  readonly #counters: PeerCounters;
  readonly #handlers = new AlertTable<AlertHandler>();
  readonly #subscribers = new AlertTable<Set<Subscription>>();

  constructor(host: AlertHandlersHost, counters: PeerCounters) {
    this.#host = host;
    this.#counters = counters;
  }

  /** Sets (or with `null`/undefined removes) the handler of alert `name`, a name or a pattern. */
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

  /** A stream of alert `name` (a name or a pattern); `ended` ends it at once (closed peer). */
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

  /** Delivers alert `name` from `from` with CBOR data `d` and its headers, if any. */
  deliver(from: number, name: string, d: Uint8Array, headers: MessageHeaders | undefined): void {
    this.#counters.alertsReceived++;
    const handler = this.#handlers.match(name);
    const subscribed = this.#subscribers.matchAll(name);
    if (!handler && subscribed.length === 0) {
      this.#counters.drop("no_handler");
      return;
    }
    let data: unknown;
    try {
      data = decodeCbor(d);
    } catch (err) {
      this.#counters.drop("bad_payload");
      this.#host.error(err, `The data of alert ${name} from peer ${from} did not decode`);
      return;
    }
    const h = headers ?? NO_HEADERS;
    for (const set of subscribed) for (const s of set) s.push({ data, sender: from, name, headers: h });
    if (handler) {
      const host = this.#host;
      const ctx: AlertContext = {
        name,
        sender: from,
        senderPid: host.pidOf(from),
        headers: h,
        reply: (replyName, replyData) => host.reply(from, replyName, replyData),
      };
      const what = `The handler of alert ${name} threw`;
      try {
        const result = handler(data, ctx);
        if (result instanceof Promise) result.catch((err) => host.error(err, what));
      } catch (err) {
        host.error(err, what);
      }
    }
  }

  /** Ends every subscription stream (the peer closed). */
  endAll(): void {
    for (const set of this.#subscribers.values()) for (const s of set) s.end();
    this.#subscribers.clear();
  }
}
