import { checkHeaders, type MessageHeaders, NO_HEADERS } from "./headers.ts";

/** An answer to a request with its headers: what `reply()` makes and `requestReply()` resolves with. */
export interface Reply<T = unknown> {
  /** The response value. */
  readonly data: T;
  /** The response's headers; empty when it had none. */
  readonly headers: MessageHeaders;
}

/** Options of {@linkcode reply}. */
export interface ReplyOptions {
  /** Text metadata sent with the response. */
  headers?: Readonly<Record<string, string>>;
}

/** Replies made by `reply()`: a handler returning a look-alike plain object sends that object as data. */
const made = new WeakSet<object>();

/**
 * Wraps a request handler's response to send it with headers. A handler
 * that returns (or resolves with) `reply(data, { headers })` answers `data`,
 * and the requester finds the headers in `requestReply()`'s result.
 *
 * @param data The response value.
 * @param options The headers.
 * @returns The response with its headers.
 * @throws {TypeError} when a header value is not a string.
 *
 * @example A response with headers
 * ```ts
 * import { connect, reply } from "@ipcbus/ipcbus";
 * const peer = await connect({ path: "/tmp/app.sock" });
 * peer.handle("/render", ({ data }) => reply(`<p>${data}</p>`, { headers: { "content-type": "text/html" } }));
 * const { data, headers } = await peer.requestReply<string>("/render", "hi");
 * console.log(headers["content-type"], data);
 * ```
 */
export function reply<T>(data: T, options: ReplyOptions = {}): Reply<T> {
  const value: Reply<T> = Object.freeze({ data, headers: checkHeaders(options.headers) ?? NO_HEADERS });
  made.add(value);
  return value;
}

/** Whether a handler's result was made by {@linkcode reply}. */
export function isReply(value: unknown): value is Reply {
  return typeof value === "object" && value !== null && made.has(value);
}
