import { test } from "node:test";
import assert from "node:assert/strict";
import { Child, currentRuntime, within } from "./_helpers.ts";

// The demo is the chaos test: 4 members (2 Deno, 2 Bun) exchange numbered
// alerts and broadcasts while the hub's process is SIGKILLed three times;
// it exits 0 only if every message between live members arrived exactly
// once and in order per sender, as counted by examples/delivery_ledger.ts
// (whose own test shows the count catches a loss and a duplicate).
test("channel delivers every alert exactly once, in order, while the hub is killed three times", async () => {
  const demo = new Child(currentRuntime, "examples/demo.ts", ["--seconds", "6", "--kills", "3"]);
  try {
    const summary = await demo.waitFor(/^messages sent \d+/, 90_000);
    const [, sent, delivered, lost, duplicated, reordered, unexpected] = summary.match(
      /messages sent (\d+), delivered (\d+), lost (\d+), duplicated (\d+), reordered (\d+), unexpected (\d+)/,
    )!.map(Number);
    const output = () => `demo output:\n${demo.lines.join("\n")}`;
    assert.ok(sent > 1000, `only ${sent} messages were sent; ${output()}`);
    assert.deepEqual({ delivered, lost, duplicated, reordered, unexpected }, {
      delivered: sent,
      lost: 0,
      duplicated: 0,
      reordered: 0,
      unexpected: 0,
    }, output());
    const failover = await demo.waitFor(/^failover time/, 5000);
    console.log(`chaos (${currentRuntime}): ${summary}; ${failover}`);
    assert.match(failover, /worst of 3/);
    assert.equal(await within(30_000, "the demo to exit", demo.exited), 0);
  } finally {
    await demo.kill("SIGKILL").catch(() => {});
  }
});
