/**
 * A Deno process without the flags ipcbus needs gets one typed answer from
 * `serve()`, `connect()` and `channel()`: a `PermissionError` naming the
 * flag, at once. Deno children whichever runtime runs this file: only Deno
 * has permission flags.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { repoRoot, runtimeBin, tempDir } from "./_helpers.ts";

const WAIT = 30_000;

/** Runs the probe under Deno with `flags`, resolving with the JSON line it printed. */
function probe(flags: string[], what: string, dir: string): Promise<Record<string, string>> {
  const script = join(repoRoot, "tests", "fixtures", "permission_probe.ts");
  return new Promise((resolve, reject) => {
    execFile(
      runtimeBin("deno"),
      ["run", "--no-prompt", ...flags, script, what, dir],
      { cwd: repoRoot, timeout: WAIT },
      (err, stdout, stderr) => {
        const line = stdout.trim().split("\n").pop() ?? "";
        if (err && !line) return reject(new Error(`probe ${what} failed: ${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(line));
        } catch {
          reject(new Error(`probe ${what} printed no JSON:\n${stdout}\n${stderr}`));
        }
      },
    );
  });
}

for (const what of ["serve", "connect", "channel"]) {
  test(`${what}() without --allow-net fails at once with PermissionError naming --allow-net=unix:<path>`, {
    timeout: 2 * WAIT,
  }, async () => {
    const dir = tempDir();
    try {
      const result = await probe(["--allow-read", "--allow-write", "--allow-env"], what, dir.path);
      const socket = join(dir.path, what === "channel" ? "c.sock" : "a.sock");
      assert.equal(result.name, "PermissionError", JSON.stringify(result));
      assert.equal(result.code, "permission_denied");
      assert.ok(result.message?.includes(`--allow-net=unix:${socket}`), result.message);
    } finally {
      dir.remove();
    }
  });
}

test(
  "serve() without --allow-write fails with PermissionError naming --allow-write",
  { timeout: 2 * WAIT },
  async () => {
    const dir = tempDir();
    try {
      const result = await probe(["--allow-read", "--allow-net", "--allow-env"], "serve", join(dir.path, "sub"));
      assert.equal(result.name, "PermissionError", JSON.stringify(result));
      assert.match(result.message ?? "", /--allow-write=/);
    } finally {
      dir.remove();
    }
  },
);

test(
  "channel() without --allow-write fails with PermissionError naming --allow-write",
  { timeout: 2 * WAIT },
  async () => {
    const dir = tempDir();
    try {
      const result = await probe(["--allow-read", "--allow-net", "--allow-env"], "channel", join(dir.path, "sub"));
      assert.equal(result.name, "PermissionError", JSON.stringify(result));
      assert.match(result.message ?? "", /--allow-write=/);
    } finally {
      dir.remove();
    }
  },
);
