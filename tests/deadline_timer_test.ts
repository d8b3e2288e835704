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
    if (fired.length === 4) done();
  });
  const delays = [60, 10, 40, 20, 30, 50];
  delays.forEach((ms, id) => timer.add(id, ms));
  timer.cancel(4); // 30 ms
  timer.cancel(0); // 60 ms
  await within(2000, "four deadlines", all);
  assert.deepEqual(fired, [1, 3, 2, 5]);
});

test("DeadlineTimer keeps its heap bounded when most deadlines are cancelled", async () => {
  const fired: number[] = [];
  let done!: () => void;
  const last = new Promise<void>((resolve) => (done = resolve));
  const timer = new DeadlineTimer((id) => {
    fired.push(id);
    done();
  });
  for (let id = 0; id < 100_000; id++) {
    timer.add(id, 60_000);
    timer.cancel(id);
  }
  timer.add(100_000, 5);
  await within(2000, "the one live deadline", last);
  assert.deepEqual(fired, [100_000]);
});
