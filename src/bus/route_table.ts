import type { RouteMatcher } from "./route_pattern.ts";

const NONE: readonly never[] = [];

/**
 * Which peers serve a route: every peer's `handle()` patterns, indexed so
 * that routing a request costs one map lookup for the exact routes, one per
 * distinct prefix length for the prefixes, and a test of each RegExp pattern
 * only. A scan of every pattern of every peer would let one peer with 10 000
 * exact routes slow every request the hub routes.
 *
 * `T` names a peer: the hub's link, or an id over NATS.
 */
export class RouteTable<T> {
  readonly #exact = new Map<string, T[]>();
  readonly #prefixes = new Map<string, T[]>();
  /** Length of a registered prefix → how many are registered with it. */
  readonly #prefixLengths = new Map<number, number>();
  #regexps: Array<{ matcher: RouteMatcher; holder: T }> = [];
  readonly #held = new Map<T, readonly RouteMatcher[]>();
  #size = 0;

  /** Patterns held, of every holder. */
  get size(): number {
    return this.#size;
  }

  /** Replaces the patterns of `holder` (an empty list removes them). */
  set(holder: T, matchers: readonly RouteMatcher[]): void {
    this.remove(holder);
    if (matchers.length === 0) return;
    this.#held.set(holder, matchers);
    this.#size += matchers.length;
    for (const matcher of matchers) {
      const r = matcher.record;
      if ("exact" in r) addTo(this.#exact, r.exact, holder);
      else if ("prefix" in r) {
        if (addTo(this.#prefixes, r.prefix, holder)) {
          this.#prefixLengths.set(r.prefix.length, (this.#prefixLengths.get(r.prefix.length) ?? 0) + 1);
        }
      } else this.#regexps.push({ matcher, holder });
    }
  }

  /** Forgets every pattern of `holder`. */
  remove(holder: T): void {
    const matchers = this.#held.get(holder);
    if (matchers === undefined) return;
    this.#held.delete(holder);
    this.#size -= matchers.length;
    let regexps = false;
    for (const { record: r } of matchers) {
      if ("exact" in r) removeFrom(this.#exact, r.exact, holder);
      else if ("prefix" in r) {
        if (removeFrom(this.#prefixes, r.prefix, holder)) {
          const left = this.#prefixLengths.get(r.prefix.length)! - 1;
          if (left === 0) this.#prefixLengths.delete(r.prefix.length);
          else this.#prefixLengths.set(r.prefix.length, left);
        }
      } else regexps = true;
    }
    if (regexps) this.#regexps = this.#regexps.filter((e) => e.holder !== holder);
  }

  /**
   * Every holder with a pattern that matches `route`, each once, in an order
   * that stays the same while the patterns do. Not to be changed by the
   * caller: it may be the table's own list.
   */
  match(route: string): readonly T[] {
    let only: readonly T[] = this.#exact.get(route) ?? NONE;
    // The common case, every route exact (the hub's built-in ones are): one lookup, no allocation.
    if (this.#prefixLengths.size === 0 && this.#regexps.length === 0) return only;
    let found: T[] | undefined;
    const add = (holders: readonly T[]) => {
      if (only.length === 0 && found === undefined) only = holders;
      else {
        found ??= [...only];
        for (const h of holders) if (!found.includes(h)) found.push(h);
      }
    };
    for (const length of this.#prefixLengths.keys()) {
      if (length > route.length) continue;
      const holders = this.#prefixes.get(route.slice(0, length));
      if (holders !== undefined) add(holders);
    }
    for (const { matcher, holder } of this.#regexps) if (matcher.matches(route)) add([holder]);
    return found ?? only;
  }
}

/** Adds `holder` under `key`; returns whether it was not there yet. */
function addTo<T>(map: Map<string, T[]>, key: string, holder: T): boolean {
  const holders = map.get(key);
  if (holders === undefined) map.set(key, [holder]);
  else if (holders.includes(holder)) return false;
  else holders.push(holder);
  return true;
}

/** Removes `holder` from under `key`; returns whether it was there. */
function removeFrom<T>(map: Map<string, T[]>, key: string, holder: T): boolean {
  const holders = map.get(key);
  const at = holders?.indexOf(holder) ?? -1;
  if (at < 0) return false;
  if (holders!.length === 1) map.delete(key);
  else holders!.splice(at, 1);
  return true;
}
