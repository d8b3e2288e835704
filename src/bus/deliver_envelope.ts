import { decodeEnvelope } from "../codec/cbor.ts";
import { readEnvelope } from "./fast_envelope.ts";
import type { LinkHandler } from "./link.ts";
import { asAlert, asEnvelope, asReply, asRequest, Kind } from "./protocol.ts";
import { keptBytes } from "../util/pooled_copy.ts";

/**
 * Hands one received alert, request or response envelope to `handler`:
 * through the hand-written reader when it can, else the general decoder and
 * validators: what `HubLink` and `NatsLink` share. An envelope of another kind is
 * returned for the link to handle itself.
 *
 * The data of a request or a response is the handler's to keep (see
 * `LinkHandler`): with `own` false `body` is a view into a read buffer that
 * is reused once this returns, and that data is copied out of it. An
 * alert's data is handed on as it is: the handler decodes it within the call.
 *
 * @param body One envelope's bytes.
 * @param handler The peer's handler (its `alert`, `request` and `answer`).
 * @param own Whether `body` may be kept (views of it included): its buffer is not reused.
 * @returns The envelope when it is not an alert, request or response; undefined when delivered.
 * @throws {ProtocolError} for bytes that are not a valid envelope.
 *
 * @example Delivering what a link received
 * ```ts
 * import { deliverEnvelope } from "./deliver_envelope.ts";
 * import type { LinkHandler } from "./link.ts";
 * declare const body: Uint8Array, handler: LinkHandler;
 * const other = deliverEnvelope(body, handler, true);
 * if (other) console.log("not for the peer:", other.k);
 * ```
 */
export function deliverEnvelope(
  body: Uint8Array,
  handler: Pick<LinkHandler, "alert" | "request" | "answer">,
  own: boolean,
): ReturnType<typeof asEnvelope> | undefined {
  const fast = readEnvelope(body);
  if (fast) {
    // The fast reader takes no headers (a map value): an envelope with `h` comes the general way below.
    if (fast.k === Kind.Alert) handler.alert(fast.f, fast.t, fast.n!, fast.d!, fast.s);
    else if (fast.k === Kind.Request) handler.request(fast.f, fast.r!, fast.u!, keptBytes(fast.d!, own));
    else handler.answer(fast.r!, { data: keptBytes(fast.d!, own) });
    return undefined;
  }
  const m = asEnvelope(decodeEnvelope(body));
  switch (m.k) {
    case Kind.Alert: {
      const a = asAlert(m);
      handler.alert(a.f, a.t, a.n, a.d, a.s, a.h);
      return undefined;
    }
    case Kind.Request: {
      const q = asRequest(m);
      handler.request(q.f, q.r, q.u, keptBytes(q.d, own), q.h);
      return undefined;
    }
    case Kind.Response:
    case Kind.ErrorResponse: {
      const r = asReply(m);
      if (r.k !== Kind.Response) handler.answer(r.r, { error: r.e });
      else {
        const data = keptBytes(r.d, own);
        handler.answer(r.r, r.h === undefined ? { data } : { data, headers: r.h });
      }
      return undefined;
    }
    default:
      return m;
  }
}
