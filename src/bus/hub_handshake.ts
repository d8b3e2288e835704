import { AuthError, ClosedError, ErrorCode, IpcError, ProtocolError } from "../errors.ts";
import { type Hello, PROTOCOL_VERSION } from "./protocol.ts";
import { timingSafeEqual } from "./timing_safe_equal.ts";

/** What the hub knows when it decides on a hello. */
export interface AdmitContext {
  /** The hello came over the hub's own in-memory connection. */
  isHubPeer: boolean;
  /** The hub's shared secret, if it requires one. */
  token: string | undefined;
  closing: boolean;
  /** Id of the live peer holding `name`, if any. */
  nameHolder(name: string): number | undefined;
  /** The ids live peers hold: whether one is free, and the lowest free one (≥ 1). */
  ids: { readonly isFree: (id: number) => boolean; lowest(): number };
  /** Channels pick ids themselves (names keep their ids across restarts), from the lowest free one up. */
  assignId: ((hello: Hello, isFree: (id: number) => boolean, from: number) => number | undefined) | undefined;
}

/**
 * Decides on a hello: the id the peer gets, or the error it is refused with
 * (version, auth, a closing hub, a name or id taken, no id left).
 */
export function admitHello(hello: Hello, ctx: AdmitContext): number | IpcError {
  if (hello.v !== PROTOCOL_VERSION) {
    return new ProtocolError(`Unsupported protocol version ${hello.v}; this hub speaks version ${PROTOCOL_VERSION}`);
  }
  if (ctx.token !== undefined && !ctx.isHubPeer) {
    if (hello.token === undefined) return new AuthError("Hub refused the handshake: no auth token given");
    if (!timingSafeEqual(hello.token, ctx.token)) return new AuthError("Hub refused the handshake: wrong auth token");
  } else if (hello.token !== undefined && !ctx.isHubPeer) {
    // A peer that brings a token expects a bus others cannot join without it:
    // accepting would hide a hub started without auth.
    return new AuthError("Hub refused the handshake: this hub does not use auth tokens; connect without one");
  }
  if (ctx.closing) return new ClosedError("The hub is closing");
  const holder = hello.name === undefined ? undefined : ctx.nameHolder(hello.name);
  if (holder !== undefined) {
    return new IpcError(`Name ${hello.name} is taken by live peer ${holder}`, { code: ErrorCode.NameTaken });
  }
  if (ctx.isHubPeer) return 0;
  if (hello.id !== undefined) {
    if (!ctx.ids.isFree(hello.id)) {
      return new IpcError(`Id ${hello.id} is held by a live peer`, { code: ErrorCode.IdTaken });
    }
    return hello.id;
  }
  return ctx.assignId?.(hello, ctx.ids.isFree, ctx.ids.lowest()) ?? ctx.ids.lowest();
}
