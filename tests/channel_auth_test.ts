import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { AuthError, channel, connect } from "../mod.ts";
import { tempDir, within } from "./_helpers.ts";

test("channel members with auth join with the token the first host wrote, owner-only", async () => {
  const dir = tempDir();
  const a = channel("secure", { dir: dir.path, auth: true });
  const b = channel("secure", { dir: dir.path, auth: true });
  try {
    await within(10_000, "both members", Promise.all([a.ready, b.ready]));
    assert.deepEqual(new Set([a.id, b.id]), new Set([1, 2]));
    const tokenFile = `${dir.path}/secure.token`;
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    assert.match(readFileSync(tokenFile, "utf8"), /^[0-9a-f]{64}$/);
  } finally {
    await a.close();
    await b.close();
    dir.remove();
  }
});

test("a peer with a missing or wrong channel token is refused with AuthError; the right one joins", async () => {
  const dir = tempDir();
  const host = channel("secure", { dir: dir.path, auth: true });
  try {
    await within(10_000, "the host", host.ready);
    const missing = channel("secure", { dir: dir.path, connectTimeout: 3000 });
    await assert.rejects(within(5000, "the refusal", missing.ready), AuthError);
    await missing.close();
    await assert.rejects(connect({ path: host.path }), AuthError);
    await assert.rejects(connect({ path: host.path, auth: { token: "0".repeat(64) } }), AuthError);
    const token = readFileSync(`${dir.path}/secure.token`, "utf8");
    const right = await connect({ path: host.path, auth: { token } });
    assert.equal(right.connected, true);
    await right.close();
  } finally {
    await host.close();
    dir.remove();
  }
});

test("a host replaces an empty token file left by a host that died while writing it", async () => {
  const dir = tempDir();
  writeFileSync(`${dir.path}/secure.token`, "", { mode: 0o600 });
  const host = channel("secure", { dir: dir.path, auth: true });
  try {
    await within(10_000, "the host", host.ready);
    assert.match(readFileSync(`${dir.path}/secure.token`, "utf8"), /^[0-9a-f]{64}$/);
  } finally {
    await host.close();
    dir.remove();
  }
});
