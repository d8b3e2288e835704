import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, unlinkSync, writeFileSync } from "node:fs";
import { channel, ClosedError, connect, IpcError, serve } from "../mod.ts";
import { Child, currentRuntime, runtimes, tempDir, until, within } from "./_helpers.ts";

test("Hub binds a new socket file when its socket file is deleted, and reports it", async () => {
  const dir = tempDir();
  const path = `${dir.path}/hub.sock`;
  const hub = await serve({ path });
  try {
    const reported = new Promise<unknown>((resolve) =>
      hub.addEventListener("error", (e) => resolve((e as CustomEvent).detail), { once: true })
    );
    unlinkSync(path);
    const err = await within(5000, "the socket_lost report", reported);
    assert.ok(err instanceof IpcError);
    assert.equal(err.code, "socket_lost");
    assert.match(err.message, new RegExp(`${path}`));
    assert.ok(existsSync(path));
    assert.equal(hub.stats().socketRebinds, 1);
    const peer = await connect({ path });
    assert.deepEqual(await peer.request("/ipcbus/echo", "still here"), "still here");
    await peer.close();
  } finally {
    await hub.close();
    dir.remove();
  }
  assert.equal(existsSync(path), false);
});

test("serve() and channel() fail with an error naming the directory when it cannot be created", async () => {
  const dir = tempDir();
  const blocker = `${dir.path}/not-a-dir`;
  writeFileSync(blocker, "");
  try {
    await assert.rejects(serve({ path: `${blocker}/hub.sock` }), (err: Error) => err.message.includes(blocker));
    assert.throws(() => channel("x", { dir: `${blocker}/channels` }), /Cannot create channel directory .*not-a-dir/);
  } finally {
    dir.remove();
  }
});

for (const hubRuntime of runtimes) {
  test(`A request in flight rejects with ClosedError at once when the ${hubRuntime} hub is SIGKILLed`, async () => {
    const dir = tempDir();
    const path = `${dir.path}/hub.sock`;
    const hub = new Child(hubRuntime, "tests/fixtures/bus_hub.ts", [path]);
    try {
      await hub.waitFor('"ready"');
      const peer = await connect({ path });
      const lost = new Promise((resolve) => peer.addEventListener("disconnect", resolve, { once: true }));
      // Broadcasts queued as the hub dies must not surface as unhandled errors.
      for (let i = 0; i < 100; i++) peer.broadcast("tick", i);
      const pending = peer.request("/ipcbus/delay", { delay: 20_000 }, { timeout: 30_000 });
      const big = peer.request("/ipcbus/echo", new Uint8Array(32 * 1024 * 1024), { timeout: 30_000 });
      const outcomes = Promise.allSettled([pending, big]);
      const killedAt = Date.now();
      process.kill(hub.pid, "SIGKILL");
      const [small, large] = await within(5000, "both requests to settle", outcomes);
      assert.ok(small.status === "rejected" && small.reason instanceof ClosedError, String(small));
      assert.ok(large.status === "rejected" && large.reason instanceof ClosedError, String(large));
      assert.ok(Date.now() - killedAt < 3000, "rejected long before the request's own timeout");
      await within(5000, "disconnect", lost);
      assert.throws(() => peer.broadcast("tick", 0), ClosedError);
      await peer.close();
    } finally {
      await hub.kill("SIGKILL").catch(() => {});
      dir.remove();
    }
  });
}

test("A peer's process killed mid-send leaves the hub serving the others", async () => {
  const dir = tempDir();
  const path = `${dir.path}/hub.sock`;
  const hub = await serve({ path });
  const flooder = new Child(currentRuntime, "tests/fixtures/bus_peer.ts", [path]);
  try {
    await flooder.waitFor('"ready"');
    const a = await connect({ path });
    // The flooder may only send to peers it has seen join.
    await flooder.waitFor(new RegExp(`"ev":"peerjoin".*"id":${a.id}\\b`));
    flooder.send(JSON.stringify({ op: "flood", to: a.id, name: "x", count: 1_000_000 }));
    await until(5000, "the flood to start", () => a.stats().alertsReceived > 0 || hub.stats().alerts > 0);
    process.kill(flooder.pid, "SIGKILL");
    await until(5000, "the flooder to leave", () => hub.stats().peersLeft === 1);
    assert.equal(await a.request("/ipcbus/echo", 1), 1);
    await a.close();
  } finally {
    await flooder.kill("SIGKILL").catch(() => {});
    await hub.close();
    dir.remove();
  }
});
