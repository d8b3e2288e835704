import { decodeCbor } from "../codec/cbor.ts";
import { NoResponderError } from "../errors.ts";
import { pooledCopy } from "../util/pooled_copy.ts";
import { answerPayload } from "./encoded_answer.ts";
import { type MessageHeaders, NO_HEADERS } from "./headers.ts";
import { isReply } from "./reply.ts";
import type { Answer } from "./link.ts";
import type { PeerCounters } from "./peer_counters.ts";
import type { RequestHandler } from "./peer_types.ts";
import { type PatternRecord, systemError, toErrorRecord } from "./protocol.ts";
import { checkRouteBudget, compilePattern, patternKey, type RouteMatcher, type RoutePattern } from "./route_pattern.ts";

/** Handlers that answer before they return and keep neither `data` nor `payload`: see {@linkcode borrowingHandler}. */
const borrowing = new WeakSet<RequestHandler>();

/**
 * Marks `handler` as one that answers before it returns and keeps neither
 * its `data` nor its `payload`: it is given the request's bytes where they
 * were read, not a copy (the built-in `/ipcbus/echo`, whose answer is copied
 * into the reply frame at once).
 */
export function borrowingHandler(handler: RequestHandler): RequestHandler {
  borrowing.add(handler);
  return handler;
}

/** The routes a peer serves (`handle()`), and serving one request. */
export class Responders {
  readonly #routes = new Map<string, { matcher: RouteMatcher; handler: RequestHandler }>();
  /** RegExp instructions of all the routes, toward the peer's budget. */
  #instructions = 0;
  readonly #counters: PeerCounters;

  constructor(counters: PeerCounters) {
    this.#counters = counters;
  }

  /** Routes served. */
  get size(): number {
    return this.#routes.size;
  }

  /** Serves `pattern` with `handler`, or stops serving it with `null`. */
  set(pattern: RoutePattern, handler: RequestHandler | null): void {
    const matcher = compilePattern(pattern);
    const key = patternKey(matcher.record);
    const replaced = this.#routes.get(key)?.matcher.size ?? 0;
    if (handler === null) {
      if (this.#routes.delete(key)) this.#instructions -= replaced;
      return;
    }
    if (typeof handler !== "function") {
      throw new TypeError(`Invalid handler for route ${String(pattern)}: expected a function`);
    }
    checkRouteBudget(this.#instructions - replaced + matcher.size);
    this.#routes.set(key, { matcher, handler });
    this.#instructions += matcher.size - replaced;
  }

  /** The patterns served, as they travel. */
  patterns(): PatternRecord[] {
    return [...this.#routes.values()].map((r) => r.matcher.record);
  }

  /**
   * Runs the handler of route `m.u` for a request of peer `m.f` (OS process
   * id `senderPid`) carrying CBOR `m.d`, which the handler may keep: unless
   * `own`, `m.d` is in a buffer read into again and the handler gets a copy
   * (a borrowing handler gets `m.d` itself). Calls `done` with the answer,
   * once: at once when the handler returns a value (no promise, no turn of
   * the event loop), or when its promise settles. `self` is this peer's id,
   * for the error when no route matches. Returns whether `done` was called
   * before returning.
   */
  serve(
    self: number | undefined,
    m: { f: number; u: string; d: Uint8Array; h?: MessageHeaders },
    own: boolean,
    senderPid: number,
    done: (answer: Answer) => void,
  ): boolean {
    let entry: { handler: RequestHandler } | undefined;
    for (const candidate of this.#routes.values()) {
      if (candidate.matcher.matches(m.u)) {
        entry = candidate;
        break;
      }
    }
    if (!entry) {
      done({ error: systemError(new NoResponderError(`Peer ${self} has no handler for route ${m.u}`)) });
      return true;
    }
    this.#counters.requestsServed++;
    const handler = entry.handler;
    const d = own || borrowing.has(handler) ? m.d : pooledCopy(m.d);
    let result: unknown;
    try {
      result = handler({
        route: m.u,
        data: decodeCbor(d, true),
        payload: d,
        sender: m.f,
        senderPid,
        headers: m.h ?? NO_HEADERS,
      });
    } catch (err) {
      done({ error: toErrorRecord(err) });
      return true;
    }
    if (isThenable(result)) {
      Promise.resolve(result).then((value) => done(answerOf(value)), (err) => done({ error: toErrorRecord(err) }));
      return false;
    }
    done(answerOf(result));
    return true;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}

/** The answer carrying `result` (a value, or a reply with headers), or the error encoding it failed with. */
function answerOf(result: unknown): Answer {
  try {
    if (!isReply(result)) return { data: answerPayload(result) };
    const data = answerPayload(result.data);
    return result.headers === NO_HEADERS ? { data } : { data, headers: result.headers };
  } catch (err) {
    return { error: toErrorRecord(err) };
  }
}
