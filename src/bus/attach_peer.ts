/**
 * The library's own ways into a {@linkcode Peer}: attaching it to a hub or
 * a link, serving a request for the hub's own peer, reading its view. Not
 * exported by `mod.ts`, so not public API.
 *
 * @module
 */
import type { Connection } from "../transport/connection.ts";
import { processId, runtime } from "../transport/runtime.ts";
import { HubLink } from "./hub_link.ts";
import type { Answer, Link } from "./link.ts";
import { type Peer, peerSession } from "./peer.ts";
import type { PeerSession } from "./peer_session.ts";
import type { PeerInfo } from "./protocol.ts";

/**
 * Runs the handshake with a hub over `conn` and starts reading. Resolves
 * once the hub has assigned an id. Used by `connect()`, the hub and
 * channels. A peer that had an id asks for it back unless `askId` is false.
 */
export function attachPeer(peer: Peer, conn: Connection, timeout: number, askId = true): Promise<void> {
  const session = peerSession(peer);
  const s = session.settings;
  // The hub's own peer (0) gets 0 without asking.
  const id = askId ? session.id || s.requestedId : undefined;
  return session.attach(
    new HubLink(conn, {
      maxQueueMessages: s.maxQueueMessages,
      maxQueueBytes: s.maxQueueBytes,
      maxFrameBytes: s.maxFrameBytes,
      timeout,
      hello: {
        pid: processId,
        runtime: runtime ?? "unknown",
        ...(s.name === undefined ? {} : { name: s.name }),
        ...(id ? { id } : {}),
        inc: session.incarnation,
        ...(s.token === undefined ? {} : { token: s.token }),
        ...(s.dropOldestBroadcasts ? { dropOldest: true } : {}),
      },
    }),
  );
}

/** Opens `link` for `peer`: it carries the peer's messages from then on. */
export function attachPeerLink(peer: Peer, link: Link): Promise<void> {
  return peerSession(peer).attach(link);
}

/**
 * Runs the handler of route `m.u` of `peer` for request `m` and calls `done`
 * with its answer, once: at once if the handler returns a value (then it
 * returns true). Unless `own`, `m.d` is a view into a read buffer, copied
 * for a handler that may keep it. The hub calls this directly for its own
 * peer, without a round trip through a connection.
 */
export function servePeer(
  peer: Peer,
  m: Parameters<PeerSession["serve"]>[0],
  own: boolean,
  done: (answer: Answer) => void,
): boolean {
  return peerSession(peer).serve(m, own, done);
}

/** The peers in `peer`'s view, those away during a failover included. */
export function peerView(peer: Peer): PeerInfo[] {
  return peerSession(peer).view.list();
}

/** Whether `peer`'s view of the bus lists peer `id`. */
export function inPeerView(peer: Peer, id: number): boolean {
  return peerSession(peer).view.get(id) !== undefined;
}

/** Id of the member hosting the hub, from `peer`'s last welcome. */
export function hubHostOf(peer: Peer): number | undefined {
  return peerSession(peer).hubHost;
}
