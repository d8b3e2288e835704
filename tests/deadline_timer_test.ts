import { test } from "node:test";
import assert from "node:assert/strict";
import { DeadlineTimer } from "../src/bus/deadline_timer.ts";
import { within } from "./_helpers.ts";

test("DeadlineTimer fires each live deadline once, earliest first, and never a cancelled one", async () => {
  const fired: number[] = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  const timer = new DeadlineTimer((id) => {
    fired.push(id);
    if (id === 6) done();
  });
  // id 6 (90 ms) comes after the cancelled 60 ms deadline, so waiting for it
  // gives the cancelled one every chance to fire first.
  const delays = [60, 10, 40, 20, 30, 50, 90];
  delays.forEach((ms, id) => timer.add(id, ms));
  timer.cancel(4); // 30 ms
  timer.cancel(0); // 60 ms
  await within(5000, "the last deadline", all);
  assert.deepEqual(fired, [1, 3, 2, 5, 6]);
});

test("DeadlineTimer keeps its heap bounded when most deadlines are cancelled", async () => {
  const fired: number[] = [];
  let done!: () => void;
  const last = new Promise<void>((resolve) => (done = resolve));
  const timer = new DeadlineTimer((id) => {
    fired.push(id);
    done();
  });
  let largest = 0;
  for (let id = 0; id < 100_000; id++) {
    timer.add(id, 60_000);
    timer.cancel(id);
    largest = Math.max(largest, timer.heapSize);
  }
  // Without the rebuild every cancelled entry would stay: 100 000 of them.
  assert.ok(largest <= 65, `heap grew to ${largest} entries with nothing live`);
  const live = 1000;
  for (let id = 0; id < 10 * live; id++) {
    timer.add(200_000 + id, 60_000);
    if (id % 10 !== 0) timer.cancel(200_000 + id);
  }
  assert.ok(timer.heapSize <= 2 * live + 1, `heap holds ${timer.heapSize} entries for ${live} live deadlines`);
  for (let id = 0; id < 10 * live; id += 10) timer.cancel(200_000 + id);
  timer.add(100_000, 5);
  await within(5000, "the one live deadline", last);
  assert.deepEqual(fired, [100_000]);
  timer.clear();
  assert.equal(timer.heapSize, 0);
});
