/**
 * The events of a {@linkcode Peer}, by type, so that listeners get their
 * `detail` typed without a cast.
 *
 * @module
 */
import type { UndeliverableDetail } from "./link.ts";
import type { PeerInfo } from "./protocol.ts";

/** Detail of the `connect` event. */
export interface ConnectDetail {
  /** This peer's id on the hub it just joined. */
  id: number;
}

/** Detail of the `disconnect` event. */
export interface DisconnectDetail {
  /**
   * What happened: `"closed"` after `close()`, `"hub closed"` when the hub
   * said it was closing, `"connection reset: the hub went away without
   * closing"` when its process died, or the error's message.
   */
  reason: string;
  /** Whether the peer tries to join again (`connect()`'s `reconnect` option, or a channel). */
  reconnecting: boolean;
}

/** Detail of the `reconnect` event. */
export interface ReconnectDetail {
  /** This peer's id now: the one it had, unless another peer took it meanwhile. */
  id: number;
  /** The id it had before the connection was lost. */
  previousId: number;
  /** Attempts it took, 1 for the first. */
  attempts: number;
}

/** Detail of the `peerleave` event: the peer that left, and why. */
export type PeerLeaveDetail = PeerInfo & {
  /** `"closed"` for an orderly leave, else what ended its connection. */
  reason: string;
};

/**
 * The events of a peer by type: `peer.addEventListener("peerjoin", (e) =>
 * e.detail.id)` type-checks as it is.
 */
export interface PeerEventMap {
  /** Joined a hub: after `connect()`, and after each reconnect. */
  connect: CustomEvent<ConnectDetail>;
  /** The connection to the hub ended. */
  disconnect: CustomEvent<DisconnectDetail>;
  /** Joined again after a disconnect (`connect()`'s `reconnect` option); queued sends follow. */
  reconnect: CustomEvent<ReconnectDetail>;
  /** Another peer joined. */
  peerjoin: CustomEvent<PeerInfo>;
  /** Another peer left. */
  peerleave: CustomEvent<PeerLeaveDetail>;
  /** An alert this peer sent could not be delivered. */
  undeliverable: CustomEvent<UndeliverableDetail>;
  /**
   * An error nobody else could be told about: a handler of an alert threw,
   * an alert's data did not decode, the hub reported a bad frame. With no
   * listener for it, the peer reports it with `console.error`.
   */
  error: CustomEvent<unknown>;
}

/**
 * A listener of an event type outside the map, with a plain `Event`. (Named
 * here: the DOM's `EventListenerOrEventListenerObject` is not in every
 * runtime's type definitions.)
 */
export type PlainListener = ((event: Event) => unknown) | { handleEvent(event: Event): unknown };

/** A listener of event type `K` of map `M`: a function or an object with `handleEvent`. */
export type TypedListener<M, K extends keyof M> =
  | ((event: M[K]) => unknown)
  | { handleEvent(event: M[K]): unknown };

interface Registration {
  listener: unknown;
  capture: boolean;
  once: boolean;
}

/** The listeners of each target by type, as far as `hasListener` needs to know. */
const registry = new WeakMap<EventTarget, Map<string, Registration[]>>();

const captures = (options: boolean | EventListenerOptions | undefined): boolean =>
  typeof options === "boolean" ? options : options?.capture === true;

/**
 * Whether `target` (a {@linkcode TypedEventTarget}) has a listener for
 * `type`: an `error` event nobody listens to is printed instead of lost.
 */
export function hasListener(target: EventTarget, type: string): boolean {
  return (registry.get(target)?.get(type)?.length ?? 0) > 0;
}

/**
 * An `EventTarget` whose `addEventListener` and `removeEventListener` know
 * the event type of each name in `M`; other names take plain listeners.
 */
export class TypedEventTarget<M> extends EventTarget {
  /**
   * Adds a listener of event `type`; known types give the listener a typed event.
   *
   * @param type The event type, e.g. `"peerjoin"`.
   * @param listener Called with the event.
   * @param options As for `EventTarget`.
   */
  override addEventListener<K extends keyof M & string>(
    type: K,
    listener: TypedListener<M, K> | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /**
   * Adds a listener of an event type outside the map, with a plain `Event`.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options As for `EventTarget`.
   */
  override addEventListener(
    type: string,
    listener: PlainListener | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: TypedListener<M, keyof M> | PlainListener | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener as Parameters<EventTarget["addEventListener"]>[1], options);
    const signal = typeof options === "object" ? options.signal : undefined;
    if (listener === null || signal?.aborted) return;
    const capture = captures(options);
    let byType = registry.get(this);
    if (!byType) registry.set(this, byType = new Map());
    const list = byType.get(type) ?? [];
    byType.set(type, list);
    if (list.some((r) => r.listener === listener && r.capture === capture)) return;
    list.push({ listener, capture, once: typeof options === "object" && options.once === true });
    signal?.addEventListener("abort", () => this.#forget(type, listener, capture), { once: true });
  }

  /**
   * Removes a listener added with {@linkcode addEventListener}.
   *
   * @param type The event type.
   * @param listener The listener to remove.
   * @param options As for `EventTarget`.
   */
  override removeEventListener<K extends keyof M & string>(
    type: K,
    listener: TypedListener<M, K> | null,
    options?: boolean | EventListenerOptions,
  ): void;
  /**
   * Removes a listener of an event type outside the map, with a plain `Event`.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options As for `EventTarget`.
   */
  override removeEventListener(
    type: string,
    listener: PlainListener | null,
    options?: boolean | EventListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: TypedListener<M, keyof M> | PlainListener | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener as Parameters<EventTarget["removeEventListener"]>[1], options);
    this.#forget(type, listener, captures(options));
  }

  /**
   * Dispatches `event`; listeners added with `once` are forgotten after it.
   *
   * @param event The event.
   * @returns False if a listener cancelled it.
   */
  override dispatchEvent(event: Event): boolean {
    const result = super.dispatchEvent(event);
    const list = registry.get(this)?.get(event.type);
    if (list?.some((r) => r.once)) registry.get(this)!.set(event.type, list.filter((r) => !r.once));
    return result;
  }

  #forget(type: string, listener: unknown, capture: boolean): void {
    const list = registry.get(this)?.get(type);
    if (list) registry.get(this)!.set(type, list.filter((r) => r.listener !== listener || r.capture !== capture));
  }
}

/**
 * Dispatches `err` as an `error` event on `target`, or, when nothing
 * listens for `error`, prints it with `console.error` and `what` (e.g. "The
 * handler of alert tick threw"): like Node's unhandled `error` event it is
 * never lost, but it does not end the process.
 */
export function emitError(target: EventTarget, err: unknown, what: string): void {
  if (hasListener(target, "error")) target.dispatchEvent(new CustomEvent("error", { detail: err }));
  else console.error(`ipcbus: ${what}; add an "error" listener to the peer to handle it:`, err);
}
