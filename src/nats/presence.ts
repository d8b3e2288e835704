import { compileReceivedRoutes, type PatternRecord, type PeerInfo } from "../bus/protocol.ts";
import type { RouteMatcher } from "../bus/route_pattern.ts";
import { RouteTable } from "../bus/route_table.ts";
import type { Here } from "./nats_protocol.ts";

/** How often a peer says it is here. */
export const HEARTBEAT_MS = 500;
/** A peer not heard from for this long is gone (a SIGKILLed one leaves every view within it plus a sweep). */
export const PRESENCE_TIMEOUT_MS = 2000;

interface Present {
  info: PeerInfo;
  matchers: RouteMatcher[];
  heard: number;
  /** Its connection count, from its heartbeats. */
  c: number;
}

/** What a heartbeat changed. */
export type HeardChange =
  | { type: "joined"; info: PeerInfo }
  | { type: "restarted"; info: PeerInfo; old: PeerInfo }
  | { type: "reconnected"; id: number }
  | { type: "same" };

/** Keys of the round-robin cursors kept, at most; past it they start over. */
const MAX_CURSORS = 1024;

/**
 * The peers a NATS link has heard from, with the routes they serve: the
 * membership NATS itself does not have. Peers join by a heartbeat and leave
 * by a leave message or by silence ({@linkcode PRESENCE_TIMEOUT_MS}).
 */
export class Presence {
  readonly #peers = new Map<number, Present>();
  readonly #cursors = new Map<string, number>();
  readonly #routes = new RouteTable<number>();

  /**
   * Records a heartbeat, its routes compiled when they are new.
   *
   * @throws {ProtocolError} for routes a peer may not serve (PROTOCOL.md 8.1); nothing is recorded then.
   */
  heard(m: Here, now: number): HeardChange {
    const known = this.#peers.get(m.peer.id);
    if (known && known.info.inc === m.peer.inc) {
      if (samePatterns(known.matchers, m.patterns) === false) {
        known.matchers = compileReceivedRoutes(m.patterns);
        this.#routes.set(m.peer.id, known.matchers);
      }
      known.heard = now;
      if (m.c !== known.c) {
        known.c = m.c;
        return { type: "reconnected", id: m.peer.id };
      }
      return { type: "same" };
    }
    const matchers = compileReceivedRoutes(m.patterns);
    this.#peers.set(m.peer.id, { info: m.peer, matchers, heard: now, c: m.c });
    this.#routes.set(m.peer.id, matchers);
    return known ? { type: "restarted", info: m.peer, old: known.info } : { type: "joined", info: m.peer };
  }

  /** Forgets peer `id` (when `inc` is given, only that incarnation); returns its record if it was present. */
  remove(id: number, inc?: string): PeerInfo | undefined {
    const known = this.#peers.get(id);
    if (!known || (inc !== undefined && known.info.inc !== inc)) return undefined;
    this.#peers.delete(id);
    this.#routes.remove(id);
    return known.info;
  }

  has(id: number): boolean {
    return this.#peers.has(id);
  }

  /** The records of every present peer. */
  infos(): PeerInfo[] {
    return [...this.#peers.values()].map((p) => p.info);
  }

  /** Ids of the peers silent since before `now - timeout`, other than `self`. */
  silent(now: number, self: number): number[] {
    const out: number[] = [];
    for (const [id, p] of this.#peers) if (id !== self && now - p.heard > PRESENCE_TIMEOUT_MS) out.push(id);
    return out;
  }

  /** Counts everyone as heard now: after this link was away itself, silence says nothing about the others. */
  forgive(now: number): void {
    for (const p of this.#peers.values()) p.heard = now;
  }

  /** The next peer, in turn, whose routes match `route`; undefined when none does. */
  responder(route: string): number | undefined {
    const matching = [...this.#routes.match(route)];
    if (matching.length === 0) return undefined;
    if (this.#cursors.size >= MAX_CURSORS && !this.#cursors.has(route)) this.#cursors.clear();
    const turn = this.#cursors.get(route) ?? 0;
    this.#cursors.set(route, turn + 1);
    matching.sort((a, b) => a - b);
    return matching[turn % matching.length];
  }
}

function samePatterns(matchers: RouteMatcher[], patterns: PatternRecord[]): boolean {
  if (matchers.length !== patterns.length) return false;
  return matchers.every((m, i) => JSON.stringify(m.record) === JSON.stringify(patterns[i]));
}
