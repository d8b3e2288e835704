// The hub's index of every peer's routes: it must name exactly the peers a
// scan of every pattern would, each once, in an order that holds still.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compilePattern, type RouteMatcher, type RoutePattern } from "../src/bus/route_pattern.ts";
import { RouteTable } from "../src/bus/route_table.ts";

const compile = (...patterns: RoutePattern[]): RouteMatcher[] => patterns.map((p) => compilePattern(p));

test("RouteTable.match names each peer whose exact, prefix or RegExp pattern matches, once", () => {
  const table = new RouteTable<string>();
  table.set("a", compile("/jobs/1", "/jobs/*"));
  table.set("b", compile("/jobs/1"));
  table.set("c", compile(/^\/jobs\/\d+$/, "/j*"));
  table.set("d", compile("/other"));
  assert.deepEqual([...table.match("/jobs/1")].sort(), ["a", "b", "c"]);
  assert.deepEqual([...table.match("/jobs/x")].sort(), ["a", "c"]);
  assert.deepEqual([...table.match("/other")], ["d"]);
  assert.deepEqual([...table.match("/nobody")], []);
  assert.equal(table.size, 6);
  // The same patterns, the same order: round-robin over it alternates.
  assert.deepEqual(table.match("/jobs/1"), table.match("/jobs/1"));
});

test("RouteTable.set replaces a peer's patterns, and remove forgets them all", () => {
  const table = new RouteTable<number>();
  table.set(1, compile("/a", "/p/*", /^\/r$/));
  table.set(2, compile("/a", "/a"));
  table.set(1, compile("/b"));
  assert.deepEqual([...table.match("/a")], [2]);
  assert.deepEqual([...table.match("/p/x")], []);
  assert.deepEqual([...table.match("/r")], []);
  assert.deepEqual([...table.match("/b")], [1]);
  assert.equal(table.size, 3);
  table.remove(2);
  table.set(1, []);
  assert.deepEqual([...table.match("/a"), ...table.match("/b")], []);
  assert.equal(table.size, 0);
  table.remove(3); // never had any: nothing happens
  assert.equal(table.size, 0);
});

test("RouteTable.match agrees with a scan of every pattern of every peer, through random changes", () => {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)];
  const routes = ["/a", "/a/b", "/a/b/c", "/b", "/b/1", "/c/22", "", "/", "/a/"];
  // deno-fmt-ignore
  const patterns: RoutePattern[] = [
    "/a", "/a/b", "/b", "/", "/a*", "/a/*", "/b/*", "*", "/c/2*", /^\/b\/\d$/, /c/, /^$/, /^\/a\/?$/,
  ];
  const table = new RouteTable<number>();
  const held = new Map<number, RouteMatcher[]>();
  for (let step = 0; step < 2_000; step++) {
    const peer = Math.floor(next() * 12);
    if (next() < 0.2) {
      table.remove(peer);
      held.delete(peer);
    } else {
      const list = compile(...Array.from({ length: Math.floor(next() * 4) }, () => pick(patterns)));
      table.set(peer, list);
      if (list.length > 0) held.set(peer, list);
      else held.delete(peer);
    }
    for (const route of routes) {
      const scanned = [...held].filter(([, list]) => list.some((m) => m.matches(route))).map(([p]) => p);
      assert.deepEqual([...table.match(route)].sort((x, y) => x - y), scanned.sort((x, y) => x - y), route);
    }
    assert.equal(table.size, [...held.values()].reduce((sum, list) => sum + list.length, 0));
  }
});
