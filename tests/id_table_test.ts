/**
 * The id table of a peer's view (src/bus/id_table.ts): dense ids in array
 * slots, far ones in a map, one entry per id whichever holds it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { IdTable } from "../src/bus/id_table.ts";

test("IdTable keeps one entry per id, dense or far, and counts them", () => {
  const table = new IdTable<string>();
  for (let id = 0; id < 100; id++) table.set(id, `p${id}`);
  // Far past the slots (a foreign numbering), negative, fractional: kept all the same.
  table.set(1e12, "far");
  table.set(-3, "negative");
  table.set(2.5, "fraction");
  assert.equal(table.size, 103);
  assert.equal(table.get(1e12), "far");
  assert.equal(table.get(-3), "negative");
  assert.equal(table.get(2.5), "fraction");
  assert.equal(table.get(57), "p57");
  assert.equal(table.get(100), undefined);
  assert.ok(!table.has(101));
  // Replacing an entry does not count it twice.
  table.set(57, "again");
  table.set(1e12, "far again");
  assert.equal(table.size, 103);
  assert.equal(table.get(57), "again");
  assert.equal(table.get(1e12), "far again");
  // An id first kept in the map (past the reach of the slots) and set again once the slots reach it: one entry.
  table.set(5000, "map");
  for (let id = 100; id < 4100; id++) table.set(id, `p${id}`);
  assert.equal(table.size, 4104);
  table.set(5000, "slot");
  assert.equal(table.size, 4104);
  assert.equal(table.get(5000), "slot");
  assert.equal(table.ids().filter((id) => id === 5000).length, 1);
  // Delete from either side.
  assert.ok(table.delete(5000));
  assert.ok(table.delete(-3));
  assert.ok(!table.delete(-3));
  assert.ok(table.delete(0));
  assert.equal(table.size, 4101);
  assert.equal(table.get(0), undefined);
  // Slots in id order, then the others; values in the same order.
  const ids = table.ids();
  assert.equal(ids.length, 4101);
  assert.deepEqual(ids.slice(0, 3), [1, 2, 3]);
  assert.deepEqual(table.values().slice(0, 3), ["p1", "p2", "p3"]);
  assert.deepEqual(ids.slice(-2), [1e12, 2.5]);
  table.clear();
  assert.equal(table.size, 0);
  assert.deepEqual(table.ids(), []);
});
