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
 * - `routing among 1 000 peers`: each peer serves `/worker/<i>`, and one
 *   more serves 10 000 exact routes of its own; a request for
 *   `/worker/999`. Baseline: a scan of every pattern of every peer (how the
 *   hub routed before `RouteTable`); against `RouteTable.match`.
 *
 * Run: `deno task bench` (all suites) or `deno bench -A bench/route_bench.ts`.
 *
 * @module
 */
import { LinearRegExp } from "../src/bus/linear_regexp.ts";
import { compilePattern, type RouteMatcher } from "../src/bus/route_pattern.ts";
import { RouteTable } from "../src/bus/route_table.ts";

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

{
  const peers = new Map<number, RouteMatcher[]>();
  for (let i = 0; i < 1000; i++) peers.set(i, [compilePattern(`/worker/${i}`)]);
  peers.set(1000, Array.from({ length: 10_000 }, (_, i) => compilePattern(`/hoard/${i}`)));
  const table = new RouteTable<number>();
  for (const [id, matchers] of peers) table.set(id, matchers);
  const scan = (route: string) => {
    const found: number[] = [];
    for (const [id, matchers] of peers) if (matchers.some((m) => m.matches(route))) found.push(id);
    return found;
  };
  const group = "routing among 1 000 peers";
  Deno.bench({ name: "scan of every pattern", group, baseline: true, fn: () => void (sink += scan("/worker/999")[0]) });
  Deno.bench({ name: "RouteTable.match", group, fn: () => void (sink += table.match("/worker/999")[0]) });
}

// Keeps `sink` observable.
addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
