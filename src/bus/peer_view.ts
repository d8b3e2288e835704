import { NoSuchPeerError } from "../errors.ts";
import type { DeliveryPolicy } from "./link.ts";
import type { PeerInfo } from "./protocol.ts";
import { IdTable } from "./id_table.ts";

/** What a {@linkcode PeerView} needs from its peer. */
export interface PeerViewHost {
  /** This peer's id, undefined before the first link opened. */
  selfId(): number | undefined;
  /** Whether a link is open now. */
  connected(): boolean;
  /** Whether the peer is closing. */
  closing(): boolean;
  /** Fires `peerjoin` or `peerleave`. */
  dispatchEvent(event: Event): boolean;
  /**
   * Whether anything listens for events of `type`: when nothing does, none
   * is made (on a bus of N peers a join is an event in each of them, and
   * 1 000 peers in one process joining one after another made 500 000).
   */
  listens?(type: string): boolean;
}

/**
 * The peers a peer knows of, by id and by name, with `peerjoin`/`peerleave`.
 * With a delivery policy (channels), members known before a failover stay in
 * view for `graceMs` while they may come back to the new hub (`present` says
 * which are at the current one), and the policy hears of every change.
 */
export class PeerView {
  readonly #host: PeerViewHost;
  readonly #policy: DeliveryPolicy | undefined;
  readonly #graceMs: number;
  readonly #byId = new IdTable<PeerInfo>();
  readonly #byName = new Map<string, number>();
  /** With a policy: members at the current link (the view also keeps those away, for a grace period). */
  readonly present = new Set<number>();
  #graceTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(host: PeerViewHost, policy?: { policy: DeliveryPolicy; graceMs: number }) {
    this.#host = host;
    this.#policy = policy?.policy;
    this.#graceMs = policy?.graceMs ?? 0;
  }

  /** Peer `id`, if in view. */
  get(id: number): PeerInfo | undefined {
    return this.#byId.get(id);
  }

  /** The ids in view. */
  ids(): number[] {
    return this.#byId.ids();
  }

  /** The peers in view, by id. */
  list(): PeerInfo[] {
    return this.#byId.values();
  }

  /** The id of peer `to` (an id or a name) in view. */
  resolve(to: number | string): number {
    if (typeof to === "number") {
      if (!this.#byId.has(to)) throw new NoSuchPeerError(`No peer with id ${to} is connected`);
      return to;
    }
    if (typeof to === "string") {
      const id = this.#byName.get(to);
      if (id === undefined) throw new NoSuchPeerError(`No peer named ${to} is connected`);
      return id;
    }
    throw new TypeError(`Invalid destination: expected a peer id or name, got ${typeof to}`);
  }

  /** A link opened with `peers` present. */
  welcome(peers: PeerInfo[]): void {
    if (this.#policy) return this.#merge(peers);
    if (this.#byId.size === 0) {
      // The first link: nothing to compare with, and no events.
      for (const info of peers) this.#add(info);
      return;
    }
    // A reconnect: peers that did not come back leave, new ones join; an id
    // held by another process (another `inc`) counts as both. This peer
    // itself is told by its incarnation, as its id may have changed.
    const selfInc = peers.find((p) => p.id === this.#host.selfId())?.inc;
    const isSelf = (info: PeerInfo) => info.inc !== undefined && info.inc === selfInc;
    const same = (a: PeerInfo | undefined, b: PeerInfo) => a !== undefined && a.inc === b.inc;
    const next = new Map(peers.map((p) => [p.id, p]));
    for (const old of this.list()) {
      if (!isSelf(old) && !same(next.get(old.id), old)) this.leave(old.id, "not at the hub after reconnecting");
    }
    const before = new Map(this.#byId.values().map((p) => [p.id, p]));
    this.#byId.clear();
    this.#byName.clear();
    for (const info of peers) {
      this.#add(info);
      if (!isSelf(info) && !same(before.get(info.id), info)) this.#emit("peerjoin", info);
    }
  }

  /** Members in the welcome are at the hub; members we knew and it lacks stay in view for the grace period. */
  #merge(peers: PeerInfo[]): void {
    for (const info of peers) {
      const known = this.#byId.get(info.id);
      if (known && known.inc !== info.inc) this.leave(info.id, "restarted");
      this.#policy?.onMember(info.id, info.inc);
      this.present.add(info.id);
      if (!this.#byId.has(info.id)) {
        this.#add(info);
        if (info.id !== this.#host.selfId()) this.#emit("peerjoin", info);
      }
    }
    this.startGrace();
  }

  /** Peer `info` joined. */
  join(info: PeerInfo): void {
    const known = this.#byId.get(info.id);
    if (known && known.inc !== undefined && known.inc === info.inc) {
      // Back after a failover: no event, just resend what it missed.
      this.present.add(info.id);
      this.#policy?.onPresent(info.id);
      return;
    }
    if (known) this.leave(info.id, "restarted");
    this.#policy?.onMember(info.id, info.inc);
    this.#add(info);
    if (this.#policy) {
      this.present.add(info.id);
      this.#policy.onPresent(info.id);
    }
    this.#emit("peerjoin", info);
  }

  /** Peer `id` left. */
  leave(id: number, reason: string): void {
    const info = this.#byId.get(id);
    if (!info) return;
    this.#byId.delete(id);
    if (info.name !== undefined && this.#byName.get(info.name) === id) this.#byName.delete(info.name);
    this.present.delete(id);
    this.#policy?.onGone(id, "peer_left");
    if (this.#host.listens?.("peerleave") !== false) {
      this.#host.dispatchEvent(new CustomEvent("peerleave", { detail: { ...info, reason } }));
    }
  }

  /** After the grace period, members that did not come back to the new hub leave the view. */
  startGrace(): void {
    if (this.#graceTimer !== undefined || !this.#policy) return;
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = undefined;
      if (this.#host.closing()) return;
      if (!this.#host.connected()) return this.startGrace();
      const self = this.#host.selfId();
      for (const id of this.ids()) {
        if (!this.present.has(id) && id !== self) this.leave(id, "did not return after hub failover");
      }
    }, this.#graceMs);
  }

  /**
   * Starts the grace period again from now: the link was lost once more, so
   * members get the full period to reach the next hub. A timer left from an
   * earlier failover would otherwise drop live members that had no time to
   * reach this one (found by the channel chaos test: two hub kills 1.5–3 s
   * apart with a 3 s grace lost messages to members reported `peer_left`).
   */
  restartGrace(): void {
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    this.startGrace();
  }

  /** Stops the grace timer (the peer closed). */
  close(): void {
    clearTimeout(this.#graceTimer);
  }

  #emit(type: "peerjoin", info: PeerInfo): void {
    if (this.#host.listens?.(type) !== false) this.#host.dispatchEvent(new CustomEvent(type, { detail: info }));
  }

  #add(info: PeerInfo): void {
    this.#byId.set(info.id, info);
    if (info.name !== undefined) this.#byName.set(info.name, info.id);
  }
}
