import { test } from "node:test";
import assert from "node:assert/strict";
import { RECONNECT_DEFAULTS, ReconnectPolicy } from "../src/bus/reconnect_policy.ts";
import { within } from "./_helpers.ts";

const never = { signal: new AbortController().signal, isFatal: () => false };

test("ReconnectPolicy is off unless reconnect is true or an object, with nats-like defaults", () => {
  assert.equal(ReconnectPolicy.from(undefined), undefined);
  assert.equal(ReconnectPolicy.from(false), undefined);
  const policy = ReconnectPolicy.from(true)!;
  assert.equal(policy.maxAttempts, RECONNECT_DEFAULTS.maxAttempts);
  assert.equal(policy.delay, RECONNECT_DEFAULTS.delay);
  assert.equal(policy.maxDelay, RECONNECT_DEFAULTS.maxDelay);
  assert.equal(ReconnectPolicy.from({ maxAttempts: Infinity })!.maxAttempts, Infinity);
});

test("ReconnectPolicy rejects settings that are not numbers in range", () => {
  assert.throws(() => ReconnectPolicy.from({ maxAttempts: 0 }), RangeError);
  assert.throws(() => ReconnectPolicy.from({ delay: -1 }), RangeError);
  assert.throws(() => ReconnectPolicy.from({ maxDelay: Number.NaN }), RangeError);
  assert.throws(() => ReconnectPolicy.from("yes" as unknown as boolean), TypeError);
});

test("ReconnectPolicy doubles the wait per attempt up to maxDelay", () => {
  const policy = ReconnectPolicy.from({ delay: 100, maxDelay: 1000 })!;
  assert.deepEqual([1, 2, 3, 4, 5, 6, 100].map((n) => policy.delayBefore(n)), [100, 200, 400, 800, 1000, 1000, 1000]);
  assert.equal(ReconnectPolicy.from({ delay: 500, maxDelay: 10 })!.delayBefore(1), 500);
});

test("ReconnectPolicy.run retries until an attempt succeeds", async () => {
  const policy = ReconnectPolicy.from({ delay: 1, maxDelay: 2 })!;
  const seen: number[] = [];
  const result = await within(
    2000,
    "the third attempt",
    policy.run((n) => {
      seen.push(n);
      return n < 3 ? Promise.reject(new Error(`fail ${n}`)) : Promise.resolve("ok");
    }, never),
  );
  assert.equal(result, "ok");
  assert.deepEqual(seen, [1, 2, 3]);
});

test("ReconnectPolicy.run gives up after maxAttempts with the last error, or at once on a fatal one", async () => {
  const policy = ReconnectPolicy.from({ maxAttempts: 3, delay: 1 })!;
  let calls = 0;
  await assert.rejects(
    within(2000, "giving up", policy.run((n) => (calls++, Promise.reject(new Error(`fail ${n}`))), never)),
    /fail 3/,
  );
  assert.equal(calls, 3);
  calls = 0;
  await assert.rejects(
    within(
      2000,
      "a fatal error",
      policy.run(() => (calls++, Promise.reject(new TypeError("fatal"))), {
        ...never,
        isFatal: (err) => err instanceof TypeError,
      }),
    ),
    /fatal/,
  );
  assert.equal(calls, 1);
});

test("ReconnectPolicy.run stops waiting when its signal aborts", async () => {
  const policy = ReconnectPolicy.from({ delay: 60_000 })!;
  const abort = new AbortController();
  let calls = 0;
  const running = policy.run(() => (calls++, Promise.resolve()), { signal: abort.signal, isFatal: () => false });
  abort.abort(new Error("closed"));
  await assert.rejects(within(1000, "the abort", running), /closed/);
  assert.equal(calls, 0);
});
