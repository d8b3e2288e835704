import { test } from "node:test";
import assert from "node:assert/strict";
import { DeliveryLedger } from "../examples/delivery_ledger.ts";

// The chaos test's verdict (examples/demo.ts) is only as good as this count.

const arrive = (seqs: number[], sender = 1): DeliveryLedger => {
  const ledger = new DeliveryLedger();
  for (const seq of seqs) ledger.record(sender, seq);
  return ledger;
};

test("DeliveryLedger counts every message of an in-order run as delivered", () => {
  assert.deepEqual(arrive([1, 2, 3, 4, 5]).count(1, 5), {
    delivered: 5,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    unexpected: 0,
  });
});

test("DeliveryLedger counts each missing number as lost, a gap of three as three", () => {
  assert.deepEqual(arrive([1, 5, 6]).count(1, 6), {
    delivered: 3,
    lost: 3,
    duplicated: 0,
    reordered: 0,
    unexpected: 0,
  });
});

test("DeliveryLedger counts the lost tail that a last-number count would hide", () => {
  assert.deepEqual(arrive([1, 2, 3]).count(1, 5), {
    delivered: 3,
    lost: 2,
    duplicated: 0,
    reordered: 0,
    unexpected: 0,
  });
});

test("DeliveryLedger counts a second arrival as a duplicate, not a delivery", () => {
  assert.deepEqual(arrive([1, 2, 2, 3, 1]).count(1, 3), {
    delivered: 3,
    lost: 0,
    duplicated: 2,
    reordered: 0,
    unexpected: 0,
  });
});

test("DeliveryLedger counts a late first arrival as reordered and delivered", () => {
  assert.deepEqual(arrive([1, 3, 2, 4]).count(1, 4), {
    delivered: 4,
    lost: 0,
    duplicated: 0,
    reordered: 1,
    unexpected: 0,
  });
});

test("DeliveryLedger counts numbers the sender did not say it sent as unexpected", () => {
  assert.deepEqual(arrive([0, 1, 2, 9]).count(1, 2), {
    delivered: 2,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    unexpected: 2,
  });
});

test("DeliveryLedger keeps senders apart and counts a silent sender's messages as lost", () => {
  const ledger = arrive([1, 2]);
  ledger.record(2, 1);
  ledger.record(2, 1);
  assert.deepEqual(ledger.count(1, 2), { delivered: 2, lost: 0, duplicated: 0, reordered: 0, unexpected: 0 });
  assert.deepEqual(ledger.count(2, 1), { delivered: 1, lost: 0, duplicated: 1, reordered: 0, unexpected: 0 });
  assert.deepEqual(ledger.count(3, 4), { delivered: 0, lost: 4, duplicated: 0, reordered: 0, unexpected: 0 });
  assert.equal(ledger.arrivals(), 4);
});
