/**
 * What a RegExp route costs the hub per request, now that it runs in linear
 * time (`src/bus/linear_regexp.ts`) instead of on the engine's backtracking
 * RegExp:
 *
 * - `RegExp route, typical`: `/^\/jobs\/[a-z-]+\/\d+$/` against a 27-character
 *   route that matches. Baseline: the engine's `RegExp.prototype.test`;
 *   against `LinearRegExp.test` and the hub's matcher (`compilePattern`),
 *   which remembers the answers for recent routes.
 * - `RegExp route, long input`: the same pattern against a 1 000-character
 *   route, so the matcher cannot remember it.
 * - `RegExp route, backtracking-prone`: `/^(.*)*x$/` against a 15-character
 *   route that does not match: the engine takes time exponential in the
 *   route's length (1 s at 24 characters on Deno), the linear matcher
 *   ~100 ns per character.
 *
 * Run: `deno task bench` (all suites) or `deno bench -A bench/route_bench.ts`.
 *
 * @module
 */
import { LinearRegExp } from "../src/bus/linear_regexp.ts";
import { compilePattern } from "../src/bus/route_pattern.ts";

// Results go here so the JIT cannot drop the work.
let sink = 0;

function group(name: string, source: string, route: string, matcher = true): void {
  const engine = new RegExp(source);
  const linear = new LinearRegExp(source, "");
  const hub = compilePattern(new RegExp(source));
  Deno.bench({
    name: "RegExp.prototype.test",
    group: name,
    baseline: true,
    fn: () => void (sink += +engine.test(route)),
  });
  Deno.bench({ name: "LinearRegExp.test", group: name, fn: () => void (sink += +linear.test(route)) });
  if (matcher) Deno.bench({ name: "hub's matcher", group: name, fn: () => void (sink += +hub.matches(route)) });
}

group("RegExp route, typical", "^\\/jobs\\/[a-z-]+\\/\\d+$", "/jobs/process-image/1234567");
group("RegExp route, long input", "^\\/jobs\\/[a-z-]+\\/\\d+$", `/jobs/${"a".repeat(980)}/1234567`, false);
group("RegExp route, backtracking-prone", "^(.*)*x$", "/jobs/image-123", false);

// Keeps `sink` observable.
addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
