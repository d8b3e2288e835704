import { test } from "node:test";
import assert from "node:assert/strict";
import { compileAlertPattern } from "../src/bus/alert_pattern.ts";
import { AlertTable } from "../src/bus/alert_table.ts";

const matches = (pattern: string, name: string): boolean => compileAlertPattern(pattern)!.matches(name);

test("compileAlertPattern leaves exact names alone, stars inside a token included", () => {
  for (const name of ["hello", "jobs.new", "a*b", "x>y", "/render", "jobs.*x"]) {
    assert.equal(compileAlertPattern(name), undefined, name);
  }
});

test("a * token matches exactly one non-empty token", () => {
  assert.ok(matches("jobs.*", "jobs.new"));
  assert.ok(matches("*.new", "jobs.new"));
  assert.ok(matches("a.*.c", "a.b.c"));
  assert.ok(!matches("jobs.*", "jobs"));
  assert.ok(!matches("jobs.*", "jobs."));
  assert.ok(!matches("jobs.*", "jobs.new.urgent"));
  assert.ok(!matches("jobs.*", "jobsx.new"));
  assert.ok(!matches("jobs.*", "job.new"));
  assert.ok(!matches("a.*.c", "a..c"));
  assert.ok(!matches("a.*.c", "a.b.cd"));
});

test("a > token matches one or more tokens, only as the last token", () => {
  assert.ok(matches("jobs.>", "jobs.new"));
  assert.ok(matches("jobs.>", "jobs.new.urgent"));
  assert.ok(!matches("jobs.>", "jobs"));
  assert.ok(!matches("jobs.>", "jobs."));
  assert.ok(!matches("jobs.>", "jobsx.new"));
  assert.ok(matches("*.>", "a.b.c"));
  assert.ok(!matches("*.>", "a"));
  assert.throws(() => compileAlertPattern("jobs.>.new"), TypeError);
});

test('the bare "*" and ">" match every alert name', () => {
  for (const name of ["x", "jobs.new", "a.b.c", ".", "*"]) {
    assert.ok(matches("*", name), name);
    assert.ok(matches(">", name), name);
  }
});

test("AlertTable.match prefers the exact name, then literal tokens over *, then * over > and the catch-all", () => {
  const table = new AlertTable<string>();
  for (const name of ["*", "jobs.>", "jobs.*", "*.new", "jobs.new", "a.*.c", "a.>"]) table.set(name, name);
  assert.equal(table.match("jobs.new"), "jobs.new");
  assert.equal(table.match("jobs.old"), "jobs.*");
  assert.equal(table.match("work.new"), "*.new");
  assert.equal(table.match("jobs.new.urgent"), "jobs.>");
  assert.equal(table.match("a.b.c"), "a.*.c");
  assert.equal(table.match("a.b.d"), "a.>");
  assert.equal(table.match("other"), "*");
  table.delete("*");
  assert.equal(table.match("other"), undefined);
  table.delete("jobs.new");
  assert.equal(table.match("jobs.new"), "jobs.*");
});

test("AlertTable.matchAll gives every match, the exact entry first, and forgets cached answers on change", () => {
  const table = new AlertTable<string>();
  table.set("jobs.new", "exact");
  assert.deepEqual(table.matchAll("jobs.new"), ["exact"]);
  table.set("jobs.>", "rest");
  table.set("*", "any");
  table.set("jobs.*", "one");
  assert.deepEqual(table.matchAll("jobs.new"), ["exact", "one", "rest", "any"]);
  assert.deepEqual(table.matchAll("jobs.a.b"), ["rest", "any"]);
  table.set("jobs.*", "one again");
  assert.deepEqual(table.matchAll("jobs.new"), ["exact", "one again", "rest", "any"]);
  assert.equal(table.get("jobs.*"), "one again");
  assert.equal(table.size, 4);
  table.clear();
  assert.deepEqual(table.matchAll("jobs.new"), []);
});

test("AlertTable answers many distinct names with a bounded memory of past answers", () => {
  const table = new AlertTable<number>();
  table.set("n.*", 1);
  for (let i = 0; i < 5000; i++) assert.equal(table.match(`n.${i}`), 1);
  assert.equal(table.match("m.1"), undefined);
});
