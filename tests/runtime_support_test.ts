/**
 * What README.md says about runtimes: the Deno permission table, flag for
 * flag (no -A; cbor-x loads without --allow-env), and Node.js getting
 * UnsupportedRuntimeError.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { repoRoot, runtimeBin, tempDir, within } from "./_helpers.ts";

const FIXTURE = join(repoRoot, "tests", "fixtures", "permissions_check.ts");

/** Runs `command` to its end (at most 60 s) and returns its exit code and output. */
async function run(
  command: string,
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number | null; out: string }> {
  const merged: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...env })) if (value !== undefined) merged[key] = value;
  const child = spawn(command, args, { cwd: repoRoot, env: merged, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  try {
    return { code: await within(60_000, `${command} ${args.join(" ")}`, exited), out };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

/** `deno run --no-prompt <flags> permissions_check.ts <args>`: no flag beyond those given. */
const denoRun = (flags: string[], args: string[], env: Record<string, string | undefined> = {}) =>
  run(runtimeBin("deno"), ["run", "--no-prompt", ...flags, FIXTURE, ...args], env);

test("serve, connect, listen and dial run on Deno with exactly the README's flags, and not without --allow-net", async () => {
  const dir = tempDir();
  try {
    const path = `${dir.path}/app.sock`;
    const flags = ["--allow-read", "--allow-write", `--allow-net=unix:${path}`];
    const ok = await denoRun(flags, ["bus", path]);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /^ok$/m);
    // The control: the flags are what grants it.
    const denied = await denoRun(flags.slice(0, 2), ["bus", path]);
    assert.notEqual(denied.code, 0, denied.out);
    assert.match(denied.out, /NotCapable|Requires net access/);
  } finally {
    dir.remove();
  }
});

test("channel with dir runs on Deno with exactly the README's flags for that dir", async () => {
  const dir = tempDir();
  try {
    const flags = ["--allow-read", "--allow-write", `--allow-net=unix:${dir.path}/perm.sock`];
    const ok = await denoRun(flags, ["channel", dir.path]);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, new RegExp(`^path ${dir.path}/perm.sock$`, "m"));
    assert.match(ok.out, /^ok$/m);
  } finally {
    dir.remove();
  }
});

test("channel without dir runs on Deno with the README's added flags, XDG_RUNTIME_DIR set or unset", async () => {
  const dir = tempDir();
  try {
    const base = ["--allow-read", "--allow-write"];
    const xdg = `${dir.path}/xdg`;
    const set = await denoRun(
      [...base, `--allow-net=unix:${xdg}/ipcbus/perm.sock`, "--allow-env=XDG_RUNTIME_DIR"],
      ["channel-default"],
      { XDG_RUNTIME_DIR: xdg },
    );
    assert.equal(set.code, 0, set.out);
    assert.match(set.out, new RegExp(`^path ${xdg}/ipcbus/perm.sock$`, "m"));

    const tmp = `${dir.path}/tmp`;
    mkdirSync(tmp);
    const unsetFlags = [
      ...base,
      `--allow-net=unix:${tmp}/ipcbus-${userInfo().uid}/perm.sock`,
      "--allow-env=XDG_RUNTIME_DIR,TMPDIR,TMP,TEMP",
      "--allow-sys=uid,gid,userInfo",
    ];
    const unset = await denoRun(unsetFlags, ["channel-default"], { XDG_RUNTIME_DIR: undefined, TMPDIR: tmp });
    assert.equal(unset.code, 0, unset.out);
    assert.match(unset.out, new RegExp(`^path ${tmp}/ipcbus-${userInfo().uid}/perm.sock$`, "m"));
  } finally {
    dir.remove();
  }
});

test("On Node.js, listen, dial, serve, connect and a channel's ready reject with UnsupportedRuntimeError", async () => {
  // Node 20 cannot load the .ts files as they ship (no type stripping): the check runs on a bundle of mod.ts.
  const dir = tempDir();
  try {
    const bundle = `${dir.path}/mod.mjs`;
    const built = await run(runtimeBin("bun"), [
      "build",
      "mod.ts",
      "--target=node",
      "--format=esm",
      `--outfile=${bundle}`,
    ]);
    assert.equal(built.code, 0, built.out);
    const script = `
      const m = await import(${JSON.stringify(bundle)});
      const path = ${JSON.stringify(`${dir.path}/x.sock`)};
      const calls = {
        listen: () => m.listen(path),
        dial: () => m.dial(path),
        serve: () => m.serve({ path }),
        connect: () => m.connect({ path }),
        channel: () => m.channel("x", { dir: ${JSON.stringify(dir.path)} }).ready,
      };
      const out = {};
      for (const [name, call] of Object.entries(calls)) {
        try { await call(); out[name] = "resolved"; }
        catch (e) { out[name] = [e instanceof m.UnsupportedRuntimeError, e.code, /runs on Deno or Bun/.test(e.message)]; }
      }
      console.log(JSON.stringify(out));
      process.exit(0);`;
    const node = await run("node", ["--input-type=module", "-e", script]);
    assert.equal(node.code, 0, node.out);
    const expected = [true, "unsupported_runtime", true];
    assert.deepEqual(JSON.parse(node.out.trim().split("\n").at(-1)!), {
      listen: expected,
      dial: expected,
      serve: expected,
      connect: expected,
      channel: expected,
    });
  } finally {
    dir.remove();
  }
});
