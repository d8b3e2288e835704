import { frameBytes } from "../codec/frame_parser.ts";
import type { PeerLink } from "./peer_link.ts";
import { encodeMessage, Kind, type MemberChange } from "./protocol.ts";

/**
 * From this many peers on, joins and leaves are announced in batches, each
 * waiting this many microseconds per peer (at most MAX_BATCH_MS): the wait
 * grows with the cost of an announcement, so the cost per join stays bounded.
 */
const BATCH_FROM_PEERS = 64;
const BATCH_US_PER_PEER = 250;
const MAX_BATCH_MS = 250;

/**
 * The hub's announcements of joins and leaves to every peer. Each costs a
 * write per peer: 1 000 peers joining one after another, announced one by
 * one, cost the hub half a million writes. On a large bus changes are held
 * for a moment and sent together as one `members` frame, in order; they go
 * at once when a peer whose join is held sends anything (see
 * {@linkcode MemberAnnouncements.flush}), so that nobody hears from a peer
 * before hearing it joined.
 */
export class MemberAnnouncements {
  readonly #links: Map<number, PeerLink>;
  #changes: MemberChange[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** @param links The hub's peers by id: those told, and whose number sets the wait. */
  constructor(links: Map<number, PeerLink>) {
    this.#links = links;
  }

  /** Announces a join (`joining`: the new peer's link) or a leave; `now` sends it without waiting. */
  announce(change: MemberChange, options: { joining?: PeerLink; now?: boolean } = {}): void {
    this.#changes.push(change);
    const peers = this.#links.size;
    if (peers < BATCH_FROM_PEERS || options.now) return this.flush();
    if (options.joining) options.joining.announced = false;
    this.#timer ??= setTimeout(() => this.flush(), Math.min(MAX_BATCH_MS, peers * BATCH_US_PER_PEER / 1000));
  }

  /** Sends the changes held, if any, to every peer. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const changes = this.#changes;
    if (changes.length === 0) return;
    this.#changes = [];
    const [first] = changes;
    const frame = encodeMessage(
      changes.length > 1
        ? { k: Kind.Members, changes }
        : "join" in first
        ? { k: Kind.Join, peer: first.join }
        : { k: Kind.Leave, id: first.leave, reason: first.reason },
    );
    // One frame, header included, that every link writes as it is.
    const shared = frameBytes(frame);
    for (const link of this.#links.values()) {
      link.announced = true;
      link.writer.pushShared(shared);
    }
  }
}
