import { LinearRegExp } from "./linear_regexp.ts";
import type { PatternRecord } from "./protocol.ts";

/** RegExp instructions (see `regexp_program.ts`) one peer's routes may compile to, all patterns together. */
export const MAX_ROUTE_INSTRUCTIONS = 20_000;

/** Routes whose RegExp answers a matcher remembers, at most; past it the memory starts over. */
const REMEMBERED_ROUTES = 1024;
/** Longer routes are tested each time rather than kept. */
const REMEMBERED_ROUTE_LENGTH = 256;

/** What `handle()` accepts: an exact route, a prefix ending in `*`, or a RegExp. */
export type RoutePattern = string | RegExp;

/** A compiled route pattern. */
export interface RouteMatcher {
  readonly record: PatternRecord;
  /** RegExp instructions, toward {@linkcode MAX_ROUTE_INSTRUCTIONS}; 0 for an exact route or a prefix. */
  readonly size: number;
  matches(route: string): boolean;
}

/**
 * Compiles a pattern as given to `handle()` or received from a peer. A RegExp
 * is matched in time linear in the route ({@linkcode LinearRegExp}), since
 * the hub tests every peer's patterns against other peers' requests.
 *
 * @throws {TypeError} for a pattern that is neither a non-empty string nor a
 * RegExp, or a RegExp that needs backtracking (backreferences, lookarounds).
 * @throws {RangeError} for a RegExp whose repetitions expand too far.
 * @throws {SyntaxError} for a RegExp record whose source does not compile.
 */
export function compilePattern(pattern: RoutePattern | PatternRecord): RouteMatcher {
  let record: PatternRecord;
  if (pattern instanceof RegExp) record = { regexp: { source: pattern.source, flags: pattern.flags } };
  else if (typeof pattern === "string") {
    if (pattern.length === 0) throw new TypeError("Invalid route pattern: expected a non-empty string");
    record = pattern.endsWith("*") ? { prefix: pattern.slice(0, -1) } : { exact: pattern };
  } else if (pattern !== null && typeof pattern === "object") record = pattern;
  else throw new TypeError(`Invalid route pattern: expected a string or RegExp, got ${typeof pattern}`);

  if ("exact" in record) {
    const exact = record.exact;
    return { record, size: 0, matches: (route) => route === exact };
  }
  if ("prefix" in record) {
    const prefix = record.prefix;
    return { record, size: 0, matches: (route) => route.startsWith(prefix) };
  }
  const regexp = new LinearRegExp(record.regexp.source, record.regexp.flags);
  // Requests name the same few routes again and again, and a linear match costs tens of nanoseconds per character.
  const known = new Map<string, boolean>();
  return {
    record,
    size: regexp.size,
    matches: (route) => {
      let answer = known.get(route);
      if (answer === undefined) {
        answer = regexp.test(route);
        if (route.length <= REMEMBERED_ROUTE_LENGTH) {
          if (known.size >= REMEMBERED_ROUTES) known.clear();
          known.set(route, answer);
        }
      }
      return answer;
    },
  };
}

/**
 * Compiles a peer's whole route list, as it travels.
 *
 * @throws {RangeError} when its RegExp patterns take more than {@linkcode MAX_ROUTE_INSTRUCTIONS} together.
 * @throws {TypeError | RangeError | SyntaxError} for one pattern, as {@linkcode compilePattern}.
 */
export function compileRoutes(patterns: readonly PatternRecord[]): RouteMatcher[] {
  const matchers = patterns.map((p) => compilePattern(p));
  checkRouteBudget(matchers.reduce((sum, m) => sum + m.size, 0));
  return matchers;
}

/**
 * Checks that one peer's routes, `total` RegExp instructions together, fit its budget.
 *
 * @throws {RangeError} when they do not.
 */
export function checkRouteBudget(total: number): void {
  if (total > MAX_ROUTE_INSTRUCTIONS) {
    throw new RangeError(
      `Too many RegExp routes: they take ${total} instructions together, over ${MAX_ROUTE_INSTRUCTIONS} per peer`,
    );
  }
}

/** A stable key for a pattern, to replace a handler registered for the same pattern. */
export function patternKey(record: PatternRecord): string {
  if ("exact" in record) return `=${record.exact}`;
  if ("prefix" in record) return `*${record.prefix}`;
  return `/${record.regexp.source}/${record.regexp.flags}`;
}
