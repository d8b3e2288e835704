import type { PatternRecord } from "./protocol.ts";

/** What `handle()` accepts: an exact route, a prefix ending in `*`, or a RegExp. */
export type RoutePattern = string | RegExp;

/** A compiled route pattern. */
export interface RouteMatcher {
  readonly record: PatternRecord;
  matches(route: string): boolean;
}

/**
 * Compiles a pattern as given to `handle()` or received from a peer.
 *
 * @throws {TypeError} for a pattern that is neither a non-empty string nor a RegExp.
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
    return { record, matches: (route) => route === exact };
  }
  if ("prefix" in record) {
    const prefix = record.prefix;
    return { record, matches: (route) => route.startsWith(prefix) };
  }
  // Flags g and y make test() stateful; routing must not depend on history.
  const regexp = new RegExp(record.regexp.source, record.regexp.flags.replace(/[gy]/g, ""));
  return { record, matches: (route) => regexp.test(route) };
}

/** A stable key for a pattern, to replace a handler registered for the same pattern. */
export function patternKey(record: PatternRecord): string {
  if ("exact" in record) return `=${record.exact}`;
  if ("prefix" in record) return `*${record.prefix}`;
  return `/${record.regexp.source}/${record.regexp.flags}`;
}
